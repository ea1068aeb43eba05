package discord_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/sessions"
)

func TestBot_ModelKeptAfterRestart(t *testing.T) {
	r := newRig(t)
	ch := r.channel("general")
	st := r.slash(t, "model", []discordtest.Option{{Name: "name", Value: "deepseek-ai/DeepSeek-V3-0324-Turbo"}}, r.mod.ID, ch.ID)
	if m, _ := r.dc.Message(st.OriginalID); !strings.Contains(m.Content, "fake/deepseek-ai/DeepSeek-V3-0324-Turbo") {
		t.Fatalf("/model answered %q", m.Content)
	}
	r.restart()
	st = r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "still there?"}}, r.user.ID, ch.ID)
	r.original(t, st, func(m discordtest.Message) bool { return done(m) && strings.Contains(m.Content, "still there?") })
	if got := r.lastRequest(t).Model; got != "deepseek-ai/DeepSeek-V3-0324-Turbo" {
		t.Errorf("upstream model after restart %q", got)
	}
	if n := len(r.dc.GatewaySessions()); n != 2 {
		t.Errorf("%d gateway sessions, want one per run", n)
	}
}

// An answer that outlives its interaction token continues as channel
// messages.
func TestBot_ExpiredTokenContinuesInChannel(t *testing.T) {
	r := newRig(t)
	ch := r.channel("slow")
	text := strings.TrimSpace(strings.Repeat("slowly ", 30)) + " done"
	r.up.Enqueue(slow(text, 15*time.Millisecond))
	st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "take your time"}}, r.user.ID, ch.ID)
	r.original(t, st, func(m discordtest.Message) bool { return strings.Contains(m.Content, "slowly") })
	r.dc.Advance(15 * time.Minute)
	m := r.final(t, ch.ID, "done")
	if m.InteractionID != "" || m.Content != text {
		t.Errorf("final answer %q (interaction %q), want a channel message with the whole answer", m.Content, m.InteractionID)
	}
}

// An answer in progress when Palaver stopped is finalised at the next
// start with an "interrupted" note.
func TestBot_RecoversInterruptedAnswer(t *testing.T) {
	r := newRig(t)
	ch := r.channel("crash")
	r.stop()
	store, err := sessions.OpenBolt(r.path, sessions.BoltOptions{})
	must(t, err)
	k := sessions.Key{Platform: "discord", Chat: ch.ID}
	must(t, store.SetProgress(r.ctx(), k, 0, &sessions.Progress{Destination: "discord:" + ch.ID,
		Shown: sessions.View{Content: "half an answer"}, Started: time.Now()}))
	must(t, store.Close())
	r.start()
	m := r.final(t, ch.ID, "half an answer")
	if !strings.Contains(m.Content, "Interrupted") {
		t.Errorf("recovered answer %q, want the interrupted note", m.Content)
	}
}

// A crash between Discord making a reply's message and Palaver committing
// its id leaves a record without the id: the next start finds the bot's
// reply to the question and finalises it, instead of sending a new one.
func TestBot_RecoversUnrecordedReply(t *testing.T) {
	r := newRig(t)
	ch := r.channel("orphan")
	q, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID, Content: "a question"})
	must(t, err)
	r.stop()
	bot, err := discord.NewSession(discord.SessionOptions{Token: r.dc.Token(), APIBase: r.dc.URL()})
	must(t, err)
	orphan, err := bot.ChannelMessageSendComplex(ch.ID, &discordgo.MessageSend{Content: "-# ⏳ Queued: one answer ahead of this one.",
		Reference: &discordgo.MessageReference{MessageID: q.ID, ChannelID: ch.ID}})
	must(t, err)
	store, err := sessions.OpenBolt(r.path, sessions.BoltOptions{})
	must(t, err)
	k := sessions.Key{Platform: "discord", Chat: ch.ID}
	must(t, store.SaveProgress(r.ctx(), k, 7, sessions.Progress{Destination: "discord:" + ch.ID,
		Reply: []byte(`{"channel":"` + ch.ID + `","reply_to":"` + q.ID + `"}`), Started: time.Now()}))
	must(t, store.Close())
	r.start()
	if _, err := r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
		return m.ID == orphan.ID && strings.Contains(m.Content, "Interrupted")
	}); err != nil {
		t.Fatalf("the unrecorded reply was not finalised; bot messages: %q", r.botTexts(ch.ID))
	}
	if texts := r.botTexts(ch.ID); len(texts) != 1 {
		t.Errorf("bot messages %q, want the one reply, finalised", texts)
	}
}
