package telegram

import (
	"cmp"
	"strings"

	"github.com/palaver-bot/palaver/sessions"
)

// pieces lays v out, once per view: as rich messages in rich mode (the
// parts that cannot go rich as HTML messages), else as HTML messages.
// drafting says that the last piece goes as a draft, the only place a
// thinking block is allowed. r.mu must be held.
func (r *reply) pieces(v sessions.View, drafting bool) []piece {
	c, rich := &r.cache, r.richMode()
	if c.ok && c.gen == r.gen && c.drafting == drafting && c.rich == rich && c.v == v {
		return c.pieces
	}
	var ps []piece
	if rich {
		ps = r.layoutRich(v, drafting)
	} else {
		ps = layout(v, r.content.render(v.Content))
	}
	*c = layoutCache{ok: true, v: v, gen: r.gen, drafting: drafting, rich: rich, pieces: ps}
	return ps
}

// richMode reports whether the reply shows its answer as rich messages.
// r.mu must be held.
func (r *reply) richMode() bool {
	switch {
	case r.forceHTML:
		return false
	case r.mode != "":
		return r.mode == formatRich
	}
	return r.b.richOn()
}

// layoutRich arranges a view into rich messages: the reasoning (a
// collapsed details block, or while a draft has no text yet the thinking
// block with the status), the answer cut by a richRenderer, and the
// status line in italics, the reasoning and status sharing a message with
// the answer when they fit. A part of the answer that cannot go rich goes
// as HTML messages, and the reasoning or status next to it then too.
func (r *reply) layoutRich(v sessions.View, drafting bool) []piece {
	var pieces []piece
	for i, part := range r.rich.render(v.Content) {
		if fb := r.fallbackFor(i, part); fb != nil {
			for _, p := range layout(sessions.View{}, fb.render(part.md)) {
				p.part = i
				pieces = append(pieces, p)
			}
			continue
		}
		md := part.md
		pieces = append(pieces, piece{md: md, cost: part.cost, part: i, plain: func() string { return PlainText(md) }})
	}
	reasoning := strings.TrimSpace(v.Reasoning)
	if v.ReasoningMode == sessions.ReasoningHidden {
		reasoning = ""
	}
	status := strings.TrimSpace(v.Status)
	thinking := drafting && strings.TrimSpace(v.Content) == "" && (reasoning != "" || strings.HasPrefix(status, "💭"))
	if reasoning != "" || thinking {
		var md string
		var cost richCost
		if thinking {
			tail := reasoning
			if v.ReasoningMode == sessions.ReasoningFull {
				tail = "" // shown in full above it
			}
			md, cost = richThinking(status, tail)
			status = ""
		}
		if reasoning != "" && (!thinking || v.ReasoningMode == sessions.ReasoningFull) {
			d, dc := richReasoning(reasoning, v.ReasoningMode)
			md, cost = joinRich(d, md), dc.add(cost)
		}
		label := cmp.Or(reasoning, strings.TrimSpace(v.Status))
		plain := func() string { return clipUTF16(label, reasoningLimit) }
		html := RenderReasoning(reasoning, reasoningLimit)
		if v.ReasoningMode == sessions.ReasoningFull {
			html = strings.Replace(html, "<blockquote expandable>", "<blockquote>", 1)
		}
		pieces = merge(piece{md: md, html: html, cost: cost, plain: plain, part: -1}, pieces, true)
	}
	if status != "" {
		md, cost := richStatus(status)
		status = clipUTF16(status, 1000)
		pieces = merge(piece{md: md, html: RenderStatus(status), cost: cost, plain: func() string { return status }, part: -1}, pieces, false)
	}
	if len(pieces) == 0 && v.Final {
		pieces = []piece{{md: "…", cost: richCost{1, 1}, plain: func() string { return "…" }, part: -1}}
	}
	return pieces
}

// merge adds extra, a piece made as both rich Markdown and HTML, before
// the pieces (first) or after them: in the same message as the piece next
// to it when it fits there, else as a message of its own, of that piece's
// kind (rich when there is none).
func merge(extra piece, pieces []piece, first bool) []piece {
	at := len(pieces) - 1
	if first {
		at = 0
	}
	if len(pieces) == 0 || pieces[at].rich() {
		extra.html = ""
	} else {
		extra.md, extra.cost = "", richCost{}
	}
	if len(pieces) == 0 {
		return []piece{extra}
	}
	next := pieces[at]
	a, b := extra, next
	if !first {
		a, b = next, extra
	}
	joined := piece{part: next.part, plain: func() string { return a.plain() + "\n\n" + b.plain() }}
	switch {
	case next.rich() && a.cost.add(b.cost).fits():
		joined.md, joined.cost = joinRich(a.md, b.md), a.cost.add(b.cost)
	case !next.rich() && a.html != "" && b.html != "" && TextLen(a.html)+2+TextLen(b.html) <= MaxMessageLen:
		joined.html = a.html + "\n\n" + b.html
	case first:
		return append([]piece{extra}, pieces...)
	default:
		return append(pieces, extra)
	}
	pieces = append([]piece(nil), pieces...)
	pieces[at] = joined
	return pieces
}

// joinRich puts two pieces of rich Markdown one after the other, as
// separate blocks.
func joinRich(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n\n" + b
}

// fallbackFor returns the HTML renderer of rich part i when it goes as
// HTML messages (nil when it goes rich): Telegram refused it, or it nests
// deeper or has a wider table than a rich message may.
func (r *reply) fallbackFor(i int, part richPart) *partRenderer {
	if fb := r.fallback[i]; fb != nil {
		return fb
	}
	if part.ok {
		return nil
	}
	return r.useHTML(i)
}

// useHTML makes rich part i go as HTML messages from now on.
func (r *reply) useHTML(i int) *partRenderer {
	if r.fallback == nil {
		r.fallback = map[int]*partRenderer{}
	}
	fb := &partRenderer{}
	r.fallback[i] = fb
	r.gen++
	return fb
}

// richRefused handles the refusal of a rich message or draft showing rich
// part (-1 for reasoning or status alone): when Telegram does not know the
// rich methods, the Bot shows answers as HTML from now on (format auto;
// format rich only this part), and when it refused the message, that part
// goes as HTML (the whole reply when it was no part). It reports whether
// err was such a refusal, the layout then changed. r.mu must be held.
func (r *reply) richRefused(err error, part int) bool {
	missing := isMethodMissing(err)
	if !missing && !isRefused(err) {
		return false
	}
	if missing && r.b.format == formatAuto && r.mode == "" {
		r.b.richMissing(err)
		r.gen++
		return true
	}
	if part < 0 {
		r.forceHTML = true
		r.gen++
	} else {
		r.useHTML(part)
	}
	r.b.log.Warn("Telegram refused a rich message; showing that part as HTML", "chat", r.chat, "error", err)
	return true
}
