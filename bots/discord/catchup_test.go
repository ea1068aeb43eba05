package discord_test

import (
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// A message written while the bot had no connection (Palaver restarting)
// is never delivered by the gateway: at the next start the bot reads the
// channels where it was asked something lately and answers the missed
// questions meant for it, once, and leaves the others alone.
func TestBot_CatchesUpAfterRestart(t *testing.T) {
	r := newRig(t)
	ch := r.channel("missed")
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("first answer")})
	ask(t, r.dc, r.user, ch.ID, "hello")
	r.final(t, ch.ID, "first answer")
	r.stop()

	missed := ask(t, r.dc, r.user, ch.ID, "are you there")
	chatter, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID, Content: "not for the bot"})
	must(t, err)
	if n := r.dc.Delivered(missed.ID); n != 0 {
		t.Fatalf("the question was delivered to %d connections while the bot was down", n)
	}
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("caught up")})
	r.start()
	answered(t, r.dc, missed, "caught up")

	// Once only: a later start reads it again and the store refuses it.
	r.restart()
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("later answer")})
	later := ask(t, r.dc, r.user, ch.ID, "and now")
	answered(t, r.dc, later, "later answer")
	if rs := replies(r.dc, missed); len(rs) != 1 {
		t.Errorf("%d replies to the missed question, want 1", len(rs))
	}
	if rs := replies(r.dc, chatter); len(rs) != 0 {
		t.Errorf("a message not meant for the bot was answered: %+v", rs)
	}
}

// A missed question older than the bot is willing to answer late (15
// minutes) is left alone.
func TestBot_CatchUpLeavesOldMessages(t *testing.T) {
	behind := time.Now().Add(-time.Hour)
	r := newRigWith(t, func(o *discordtest.Options) {
		o.Now = func() time.Time { return behind }
	})
	ch := r.channel("old")
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("first answer")})
	ask(t, r.dc, r.user, ch.ID, "hello")
	r.final(t, ch.ID, "first answer")
	r.stop()
	old := ask(t, r.dc, r.user, ch.ID, "an hour ago")
	r.start()
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("fresh answer")})
	fresh := ask(t, r.dc, r.user, ch.ID, "now")
	answered(t, r.dc, fresh, "fresh answer")
	if rs := replies(r.dc, old); len(rs) != 0 {
		t.Errorf("an hour-old missed question was answered: %+v", rs)
	}
}
