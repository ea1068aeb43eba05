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

// imageTokens estimates what an image takes of a model's context: a token
// per 750 pixels, the rule Anthropic publishes for its models, which also
// bounds Qwen2-VL's (a token per 28×28-pixel patch, 784 pixels) and
// OpenAI's (85 tokens and 170 per 512-pixel tile: 765 for 1568×1176).
// A 1568×1176 photo counts 2,459 tokens, a 1568-pixel square 3,279, which
// an image of unknown size is taken to be; the least is 85.
func imageTokens(im Image) int {
	w, h := im.Width, im.Height
	if w <= 0 || h <= 0 {
		w, h = DefaultImageMaxSide, DefaultImageMaxSide
	}
	return max(85, (w*h+749)/750)
}

// imagePlaceholder is what a model reads for an image it is not sent.
const imagePlaceholder = "[image]"

// modelText is what the model reads of e's text: what the user wrote,
// what was read of the files (Inline), "[image]" for each of unsent
// images, and a placeholder for each file not read.
func modelText(e Entry, unsent int) string {
	parts := make([]string, 0, 3+len(e.Attachments))
	for _, p := range []string{e.Text, e.Inline} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if unsent > 0 {
		parts = append(parts, strings.TrimSpace(strings.Repeat(imagePlaceholder+" ", unsent)))
	}
	for _, a := range e.Attachments {
		parts = append(parts, placeholder(a))
	}
	return strings.Join(parts, "\n\n")
}

// entryTokens estimates what e takes of the context when its first sent
// images are sent as images.
func entryTokens(e Entry, sent int) int {
	n := estimateTokens(modelText(e, len(e.Images)-sent)) + estimateTokens(e.AuthorName)
	for _, im := range e.Images[:sent] {
		n += imageTokens(im)
	}
	return n
}

// questionTokens estimates what the question q takes of the context
// (its author's name aside) with up to maxImages of its images sent,
// whether or not the model sees them: at worst an overestimate.
func questionTokens(q Entry, maxImages int) int {
	return entryTokens(q, min(len(q.Images), max(maxImages, 0))) - estimateTokens(q.AuthorName)
}

// promptInput is what buildPrompt needs.
type promptInput struct {
	system     string
	history    []Entry // oldest first, ending with the message being answered
	shared     bool    // several people talk here: user turns carry names
	budget     int     // tokens available for system + history
	maxEntries int
	// images returns an image of the history as sent, false when it
	// cannot be read (it is then "[image]"); nil when the model does not
	// see images, all of which are then "[image]".
	images func(Image) (llm.Image, bool)
	// maxImages is the most images sent, the newest.
	maxImages int
}

// buildPrompt returns the messages sent upstream: the system prompt and the
// newest history that fits the budget, dropping whole oldest turns (a user
// message and the answers that follow it). The last user message is always
// kept; the caller checks that it fits on its own. Reasoning is never sent.
//
// Images go with their user messages, up to in.maxImages of them: the
// newest messages' first; the others, and all of them for a model that
// does not see images, are read as "[image]". Each image sent counts
// imageTokens against the budget.
func buildPrompt(in promptInput) []llm.Message {
	used := 0
	if in.system != "" {
		used = estimateTokens(in.system)
	}
	h := in.history
	if in.maxEntries > 0 && len(h) > in.maxEntries {
		h = h[len(h)-in.maxEntries:]
	}
	// Walk back from the newest, turn by turn, handing out the images
	// newest first.
	left := 0
	if in.images != nil {
		left = max(in.maxImages, 0)
	}
	sent := make([]int, len(h)) // of each entry's images, how many are sent
	start := len(h)
	for i := len(h) - 1; i >= 0; {
		j := i // find the user message that opens this turn
		for j > 0 && h[j].Role != llm.RoleUser {
			j--
		}
		cost, took := 0, 0
		for k := i; k >= j; k-- {
			sent[k] = min(len(h[k].Images), left-took)
			took += sent[k]
			cost += entryTokens(h[k], sent[k])
		}
		if used+cost > in.budget && start < len(h) {
			break
		}
		used += cost
		left -= took
		start = j
		i = j - 1
	}
	h, sent = h[start:], sent[start:]
	// A window must open with a user message.
	for len(h) > 1 && h[0].Role != llm.RoleUser {
		h, sent = h[1:], sent[1:]
	}

	msgs := make([]llm.Message, 0, len(h)+1)
	if in.system != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: in.system})
	}
	for k, e := range h {
		var ims []llm.Image
		for _, im := range e.Images[:sent[k]] {
			if m, ok := in.images(im); ok {
				ims = append(ims, m)
			}
		}
		text := modelText(e, len(e.Images)-len(ims))
		if e.Role == llm.RoleUser && in.shared && e.AuthorName != "" {
			text = e.AuthorName + ": " + text
		}
		if text == "" && len(ims) == 0 {
			continue
		}
		msgs = append(msgs, llm.Message{Role: e.Role, Content: text, Images: ims})
	}
	return msgs
}
