package console

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/palaver-bot/palaver/llm/attach"
	"github.com/palaver-bot/palaver/sessions"
)

// maxPending is how many files /attach holds for the next message.
const maxPending = 10

// files is the terminal's Fetcher: an attachment's Ref is a path on this
// machine, read when the answer starts.
type files struct{}

// Fetch reads the file at a.Ref, at most limit bytes.
func (files) Fetch(ctx context.Context, a sessions.Attachment, limit int64) ([]byte, error) {
	f, err := os.Open(a.Ref)
	if err != nil {
		return nil, fmt.Errorf("console: open attachment: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > limit {
		return nil, &attach.TooLargeError{Size: st.Size(), Limit: limit}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("console: read attachment: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, &attach.TooLargeError{Size: int64(len(data)), Limit: limit}
	}
	return data, nil
}

// attachFile holds the file at path for the next message, or says why it
// cannot.
func (c *Chat) attachFile(path string) {
	path = strings.Trim(strings.TrimSpace(path), `"'`)
	if path == "" {
		c.printf("%s\n", c.dim("Usage: /attach PATH — a picture, text file, PDF or recording that goes with your next message."))
		return
	}
	if strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, path[2:])
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		c.printf("%s\n", c.dim(fmt.Sprintf("📎 %s: %v", path, err)))
		return
	}
	st, err := os.Stat(abs)
	switch {
	case err != nil:
		c.printf("%s\n", c.dim(fmt.Sprintf("📎 %s: no such file here.", path)))
		return
	case st.IsDir():
		c.printf("%s\n", c.dim(fmt.Sprintf("📎 %s is a directory; attach files one by one.", path)))
		return
	case len(c.pending) >= maxPending:
		c.printf("%s\n", c.dim(fmt.Sprintf("📎 At most %d files go with one message.", maxPending)))
		return
	}
	c.pending = append(c.pending, sessions.Attachment{
		Kind: kindOf(abs), Name: filepath.Base(abs), Size: st.Size(), Ref: abs,
	})
	c.printf("%s\n", c.dim(fmt.Sprintf("📎 %s (%s) goes with your next message.", filepath.Base(abs), sizeText(st.Size()))))
}

// kindOf guesses an attachment's kind from its name; the Manager checks
// the bytes.
func kindOf(path string) sessions.AttachmentKind {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jpg", ".jpeg", ".png", ".webp", ".gif":
		return sessions.KindImage
	case ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".wav", ".flac", ".aac":
		return sessions.KindVoice
	}
	return sessions.KindFile
}

// sizeText writes a file size for people.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
