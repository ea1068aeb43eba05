package telegramtest_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

// testJPEG is a w×h JPEG.
func testJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// onlyUpdate fetches the one pending update with the real client.
func onlyUpdate(t *testing.T, bot *tgbotapi.BotAPI) tgbotapi.Update {
	t.Helper()
	us, err := bot.GetUpdates(tgbotapi.UpdateConfig{Timeout: 0})
	if err != nil {
		t.Fatalf("GetUpdates: %v", err)
	}
	if len(us) != 1 || us[0].Message == nil {
		t.Fatalf("updates = %+v, want one message", us)
	}
	return us[0]
}

// download fetches a file_path from the file endpoint with a token.
func download(t *testing.T, srv *telegramtest.Server, token, filePath string) (int, []byte) {
	t.Helper()
	resp, err := srv.Client().Get(fmt.Sprintf(srv.FileEndpoint(), token, filePath))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestServer_SendPhoto(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	pic := testJPEG(t, 1000, 500)
	sent := srv.SendPhoto(userID, alice, pic, "hey @palaver_bot, look")

	m := onlyUpdate(t, bot).Message
	if m.Caption != "hey @palaver_bot, look" || len(m.CaptionEntities) != 1 || m.CaptionEntities[0].Type != "mention" || m.CaptionEntities[0].Offset != 4 {
		t.Errorf("caption = %q %+v, want the caption with its mention entity", m.Caption, m.CaptionEntities)
	}
	var widths []int
	for _, p := range m.Photo {
		widths = append(widths, p.Width)
	}
	if want := []int{90, 320, 800, 1000}; fmt.Sprint(widths) != fmt.Sprint(want) {
		t.Errorf("photo widths = %v, want %v", widths, want)
	}
	if len(sent.Photo) != len(m.Photo) || sent.Photo[1].Height != 160 {
		t.Errorf("sent photo sizes = %+v, want those delivered, in proportion", sent.Photo)
	}

	// The largest size is the picture as sent; a smaller one is a JPEG of
	// its size.
	for _, want := range []struct {
		i    int
		data bool
		w, h int
	}{{1, false, 320, 160}, {3, true, 1000, 500}} {
		p := m.Photo[want.i]
		f, err := bot.GetFile(tgbotapi.FileConfig{FileID: p.FileID})
		if err != nil {
			t.Fatalf("GetFile: %v", err)
		}
		if int(f.FileSize) != p.FileSize || f.FileUniqueID != p.FileUniqueID || !strings.HasPrefix(f.FilePath, "photos/") {
			t.Errorf("getFile = %+v, want the photo size %+v under photos/", f, p)
		}
		code, body := download(t, srv, srv.Token(), f.FilePath)
		if code != http.StatusOK || len(body) != p.FileSize {
			t.Fatalf("download = %d with %d bytes, want 200 with %d", code, len(body), p.FileSize)
		}
		if want.data && !bytes.Equal(body, pic) {
			t.Error("the largest size is not the picture as sent")
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(body))
		if err != nil || cfg.Width != want.w || cfg.Height != want.h {
			t.Errorf("size %d is a %d×%d JPEG (err %v), want %d×%d", want.i, cfg.Width, cfg.Height, err, want.w, want.h)
		}
	}
}

func TestServer_SendMedia(t *testing.T) {
	data := []byte("some bytes of a file")
	for _, tc := range []struct {
		name  string
		send  func(s *telegramtest.Server)
		check func(m *tgbotapi.Message) (fileID string, ok bool)
	}{
		{"Document", func(s *telegramtest.Server) {
			s.SendDocument(userID, alice, "notes.txt", "text/plain", data, "read")
		}, func(m *tgbotapi.Message) (string, bool) {
			d := m.Document
			return d.FileID, d.FileName == "notes.txt" && d.MimeType == "text/plain" && d.FileSize == len(data) && m.Caption == "read"
		}},
		{"Voice", func(s *telegramtest.Server) { s.SendVoice(userID, alice, data) }, func(m *tgbotapi.Message) (string, bool) {
			v := m.Voice
			return v.FileID, v.MimeType == "audio/ogg" && v.FileSize == len(data) && v.Duration > 0
		}},
		{"Audio", func(s *telegramtest.Server) { s.SendAudio(userID, alice, "song.mp3", "audio/mpeg", data, "") }, func(m *tgbotapi.Message) (string, bool) {
			a := m.Audio
			return a.FileID, a.FileName == "song.mp3" && a.MimeType == "audio/mpeg" && a.Title == "song"
		}},
		{"VideoNote", func(s *telegramtest.Server) { s.SendVideoNote(userID, alice, data) }, func(m *tgbotapi.Message) (string, bool) {
			v := m.VideoNote
			return v.FileID, v.Length > 0 && v.FileSize == len(data)
		}},
		{"Video", func(s *telegramtest.Server) { s.SendVideo(userID, alice, data, "clip") }, func(m *tgbotapi.Message) (string, bool) {
			v := m.Video
			return v.FileID, v.MimeType == "video/mp4" && m.Caption == "clip"
		}},
		{"Animation", func(s *telegramtest.Server) { s.SendAnimation(userID, alice, data, "") }, func(m *tgbotapi.Message) (string, bool) {
			a := m.Animation
			return a.FileID, m.Document != nil && m.Document.FileID == a.FileID
		}},
		{"Sticker", func(s *telegramtest.Server) { s.SendSticker(userID, alice, "👍") }, func(m *tgbotapi.Message) (string, bool) {
			st := m.Sticker
			return st.FileID, st.Emoji == "👍" && st.Width == 512
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, bot := newBot(t, telegramtest.Options{})
			tc.send(srv)
			m := onlyUpdate(t, bot).Message
			id, ok := tc.check(m)
			if !ok {
				t.Errorf("message = %+v, not as sent", m)
			}
			f, err := bot.GetFile(tgbotapi.FileConfig{FileID: id})
			if err != nil {
				t.Fatalf("GetFile: %v", err)
			}
			if _, ok := srv.FileData(id); !ok {
				t.Errorf("FileData(%q) not found", id)
			}
			if code, _ := download(t, srv, srv.Token(), f.FilePath); code != http.StatusOK {
				t.Errorf("download status = %d, want 200", code)
			}
		})
	}
}

func TestServer_SendAlbum(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	pics := [][]byte{testJPEG(t, 20, 10), testJPEG(t, 30, 10), testJPEG(t, 40, 10)}
	sent := srv.SendAlbum(groupID, alice, pics, "three")
	us, err := bot.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 3 || len(sent) != 3 {
		t.Fatalf("updates = %d, sent = %d, want one per photo", len(us), len(sent))
	}
	for i, u := range us {
		m := u.Message
		if m.MediaGroupID == "" || m.MediaGroupID != us[0].Message.MediaGroupID {
			t.Errorf("item %d media_group_id = %q, want the album's", i, m.MediaGroupID)
		}
		if wantCaption := i == 0; (m.Caption == "three") != wantCaption {
			t.Errorf("item %d caption = %q", i, m.Caption)
		}
		if m.MessageID != sent[i].ID || m.Photo[len(m.Photo)-1].Width != 20+10*i {
			t.Errorf("item %d = %+v, want photo %d", i, m, i)
		}
	}
}

func TestServer_GetFileErrors(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{MaxDownload: 10})
	srv.SendDocument(userID, alice, "big.txt", "text/plain", make([]byte, 11), "")
	srv.SendDocument(userID, alice, "ok.txt", "text/plain", make([]byte, 10), "")
	us, err := bot.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(us) != 2 {
		t.Fatalf("GetUpdates = %d updates, %v", len(us), err)
	}
	for _, tc := range []struct {
		name, fileID, want string
	}{
		{"ErrTooBig", us[0].Message.Document.FileID, "Bad Request: file is too big"},
		{"ErrInvalidID", "no-such-file", "Bad Request: invalid file_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bot.GetFile(tgbotapi.FileConfig{FileID: tc.fileID})
			if e := apiError(t, err); e.Code != 400 || e.Message != tc.want {
				t.Errorf("GetFile error = %d %q, want 400 %q", e.Code, e.Message, tc.want)
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		if _, err := bot.GetFile(tgbotapi.FileConfig{FileID: us[1].Message.Document.FileID}); err != nil {
			t.Errorf("GetFile of a file at the limit: %v", err)
		}
	})
}

func TestServer_FileEndpointErrors(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	srv.SendDocument(userID, alice, "a.txt", "text/plain", []byte("a"), "")
	f, err := bot.GetFile(tgbotapi.FileConfig{FileID: onlyUpdate(t, bot).Message.Document.FileID})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, path string
		want              int
	}{
		{"OK", srv.Token(), f.FilePath, http.StatusOK},
		{"ErrToken", "1:wrong", f.FilePath, http.StatusUnauthorized},
		{"ErrPath", srv.Token(), "documents/file_999.txt", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := download(t, srv, tc.token, tc.path); code != tc.want {
				t.Errorf("status = %d (%s), want %d", code, body, tc.want)
			}
		})
	}
	if d := srv.Downloads(); len(d) != 3 {
		t.Errorf("Downloads = %q, want the 3 paths asked", d)
	}
}

func TestServer_LocalDir(t *testing.T) {
	dir := t.TempDir()
	srv, bot := newBot(t, telegramtest.Options{LocalDir: dir})
	srv.SendDocument(userID, alice, "a.txt", "text/plain", []byte("on disk"), "")
	f, err := bot.GetFile(tgbotapi.FileConfig{FileID: onlyUpdate(t, bot).Message.Document.FileID})
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(dir, srv.Token()) + string(filepath.Separator)
	if !strings.HasPrefix(f.FilePath, prefix) {
		t.Fatalf("file_path = %q, want an absolute path under %q", f.FilePath, prefix)
	}
	if got, err := os.ReadFile(f.FilePath); err != nil || string(got) != "on disk" {
		t.Errorf("file on disk = %q, %v; want the document", got, err)
	}
	if code, _ := download(t, srv, srv.Token(), filepath.ToSlash(strings.TrimPrefix(f.FilePath, prefix))); code != http.StatusOK {
		t.Errorf("download of the path below the token's directory: status %d, want 200", code)
	}
}
