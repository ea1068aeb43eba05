package telegram_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// chunks cuts s into pieces of n bytes, as a model streams a long answer.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

// TestBot_LongAnswer_Incremental streams a long answer whose code blocks
// and tables span messages, shown part by part as it grows, and checks
// that the messages end up exactly as rendering the whole answer at once
// gives them.
func TestBot_LongAnswer_Incremental(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 40000; i++ {
		fmt.Fprintf(&b, "## Step %d\n\nParagraph %d has **bold** and `code` & <html>.\n\n", i, i)
		switch i % 3 {
		case 0:
			b.WriteString("```go\n")
			for j := range 80 {
				fmt.Fprintf(&b, "x := compute(%d, %d) // <%d>\n", i, j, j)
			}
			b.WriteString("```\n\n")
		case 1:
			b.WriteString("| a | b |\n|---|--:|\n| 1 | 22 |\n\n- one\n- two\n  - nested\n\n")
		}
	}
	b.WriteString("The end.")
	answer := b.String()

	r := newRig(t, withOptions(func(o *telegram.Options) { o.Drafts, o.Format = false, "html" }))
	r.up.Enqueue(llmtest.Script{Content: chunks(answer, 300), Interval: time.Millisecond})
	r.tg.SendText(alice.ID, alice, "a long one please")
	r.final(alice.ID, "The end.")

	want := telegram.SplitRendered(answer, telegram.MaxMessageLen)
	msgs := r.tg.BotMessages(alice.ID)
	if len(msgs) != len(want) {
		t.Fatalf("answer in %d messages, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		if m.Source != want[i] {
			t.Errorf("message %d:\n%q\nwant\n%q", i, m.Source, want[i])
		}
	}
}
