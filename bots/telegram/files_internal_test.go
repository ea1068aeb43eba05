package telegram

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm/attach"
)

func TestFileEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name, api, want string
		ok              bool
	}{
		{"OK", "https://api.telegram.org/bot%s/%s", "https://api.telegram.org/file/bot%s/%s", true},
		{"OKSelfHosted", "http://127.0.0.1:8081/bot%s/%s", "http://127.0.0.1:8081/file/bot%s/%s", true},
		{"OKPrefix", "https://proxy.example/telegram/bot%s/%s?x=100%%", "https://proxy.example/telegram/file/bot%s/%s?x=100%%", true},
		{"ErrNoBot", "https://proxy.example/%s/%s", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := fileEndpoint(tc.api)
			if got != tc.want || ok != tc.ok {
				t.Errorf("fileEndpoint(%q) = %q, %v; want %q, %v", tc.api, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestFiles_Local reads the absolute paths of a Bot API server started
// with --local, on this machine's disk.
func TestFiles_Local(t *testing.T) {
	const token = "123:SECRET-token"
	dir := t.TempDir()
	docs := filepath.Join(dir, token, "documents")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docs, "file_1.txt"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(outside, []byte("not the bot's"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFiles(&api{token: token}, "http://127.0.0.1:1/bot%s/%s", &http.Client{})
	slash := filepath.ToSlash
	for _, tc := range []struct {
		name, path string
		limit      int64
		want       string // the data, or a part of the error
		tooLarge   bool
	}{
		{"OK", slash(filepath.Join(docs, "file_1.txt")), 100, "0123456789", false},
		{"ErrTooLarge", slash(filepath.Join(docs, "file_1.txt")), 5, "file is 10 bytes", true},
		{"ErrNotAFile", slash(docs), 100, "not a regular file", false},
		{"ErrPathRedacted", slash(filepath.Join(docs, "file_1.txt", "x")), 100, "<token>", false},
		{"ErrOutside", slash(outside), 100, "outside the bot's directory", false},
		{"ErrEscape", slash(docs) + "/../../secret.txt", 100, "outside the bot's directory", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := f.local(t.Context(), tc.path, tc.limit)
			if err == nil {
				if string(data) != tc.want {
					t.Errorf("local = %q, want %q", data, tc.want)
				}
				return
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("local error = %q, want one saying %q without the token", err, tc.want)
			}
			var tl *attach.TooLargeError
			if errors.As(err, &tl) != tc.tooLarge {
				t.Errorf("local error = %v, TooLargeError: %v, want %v", err, !tc.tooLarge, tc.tooLarge)
			}
		})
	}
}
