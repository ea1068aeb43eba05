package telegram_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/sessions"
)

// refs are the file ids of a message's attachments.
func refs(msg sessions.Message) []string {
	out := make([]string, len(msg.Attachments))
	for i, a := range msg.Attachments {
		out[i] = a.Ref
	}
	return out
}

// photoRefs are the file ids of the largest sizes of photo messages.
func photoRefs(ms ...telegramtest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = largest(m).FileID
	}
	return out
}

func TestBot_Album(t *testing.T) {
	r := newRig(t)
	pics := make([][]byte, 10)
	for i := range pics {
		pics[i] = picture(t, 40+i, 30, "jpeg")
	}
	items := r.tg.SendAlbum(alice.ID, alice, pics, "compare these")
	r.tg.SendText(alice.ID, alice, "and then?")

	got := r.handled()
	if len(got) != 2 {
		t.Fatalf("messages handed over = %d, want 2 (the album, then the text): %+v", len(got), got)
	}
	album := got[0]
	if album.ID != strconv.Itoa(items[0].ID) || album.Text != "compare these" {
		t.Errorf("album = {ID: %q, Text: %q}, want {%d, %q}", album.ID, album.Text, items[0].ID, "compare these")
	}
	if want := photoRefs(items...); !slices.Equal(refs(album), want) {
		t.Errorf("album attachments = %q, want the 10 photos in order %q", refs(album), want)
	}
	if got[1].Text != "and then?" || len(got[1].Attachments) != 0 {
		t.Errorf("second message = %+v, want the text alone", got[1])
	}
}

func TestBot_AlbumCaptionOnLaterItem(t *testing.T) {
	r := newRig(t)
	pic := picture(t, 40, 30, "jpeg")
	// Pushed one by one: the first item may be delivered alone, and the
	// Bot waits for the rest.
	a := r.tg.SendPhoto(group, alice, pic, "", telegramtest.InAlbum("g1"))
	b := r.tg.SendPhoto(group, alice, pic, "@palaver_bot which is sharper?", telegramtest.InAlbum("g1"))
	got := r.handled()
	if len(got) != 1 {
		t.Fatalf("messages handed over = %d, want 1: %+v", len(got), got)
	}
	if got[0].ID != strconv.Itoa(a.ID) || got[0].Text != "which is sharper?" || !got[0].Shared {
		t.Errorf("album = {ID: %q, Text: %q, Shared: %v}, want {%d, %q, true}", got[0].ID, got[0].Text, got[0].Shared, a.ID, "which is sharper?")
	}
	if want := photoRefs(a, b); !slices.Equal(refs(got[0]), want) {
		t.Errorf("attachments = %q, want %q", refs(got[0]), want)
	}
}

// TestBot_AlbumDeliveredInTwoBatches delivers an album's first item alone
// and the rest while the Bot waits for them.
func TestBot_AlbumDeliveredInTwoBatches(t *testing.T) {
	r := newRig(t, withOptions(func(o *telegram.Options) { o.AlbumWait = 2 * time.Second }))
	pic := picture(t, 40, 30, "jpeg")
	first := r.tg.SendPhoto(alice.ID, alice, pic, "three views", telegramtest.InAlbum("g2"))
	if err := r.tg.WaitFor(r.ctx(), func() bool { return r.tg.DeliveredUpdateID() >= r.tg.LastUpdateID() }); err != nil {
		t.Fatal(err)
	}
	rest := []telegramtest.Message{
		r.tg.SendPhoto(alice.ID, alice, pic, "", telegramtest.InAlbum("g2")),
		r.tg.SendPhoto(alice.ID, alice, pic, "", telegramtest.InAlbum("g2")),
	}
	got := r.handled()
	if len(got) != 1 {
		t.Fatalf("messages handed over = %d, want 1: %+v", len(got), got)
	}
	if want := photoRefs(append([]telegramtest.Message{first}, rest...)...); !slices.Equal(refs(got[0]), want) {
		t.Errorf("attachments = %q, want %q", refs(got[0]), want)
	}
}

func TestBot_GroupAttachments(t *testing.T) {
	pic := picture(t, 40, 30, "jpeg")
	for _, tc := range []struct {
		name string
		// send sends the message under test to the group, given the
		// bot's earlier answer and Bob's earlier photo there.
		send  func(r *rig, answer, bobs telegramtest.Message) []string // the refs it should hand over; nil for none
		text  string
		quote bool // the text starts with a quote of Bob's message
	}{
		{"Unaddressed", func(r *rig, _, _ telegramtest.Message) []string {
			r.tg.SendPhoto(group, alice, pic, "our holiday")
			return nil
		}, "", false},
		{"CaptionMention", func(r *rig, _, _ telegramtest.Message) []string {
			return photoRefs(r.tg.SendPhoto(group, alice, pic, "@palaver_bot where is this?"))
		}, "where is this?", false},
		{"CaptionCommand", func(r *rig, _, _ telegramtest.Message) []string {
			return photoRefs(r.tg.SendPhoto(group, alice, pic, "/chat@palaver_bot where is this?"))
		}, "where is this?", false},
		{"ReplyToBot", func(r *rig, answer, _ telegramtest.Message) []string {
			return photoRefs(r.tg.SendPhoto(group, alice, pic, "", telegramtest.ReplyTo(answer.ID)))
		}, "", false},
		{"MentionInReplyToPhoto", func(r *rig, _, bobs telegramtest.Message) []string {
			r.tg.SendText(group, alice, "@palaver_bot what is in it?", telegramtest.ReplyTo(bobs.ID))
			return photoRefs(bobs)
		}, "what is in it?", true},
		{"StickerReplyToBot", func(r *rig, answer, _ telegramtest.Message) []string {
			r.tg.SendSticker(group, alice, "😂", telegramtest.ReplyTo(answer.ID))
			return []string{""}
		}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			bobs := r.tg.SendPhoto(group, bob, pic, "look at this")
			r.tg.SendText(group, alice, "@palaver_bot hello")
			answer := r.final(group, "hello")
			before := len(r.handled())
			want := tc.send(r, answer, bobs)
			got := r.handled()[before:]
			if want == nil {
				if len(got) != 0 {
					t.Errorf("handed over %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("messages handed over = %d, want 1: %+v", len(got), got)
			}
			text := got[0].Text
			if tc.quote {
				if !strings.HasPrefix(text, "Bob wrote:\n> look at this\n\n") {
					t.Errorf("text = %q, want Bob's caption quoted first", text)
				}
				text = text[len("Bob wrote:\n> look at this\n\n"):]
			}
			if text != tc.text {
				t.Errorf("text = %q, want %q", text, tc.text)
			}
			if !slices.Equal(refs(got[0]), want) {
				t.Errorf("attachments = %+v, want refs %q", got[0].Attachments, want)
			}
		})
	}
}
