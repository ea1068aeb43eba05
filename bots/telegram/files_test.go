package telegram_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/attach"
	"github.com/palaver-bot/palaver/sessions"
)

// attachment sends a document and returns the attachment the Bot handed
// over for it.
func (r *rig) attachment(name, mimeType string, data []byte) sessions.Attachment {
	r.t.Helper()
	r.tg.SendDocument(alice.ID, alice, name, mimeType, data, "read this")
	got := r.handled()
	if len(got) == 0 || len(got[len(got)-1].Attachments) != 1 {
		r.t.Fatalf("handed over %+v, want a message with one attachment", got)
	}
	return got[len(got)-1].Attachments[0]
}

func TestFetcher_Fetch(t *testing.T) {
	r := newRig(t, withFetcherHeld)
	data := []byte("name,score\nalice,3\nbob,5\n")
	a := r.attachment("scores.csv", "text/csv", data)
	got, err := r.fetcher().Fetch(r.ctx(), a, 1<<20)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("Fetch = %q, want %q", got, data)
	}
	if n := len(r.tg.CallsTo("getFile")); n != 1 {
		t.Errorf("getFile calls = %d, want 1", n)
	}
	if d := r.tg.Downloads(); len(d) != 1 || !strings.HasPrefix(d[0], "documents/") {
		t.Errorf("downloads = %q, want one document", d)
	}
}

func TestFetcher_Photo(t *testing.T) {
	r := newRig(t, withFetcherHeld)
	jpg := picture(t, 400, 300, "jpeg")
	r.tg.SendPhoto(alice.ID, alice, jpg, "what is this?")
	msgs := r.handled()
	got, err := r.fetcher().Fetch(r.ctx(), msgs[0].Attachments[0], 20<<20)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !bytes.Equal(got, jpg) {
		t.Errorf("Fetch returned %d bytes, want the %d bytes sent", len(got), len(jpg))
	}
}

// TestFetcher_TooLarge checks the refusals by size: by the declared size
// before any request, by getFile's size before any download, and by
// Telegram's own 20 MB limit.
func TestFetcher_TooLarge(t *testing.T) {
	r := newRig(t, withFetcherHeld)
	big := make([]byte, telegram.DownloadLimit+1)
	a := r.attachment("big.txt", "text/plain", big)
	small := r.attachment("small.txt", "text/plain", []byte("0123456789"))
	unsized := small
	unsized.Size = 0

	for _, tc := range []struct {
		name      string
		a         sessions.Attachment
		limit     int64
		want      attach.TooLargeError
		getFile   int  // getFile calls it makes
		telegrams bool // the error names Telegram's limit
	}{
		{"DeclaredSize", a, 20 << 20, attach.TooLargeError{Size: int64(len(big)), Limit: 20 << 20}, 0, false},
		{"GetFileSize", unsized, 5, attach.TooLargeError{Size: 10, Limit: 5}, 1, false},
		{"TelegramLimit", a, 50 << 20, attach.TooLargeError{Size: int64(len(big)), Limit: telegram.DownloadLimit, Who: "Telegram lets bots download"}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(r.tg.CallsTo("getFile"))
			_, err := r.fetcher().Fetch(r.ctx(), tc.a, tc.limit)
			var tl *attach.TooLargeError
			if !errors.As(err, &tl) {
				t.Fatalf("Fetch error = %v, want an *attach.TooLargeError", err)
			}
			if *tl != tc.want {
				t.Errorf("TooLargeError = %+v, want %+v", *tl, tc.want)
			}
			if got := strings.Contains(err.Error(), "Telegram lets bots download files up to 20 MB"); got != tc.telegrams {
				t.Errorf("error %q names Telegram's limit: %v, want %v", err, got, tc.telegrams)
			}
			if msg := attach.UserMessage(err); !strings.Contains(msg, "20 MB") && tc.telegrams {
				t.Errorf("UserMessage = %q, want the 20 MB limit named", msg)
			}
			if n := len(r.tg.CallsTo("getFile")) - before; n != tc.getFile {
				t.Errorf("getFile calls = %d, want %d", n, tc.getFile)
			}
			if d := r.tg.Downloads(); len(d) != 0 {
				t.Errorf("downloads = %q, want none", d)
			}
		})
	}
}

func TestFetcher_Errors(t *testing.T) {
	r := newRig(t, withFetcherHeld)
	for _, tc := range []struct {
		name string
		a    sessions.Attachment
		want string
	}{
		{"UnknownFile", sessions.Attachment{Kind: sessions.KindFile, Ref: "no-such-file"}, "invalid file_id"},
		{"Unsupported", sessions.Attachment{Kind: sessions.KindImage, Unsupported: "stickers"}, "stickers cannot be read"},
		{"NoRef", sessions.Attachment{Kind: sessions.KindFile}, "no file id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.fetcher().Fetch(r.ctx(), tc.a, 1<<20)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "telegram: ") {
				t.Errorf("Fetch error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// prefixProxy serves the fake Bot API under a path prefix, as a reverse
// proxy in front of a self-hosted Bot API server may; files answers the
// file downloads (nil passes them on).
func prefixProxy(t *testing.T, tg *telegramtest.Server, prefix string, files http.Handler) *httptest.Server {
	t.Helper()
	target, err := url.Parse(tg.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasPrefix(req.URL.Path, prefix+"/") {
			http.NotFound(w, req)
			return
		}
		req.URL.Path = strings.TrimPrefix(req.URL.Path, prefix)
		if files != nil && strings.HasPrefix(req.URL.Path, "/file/") {
			files.ServeHTTP(w, req)
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetcher_CustomEndpoint(t *testing.T) {
	r := newRig(t, withFetcherHeld)
	r.stop() // to start again on the proxy
	proxy := prefixProxy(t, r.tg, "/telegram", nil)
	r.opts.APIEndpoint = proxy.URL + "/telegram/bot%s/%s"
	r.start()

	data := []byte("# notes\n\nthrough a proxy\n")
	a := r.attachment("notes.md", "text/markdown", data)
	got, err := r.fetcher().Fetch(r.ctx(), a, 1<<20)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("Fetch = %q, want %q", got, data)
	}
}

// TestFetcher_TokenRedacted checks that errors from a failed download and
// from an unreachable server do not contain the token, which file URLs
// carry.
func TestFetcher_TokenRedacted(t *testing.T) {
	r := newRig(t, withFetcherHeld)
	r.stop() // to start again on the proxy
	refuse := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, "gone "+req.URL.Path, http.StatusNotFound)
	})
	proxy := prefixProxy(t, r.tg, "/tg", refuse)
	r.opts.APIEndpoint = proxy.URL + "/tg/bot%s/%s"
	r.start()

	a := r.attachment("notes.txt", "text/plain", []byte("notes"))
	_, err := r.fetcher().Fetch(r.ctx(), a, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Fetch error = %v, want the file server's 404", err)
	}
	if strings.Contains(err.Error(), r.tg.Token()) {
		t.Errorf("error %q contains the token", err)
	}

	proxy.Close() // the Bot API is unreachable now
	_, err = r.fetcher().Fetch(r.ctx(), a, 1<<20)
	if err == nil {
		t.Fatal("Fetch from a closed server succeeded")
	}
	if strings.Contains(err.Error(), r.tg.Token()) {
		t.Errorf("error %q contains the token", err)
	}
}

// TestFetcher_LocalServer covers a Bot API server started with --local,
// whose getFile gives an absolute path on its own disk: read from the disk
// when it is this machine's, else downloaded from the file endpoint by the
// path below the bot's directory.
func TestFetcher_LocalServer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		remote   bool
		download bool
	}{
		{"SameMachine", false, false},
		{"OtherMachine", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := newRig(t, withFetcherHeld, func(r *rig) {
				r.fake.LocalDir, r.fake.LocalRemote, r.fake.MaxDownload = dir, tc.remote, -1
			})
			data := []byte("local mode file")
			a := r.attachment("local.txt", "text/plain", data)
			got, err := r.fetcher().Fetch(r.ctx(), a, 1<<20)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("Fetch = %q, want %q", got, data)
			}
			if d := r.tg.Downloads(); (len(d) == 1) != tc.download {
				t.Errorf("downloads = %q, want a download: %v", d, tc.download)
			}
			_, err = os.Stat(filepath.Join(dir, r.tg.Token()))
			if written := err == nil; written == tc.remote {
				t.Errorf("the server wrote its files here: %v, want %v", written, !tc.remote)
			}
		})
	}
}
