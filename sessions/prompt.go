package sessions

import (
	"strings"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// estimateTokens is a conservative token count for budgeting: about three
// bytes a token overestimates English (four) and matches most other scripts,
// so a prompt built with it fits the model's context.
func estimateTokens(s string) int { return (len(s)+2)/3 + 4 }

// expandPrompt fills the system prompt's placeholders {date}, {time},
// {model} and {platform}. Other braces stay as written.
func expandPrompt(p string, now time.Time, model, platform string) string {
	if !strings.Contains(p, "{") {
		return p
	}
	return strings.NewReplacer(
		"{date}", now.Format("Monday, 2 January 2006"),
		"{time}", now.Format("15:04 MST"),
		"{model}", model,
		"{platform}", platform,
	).Replace(p)
}

// promptInput is what buildPrompt needs.
type promptInput struct {
	system     string
	history    []Entry // oldest first, ending with the message being answered
	shared     bool    // several people talk here: user turns carry names
	budget     int     // tokens available for system + history
	maxEntries int
}

// buildPrompt returns the messages sent upstream: the system prompt and the
// newest history that fits the budget, dropping whole oldest turns (a user
// message and the answers that follow it). The last user message is always
// kept; the caller checks that it fits on its own. Reasoning is never sent.
func buildPrompt(in promptInput) []llm.Message {
	used := 0
	if in.system != "" {
		used = estimateTokens(in.system)
	}
	h := in.history
	if in.maxEntries > 0 && len(h) > in.maxEntries {
		h = h[len(h)-in.maxEntries:]
	}
	// Walk back from the newest, turn by turn.
	start := len(h)
	for i := len(h) - 1; i >= 0; {
		j := i // find the user message that opens this turn
		for j > 0 && h[j].Role != llm.RoleUser {
			j--
		}
		cost := 0
		for k := j; k <= i; k++ {
			cost += estimateTokens(h[k].Text) + estimateTokens(h[k].AuthorName)
		}
		if used+cost > in.budget && start < len(h) {
			break
		}
		used += cost
		start = j
		i = j - 1
	}
	h = h[start:]
	// A window must open with a user message.
	for len(h) > 1 && h[0].Role != llm.RoleUser {
		h = h[1:]
	}

	msgs := make([]llm.Message, 0, len(h)+1)
	if in.system != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: in.system})
	}
	for _, e := range h {
		text := e.Text
		if e.Role == llm.RoleUser && in.shared && e.AuthorName != "" {
			text = e.AuthorName + ": " + text
		}
		if text == "" {
			continue
		}
		msgs = append(msgs, llm.Message{Role: e.Role, Content: text})
	}
	return msgs
}
