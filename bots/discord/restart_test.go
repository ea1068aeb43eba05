package discord_test

import (
	"encoding/json"
	"fmt"
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
	if m, _ := r.dc.Message(st.OriginalID); !strings.Contains(m.Text(), "fake/deepseek-ai/DeepSeek-V3-0324-Turbo") {
		t.Fatalf("/model answered %q", m.Text())
	}
	r.restart()
	st = r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "still there?"}}, r.user.ID, ch.ID)
	r.original(t, st, func(m discordtest.Message) bool { return done(m) && strings.Contains(m.Text(), "still there?") })
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
	r.original(t, st, func(m discordtest.Message) bool { return strings.Contains(m.Text(), "slowly") })
	r.dc.Advance(15 * time.Minute)
	m := r.final(t, ch.ID, "done")
	if m.InteractionID != "" || m.Text() != text {
		t.Errorf("final answer %q (interaction %q), want a channel message with the whole answer", m.Text(), m.InteractionID)
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
	if !strings.Contains(m.Text(), "Interrupted") {
		t.Errorf("recovered answer %q, want the interrupted note", m.Text())
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
		return m.ID == orphan.ID && strings.Contains(m.Text(), "Interrupted")
	}); err != nil {
		t.Fatalf("the unrecorded reply was not finalised; bot messages: %q", r.botTexts(ch.ID))
	}
	if texts := r.botTexts(ch.ID); len(texts) != 1 {
		t.Errorf("bot messages %q, want the one reply, finalised", texts)
	}
}

// TestBot_RecoversKeepsMessageKind finalises answers recorded before a
// restart: a message made without Components V2 (an older Palaver's
// record, without "v2") is edited as content and one made with it as
// components, whatever the Bot now makes new messages with.
func TestBot_RecoversKeepsMessageKind(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name   string
		v2     bool
		create string // the message's body, as sent before the restart
	}{
		{"Content", false, `{"content":"half an answer"}`},
		{"ComponentsV2", true, `{"flags":32768,"components":[{"type":17,"components":[{"type":10,"content":"half an answer"}]}]}`},
	}
	chans := map[string]discordtest.Channel{}
	ids := map[string]string{}
	r.stop()
	bot, err := discord.NewSession(discord.SessionOptions{Token: r.dc.Token(), APIBase: r.dc.URL()})
	must(t, err)
	store, err := sessions.OpenBolt(r.path, sessions.BoltOptions{})
	must(t, err)
	for i, tt := range tests {
		ch := r.channel("kind-" + tt.name)
		raw, err := bot.RequestWithBucketID("POST", discordgo.EndpointChannelMessages(ch.ID), json.RawMessage(tt.create), "")
		must(t, err)
		var m struct{ ID string }
		must(t, json.Unmarshal(raw, &m))
		rec := fmt.Sprintf(`{"channel":%q,"v2":%v,"parts":[{"id":%q}]}`, ch.ID, tt.v2, m.ID)
		if !tt.v2 {
			rec = fmt.Sprintf(`{"channel":%q,"parts":[{"id":%q}]}`, ch.ID, m.ID) // as older records are
		}
		k := sessions.Key{Platform: "discord", Chat: ch.ID}
		must(t, store.SaveProgress(r.ctx(), k, uint64(i+1), sessions.Progress{Destination: "discord:" + ch.ID,
			Reply: []byte(rec), Shown: sessions.View{Content: "half an answer"}, Started: time.Now()}))
		chans[tt.name], ids[tt.name] = ch, m.ID
	}
	must(t, store.Close())
	r.start()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
				return m.ID == ids[tt.name] && strings.Contains(m.Text(), "Interrupted")
			})
			if err != nil {
				t.Fatalf("not finalised: %q", r.botTexts(chans[tt.name].ID))
			}
			if v2 := m.Flags&discordtest.FlagComponentsV2 != 0; v2 != tt.v2 || (m.Content != "") == tt.v2 {
				t.Errorf("finalised with flags %d, content %q; want Components V2 %v", m.Flags, m.Content, tt.v2)
			}
		})
	}
}
