package discord_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	_ "image/jpeg" // decodes what the upstream receives
	"image/png"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm/attach"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// quadrants are the colours of testImage's four quarters, clockwise from
// the top left.
var quadrants = [4]color.RGBA{{220, 30, 30, 255}, {30, 200, 40, 255}, {30, 40, 210, 255}, {240, 220, 30, 255}}

// testImage is a w×h PNG of four flat quarters (quadrants).
func testImage(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			q := 0
			switch {
			case x >= w/2 && y < h/2:
				q = 1
			case x >= w/2:
				q = 2
			case y >= h/2:
				q = 3
			}
			img.SetRGBA(x, y, quadrants[q])
		}
	}
	var buf bytes.Buffer
	must(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// voiceFile is the file of a voice message as Discord clients record it.
func voiceFile() discordtest.Attachment {
	return discordtest.Attachment{Filename: "voice-message.ogg", ContentType: "audio/ogg",
		Data: append([]byte("OggS\x00\x02"), make([]byte, 200)...), DurationSecs: 2.5, Waveform: "AAAAAAAAAAAA"}
}

// refs fills in the Ref and Size of want's first len(sent) entries from
// the files the fake took, in order.
func refs(want []sessions.Attachment, sent []discordtest.Attachment) []sessions.Attachment {
	for i, a := range sent {
		want[i].Ref, want[i].Size = a.URL, int64(a.Size)
	}
	return want
}

// TestBot_MessageAttachments checks what the Bot hands the Manager for
// messages with files and stickers, wherever it answers messages.
func TestBot_MessageAttachments(t *testing.T) {
	r := newRig(t)
	ch := r.channel("files")
	dm, err := r.dc.DM(r.user.ID)
	must(t, err)
	mention := discordtest.Mention(r.dc.AppID()) + " "
	img := testImage(t, 64, 48)

	// A bot message in ch, for the replies below.
	r.mention(t, ch.ID, r.user.ID, "hello")
	answer := r.final(t, ch.ID, "hello")

	ten := make([]discordtest.Attachment, discordtest.MaxAttachments)
	tenWant := make([]sessions.Attachment, len(ten))
	for i := range ten {
		ten[i] = discordtest.Attachment{Filename: "page.png", ContentType: "image/png", Data: img, Width: 64, Height: 48}
		tenWant[i] = sessions.Attachment{Kind: sessions.KindImage, Name: "page.png", MIME: "image/png"}
	}

	tests := []struct {
		name string
		msg  discordtest.UserMessage
		text string // the text handed over
		want []sessions.Attachment
	}{
		{"ImageWithMention", discordtest.UserMessage{ChannelID: ch.ID, Content: mention + "what is this?",
			Attachments: []discordtest.Attachment{{Filename: "cat photo.png", ContentType: "image/png", Data: img, Width: 64, Height: 48}}},
			"what is this?", []sessions.Attachment{{Kind: sessions.KindImage, Name: "cat_photo.png", MIME: "image/png"}}},
		{"FileAloneInDM", discordtest.UserMessage{ChannelID: dm.ID,
			Attachments: []discordtest.Attachment{{Filename: "notes.txt", ContentType: "text/plain; charset=utf-8", Data: []byte("buy milk")}}},
			"", []sessions.Attachment{{Kind: sessions.KindFile, Name: "notes.txt", MIME: "text/plain; charset=utf-8"}}},
		{"VoiceMessageInDM", discordtest.UserMessage{ChannelID: dm.ID, Voice: true, Attachments: []discordtest.Attachment{voiceFile()}},
			"", []sessions.Attachment{{Kind: sessions.KindVoice, Name: "voice-message.ogg", MIME: "audio/ogg"}}},
		{"AudioFile", discordtest.UserMessage{ChannelID: ch.ID, Content: mention + "transcribe",
			Attachments: []discordtest.Attachment{{Filename: "memo.mp3", ContentType: "audio/mpeg", Data: []byte("ID3\x04")}}},
			"transcribe", []sessions.Attachment{{Kind: sessions.KindVoice, Name: "memo.mp3", MIME: "audio/mpeg"}}},
		{"VideoUnsupported", discordtest.UserMessage{ChannelID: ch.ID, Content: mention + "watch",
			Attachments: []discordtest.Attachment{{Filename: "clip.mp4", ContentType: "video/mp4", Data: []byte("....ftypisom"), Width: 640, Height: 360}}},
			"watch", []sessions.Attachment{{Kind: sessions.KindFile, Name: "clip.mp4", MIME: "video/mp4", Unsupported: "videos"}}},
		{"UnknownType", discordtest.UserMessage{ChannelID: dm.ID, Content: "read this",
			Attachments: []discordtest.Attachment{{Filename: "data.bin", Data: []byte{0, 1, 2}}}},
			"read this", []sessions.Attachment{{Kind: sessions.KindFile, Name: "data.bin"}}},
		{"Stickers", discordtest.UserMessage{ChannelID: ch.ID, Content: mention + "look",
			Stickers: []discordtest.Sticker{{Name: "Wave"}, {Name: "Party", FormatType: 3}}},
			"look", []sessions.Attachment{{Kind: sessions.KindImage, Name: "Wave", Unsupported: "stickers"},
				{Kind: sessions.KindImage, Name: "Party", Unsupported: "stickers"}}},
		{"FileAndStickerInReply", discordtest.UserMessage{ChannelID: ch.ID, ReplyTo: answer.ID,
			Attachments: []discordtest.Attachment{{Filename: "report.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.7")}},
			Stickers:    []discordtest.Sticker{{Name: "Thumbs"}}},
			"", []sessions.Attachment{{Kind: sessions.KindFile, Name: "report.pdf", MIME: "application/pdf"},
				{Kind: sessions.KindImage, Name: "Thumbs", Unsupported: "stickers"}}},
		{"TenFiles", discordtest.UserMessage{ChannelID: dm.ID, Content: "an album", Attachments: ten}, "an album", tenWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.msg.AuthorID = r.user.ID
			sent, err := r.dc.SendMessage(tt.msg)
			must(t, err)
			want := refs(tt.want, sent.Attachments)
			got := r.waitHandled(t, "for "+tt.name, func(m sessions.Message) bool {
				return m.Key.Chat == tt.msg.ChannelID && reflect.DeepEqual(m.Attachments, want)
			})
			if got.Text != tt.text {
				t.Errorf("text %q, want %q", got.Text, tt.text)
			}
		})
	}

	t.Run("ReplyWithoutPingIsWithheld", func(t *testing.T) {
		// Without MESSAGE_CONTENT, Discord sends neither the text nor the
		// files of a reply that does not mention the bot: the Bot cannot
		// answer it. Its handlers run concurrently, so this checks that
		// the withheld message was not handed over by the time a later
		// one was.
		_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID, ReplyTo: answer.ID, NoReplyPing: true,
			Attachments: []discordtest.Attachment{{Filename: "hidden.txt", ContentType: "text/plain", Data: []byte("x")}}})
		must(t, err)
		r.mention(t, ch.ID, r.user.ID, "after the hidden one")
		r.waitHandled(t, "after the withheld reply", func(m sessions.Message) bool { return m.Text == "after the hidden one" })
		for _, m := range r.tap.handedOver() {
			for _, a := range m.Attachments {
				if a.Name == "hidden.txt" {
					t.Errorf("a withheld file was handed over: %+v", m)
				}
			}
		}
	})
}

// TestBot_ChatAttachment checks /chat's attachment option: its
// registration and the file handed over with the prompt, in the channel
// and in a thread.
func TestBot_ChatAttachment(t *testing.T) {
	r := newRig(t, func(r *rig) { r.opts.Threads = true; r.opts.ThreadFollowAll = true })
	photo := discordtest.Attachment{Filename: "photo.png", ContentType: "image/png", Data: testImage(t, 32, 32), Width: 32, Height: 32}

	t.Run("Registered", func(t *testing.T) {
		var opts []struct {
			Name     string `json:"name"`
			Type     int    `json:"type"`
			Required bool   `json:"required"`
		}
		for _, c := range r.dc.Commands(r.guild.ID) {
			if c.Name == "chat" {
				var def struct {
					Options json.RawMessage `json:"options"`
				}
				must(t, json.Unmarshal(c.Raw, &def))
				must(t, json.Unmarshal(def.Options, &opts))
			}
		}
		if len(opts) != 2 || opts[0].Name != "prompt" || !opts[0].Required ||
			opts[1].Name != "attachment" || opts[1].Type != discordtest.OptionAttachment || opts[1].Required {
			t.Errorf("/chat options %+v, want a required prompt and an optional attachment (type 11)", opts)
		}
	})

	t.Run("InUsersThread", func(t *testing.T) {
		// A thread someone else opened: /chat answers there, as usual.
		th, err := r.dc.AddThread(r.channel("general").ID, "pictures")
		must(t, err)
		it, err := r.dc.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "describe it"}, {Name: "attachment", Value: photo}}, r.user.ID, th.ID)
		must(t, err)
		if len(it.Attachments) != 1 {
			t.Fatalf("the fake took %d files", len(it.Attachments))
		}
		want := refs([]sessions.Attachment{{Kind: sessions.KindImage, Name: "photo.png", MIME: "image/png"}}, it.Attachments)
		got := r.waitHandled(t, "for /chat in a thread", func(m sessions.Message) bool { return m.Key.Chat == th.ID && m.Text == "describe it" })
		if !reflect.DeepEqual(got.Attachments, want) {
			t.Errorf("attachments %+v, want %+v", got.Attachments, want)
		}
	})

	t.Run("InThread", func(t *testing.T) {
		ch := r.channel("threads")
		it, err := r.dc.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "what colour"}, {Name: "attachment", Value: photo}}, r.user.ID, ch.ID)
		must(t, err)
		want := refs([]sessions.Attachment{{Kind: sessions.KindImage, Name: "photo.png", MIME: "image/png"}}, it.Attachments)
		got := r.waitHandled(t, "for /chat with a thread", func(m sessions.Message) bool { return m.Text == "what colour" })
		if !reflect.DeepEqual(got.Attachments, want) {
			t.Errorf("attachments %+v, want %+v", got.Attachments, want)
		}
		threads := r.dc.Threads(ch.ID)
		if len(threads) != 1 || got.Key.Chat != threads[0].ID {
			t.Fatalf("handed over in %s; threads of the channel: %+v", got.Key.Chat, threads)
		}
		st, ok := r.dc.InteractionState(it.ID)
		q, _ := r.dc.Message(st.OriginalID)
		if !ok || q.Text() != "> what colour\n📎 `photo.png`" {
			t.Errorf("question shown in the channel %q, want the prompt and the file's name", q.Text())
		}

		// The thread is the bot's: with ThreadFollowAll a voice message
		// there is a question, though it mentions no one.
		vm, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: threads[0].ID, AuthorID: r.user.ID, Voice: true,
			Attachments: []discordtest.Attachment{voiceFile()}})
		must(t, err)
		want = refs([]sessions.Attachment{{Kind: sessions.KindVoice, Name: "voice-message.ogg", MIME: "audio/ogg"}}, vm.Attachments)
		r.waitHandled(t, "for a voice message in the thread", func(m sessions.Message) bool {
			return m.Key.Chat == threads[0].ID && reflect.DeepEqual(m.Attachments, want)
		})
	})
}

// TestBot_Fetch checks the Fetcher the Bot registers: real downloads from
// the fake's CDN route over loopback.
func TestBot_Fetch(t *testing.T) {
	r := newRig(t)
	f := r.tap.fetcher(discord.Platform)
	if f != sessions.Fetcher(r.bot) {
		t.Fatalf("registered Fetcher %v, want the Bot", f)
	}
	dm, err := r.dc.DM(r.user.ID)
	must(t, err)
	// send posts a DM with one file and returns it as the Bot hands it
	// over.
	send := func(t *testing.T, a discordtest.Attachment) sessions.Attachment {
		t.Helper()
		m, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: dm.ID, AuthorID: r.user.ID, Content: "file " + a.Filename,
			Attachments: []discordtest.Attachment{a}})
		must(t, err)
		got := r.waitHandled(t, "with "+a.Filename, func(h sessions.Message) bool {
			return len(h.Attachments) == 1 && h.Attachments[0].Ref == m.Attachments[0].URL
		})
		return got.Attachments[0]
	}
	downloads := func(a sessions.Attachment) []discordtest.Download {
		var out []discordtest.Download
		for _, d := range r.dc.Downloads() {
			if strings.Contains(a.Ref, d.Path) {
				out = append(out, d)
			}
		}
		return out
	}

	t.Run("OK", func(t *testing.T) {
		img := testImage(t, 40, 30)
		a := send(t, discordtest.Attachment{Filename: "ok.png", ContentType: "image/png", Data: img, Width: 40, Height: 30})
		data, err := f.Fetch(r.ctx(), a, 1<<20)
		must(t, err)
		if !bytes.Equal(data, img) {
			t.Errorf("fetched %d bytes, want the %d sent", len(data), len(img))
		}
		ds := downloads(a)
		if len(ds) != 1 || ds[0].Status != http.StatusOK {
			t.Fatalf("downloads %+v, want one that succeeded", ds)
		}
		if auth := ds[0].Header.Get("Authorization"); auth != "" {
			t.Errorf("the CDN received Authorization %q; the bot token must not leave for it", auth)
		}
	})

	t.Run("ErrTooLargeDeclared", func(t *testing.T) {
		a := send(t, discordtest.Attachment{Filename: "huge.pdf", ContentType: "application/pdf", Data: []byte("%PDF"), Size: 50 << 20})
		_, err := f.Fetch(r.ctx(), a, 20<<20)
		var tl *attach.TooLargeError
		if !errors.As(err, &tl) || tl.Size != 50<<20 || tl.Limit != 20<<20 {
			t.Fatalf("Fetch: %v, want a TooLargeError of 50 MiB over 20 MiB", err)
		}
		if msg := attach.UserMessage(err); !strings.Contains(msg, "20 MB") {
			t.Errorf("user message %q does not name the limit", msg)
		}
		if ds := downloads(a); len(ds) != 0 {
			t.Errorf("downloads %+v, want none: the declared size is over the limit", ds)
		}
	})

	t.Run("ErrTooLargeBody", func(t *testing.T) {
		// Declared small, served large: refused by the download's length.
		a := send(t, discordtest.Attachment{Filename: "liar.txt", ContentType: "text/plain", Data: bytes.Repeat([]byte("x"), 4096), Size: 10})
		_, err := f.Fetch(r.ctx(), a, 1024)
		var tl *attach.TooLargeError
		if !errors.As(err, &tl) || tl.Limit != 1024 {
			t.Fatalf("Fetch: %v, want a TooLargeError with the 1024-byte limit", err)
		}
	})

	t.Run("ErrNotCDN", func(t *testing.T) {
		var hits atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
		defer other.Close()
		for _, ref := range []string{other.URL + "/attachments/1/2/x.png", "file:///etc/passwd", "https://cdn.discordapp.com.evil.example/x.png", ""} {
			_, err := f.Fetch(r.ctx(), sessions.Attachment{Kind: sessions.KindImage, Name: "x.png", Ref: ref}, 1<<20)
			if err == nil || !strings.Contains(err.Error(), "not a Discord attachment link") {
				t.Errorf("Fetch(%q): %v, want a refusal", ref, err)
			}
		}
		if hits.Load() != 0 {
			t.Errorf("another host received %d requests", hits.Load())
		}
	})

	t.Run("ErrCanceled", func(t *testing.T) {
		a := send(t, discordtest.Attachment{Filename: "late.txt", ContentType: "text/plain", Data: []byte("late")})
		ctx, cancel := context.WithCancel(r.ctx())
		cancel()
		if _, err := f.Fetch(ctx, a, 1<<20); !errors.Is(err, context.Canceled) {
			t.Errorf("Fetch with a cancelled context: %v", err)
		}
	})

	// Last: it moves the fake's clock past the links' life.
	t.Run("ErrLinkExpired", func(t *testing.T) {
		a := send(t, discordtest.Attachment{Filename: "old.txt", ContentType: "text/plain", Data: []byte("old news")})
		r.dc.Advance(25 * time.Hour) // the fake's links last 24 hours, as Discord's do
		_, err := f.Fetch(r.ctx(), a, 1<<20)
		if !errors.Is(err, discord.ErrLinkExpired) {
			t.Fatalf("Fetch: %v, want ErrLinkExpired", err)
		}
		if got, want := sessions.Explain(err), "The attachment link has expired; send the file again."; got != want {
			t.Errorf("Explain = %q, want %q", got, want)
		}
		if ds := downloads(a); len(ds) != 1 || ds[0].Status != http.StatusNotFound {
			t.Errorf("downloads %+v, want one answered 404", ds)
		}
	})
}

// TestBot_ImageReachesUpstream sends an image in a DM and in a channel
// (mentioning the bot) and checks that the model receives it as an
// image_url part with the same pixels.
func TestBot_ImageReachesUpstream(t *testing.T) {
	for _, where := range []string{"DM", "Channel"} {
		t.Run(where, func(t *testing.T) { imageReachesUpstream(t, where == "Channel") })
	}
}

func imageReachesUpstream(t *testing.T, inChannel bool) {
	r := newRig(t, func(r *rig) {
		models := llmtest.DefaultModels()
		for i := range models {
			models[i].Vision = models[i].ID == "echo"
		}
		r.up.SetModels(models)
	})
	chID, content := "", "which colours?"
	if inChannel {
		chID, content = r.channel("pictures").ID, discordtest.Mention(r.dc.AppID())+" which colours?"
	} else {
		dm, err := r.dc.DM(r.user.ID)
		must(t, err)
		chID = dm.ID
	}
	const w, h = 64, 48
	sent, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: chID, AuthorID: r.user.ID, Content: content,
		Attachments: []discordtest.Attachment{{Filename: "quads.png", ContentType: "image/png", Data: testImage(t, w, h), Width: w, Height: h}}})
	must(t, err)
	r.final(t, chID, "which colours?")
	fetched := false
	for _, d := range r.dc.Downloads() {
		fetched = fetched || strings.Contains(sent.Attachments[0].URL, d.Path) && d.Status == http.StatusOK
	}
	if !fetched {
		t.Fatal("the attachment was not downloaded")
	}
	ims := r.lastRequest(t).Images()
	if len(ims) != 1 {
		t.Fatalf("upstream received %d images, want 1", len(ims))
	}
	got, _, err := image.Decode(bytes.NewReader(ims[0].Data))
	if err != nil {
		t.Fatalf("decode the upstream image (%s): %v", ims[0].MIME, err)
	}
	if b := got.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("upstream image is %dx%d, want %dx%d (small images are not scaled)", b.Dx(), b.Dy(), w, h)
	}
	centres := [4]image.Point{{w / 4, h / 4}, {3 * w / 4, h / 4}, {3 * w / 4, 3 * h / 4}, {w / 4, 3 * h / 4}}
	for q, p := range centres {
		r32, g32, b32, _ := got.At(p.X, p.Y).RGBA()
		c, want := [3]int{int(r32 >> 8), int(g32 >> 8), int(b32 >> 8)}, quadrants[q]
		for i, v := range [3]int{int(want.R), int(want.G), int(want.B)} {
			if d := c[i] - v; d < -16 || d > 16 {
				t.Errorf("quarter %d: colour %v, want about %v", q, c, want)
				break
			}
		}
	}
}
