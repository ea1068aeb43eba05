package discord_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// essay is Markdown of about n characters: paragraphs and a code block.
func essay(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n-200; i++ {
		fmt.Fprintf(&b, "Paragraph %d explains one more point at some length, with **bold** words and `code`, so that it fills a line or two.\n\n", i)
		if i%8 == 7 {
			b.WriteString("```go\nfor i := range 10 {\n\tfmt.Println(i)\n}\n```\n\n")
		}
	}
	b.WriteString("That is the whole story.")
	return b.String()
}

// botMessages are the bot's messages in a channel, oldest first.
func (r *rig) botMessages(channelID string) []discordtest.Message {
	var out []discordtest.Message
	for _, m := range r.dc.Messages(channelID) {
		if m.AuthorID == r.dc.AppID() && !m.Deleted {
			out = append(out, m)
		}
	}
	return out
}

// TestBot_ComponentsV2_LongAnswer streams a 7,000-character answer: it
// arrives in two Components V2 messages (four as message content), every
// version of each made with the flag, the Retry button under the last.
func TestBot_ComponentsV2_LongAnswer(t *testing.T) {
	answer := essay(7000)
	r := newRig(t)
	ch := r.channel("long")
	r.up.Enqueue(llmtest.Script{Content: chunks(answer, 150), Interval: time.Millisecond})
	q, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
		Content: discordtest.Mention(r.dc.AppID()) + " tell me everything"})
	must(t, err)
	r.final(t, ch.ID, "That is the whole story.")

	msgs := r.botMessages(ch.ID)
	legacy := len(discord.RenderParts(sessions.View{Content: answer, Final: true}, discord.MessageLimit))
	t.Logf("%d characters: %d Components V2 messages, %d as message content", len(answer), len(msgs), legacy)
	if len(msgs) != 2 || legacy != 4 {
		t.Fatalf("%d messages (%d as content), want 2 (4)", len(msgs), legacy)
	}
	var texts []string
	for i, m := range msgs {
		for j, v := range m.Versions {
			if v.Flags&discordtest.FlagComponentsV2 == 0 || v.Content != "" {
				t.Errorf("message %d version %d: flags %d, content %q; want Components V2 only", i, j, v.Flags, v.Content)
			}
		}
		if n := len([]rune(m.Text())); n > discord.TextLimitV2 {
			t.Errorf("message %d has %d characters", i, n)
		}
		texts = append(texts, m.Text())
	}
	if got := strings.Join(texts, "\n"); strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(answer), " ") {
		t.Errorf("the messages do not add up to the answer:\n%.300q…", got)
	}
	retry := "palaver:retry:" + q.ID
	if !slices.Contains(msgs[1].CustomIDs(), retry) || len(msgs[0].CustomIDs()) != 0 {
		t.Errorf("buttons %q and %q, want only %q under the last message", msgs[0].CustomIDs(), msgs[1].CustomIDs(), retry)
	}
	for _, c := range r.dc.Calls() {
		if c.Status >= 400 {
			t.Errorf("%s %s refused: %d %s", c.Method, c.Route, c.Status, c.Response)
		}
	}
}

// TestBot_ComponentsV2_Fallback runs the Bot on a Discord that refuses the
// Components V2 flag: the first answer falls back to message content after
// one refused request, later answers do not try the flag again, and the
// fallback is logged once.
func TestBot_ComponentsV2_Fallback(t *testing.T) {
	r := newRigWith(t, func(o *discordtest.Options) { o.RefuseComponentsV2 = true })
	for i, name := range []string{"first", "second"} {
		ch := r.channel(name)
		r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(fmt.Sprintf("answer number %d", i))})
		_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
			Content: discordtest.Mention(r.dc.AppID()) + " " + name})
		must(t, err)
		m := r.final(t, ch.ID, fmt.Sprintf("answer number %d", i))
		if m.Flags&discordtest.FlagComponentsV2 != 0 || !strings.HasPrefix(m.Content, "answer number") {
			t.Errorf("answer %d: flags %d, content %q; want message content", i, m.Flags, m.Content)
		}
	}
	refused := 0
	for _, c := range r.dc.Calls() {
		if strings.Contains(string(c.Body), `"flags":32768`) {
			refused++
			if c.Status != 400 {
				t.Errorf("a Components V2 request got %d", c.Status)
			}
		}
	}
	if refused != 1 {
		t.Errorf("%d Components V2 requests, want 1", refused)
	}
	if n := r.logs.count("Discord refused a Components V2 message"); n != 1 {
		t.Errorf("the fallback was logged %d times, want once", n)
	}
}

// TestBot_ComponentsV2_Legacy checks discord.components: legacy: answers
// are message content with the buttons in an action row.
func TestBot_ComponentsV2_Legacy(t *testing.T) {
	r := newRig(t, func(r *rig) { r.opts.Components = discord.ComponentsLegacy })
	ch := r.channel("legacy")
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("plain words")})
	q, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
		Content: discordtest.Mention(r.dc.AppID()) + " hi"})
	must(t, err)
	m := r.final(t, ch.ID, "plain words")
	if m.Flags&discordtest.FlagComponentsV2 != 0 || m.Content != "plain words" || !slices.Contains(m.CustomIDs(), "palaver:retry:"+q.ID) {
		t.Errorf("flags %d, content %q, buttons %q; want content with the Retry button", m.Flags, m.Content, m.CustomIDs())
	}
}

func TestNew_Components(t *testing.T) {
	_, err := discord.New(discord.Options{Token: "t", Components: "fancy"}, newTap(nil))
	if err == nil || !strings.Contains(err.Error(), "fancy") {
		t.Errorf("New with components \"fancy\": %v, want an error naming it", err)
	}
}
