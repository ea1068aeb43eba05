package attach

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// oggOpus returns an Ogg Opus stream: its identification page and a last
// page whose granule position puts the end of sound at d.
func oggOpus(d time.Duration) []byte {
	page := func(granule uint64, body []byte) []byte {
		p := []byte("OggS\x00\x02")
		p = binary.LittleEndian.AppendUint64(p, granule)
		p = append(p, make([]byte, 12)...) // serial, sequence, CRC
		p = append(p, 1, byte(len(body)))
		return append(p, body...)
	}
	head := []byte("OpusHead\x01\x01")
	head = binary.LittleEndian.AppendUint16(head, 312) // pre-skip
	head = binary.LittleEndian.AppendUint32(head, 48000)
	head = append(head, 0, 0, 0)
	out := page(0, head)
	out = append(out, page(0, []byte("OpusTags"))...)
	return append(out, page(312+uint64(d.Seconds()*48000), []byte{0xFC, 0xFF, 0xFE})...)
}

// wav returns a 16-bit mono 8 kHz WAV file of d of silence.
func wav(d time.Duration) []byte {
	data := make([]byte, int(d.Seconds()*16000))
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(36+len(data)))
	out = append(out, "WAVEfmt "...)
	out = binary.LittleEndian.AppendUint32(out, 16)
	out = binary.LittleEndian.AppendUint16(out, 1)
	out = binary.LittleEndian.AppendUint16(out, 1)
	out = binary.LittleEndian.AppendUint32(out, 8000)
	out = binary.LittleEndian.AppendUint32(out, 16000)
	out = binary.LittleEndian.AppendUint16(out, 2)
	out = binary.LittleEndian.AppendUint16(out, 16)
	out = append(out, "data"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	return append(out, data...)
}

func ftyp(brand string) []byte {
	b := []byte("\x00\x00\x00\x18ftyp" + brand + "\x00\x00\x02\x00" + brand + "isom")
	return append(b, make([]byte, 64)...)
}

// webm is an EBML header with DocType "webm".
var webm = append([]byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02"), make([]byte, 64)...)

func TestPrepare_Audio(t *testing.T) {
	mp3 := bytes.Repeat([]byte("\xff\xfb\x90\x64"+strings.Repeat("\x00", 413)), 4) // MPEG-1 layer III frames
	tests := []struct {
		name     string
		in       Input
		mime     string
		file     string
		duration time.Duration
	}{
		{"TelegramVoice", Input{Name: "file_12.oga", MIME: "audio/ogg", Data: oggOpus(3500 * time.Millisecond)}, "audio/ogg", "file_12.ogg", 3500 * time.Millisecond},
		{"WAV", Input{Name: "memo.wav", Data: wav(2 * time.Second)}, "audio/wav", "memo.wav", 2 * time.Second},
		{"MP3", Input{Name: "song.mp3", Data: mp3}, "audio/mpeg", "song.mp3", 0},
		{"M4A", Input{Data: ftyp("M4A ")}, "audio/x-m4a", "audio.m4a", 0},
		{"WebMDeclaredAudio", Input{Name: "voice-message", MIME: "audio/webm", Data: webm}, "video/webm", "voice-message.webm", 0},
		{"VideoNote", Input{Name: "file_3.mp4", MIME: "video/mp4", Data: ftyp("isom"), AsAudio: true}, "video/mp4", "file_3.mp4", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			part, err := Prepare(context.Background(), tt.in, Limits{})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			a, ok := part.(*Audio)
			if !ok {
				t.Fatalf("Prepare gave %T, want *Audio", part)
			}
			if a.MIME != tt.mime || a.Name != tt.file || a.Duration != tt.duration || len(a.Data) != len(tt.in.Data) {
				t.Errorf("got %s %q %v, want %s %q %v", a.MIME, a.Name, a.Duration, tt.mime, tt.file, tt.duration)
			}
		})
	}
}

func TestPrepare_Unsupported(t *testing.T) {
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(r.IntN(256))
	}
	tests := []struct {
		name string
		in   Input
		kind string
	}{
		{"Video", Input{Name: "clip.mp4", Data: ftyp("isom")}, "video"},
		{"WebMVideo", Input{Name: "sticker.webm", MIME: "video/webm", Data: webm}, "video"},
		{"AnimatedSticker", Input{Name: "AnimatedSticker.tgs", MIME: "application/x-tgsticker", Data: []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00")}, "animated sticker"},
		{"ZIP", Input{Name: "src.zip", Data: append([]byte("PK\x03\x04\x14\x00\x00\x00"), make([]byte, 64)...)}, "ZIP archive"},
		{"Gzip", Input{Name: "logs.gz", Data: []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")}, "gzip archive"},
		{"ELF", Input{Name: "palaver", Data: append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 64)...)}, "program"},
		{"BMP", Input{Name: "x.bmp", Data: append([]byte("BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00"), make([]byte, 64)...)}, "BMP image"},
		{"BinaryNamedText", Input{Name: "notes.txt", MIME: "text/plain", Data: random}, "binary file"},
		{"BinaryNamedGo", Input{Name: "main.go", Data: append([]byte("package main\x00\x00"), random...)}, "binary file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(context.Background(), tt.in, Limits{})
			var u *UnsupportedError
			if !errors.As(err, &u) {
				t.Fatalf("err = %v, want *UnsupportedError", err)
			}
			if u.Kind != tt.kind {
				t.Errorf("Kind = %q, want %q", u.Kind, tt.kind)
			}
			if UserMessage(err) == "" {
				t.Error("no user message")
			}
		})
	}
}

func TestPrepare_Empty(t *testing.T) {
	if _, err := Prepare(context.Background(), Input{Name: "x.txt"}, Limits{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestUserMessage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&TooLargeError{Size: 50 << 20, Limit: 20 << 20}, "This file is 50 MB; Palaver reads files up to 20 MB."},
		{&TooManyPixelsError{Width: 10000, Height: 10000, Limit: 40_000_000}, "This image is 10000×10000 pixels; Palaver reads images up to 40 megapixels."},
		{&UnsupportedError{Kind: "video", MIME: "video/mp4"}, "Palaver can't read this file (video). It reads images (JPEG, PNG, WebP, GIF), text and code files, PDFs and voice messages."},
		{ErrEncrypted, "This PDF is protected by a password, so Palaver can't read it."},
	}
	for _, tt := range tests {
		if got := UserMessage(tt.err); got != tt.want {
			t.Errorf("UserMessage(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestLimits_Check(t *testing.T) {
	tests := []struct {
		name, mime string
		size       int64
		asAudio    bool
		want       error
	}{
		{"photo.jpg", "image/jpeg", 5 << 20, false, nil},
		{"big.pdf", "application/pdf", 50 << 20, false, &TooLargeError{Size: 50 << 20, Limit: DefaultMaxFileBytes}},
		{"unknown", "", 0, false, nil},
		{"AnimatedSticker.tgs", "application/x-tgsticker", 1000, false, &UnsupportedError{Kind: "animated sticker", MIME: "application/x-tgsticker"}},
		{"clip.mp4", "video/mp4", 1000, false, &UnsupportedError{Kind: "video", MIME: "video/mp4"}},
		{"note.mp4", "video/mp4", 1000, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Limits{}.Check(tt.name, tt.mime, tt.size, tt.asAudio)
			if (err == nil) != (tt.want == nil) || err != nil && err.Error() != tt.want.Error() {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}
