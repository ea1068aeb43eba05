package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/attach"
)

// pathList is a flag that may be given several times.
type pathList []string

func (p *pathList) String() string     { return fmt.Sprint(*p) }
func (p *pathList) Set(s string) error { *p = append(*p, s); return nil }

// attachLimits are the attachment limits of the chat section.
func attachLimits(cfg *Config) attach.Limits {
	return attach.Limits{
		MaxFileBytes: cfg.Chat.MaxAttachmentBytes,
		MaxImageSide: cfg.Chat.ImageMaxSide,
		MaxTextChars: cfg.Chat.MaxFileChars,
	}
}

// readFiles prepares the files a question comes with: pictures become the
// message's images, text files and PDFs text blocks after the question.
// Each file is checked for size before it is read. A file that cannot be
// read is an error naming it, in a sentence for the person who typed it.
func readFiles(ctx context.Context, paths []string, lim attach.Limits) (images []llm.Image, blocks []string, err error) {
	for _, path := range paths {
		name := filepath.Base(path)
		st, err := os.Stat(path)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if st.IsDir() {
			return nil, nil, fmt.Errorf("%s is a directory", path)
		}
		if err := lim.Check(name, "", st.Size(), false); err != nil {
			return nil, nil, fmt.Errorf("%s: %s", path, attach.UserMessage(err))
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		part, err := attach.Prepare(ctx, attach.Input{Name: name, Data: data}, lim)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s", path, attach.UserMessage(err))
		}
		switch p := part.(type) {
		case *attach.Image:
			images = append(images, llm.Image{MIME: p.MIME, Data: p.Data})
		case *attach.Text:
			blocks = append(blocks, p.Block)
		default:
			return nil, nil, fmt.Errorf("%s: palaver ask reads pictures, text files and PDFs; for a voice recording use palaver chat", path)
		}
	}
	return images, blocks, nil
}
