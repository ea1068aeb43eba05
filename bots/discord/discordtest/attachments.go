package discordtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Attachments. A file a user attaches to a message (UserMessage) or gives
// to a slash command's attachment option (an Option whose Value is an
// Attachment) is kept by the fake and served on loopback the way Discord's
// CDN serves it. Its url and proxy_url point at the fake itself,
//
//	http://127.0.0.1:port/attachments/{channel}/{attachment}/{filename}?ex=…&is=…&hm=…
//
// with Discord's path and its signed-link parameters (ex: the expiry as
// hexadecimal Unix seconds, is: the issue time, hm: the signature). The
// route needs no Authorization header, as on Discord, and answers 404
// "This content is no longer available." for an unknown or altered link
// and, like Discord's CDN, once the link has expired: Options.AttachmentTTL
// after the upload on the fake's clock (Advance moves it). Every download
// is recorded, headers included (Downloads).

// Limits of attachments and stickers Discord enforces per message.
const (
	MaxAttachments = 10
	MaxStickers    = 3
)

// FlagVoiceMessage is the message flag of a voice message (Discord's
// IS_VOICE_MESSAGE).
const FlagVoiceMessage = 1 << 13

// OptionAttachment is the application command option type of a file.
const OptionAttachment = 11

// expiredBody is what Discord's CDN answers for an expired or unknown link.
const expiredBody = "This content is no longer available."

// Attachment is a file on a user's message or in a slash command's
// attachment option. Tests fill in the file; the fake sets ID, URL and
// ProxyURL when it takes it.
type Attachment struct {
	ID       string
	URL      string
	ProxyURL string
	// Filename is the file's name; spaces become underscores, as Discord
	// does with uploads.
	Filename string
	// ContentType is the media type Discord declares ("image/png"); empty
	// omits content_type, as Discord does for types it does not know.
	ContentType string
	// Data is what the attachment's URL serves.
	Data []byte
	// Size is the declared size in bytes; 0 means len(Data). Another
	// value models a file the test does not want to hold (a 50 MB upload)
	// or a size that disagrees with the bytes served.
	Size int
	// Width and Height are set for images.
	Width, Height int
	// DurationSecs and Waveform (base64) are set for the audio/ogg file of
	// a voice message (UserMessage.Voice).
	DurationSecs float64
	Waveform     string
}

// Sticker is a sticker sent with a message (a sticker_items entry).
type Sticker struct {
	// ID is set by the fake when empty.
	ID   string
	Name string
	// FormatType is 1 PNG, 2 APNG, 3 Lottie, 4 GIF; 0 means 1.
	FormatType int
}

// Download is one request to an attachment's URL.
type Download struct {
	Time time.Time
	// AttachmentID is the attachment the path names.
	AttachmentID string
	// Path is the request's path, without the query.
	Path string
	// Header holds the request's headers (a clone).
	Header http.Header
	// Status is the answer: 200, or 404 for an expired or unknown link.
	Status int
}

// storedAttachment is an attachment the fake serves.
type storedAttachment struct {
	Attachment
	channelID string
	issued    time.Time
	expires   time.Time
	sig       string // the hm parameter
	ephemeral bool   // uploaded through a command option
}

type wireAttachment struct {
	ID           string  `json:"id"`
	Filename     string  `json:"filename"`
	Size         int     `json:"size"`
	URL          string  `json:"url"`
	ProxyURL     string  `json:"proxy_url"`
	ContentType  string  `json:"content_type,omitempty"`
	Width        *int    `json:"width,omitempty"`
	Height       *int    `json:"height,omitempty"`
	DurationSecs float64 `json:"duration_secs,omitempty"`
	Waveform     string  `json:"waveform,omitempty"`
	Ephemeral    bool    `json:"ephemeral,omitempty"`
}

type wireStickerItem struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	FormatType int    `json:"format_type"`
}

// addAttachmentLocked stores a copy of a for channelID and returns it with
// its id and URLs.
func (s *Server) addAttachmentLocked(a Attachment, channelID string, ephemeral bool) Attachment {
	a.ID = s.newIDLocked()
	a.Filename = strings.ReplaceAll(a.Filename, " ", "_")
	if a.Size == 0 {
		a.Size = len(a.Data)
	}
	a.Data = slices.Clone(a.Data)
	now := s.nowLocked()
	st := &storedAttachment{Attachment: a, channelID: channelID, issued: now,
		expires: now.Add(s.opts.AttachmentTTL), sig: randomHex(32), ephemeral: ephemeral}
	q := "?ex=" + strconv.FormatInt(st.expires.Unix(), 16) + "&is=" + strconv.FormatInt(now.Unix(), 16) + "&hm=" + st.sig + "&"
	st.URL = s.http.URL + "/attachments/" + channelID + "/" + a.ID + "/" + url.PathEscape(a.Filename) + q
	st.ProxyURL = st.URL
	s.attachments[a.ID] = st
	return st.Attachment
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// checkAttachments validates the files of one message or command.
func checkAttachments(as []Attachment) error {
	if len(as) > MaxAttachments {
		return fmt.Errorf("discordtest: %d attachments; Discord allows %d per message", len(as), MaxAttachments)
	}
	for i, a := range as {
		if a.Filename == "" {
			return fmt.Errorf("discordtest: attachment %d has no file name", i)
		}
		if a.Size < 0 {
			return fmt.Errorf("discordtest: attachment %d has a negative size", i)
		}
	}
	return nil
}

func (st *storedAttachment) wire() *wireAttachment {
	w := &wireAttachment{ID: st.ID, Filename: st.Filename, Size: st.Size, URL: st.URL, ProxyURL: st.ProxyURL,
		ContentType: st.ContentType, DurationSecs: st.DurationSecs, Waveform: st.Waveform, Ephemeral: st.ephemeral}
	if st.Width > 0 && st.Height > 0 {
		w.Width, w.Height = &st.Width, &st.Height
	}
	return w
}

// Downloads returns every request to an attachment URL so far, oldest
// first.
func (s *Server) Downloads() []Download {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.downloads)
}

// serveAttachment serves GET /attachments/{channel}/{attachment}/{filename}
// as Discord's CDN does: the bytes for a valid, unexpired signed link,
// else 404.
func (s *Server) serveAttachment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("attachment")
	s.mu.Lock()
	st := s.attachments[id]
	now := s.nowLocked()
	ok := st != nil && st.channelID == r.PathValue("channel") && r.PathValue("filename") == st.Filename &&
		r.URL.Query().Get("hm") == st.sig &&
		r.URL.Query().Get("ex") == strconv.FormatInt(st.expires.Unix(), 16) &&
		now.Before(st.expires)
	d := Download{Time: now, AttachmentID: id, Path: r.URL.Path, Header: r.Header.Clone(), Status: http.StatusOK}
	if !ok {
		d.Status = http.StatusNotFound
	}
	s.downloads = append(s.downloads, d)
	s.notifyLocked()
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, expiredBody)
		return
	}
	ct := st.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(st.Data)))
	w.Write(st.Data)
}
