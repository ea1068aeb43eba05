package console

import (
	"context"
	"strings"

	"github.com/palaver-bot/palaver/sessions"
)

// reply prints one answer to the terminal as it grows: a terminal has no
// rate limit, so every update is shown, and only the new part is printed.
type reply struct {
	c         *Chat
	started   bool
	reasoning int // bytes of reasoning printed
	content   int // bytes of content printed
	thinking  bool
}

func (r *reply) Destination() sessions.Destination {
	return sessions.Destination{ID: Platform + ":" + r.c.key.Chat}
}

func (r *reply) Show(ctx context.Context, v sessions.View) (int, error) {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	header := func() {
		if !r.started {
			r.started = true
			b.WriteString(c.bold("bot›") + " ")
		}
	}
	if len(v.Reasoning) > r.reasoning && r.content == 0 {
		header()
		b.WriteString(c.dim(v.Reasoning[r.reasoning:]))
		r.reasoning = len(v.Reasoning)
	} else if v.Content == "" && strings.HasPrefix(v.Status, "💭") && !r.thinking && v.Reasoning == "" {
		header()
		r.thinking = true
		b.WriteString(c.dim("💭 thinking…"))
	}
	if len(v.Content) > r.content {
		header()
		if r.content == 0 && (r.reasoning > 0 || r.thinking) {
			b.WriteString("\n\n")
		}
		b.WriteString(v.Content[r.content:])
		r.content = len(v.Content)
	}
	if v.Final {
		header()
		if v.Status != "" {
			if r.content > 0 || r.reasoning > 0 || r.thinking {
				b.WriteString("\n")
			}
			b.WriteString(c.dim(v.Status))
		}
		b.WriteString("\n")
	}
	if b.Len() > 0 {
		if _, err := c.out.Write([]byte(b.String())); err != nil {
			return 1, err
		}
	}
	return 1, nil
}
