package telegram

import (
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/sessions"
)

// attachments lists the file a message carries, as references for the
// Manager to fetch when the turn starts (nothing is downloaded here): a
// photo, a document, a voice note, an audio file or a round video note.
// Stickers, videos and animations are listed as unsupported, so that the
// answer says so. Other messages (text, contacts, locations, polls) carry
// none.
func (b *Bot) attachments(m *tgbotapi.Message) []sessions.Attachment {
	if m == nil {
		return nil
	}
	var a sessions.Attachment
	switch {
	case len(m.Photo) > 0:
		p := largestPhoto(m.Photo, b.opts.MaxAttachmentBytes)
		// Telegram stores every photo as a JPEG.
		a = sessions.Attachment{Kind: sessions.KindImage, MIME: "image/jpeg", Size: int64(p.FileSize), Ref: p.FileID}
	case m.Sticker != nil:
		a = sessions.Attachment{Kind: sessions.KindImage, Name: "sticker", Unsupported: "stickers"}
	case m.Animation != nil: // before Document, which Telegram sets too
		a = sessions.Attachment{Kind: sessions.KindFile, Name: m.Animation.FileName, MIME: m.Animation.MimeType, Unsupported: "animations"}
	case m.Video != nil:
		a = sessions.Attachment{Kind: sessions.KindFile, Name: m.Video.FileName, MIME: m.Video.MimeType, Unsupported: "videos"}
	case m.Voice != nil:
		mime := m.Voice.MimeType
		if mime == "" {
			mime = "audio/ogg" // what Telegram records voice notes as
		}
		a = sessions.Attachment{Kind: sessions.KindVoice, Name: "voice" + soundExt(mime, ".ogg"), MIME: mime,
			Size: int64(m.Voice.FileSize), Ref: m.Voice.FileID}
	case m.VideoNote != nil:
		// Round video notes are MP4s; their sound is what is answered.
		a = sessions.Attachment{Kind: sessions.KindVoice, Name: "video_note.mp4", MIME: "video/mp4",
			Size: int64(m.VideoNote.FileSize), Ref: m.VideoNote.FileID}
	case m.Audio != nil:
		name := m.Audio.FileName
		if name == "" {
			name = "audio" + soundExt(m.Audio.MimeType, ".mp3")
		}
		a = sessions.Attachment{Kind: sessions.KindVoice, Name: name, MIME: m.Audio.MimeType,
			Size: int64(m.Audio.FileSize), Ref: m.Audio.FileID}
	case m.Document != nil:
		d := m.Document
		kind := sessions.KindFile
		if strings.HasPrefix(strings.ToLower(d.MimeType), "image/") {
			kind = sessions.KindImage
		}
		a = sessions.Attachment{Kind: kind, Name: d.FileName, MIME: d.MimeType, Size: int64(d.FileSize), Ref: d.FileID}
	default:
		return nil
	}
	return []sessions.Attachment{a}
}

// largestPhoto picks the size of a photo to send to the model: the largest
// whose declared size is within limit (an undeclared size counts as
// within), else the largest, which the Fetcher then refuses by its size
// with a note that says so.
func largestPhoto(sizes []tgbotapi.PhotoSize, limit int64) tgbotapi.PhotoSize {
	best, fits := -1, false
	for i, p := range sizes {
		within := limit <= 0 || int64(p.FileSize) <= limit
		switch {
		case best < 0, within && !fits, within == fits && pixels(p) > pixels(sizes[best]):
			best, fits = i, within
		}
	}
	return sizes[best]
}

func pixels(p tgbotapi.PhotoSize) int { return p.Width * p.Height }

// soundExt is the file extension of a sound's MIME type, def when it is
// not known: transcription endpoints tell formats apart by the file name.
func soundExt(mimeType, def string) string {
	switch strings.ToLower(mimeType) {
	case "audio/ogg", "audio/opus":
		return ".ogg"
	case "audio/mpeg", "audio/mp3":
		return ".mp3"
	case "audio/mp4", "audio/m4a", "audio/x-m4a", "audio/aac":
		return ".m4a"
	case "audio/wav", "audio/x-wav", "audio/wave":
		return ".wav"
	case "audio/flac", "audio/x-flac":
		return ".flac"
	case "audio/webm":
		return ".webm"
	}
	return def
}
