package telegramtest

import (
	"bytes"
	"image"
	"image/jpeg"
	_ "image/png" // SendPhoto takes PNG pictures too
	"path"
	"strconv"
	"strings"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // and WebP
)

// PhotoSize is one size of a photo, as the Bot API encodes it.
type PhotoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// Document is a general file, as the Bot API encodes it.
type Document struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// Voice is a voice note, as the Bot API encodes it.
type Voice struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Duration     int    `json:"duration"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// Audio is a music file, as the Bot API encodes it.
type Audio struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Duration     int    `json:"duration"`
	Title        string `json:"title,omitempty"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// VideoNote is a round video message, as the Bot API encodes it.
type VideoNote struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Length       int    `json:"length"`
	Duration     int    `json:"duration"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// Video is a video, or an animation (a GIF or a silent MP4), as the Bot API
// encodes both.
type Video struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Duration     int    `json:"duration"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// Sticker is a sticker, as the Bot API encodes it.
type Sticker struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Type         string `json:"type"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	IsAnimated   bool   `json:"is_animated"`
	IsVideo      bool   `json:"is_video"`
	Emoji        string `json:"emoji,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// Media is what a user's message carries besides text: at most one kind
// of file (Animation comes with Document, as Telegram sends it), a caption
// and the album it belongs to.
type Media struct {
	Photo     []PhotoSize `json:"photo,omitempty"`
	Document  *Document   `json:"document,omitempty"`
	Voice     *Voice      `json:"voice,omitempty"`
	Audio     *Audio      `json:"audio,omitempty"`
	VideoNote *VideoNote  `json:"video_note,omitempty"`
	Video     *Video      `json:"video,omitempty"`
	Animation *Video      `json:"animation,omitempty"`
	Sticker   *Sticker    `json:"sticker,omitempty"`
	// Caption is the text sent with the file; CaptionEntities its mentions
	// and commands, as Telegram marks them.
	Caption         string          `json:"caption,omitempty"`
	CaptionEntities []MessageEntity `json:"caption_entities,omitempty"`
	// MediaGroupID is shared by the items of one album.
	MediaGroupID string `json:"media_group_id,omitempty"`
}

// InAlbum makes the message an item of the album id (its media_group_id),
// as when a user sends several pictures at once. SendAlbum sends a whole
// album in one go; InAlbum lets a test deliver an album's items one by one.
func InAlbum(id string) MessageOption {
	return func(m *Message) { m.MediaGroupID = id }
}

// photoSides are the longest sides of the sizes Telegram makes of a photo.
var photoSides = []int{90, 320, 800, 1280}

// SendPhoto pushes an update with a photo from a user, as Telegram
// delivers it: an array of sizes, smallest first. When picture decodes (JPEG,
// PNG, WebP), the fake makes Telegram's smaller sizes (longest side 90,
// 320, 800 and 1280 pixels, those smaller than the picture) as JPEGs, and
// the largest size is picture's own bytes, so that a test can compare what
// a bot downloads with what it sent (Telegram would re-encode it as a
// JPEG). Bytes that do not decode give one size of 0×0. Each size is a
// file that getFile and the file endpoint serve.
func (s *Server) SendPhoto(chatID int64, from User, picture []byte, caption string, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushMediaLocked(chatID, from, s.photoLocked(picture), caption, opts)
}

// photoLocked stores a photo's sizes. s.mu must be held.
func (s *Server) photoLocked(picture []byte) Media {
	var sizes []PhotoSize
	img, _, err := image.Decode(bytes.NewReader(picture))
	w, h := 0, 0
	if err == nil {
		w, h = img.Bounds().Dx(), img.Bounds().Dy()
		for _, side := range photoSides {
			if max(w, h) <= side {
				break
			}
			sw, sh := max(1, w*side/max(w, h)), max(1, h*side/max(w, h))
			dst := image.NewRGBA(image.Rect(0, 0, sw, sh))
			draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 80}); err != nil {
				panic("telegramtest: encode photo size: " + err.Error()) // writing to memory cannot fail
			}
			f := s.addFileLocked("photos", ".jpg", "image/jpeg", buf.Bytes())
			sizes = append(sizes, PhotoSize{FileID: f.id, FileUniqueID: f.uniqueID, Width: sw, Height: sh, FileSize: f.size()})
		}
	}
	f := s.addFileLocked("photos", ".jpg", "image/jpeg", picture)
	sizes = append(sizes, PhotoSize{FileID: f.id, FileUniqueID: f.uniqueID, Width: w, Height: h, FileSize: f.size()})
	return Media{Photo: sizes}
}

// SendDocument pushes an update with a file sent as a document, named name
// with the declared type mimeType.
func (s *Server) SendDocument(chatID int64, from User, name, mimeType string, data []byte, caption string, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.addFileLocked("documents", path.Ext(name), mimeType, data)
	d := &Document{FileID: f.id, FileUniqueID: f.uniqueID, FileName: name, MimeType: mimeType, FileSize: f.size()}
	return s.pushMediaLocked(chatID, from, Media{Document: d}, caption, opts)
}

// SendVoice pushes an update with a voice note (Ogg Opus, as Telegram
// records them).
func (s *Server) SendVoice(chatID int64, from User, data []byte, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.addFileLocked("voice", ".oga", "audio/ogg", data)
	v := &Voice{FileID: f.id, FileUniqueID: f.uniqueID, Duration: soundSeconds(data), MimeType: "audio/ogg", FileSize: f.size()}
	return s.pushMediaLocked(chatID, from, Media{Voice: v}, "", opts)
}

// SendAudio pushes an update with a music file.
func (s *Server) SendAudio(chatID int64, from User, name, mimeType string, data []byte, caption string, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.addFileLocked("music", path.Ext(name), mimeType, data)
	a := &Audio{FileID: f.id, FileUniqueID: f.uniqueID, Duration: soundSeconds(data),
		Title: strings.TrimSuffix(name, path.Ext(name)), FileName: name, MimeType: mimeType, FileSize: f.size()}
	return s.pushMediaLocked(chatID, from, Media{Audio: a}, caption, opts)
}

// SendVideoNote pushes an update with a round video message (an MP4).
func (s *Server) SendVideoNote(chatID int64, from User, data []byte, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.addFileLocked("video_notes", ".mp4", "video/mp4", data)
	v := &VideoNote{FileID: f.id, FileUniqueID: f.uniqueID, Length: 384, Duration: soundSeconds(data), FileSize: f.size()}
	return s.pushMediaLocked(chatID, from, Media{VideoNote: v}, "", opts)
}

// SendVideo pushes an update with a video (an MP4).
func (s *Server) SendVideo(chatID int64, from User, data []byte, caption string, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.addFileLocked("videos", ".mp4", "video/mp4", data)
	v := &Video{FileID: f.id, FileUniqueID: f.uniqueID, Width: 640, Height: 360, Duration: soundSeconds(data),
		FileName: "video.mp4", MimeType: "video/mp4", FileSize: f.size()}
	return s.pushMediaLocked(chatID, from, Media{Video: v}, caption, opts)
}

// SendAnimation pushes an update with an animation (a GIF, which Telegram
// turns into a silent MP4): the message has both animation and document,
// as Telegram sends them for older clients.
func (s *Server) SendAnimation(chatID int64, from User, data []byte, caption string, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.addFileLocked("animations", ".mp4", "video/mp4", data)
	a := &Video{FileID: f.id, FileUniqueID: f.uniqueID, Width: 320, Height: 240, Duration: 1,
		FileName: "animation.gif.mp4", MimeType: "video/mp4", FileSize: f.size()}
	d := &Document{FileID: a.FileID, FileUniqueID: a.FileUniqueID, FileName: a.FileName, MimeType: a.MimeType, FileSize: a.FileSize}
	return s.pushMediaLocked(chatID, from, Media{Animation: a, Document: d}, caption, opts)
}

// SendSticker pushes an update with a static sticker (a WebP) showing emoji.
func (s *Server) SendSticker(chatID int64, from User, emoji string, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.addFileLocked("stickers", ".webp", "image/webp", []byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	st := &Sticker{FileID: f.id, FileUniqueID: f.uniqueID, Type: "regular", Width: 512, Height: 512, Emoji: emoji, FileSize: f.size()}
	return s.pushMediaLocked(chatID, from, Media{Sticker: st}, "", opts)
}

// SendAlbum pushes an album of photos (at most 10 in Telegram) sent at
// once: one update per photo, all with the same media_group_id, the
// caption on the first, pushed together so that one getUpdates returns
// them all. Every photo is made as by SendPhoto; opts apply to each item.
func (s *Server) SendAlbum(chatID int64, from User, pictures [][]byte, caption string, opts ...MessageOption) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.albumSeq++
	group := "album-" + strconv.Itoa(s.albumSeq)
	opts = append(opts[:len(opts):len(opts)], InAlbum(group))
	out := make([]Message, len(pictures))
	for i, p := range pictures {
		c := ""
		if i == 0 {
			c = caption
		}
		out[i] = s.pushMediaLocked(chatID, from, s.photoLocked(p), c, opts)
	}
	return out
}

// pushMediaLocked records a user's media message and pushes its update.
// s.mu must be held.
func (s *Server) pushMediaLocked(chatID int64, from User, media Media, caption string, opts []MessageOption) Message {
	media.Caption = caption
	media.CaptionEntities = autoEntities(caption)
	return s.pushUserLocked(chatID, from, &Message{Media: media}, opts)
}

// soundSeconds is a plausible duration for a recording of n bytes
// (Opus at 32 kbit/s), at least 1 s.
func soundSeconds(data []byte) int { return max(1, len(data)/4000) }
