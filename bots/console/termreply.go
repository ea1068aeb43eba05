package console

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/bots/console/termmd"
	"github.com/palaver-bot/palaver/sessions"
)

// answerInterval is the least time between two updates of an answer
// growing in the terminal: about 30 a second, smooth to the eye, and a
// bound on the rendering done for a fast model.
const answerInterval = 30 * time.Millisecond

// reasoningTail bounds how much of the end of the reasoning is read to
// show its last lines while the model thinks.
const reasoningTail = 4 << 10

// termReply shows one answer in the terminal: its finished Markdown blocks
// are printed as they complete, and the block being written is shown in
// the live area, rendered again in place as it grows.
type termReply struct {
	c        *Chat
	u        *ui
	md       *termmd.Stream
	started  bool // the "bot›" header is printed
	reasoned bool // the reasoning is printed (or summarised)
	printed  bool // something of the answer is printed
	gap      bool // the next part printed needs a blank line before it
}

func (c *Chat) newTermReply() *termReply {
	return &termReply{c: c, u: c.ui, md: termmd.NewStream(c.md)}
}

func (r *termReply) Destination() sessions.Destination {
	return sessions.Destination{ID: Platform + ":" + r.c.key.Chat, Interval: answerInterval}
}

func (r *termReply) Show(ctx context.Context, v sessions.View) (int, error) {
	if !r.started {
		r.started = true
		r.u.print(bold(r.c.color, "bot›"))
	}
	reasoning := strings.TrimSpace(v.Reasoning)
	if !r.reasoned && reasoning != "" && (v.Content != "" || v.Final) {
		r.reasoned = true
		r.print(r.reasoning(reasoning, v.ReasoningMode))
		r.gap = true
	}
	r.print(r.md.Next(v.Content))
	if v.Final {
		r.print(r.md.Finish(v.Content))
		if v.Status != "" {
			r.gap = r.printed
			r.print(dimLines(r.c.color, v.Status))
		}
		r.u.setLive("")
		return 1, nil
	}
	r.u.setLive(r.live(v, reasoning))
	return 1, nil
}

// print prints s, a part of the answer, unless it is empty, a blank line
// apart from the part before.
func (r *termReply) print(s string) {
	if s == "" {
		return
	}
	if r.gap {
		s = "\n" + s
	}
	r.u.print(s)
	r.printed = true
	r.gap = false
}

// reasoning is the reasoning as printed once the answer begins: in full
// and dimmed, or, collapsed, one line saying how long it was.
func (r *termReply) reasoning(text string, mode sessions.ReasoningMode) string {
	if mode == sessions.ReasoningFull {
		return dimLines(r.c.color, "💭 Reasoning\n"+r.c.md.Plain(text))
	}
	return dim(r.c.color, fmt.Sprintf("💭 Reasoned for %s (chat.reasoning: full shows it).", plural(len(strings.Fields(text)), "word", "words")))
}

// live is what the live area shows of v: the last lines of the reasoning
// while the model thinks, the block being written, and the status.
func (r *termReply) live(v sessions.View, reasoning string) string {
	n := r.u.liveLines()
	var parts []string
	if !r.reasoned && reasoning != "" {
		tail := reasoning[max(0, len(reasoning)-reasoningTail):]
		parts = append(parts, dimLines(r.c.color, "💭 "+strings.TrimLeft(lastLines(r.c.md.Plain(tail), reasoningLines), " ")))
	}
	if tail := r.md.Tail(v.Content, n); tail != "" {
		if r.printed {
			tail = "\n" + tail
		}
		parts = append(parts, tail)
	}
	if v.Status != "" {
		parts = append(parts, dim(r.c.color, v.Status))
	}
	return strings.Join(parts, "\n")
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
