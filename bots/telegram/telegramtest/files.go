package telegramtest

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxDownload is the largest file getFile serves by default: the
// Bot API's 20 MB limit for bots.
const DefaultMaxDownload = 20 << 20

// storedFile is a file users sent, as getFile and the file endpoint serve
// it.
type storedFile struct {
	id, uniqueID string
	path         string // relative to the bot's directory: "photos/file_3.jpg"
	mime         string
	data         []byte
}

func (f *storedFile) size() int64 { return int64(len(f.data)) }

// addFileLocked stores data as a new file in dir ("photos", "documents",
// …) with the extension ext. s.mu must be held.
func (s *Server) addFileLocked(dir, ext, mimeType string, data []byte) *storedFile {
	s.fileSeq++
	n := strconv.Itoa(s.fileSeq)
	if ext == "" || strings.ContainsAny(ext, "/\\") {
		ext = ""
	}
	f := &storedFile{
		// Telegram's ids are opaque base64 strings; these are recognisably fake.
		id:       "AgACAgQAAxkBAAI-fake-file-" + n,
		uniqueID: "AQAD-fake-" + n,
		path:     dir + "/file_" + n + ext,
		mime:     mimeType,
		data:     slices.Clone(data),
	}
	s.files[f.id] = f
	s.paths[f.path] = f
	return f
}

// FileData returns the bytes of the file file_id names (any size of a
// photo, a document, a voice note, …), as the file endpoint serves them.
func (s *Server) FileData(fileID string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[fileID]
	if !ok {
		return nil, false
	}
	return slices.Clone(f.data), true
}

// Downloads returns the paths requested from the file endpoint
// (/file/bot<token>/<path>), answered or not, in order.
func (s *Server) Downloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.downloads)
}

// wireFile is getFile's answer.
type wireFile struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileSize     int64  `json:"file_size,omitempty"`
	FilePath     string `json:"file_path,omitempty"`
}

// getFile answers as the Bot API does: the file's path on the file
// endpoint, 400 "file is too big" over the download limit, 400 "invalid
// file_id" for an id it never gave. With Options.LocalDir the path is
// absolute, as from a server started with --local.
func (s *Server) getFile(_ context.Context, p params) (any, *apiError) {
	f, ok := s.files[strings.TrimSpace(p["file_id"])]
	if !ok {
		return nil, badRequest("invalid file_id")
	}
	if s.maxDownload > 0 && f.size() > s.maxDownload {
		return nil, badRequest("file is too big")
	}
	out := wireFile{FileID: f.id, FileUniqueID: f.uniqueID, FileSize: f.size(), FilePath: f.path}
	if s.localDir != "" {
		out.FilePath = filepath.Join(s.localDir, s.token, filepath.FromSlash(f.path))
		if !s.localRemote {
			if err := os.MkdirAll(filepath.Dir(out.FilePath), 0o755); err != nil {
				return nil, &apiError{code: 500, description: "Internal Server Error: " + err.Error()}
			}
			if err := os.WriteFile(out.FilePath, f.data, 0o644); err != nil {
				return nil, &apiError{code: 500, description: "Internal Server Error: " + err.Error()}
			}
		}
	}
	return out, nil
}

// serveFile answers GET /file/bot<token>/<file_path> with the file's bytes:
// 401 for another token, 404 for a path it never gave.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	token, filePath, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/file/bot"), "/")
	s.mu.Lock()
	s.downloads = append(s.downloads, filePath)
	f, ok := s.paths[filePath]
	s.notifyLocked()
	s.mu.Unlock()
	switch {
	case token != s.token:
		writeAnswer(w, nil, &apiError{code: http.StatusUnauthorized, description: "Unauthorized"})
	case !ok || r.Method != http.MethodGet && r.Method != http.MethodHead:
		writeAnswer(w, nil, &apiError{code: http.StatusNotFound, description: "Not Found"})
	default:
		if f.mime != "" {
			w.Header().Set("Content-Type", f.mime)
		}
		http.ServeContent(w, r, path.Base(f.path), time.Time{}, bytes.NewReader(f.data))
	}
}
