package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/llm/attach"
	"github.com/palaver-bot/palaver/sessions"
)

// DownloadLimit is the largest file the Bot API lets a bot download: 20 MB
// (getFile refuses larger ones). A self-hosted Bot API server started with
// --local has no such limit.
const DownloadLimit = 20 << 20

// getFileTimeout bounds a getFile request; the download after it is
// bounded by attach.Fetch.
const getFileTimeout = 30 * time.Second

// files downloads the files of Telegram messages for the Manager: getFile
// gives a file's path, and the file endpoint its bytes. It is safe for
// concurrent use. The token, which every file URL contains, never appears
// in its errors.
type files struct {
	api *api
	// endpoint is the file URL format string, with the token and the file
	// path as its two %s; "" when the API endpoint does not say where
	// files are.
	endpoint string
	// client downloads: the Bot's, without its overall timeout, since
	// attach.Fetch bounds each download (attach.DefaultFetchTimeout).
	client *http.Client
	token  string
}

func newFiles(a *api, apiEndpoint string, client *http.Client) *files {
	dl := *client
	dl.Timeout = 0
	endpoint, _ := fileEndpoint(apiEndpoint)
	return &files{api: a, endpoint: endpoint, client: &dl, token: a.token}
}

// fileEndpoint derives the file URL format from the API's: files are at
// "/file" put before the API's "/bot%s", as the Bot API serves
// https://api.telegram.org/bot%s/%s and its files at
// https://api.telegram.org/file/bot%s/%s, and a self-hosted server (or the
// web server in front of it) likewise: http://host:8081/bot%s/%s gives
// http://host:8081/file/bot%s/%s. ok is false when the API endpoint has no
// "/bot%s".
func fileEndpoint(apiEndpoint string) (endpoint string, ok bool) {
	i := strings.LastIndex(apiEndpoint, "/bot%s")
	if i < 0 {
		return "", false
	}
	return apiEndpoint[:i] + "/file" + apiEndpoint[i:], true
}

// Fetch downloads a file of a Telegram message, reading at most limit
// bytes (limit ≤ 0 means attach.DefaultMaxFileBytes). A file larger than
// limit, by its declared size, by getFile's size or as it downloads, is an
// error wrapping *attach.TooLargeError with limit; a file the Bot API will
// not let a bot download (over DownloadLimit) is one with DownloadLimit,
// and says it is Telegram's.
func (f *files) Fetch(ctx context.Context, a sessions.Attachment, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = attach.DefaultMaxFileBytes
	}
	switch {
	case a.Unsupported != "":
		return nil, fmt.Errorf("telegram: fetch file: %s cannot be read", a.Unsupported)
	case a.Ref == "":
		return nil, errors.New("telegram: fetch file: the attachment has no file id")
	case a.Size > limit:
		return nil, fmt.Errorf("telegram: fetch file: %w", &attach.TooLargeError{Size: a.Size, Limit: limit})
	}
	file, err := f.getFile(ctx, a.Ref)
	if e := apiError(err); e != nil && strings.Contains(e.Message, "file is too big") {
		size := a.Size
		if size <= DownloadLimit {
			size = -1 // not known: the declared size (if any) was within
		}
		return nil, fmt.Errorf("telegram: get file: %w",
			&attach.TooLargeError{Size: size, Limit: DownloadLimit, Who: "Telegram lets bots download"})
	}
	if err != nil {
		return nil, err
	}
	if file.FileSize > limit {
		return nil, fmt.Errorf("telegram: fetch file: %w", &attach.TooLargeError{Size: file.FileSize, Limit: limit})
	}
	if file.FilePath == "" {
		return nil, errors.New("telegram: get file: the Bot API gave no file path")
	}
	if strings.HasPrefix(file.FilePath, "/") {
		return f.local(ctx, file.FilePath, limit)
	}
	return f.download(ctx, file.FilePath, limit)
}

// fileInfo is the part of getFile's File the Fetcher reads.
type fileInfo struct {
	FileSize int64  `json:"file_size"`
	FilePath string `json:"file_path"`
}

// getFile asks where a file is, within getFileTimeout.
func (f *files) getFile(ctx context.Context, fileID string) (fileInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, getFileTimeout)
	defer cancel()
	var file fileInfo
	if err := f.api.call(ctx, "getFile", tgbotapi.Params{"file_id": fileID}, &file); err != nil {
		return file, fmt.Errorf("telegram: get file: %w", err)
	}
	return file, nil
}

// download fetches a file path from the file endpoint.
func (f *files) download(ctx context.Context, filePath string, limit int64) ([]byte, error) {
	if f.endpoint == "" {
		return nil, errors.New("telegram: download file: telegram.api_endpoint has no /bot%s, so the file URL is not known")
	}
	segs := strings.Split(filePath, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	in, err := attach.Fetch(ctx, f.client, fmt.Sprintf(f.endpoint, f.token, strings.Join(segs, "/")), attach.Limits{MaxFileBytes: limit})
	if err != nil {
		return nil, fmt.Errorf("telegram: download file: %w", f.api.redact(err))
	}
	return in.Data, nil
}

// local fetches the absolute file path that a Bot API server started with
// --local gives: a path on its own disk, in the directory named after the
// bot's token where it keeps the bot's files
// (<dir>/<token>/<type>/file_N.ext). When the file is on this machine (the
// server runs here), it is read from the disk. Otherwise (the server runs
// on another machine or in a container) the path below the token's
// directory is downloaded from the file endpoint, where the web server in
// front of such a server serves that directory (as
// aiogram/telegram-bot-api's nginx does). A path outside a directory named
// after the token is refused: the bot reads nothing else of its disk.
func (f *files) local(ctx context.Context, filePath string, limit int64) ([]byte, error) {
	clean := path.Clean(filePath)
	dir := "/" + f.token + "/"
	i := strings.Index(clean, dir)
	if f.token == "" || i < 0 {
		return nil, errors.New("telegram: fetch file: the Bot API server gave a path outside the bot's directory")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("telegram: fetch file: %w", err)
	}
	data, err := readFile(filepath.FromSlash(clean), limit)
	if errors.Is(err, fs.ErrNotExist) {
		return f.download(ctx, clean[i+len(dir):], limit)
	}
	if err != nil {
		return nil, fmt.Errorf("telegram: read local file: %w", f.api.redact(err))
	}
	return data, nil
}

// readFile reads a regular file of at most limit bytes.
func readFile(name string, limit int64) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if fi.Size() > limit {
		return nil, &attach.TooLargeError{Size: fi.Size(), Limit: limit}
	}
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &attach.TooLargeError{Size: -1, Limit: limit}
	}
	return data, nil
}
