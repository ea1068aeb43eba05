package telegram_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/draw"
	"strings"
	"testing"

	xdraw "golang.org/x/image/draw"

	_ "image/jpeg" // the upstream's images
	_ "image/png"

	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// End-to-end: files sent on the fake Telegram reach the llmtest upstream
// through the real Bot, Manager, store and Fetcher.

// withVision makes every model of the rig's upstream a vision model and
// "fake/whisper" its transcription model.
func withVision(r *rig) {
	r.cfg.Vision = []string{"fake/*"}
	r.cfg.Transcription = "fake/whisper"
}

// oggOpus is the first page of an Ogg Opus stream: enough for a voice note.
func oggOpus() []byte {
	head := []byte("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00")
	page := []byte("OggS\x00\x02")
	page = binary.LittleEndian.AppendUint64(page, 0) // granule position
	page = append(page, "\x01\x00\x00\x00"...)       // serial
	page = append(page, "\x00\x00\x00\x00"...)       // sequence
	page = append(page, "\x00\x00\x00\x00"...)       // checksum
	page = append(page, 1, byte(len(head)))
	return append(page, head...)
}

func TestBot_PhotoReachesUpstream(t *testing.T) {
	r := newRig(t, withVision)
	sent := picture(t, 1600, 200, "jpeg")
	r.tg.SendPhoto(alice.ID, alice, sent, "what is this?")
	r.final(alice.ID, "what is this?")

	ims := r.lastRequest().Images()
	if len(ims) != 1 {
		t.Fatalf("upstream images = %d, want 1", len(ims))
	}
	got, _, err := image.Decode(bytes.NewReader(ims[0].Data))
	if err != nil {
		t.Fatalf("decode the upstream image: %v", err)
	}
	if b := got.Bounds(); b.Dx() != 1568 || b.Dy() != 196 {
		t.Errorf("upstream image is %v, want 1568×196 (scaled to the longest side)", b.Size())
	}
	src, _, err := image.Decode(bytes.NewReader(sent))
	if err != nil {
		t.Fatal(err)
	}
	want := image.NewRGBA(got.Bounds())
	xdraw.ApproxBiLinear.Scale(want, want.Bounds(), src, src.Bounds(), draw.Src, nil)
	if d := meanDiff(got, want); d > 6 {
		t.Errorf("upstream pixels differ from the sent picture's by %.1f on average, want at most 6 of 255", d)
	}
}

// meanDiff is the mean absolute difference of two images' RGB channels, 0–255.
func meanDiff(a, b image.Image) float64 {
	var sum, n float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 7 {
		for x := r.Min.X; x < r.Max.X; x += 7 {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, d := range []int64{int64(r1) - int64(r2), int64(g1) - int64(g2), int64(b1) - int64(b2)} {
				sum += float64(max(d, -d)) / 257
				n++
			}
		}
	}
	return sum / n
}

func TestBot_VoiceReachesUpstream(t *testing.T) {
	r := newRig(t, withVision)
	r.up.SetTranscript(llmtest.Transcript{Text: "what is the capital of France"})
	r.tg.SendVoice(alice.ID, alice, oggOpus())
	m := r.final(alice.ID, "capital of France")

	var audio []*llmtest.AudioRequest
	for _, rec := range r.up.Requests() {
		if rec.Audio != nil {
			audio = append(audio, rec.Audio)
		}
	}
	if len(audio) != 1 || !bytes.Equal(audio[0].File, oggOpus()) {
		t.Fatalf("transcription requests = %d, want 1 with the voice note", len(audio))
	}
	if !strings.Contains(m.Text, "🎤") || !strings.Contains(m.Text, "echo: ") {
		t.Errorf("answer = %q, want the transcript quoted and then the answer", m.Text)
	}
	last := r.lastRequest().Messages
	if q := last[len(last)-1].Content; !strings.Contains(q, "what is the capital of France") {
		t.Errorf("upstream question = %q, want the transcript", q)
	}
}

func TestBot_DocumentReachesUpstream(t *testing.T) {
	r := newRig(t, withVision)
	r.tg.SendDocument(alice.ID, alice, "notes.md", "text/markdown", []byte("# Plan\n\nship on Friday\n"), "summarise")
	r.final(alice.ID, "summarise")
	last := r.lastRequest().Messages
	if q := last[len(last)-1].Content; !strings.Contains(q, "ship on Friday") || !strings.Contains(q, "notes.md") {
		t.Errorf("upstream question = %q, want the file's name and text", q)
	}
}

func TestBot_AlbumReachesUpstream(t *testing.T) {
	r := newRig(t, withVision)
	pics := make([][]byte, 10)
	for i := range pics {
		pics[i] = picture(t, 60+i, 40, "jpeg")
	}
	r.tg.SendAlbum(alice.ID, alice, pics, "which is widest?")
	r.final(alice.ID, "which is widest?")
	if n := len(r.chatRequests()); n != 1 {
		t.Errorf("upstream requests = %d, want 1 for the album", n)
	}
	if n := len(r.lastRequest().Images()); n != sessions.DefaultMaxImages {
		t.Errorf("upstream images = %d, want %d (chat.max_images)", n, sessions.DefaultMaxImages)
	}
}
