package telegram

import (
	"github.com/palaver-bot/palaver/bots/mdsplit"
)

// renderedPart is a Markdown part and its HTML.
type renderedPart struct {
	md, html string
}

// partBytes is the most Markdown, in bytes per unit of the limit, that one
// part may hold. Text shows about one unit per byte or three; links with
// long addresses show less, and a part of nothing but links could
// otherwise grow without bound (and be read again on every update).
const partBytes = 8

// partRenderer renders an answer that grows by appending as Telegram HTML
// parts of at most limit units each (TextLen), and of at most partBytes
// bytes of Markdown per unit of the limit. It cuts with an
// mdsplit.Stream, so that the parts already final are neither cut nor
// rendered again: showing a longer answer costs about as much as cutting
// and rendering its last message or two, however long the answer. Its zero
// value uses MaxMessageLen. It is not safe for concurrent use.
type partRenderer struct {
	limit int
	split mdsplit.Stream
	last  []renderedPart // the parts of the previous call, empty ones too
	fit   renderedPart   // the part Fits rendered last: mostly the one returned
}

// render returns the parts of md that render to something, in order. The
// result is the same whatever md was rendered before.
func (pr *partRenderer) render(md string) []renderedPart {
	if pr.split.Fits == nil {
		limit := pr.limit
		if limit <= 0 {
			limit = MaxMessageLen
		}
		pr.split.Fits = func(part string) bool {
			if len(part) > partBytes*limit {
				return false
			}
			pr.fit = renderedPart{md: part, html: Render(part)}
			return TextLen(pr.fit.html) <= limit
		}
	}
	mds := pr.split.Split(md)
	parts := make([]renderedPart, len(mds))
	for i, p := range mds {
		// A final part comes back as the same string, and the last part
		// is most often the one Fits saw last: comparing them takes no
		// time.
		switch {
		case i < len(pr.last) && pr.last[i].md == p:
			parts[i] = pr.last[i]
		case pr.fit.md == p:
			parts[i] = pr.fit
		default:
			parts[i] = renderedPart{md: p, html: Render(p)}
		}
	}
	pr.fit = renderedPart{}
	pr.last = parts
	shown := make([]renderedPart, 0, len(parts))
	for _, p := range parts {
		if p.html != "" {
			shown = append(shown, p)
		}
	}
	return shown
}

// splitMarkdown cuts an answer into parts that each render within
// Telegram's limit, rendering each part once.
func splitMarkdown(md string) []renderedPart {
	var pr partRenderer
	return pr.render(md)
}

// SplitRendered renders Markdown as Telegram HTML cut into messages of at
// most limit UTF-16 units each (TextLen), and of at most 8*limit bytes of
// Markdown, at paragraph, line, sentence or word boundaries as
// mdsplit.Split prefers them. A code block that is cut is closed at the end
// of one part and reopened, with its language, in the next. Parts that
// render to nothing are dropped. Its cost grows linearly with the length
// of markdown.
func SplitRendered(markdown string, limit int) []string {
	pr := partRenderer{limit: max(limit, 1)}
	var out []string
	for _, p := range pr.render(markdown) {
		out = append(out, p.html)
	}
	return out
}
