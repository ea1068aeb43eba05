package telegram_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/mdsplit"
	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

const tableAndCode = "Here are the figures:\n\n| city | people |\n|---|--:|\n| Lyon | 522 |\n| Nice | 342 |\n\n```go\nfmt.Println(\"<hi> & bye\")\n```\n\nAnd $e^{i\\pi} + 1 = 0$."

// A table and a code block arrive as a rich message, the model's Markdown
// as it is: Telegram renders them. In groups the message grows by edits of
// its rich content.
func TestBot_RichTableAndCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chat   int64
		drafts bool
	}{
		{"PrivateDrafts", alice.ID, true},
		{"PrivateEdits", alice.ID, false},
		{"Group", group, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, withOptions(func(o *telegram.Options) { o.Drafts = tc.drafts }))
			r.up.Enqueue(llmtest.Script{Content: chunks(tableAndCode, 12), Interval: 5 * time.Millisecond})
			r.tg.SendText(tc.chat, alice, "@palaver_bot figures?")
			m := r.final(tc.chat, "Println")
			if m.Rich == nil || m.Rich.Markdown != tableAndCode {
				t.Fatalf("answer = %q (rich %+v), want a rich message of the model's Markdown", m.Text, m.Rich)
			}
			for _, want := range []string{"Lyon | 522", `fmt.Println("<hi> & bye")`} {
				if !strings.Contains(m.Text, want) {
					t.Errorf("the fake shows %q, want %q in it", m.Text, want)
				}
			}
			if n := len(r.tg.CallsTo("sendMessage")); n != 0 {
				t.Errorf("%d text messages sent", n)
			}
			if !tc.drafts || tc.chat == group {
				edits := 0
				for _, c := range r.tg.CallsTo("editMessageText") {
					if c.OK() && c.Params["rich_message"] != "" && c.Params["text"] == "" {
						edits++
					}
				}
				if edits == 0 {
					t.Error("the rich message never grew by an edit of its rich content")
				}
			}
		})
	}
}

// A Bot API server that does not know rich messages (older than 10.1)
// answers "method not found" once: from then on answers are HTML, without
// asking again.
func TestBot_RichFallbackOnce(t *testing.T) {
	for _, drafts := range []bool{true, false} {
		t.Run(fmt.Sprint("Drafts=", drafts), func(t *testing.T) {
			r := newRig(t, func(r *rig) { r.fake.NoRichMethods = true }, withOptions(func(o *telegram.Options) { o.Drafts = drafts }))
			for i, q := range []string{"first", "second", "third"} {
				r.tg.SendText(alice.ID, alice, q)
				m := r.final(alice.ID, "echo: "+q)
				if m.Rich != nil || m.ParseMode != "HTML" {
					t.Errorf("answer %d: rich %v, parse mode %q: want HTML", i, m.Rich, m.ParseMode)
				}
			}
			missing := 0
			for _, c := range r.tg.Calls() {
				if strings.Contains(c.Method, "Rich") || c.Params["rich_message"] != "" {
					missing++
					if c.ErrorCode != 404 {
						t.Errorf("%s answered %d %q, want 404", c.Method, c.ErrorCode, c.Description)
					}
				}
			}
			if missing != 1 {
				t.Errorf("%d rich requests, want 1: the fallback is remembered", missing)
			}
		})
	}
}

// A message whose rich Markdown Telegram refuses goes as HTML, that
// message only: the next answer is rich again.
func TestBot_RichRefusedPerMessage(t *testing.T) {
	r := newRig(t)
	const refused = "This uses a <blink>tag</blink> rich messages do not know."
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(refused)})
	r.tg.SendText(alice.ID, alice, "blink")
	m := r.final(alice.ID, "rich messages do not know")
	if m.Rich != nil || m.ParseMode != "HTML" || !strings.Contains(m.Text, "<blink>") {
		t.Errorf("refused answer = %q (rich %v, parse mode %q), want it as HTML, its tag shown", m.Text, m.Rich, m.ParseMode)
	}
	r.tg.SendText(alice.ID, alice, "again")
	if m := r.final(alice.ID, "echo: again"); m.Rich == nil {
		t.Errorf("the next answer %q is not rich: the refusal was remembered beyond its message", m.Text)
	}
}

// An answer longer than a rich message's limits is cut like an HTML one,
// at natural boundaries, a code block cut closed and reopened: every
// message within the limits, the messages together the whole answer.
func TestBot_RichLongAnswer(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 3*telegramtest.MaxRichText; i++ {
		fmt.Fprintf(&b, "## Step %d\n\nParagraph %d has **bold** and `code`.\n\n```go\n", i, i)
		for j := range 40 {
			fmt.Fprintf(&b, "x := compute(%d, %d)\n", i, j)
		}
		b.WriteString("```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n")
	}
	b.WriteString("The end.")
	answer := b.String()

	r := newRig(t)
	r.up.Enqueue(llmtest.Script{Content: chunks(answer, 2000), Interval: time.Millisecond})
	r.tg.SendText(alice.ID, alice, "a long one please")
	r.final(alice.ID, "The end.")
	msgs := r.tg.BotMessages(alice.ID)
	if len(msgs) < 3 || len(msgs) > 5 {
		t.Fatalf("answer in %d messages, want 3 to 5 for %d bytes", len(msgs), len(answer))
	}
	var parts []string
	for i, m := range msgs {
		t.Logf("message %d: %d bytes of Markdown, %d characters shown", i, len(m.Rich.Markdown), len([]rune(m.Text)))
		if m.Rich == nil {
			t.Fatalf("message %d is not rich", i)
		}
		md := m.Rich.Markdown
		if _, _, open := mdsplit.OpenFence(md); open {
			t.Errorf("message %d leaves a code block open", i)
		}
		parts = append(parts, md)
	}
	// Without the fences added where a block was cut, the parts are the
	// answer.
	joined := strings.ReplaceAll(strings.Join(parts, "\n"), "\n```\n```go\n", "\n")
	if strings.Join(strings.Fields(joined), " ") != strings.Join(strings.Fields(answer), " ") {
		t.Error("the messages together are not the answer")
	}
}

// The model's reasoning shows in the draft's thinking block while it
// thinks, and collapsed (or open, chat.reasoning full) in the final
// message; hidden, it shows nowhere.
func TestBot_RichReasoning(t *testing.T) {
	for _, tc := range []struct {
		mode    sessions.ReasoningMode
		details string // the final message's, "" for none
	}{
		{sessions.ReasoningCollapsed, "<details>"},
		{sessions.ReasoningFull, "<details open>"},
		{sessions.ReasoningHidden, ""},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			r := newRig(t, func(r *rig) { r.cfg.Reasoning = tc.mode })
			r.up.Enqueue(llmtest.Script{
				Reasoning: llmtest.Tokens("Let me weigh this carefully, the user wants a number."),
				Content:   llmtest.Tokens("The answer is 42."),
				Interval:  10 * time.Millisecond,
			})
			r.tg.SendText(alice.ID, alice, "what is it?")
			m := r.final(alice.ID, "The answer is 42.")
			if m.Rich == nil {
				t.Fatalf("answer %q is not rich", m.Text)
			}
			final := m.Rich.Markdown
			t.Logf("final: %q", final)
			if strings.Contains(final, "tg-thinking") {
				t.Errorf("final message %q has a thinking block, which only drafts may", final)
			}
			switch {
			case tc.details == "" && (strings.Contains(final, "<details") || strings.Contains(m.Text, "weigh")):
				t.Errorf("hidden reasoning shown: %q", final)
			case tc.details != "" && (!strings.HasPrefix(final, tc.details) || !strings.Contains(m.Text, "weigh this carefully")):
				t.Errorf("final message = %q, want the reasoning in %s first", final, tc.details)
			}
			thinking := false
			for _, c := range r.tg.CallsTo("sendRichMessageDraft") {
				md := richParam(t, c).Markdown
				if strings.Contains(md, "<tg-thinking>") && (tc.mode != sessions.ReasoningCollapsed || strings.Contains(md, "weigh")) {
					thinking = true
				}
			}
			if !thinking {
				t.Error("no draft showed the thinking block while the model reasoned")
			}
		})
	}
}
