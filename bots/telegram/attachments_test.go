package telegram_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"strconv"
	"testing"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/sessions"
)

// picture is a w×h gradient encoded as format ("jpeg" or "png").
func picture(t *testing.T, w, h int, format string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := img.PixOffset(x, y)
			copy(img.Pix[i:i+4], []uint8{uint8(255 * x / w), uint8(255 * y / h), 128, 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// largest is the largest size of a photo message.
func largest(m telegramtest.Message) telegramtest.PhotoSize { return m.Photo[len(m.Photo)-1] }

func TestBot_Attachments(t *testing.T) {
	jpg := picture(t, 400, 300, "jpeg")
	pngData := picture(t, 64, 48, "png")
	pdf := []byte("%PDF-1.4\n% a small document\n")
	ogg := []byte("OggS\x00\x02 voice")
	mp4 := []byte("\x00\x00\x00\x18ftypmp42 round")
	for _, tc := range []struct {
		name string
		send func(s *telegramtest.Server, chat int64) telegramtest.Message
		text string
		want func(m telegramtest.Message) sessions.Attachment
	}{
		{"Photo", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendPhoto(chat, alice, jpg, "what is this?")
		}, "what is this?", func(m telegramtest.Message) sessions.Attachment {
			p := largest(m)
			return sessions.Attachment{Kind: sessions.KindImage, MIME: "image/jpeg", Size: p.FileSize, Ref: p.FileID}
		}},
		{"PhotoWithoutCaption", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendPhoto(chat, alice, jpg, "")
		}, "", func(m telegramtest.Message) sessions.Attachment {
			p := largest(m)
			return sessions.Attachment{Kind: sessions.KindImage, MIME: "image/jpeg", Size: p.FileSize, Ref: p.FileID}
		}},
		{"ImageDocument", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendDocument(chat, alice, "chart.png", "image/png", pngData, "explain the chart")
		}, "explain the chart", func(m telegramtest.Message) sessions.Attachment {
			return sessions.Attachment{Kind: sessions.KindImage, Name: "chart.png", MIME: "image/png", Size: int64(len(pngData)), Ref: m.Document.FileID}
		}},
		{"Document", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendDocument(chat, alice, "report.pdf", "application/pdf", pdf, "summarise")
		}, "summarise", func(m telegramtest.Message) sessions.Attachment {
			return sessions.Attachment{Kind: sessions.KindFile, Name: "report.pdf", MIME: "application/pdf", Size: int64(len(pdf)), Ref: m.Document.FileID}
		}},
		{"Voice", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendVoice(chat, alice, ogg)
		}, "", func(m telegramtest.Message) sessions.Attachment {
			return sessions.Attachment{Kind: sessions.KindVoice, Name: "voice.ogg", MIME: "audio/ogg", Size: int64(len(ogg)), Ref: m.Voice.FileID}
		}},
		{"Audio", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendAudio(chat, alice, "memo.mp3", "audio/mpeg", ogg, "")
		}, "", func(m telegramtest.Message) sessions.Attachment {
			return sessions.Attachment{Kind: sessions.KindVoice, Name: "memo.mp3", MIME: "audio/mpeg", Size: int64(len(ogg)), Ref: m.Audio.FileID}
		}},
		{"VideoNote", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendVideoNote(chat, alice, mp4)
		}, "", func(m telegramtest.Message) sessions.Attachment {
			return sessions.Attachment{Kind: sessions.KindVoice, Name: "video_note.mp4", MIME: "video/mp4", Size: int64(len(mp4)), Ref: m.VideoNote.FileID}
		}},
		{"Sticker", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendSticker(chat, alice, "👍")
		}, "", func(telegramtest.Message) sessions.Attachment {
			return sessions.Attachment{Kind: sessions.KindImage, Name: "sticker", Unsupported: "stickers"}
		}},
		{"Video", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendVideo(chat, alice, mp4, "look")
		}, "look", func(telegramtest.Message) sessions.Attachment {
			return sessions.Attachment{Kind: sessions.KindFile, Name: "video.mp4", MIME: "video/mp4", Unsupported: "videos"}
		}},
		{"Animation", func(s *telegramtest.Server, chat int64) telegramtest.Message {
			return s.SendAnimation(chat, alice, mp4, "")
		}, "", func(telegramtest.Message) sessions.Attachment {
			return sessions.Attachment{Kind: sessions.KindFile, Name: "animation.gif.mp4", MIME: "video/mp4", Unsupported: "animations"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			sent := tc.send(r.tg, alice.ID)
			got := r.handled()
			if len(got) != 1 {
				t.Fatalf("messages handed over = %d, want 1: %+v", len(got), got)
			}
			msg := got[0]
			if msg.Text != tc.text || msg.ID != strconv.Itoa(sent.ID) || msg.Key.Chat != strconv.FormatInt(alice.ID, 10) {
				t.Errorf("message = {Text: %q, ID: %q, Chat: %q}, want {%q, %d, %d}", msg.Text, msg.ID, msg.Key.Chat, tc.text, sent.ID, alice.ID)
			}
			if want := tc.want(sent); len(msg.Attachments) != 1 || msg.Attachments[0] != want {
				t.Errorf("attachments = %+v, want [%+v]", msg.Attachments, want)
			}
		})
	}
}

func TestBot_PhotoSizeWithinLimit(t *testing.T) {
	// The photo's largest size (the JPEG as sent) is over the limit; its
	// 1280-pixel size is within.
	jpg := picture(t, 1400, 60, "jpeg")
	for _, tc := range []struct {
		name  string
		limit int64
		width int
	}{
		{"Largest", 0, 1400},
		{"LargestWithin", int64(len(jpg)) - 1, 1280},
		{"NoneWithin", 1, 1400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, withFetcherHeld, withOptions(func(o *telegram.Options) { o.MaxAttachmentBytes = tc.limit }))
			sent := r.tg.SendPhoto(alice.ID, alice, jpg, "which size?")
			got := r.handled()
			if len(got) != 1 || len(got[0].Attachments) != 1 {
				t.Fatalf("handed over %+v, want one message with one photo", got)
			}
			ref, width := got[0].Attachments[0].Ref, -1
			for _, p := range sent.Photo {
				if p.FileID == ref {
					width = p.Width
				}
			}
			if width != tc.width {
				t.Errorf("chose the size %d pixels wide, want %d (sizes %+v)", width, tc.width, sent.Photo)
			}
		})
	}
}
