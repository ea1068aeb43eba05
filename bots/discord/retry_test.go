package discord_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// click presses a button and waits for the bot's response to it.
func (r *rig) click(t *testing.T, messageID, customID, userID string) discordtest.InteractionState {
	t.Helper()
	it, err := r.dc.ClickButton(messageID, customID, userID)
	must(t, err)
	st, err := r.dc.WaitInteraction(r.ctx(), it.ID, func(s discordtest.InteractionState) bool { return s.ResponseType != 0 })
	if err != nil {
		t.Fatalf("the click on %s was not answered: %v", customID, err)
	}
	return st
}

// refusal waits for the follow-up, seen by the presser alone, that says
// why a click (answered st) was refused, and returns it. The click is
// answered first (so that only one connection acts on it) and the
// pressed message given its buttons back.
func (r *rig) refusal(t *testing.T, st discordtest.InteractionState) discordtest.Message {
	t.Helper()
	if st.ResponseType != discordtest.ResponseUpdateMessage {
		t.Errorf("click answered with %d, want an update of the pressed message (7)", st.ResponseType)
	}
	m, err := r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
		return m.InteractionID == st.ID && m.Flags&discordtest.FlagEphemeral != 0
	})
	if err != nil {
		t.Fatalf("no refusal of the click: %v", err)
	}
	return m
}

// hasEntry reports whether a request's messages include one of role whose
// content contains text.
func hasEntry(req llmtest.Request, role, text string) bool {
	return slices.ContainsFunc(req.Messages, func(m llm.Message) bool { return m.Role == role && strings.Contains(m.Content, text) })
}

// TestBot_Retry presses the Retry button under an answer: another member
// is refused in a message only they see, the asker gets the question
// answered again in a new message (the pressed one loses its button), the
// new answer replaces the old one in the history, and a Retry under an
// answer no longer the latest is refused. It also presses Retry under a
// /chat answer, and a Stop button left behind.
func TestBot_Retry(t *testing.T) {
	r := newRig(t)
	bob := r.dc.AddUser("bob")
	must(t, r.dc.AddMember(r.guild.ID, bob.ID, 0))
	ch := r.channel("retry")

	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("the first answer")})
	q, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
		Content: discordtest.Mention(r.dc.AppID()) + " what is it"})
	must(t, err)
	old := r.final(t, ch.ID, "the first answer")
	retry := "palaver:retry:" + q.ID
	if !slices.Contains(old.CustomIDs(), retry) {
		t.Fatalf("answer buttons %q, want %q", old.CustomIDs(), retry)
	}

	t.Run("ErrNotYours", func(t *testing.T) {
		st := r.click(t, old.ID, retry, bob.ID)
		if m := r.refusal(t, st); !strings.Contains(m.Text(), "Only the person who asked") {
			t.Errorf("refusal %q, want it to say only the person who asked may", m.Text())
		}
		if m, _ := r.dc.Message(old.ID); !slices.Contains(m.CustomIDs(), retry) || m.Text() != "the first answer" {
			t.Errorf("after a refused Retry the message shows %q with buttons %q, want it as it was", m.Text(), m.CustomIDs())
		}
	})

	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("the second answer")})
	st := r.click(t, old.ID, retry, r.user.ID)
	if st.ResponseType != discordtest.ResponseUpdateMessage {
		t.Errorf("response type %d, want an update of the pressed message (7)", st.ResponseType)
	}
	again := r.final(t, ch.ID, "the second answer")
	if again.InteractionID != st.ID || !slices.Contains(again.CustomIDs(), retry) {
		t.Errorf("new answer from interaction %q with buttons %q, want a follow-up of the click with %q", again.InteractionID, again.CustomIDs(), retry)
	}
	if m, _ := r.dc.Message(old.ID); len(m.CustomIDs()) != 0 || m.Text() != "the first answer" || m.Flags&discordtest.FlagComponentsV2 == 0 {
		t.Errorf("pressed message: %q, buttons %q, flags %d; want its text, no button, still Components V2", m.Text(), m.CustomIDs(), m.Flags)
	}
	req := r.lastRequest(t)
	if !hasEntry(req, llm.RoleUser, "what is it") || hasEntry(req, llm.RoleAssistant, "the first answer") {
		t.Errorf("regeneration asked %+v, want the question without its old answer", req.Messages)
	}

	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("the third answer")})
	_, err = r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
		Content: discordtest.Mention(r.dc.AppID()) + " and then"})
	must(t, err)
	r.final(t, ch.ID, "the third answer")
	req = r.lastRequest(t)
	if !hasEntry(req, llm.RoleAssistant, "the second answer") || hasEntry(req, llm.RoleAssistant, "the first answer") {
		t.Errorf("the history after Retry is %+v, want the second answer in place of the first", req.Messages)
	}

	t.Run("ErrOlderAnswer", func(t *testing.T) {
		st := r.click(t, again.ID, retry, r.user.ID)
		if m := r.refusal(t, st); !strings.Contains(m.Text(), "Only the latest answer") {
			t.Errorf("Retry under an older answer: %q, want a refusal saying only the latest answer", m.Text())
		}
	})

	t.Run("SlashByModerator", func(t *testing.T) {
		// Under a /chat answer the question is the interaction's; a
		// member who may manage the channel may regenerate anyone's.
		ch := r.channel("slash-retry")
		r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("slash answer one")})
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "a question"}}, r.user.ID, ch.ID)
		m := r.original(t, st, func(m discordtest.Message) bool { return done(m) && strings.Contains(m.Text(), "slash answer one") })
		retry := "palaver:retry:" + st.ID
		if !slices.Contains(m.CustomIDs(), retry) {
			t.Fatalf("buttons %q, want %q", m.CustomIDs(), retry)
		}
		r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("slash answer two")})
		r.click(t, m.ID, retry, r.mod.ID)
		r.final(t, ch.ID, "slash answer two")
		if m, _ := r.dc.Message(m.ID); slices.Contains(m.CustomIDs(), retry) {
			t.Errorf("the pressed answer kept its Retry button: %q", m.CustomIDs())
		}
	})

	t.Run("StopInDM", func(t *testing.T) {
		// In a DM the Stop button stops the answer Retry gave again.
		dm, err := r.dc.DM(r.user.ID)
		must(t, err)
		r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("a direct answer")})
		q, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: dm.ID, AuthorID: r.user.ID, Content: "hello"})
		must(t, err)
		a := r.final(t, dm.ID, "a direct answer")
		r.up.Enqueue(slow(strings.Repeat("word ", 400), 5*time.Millisecond))
		st := r.click(t, a.ID, "palaver:retry:"+q.ID, r.user.ID)
		m, err := r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
			return m.InteractionID == st.ID && stoppable(m) && strings.Contains(m.Text(), "word")
		})
		if err != nil {
			t.Fatalf("the new answer never showed a Stop button: %v", err)
		}
		r.click(t, m.ID, "palaver:stop", r.user.ID)
		if m := r.final(t, dm.ID, "(stopped)"); m.InteractionID != st.ID {
			t.Errorf("stopped message %s is not the new answer", m.ID)
		}
	})

	t.Run("LeftoverStop", func(t *testing.T) {
		// A Stop button left on an answer that already ended goes when
		// pressed; the Components V2 message keeps its text.
		ch := r.channel("leftover")
		r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("finished text")})
		_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
			Content: discordtest.Mention(r.dc.AppID()) + " go"})
		must(t, err)
		a := r.final(t, ch.ID, "finished text")
		r.waitIdle(t, ch.ID)
		must(t, r.dc.SetComponents(a.ID, `[{"type":17,"components":[{"type":10,"content":"finished text"},`+
			`{"type":1,"components":[{"type":2,"style":2,"label":"Stop","custom_id":"palaver:stop"}]}]}]`))
		st := r.click(t, a.ID, "palaver:stop", r.user.ID)
		m, _ := r.dc.Message(a.ID)
		if st.ResponseType != discordtest.ResponseUpdateMessage || len(m.CustomIDs()) != 0 || m.Text() != "finished text" {
			t.Errorf("response %d, message %q with buttons %q; want the button removed and the text kept", st.ResponseType, m.Text(), m.CustomIDs())
		}
	})
}

// waitIdle waits until no answer runs in a channel's conversation.
func (r *rig) waitIdle(t *testing.T, channelID string) {
	t.Helper()
	ctx := r.ctx()
	for r.m.Busy(sessions.Key{Platform: discord.Platform, Chat: channelID}) {
		select {
		case <-ctx.Done():
			t.Fatalf("an answer still runs in %s", channelID)
		case <-time.After(time.Millisecond):
		}
	}
}
