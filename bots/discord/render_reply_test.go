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
// span messages, shown part by part as it grows, and checks that the
// messages end up exactly as rendering the whole answer at once gives
// them.
func TestBot_LongAnswer_Incremental(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 20000; i++ {
		fmt.Fprintf(&b, "## Step %d\n\nParagraph %d has **bold** and `code`.\n\n", i, i)
		if i%2 == 0 {
			b.WriteString("```go\n")
			for j := range 60 {
				fmt.Fprintf(&b, "x := compute(%d, %d)\n", i, j)
			}
			b.WriteString("```\n\n")
		}
	}
	b.WriteString("The end.")
	answer := b.String()

	r := newRig(t)
	ch := r.channel("long")
	r.up.Enqueue(llmtest.Script{Content: chunks(answer, 200), Interval: time.Millisecond})
	_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
		Content: discordtest.Mention(r.dc.AppID()) + " a long one please"})
	must(t, err)
	r.final(t, ch.ID, "The end.")

	want := discord.RenderParts(sessions.View{Content: answer, Final: true}, discord.PartLimitV2)
	if got := r.botTexts(ch.ID); !slices.Equal(got, want) {
		t.Errorf("messages:\n%q\nwant\n%q", got, want)
	}
}
