package telegram

import (
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"

	"github.com/palaver-bot/palaver/bots/mdsplit"
	"github.com/palaver-bot/palaver/sessions"
)

// The limits of one rich message, from core.telegram.org/bots/api's "Rich
// Message Limits" (Bot API 10.1): up to 32768 UTF-8 characters of text,
// up to 500 blocks (nested blocks, list items, table rows, quotation and
// details blocks included), up to 16 levels of nested formatting and
// blocks, up to 20 table columns (and up to 50 media, which answers do not
// send).
const (
	richMaxText    = 32768
	richMaxBlocks  = 500
	richMaxDepth   = 16
	richMaxColumns = 20
)

// richCost is what rich Markdown counts against a message's limits,
// over-estimated so that a message within them is never refused: its
// source's length in UTF-16 units (the text Telegram counts is shorter:
// markup counts nothing, and a code point is at most two units) and the
// blocks goldmark finds in it (each list item, table row and line of a
// table's header included).
type richCost struct {
	units, blocks int
}

func (c richCost) add(d richCost) richCost {
	return richCost{c.units + d.units, c.blocks + d.blocks}
}

// fits reports whether c is within one rich message's limits.
func (c richCost) fits() bool { return c.units <= richMaxText && c.blocks <= richMaxBlocks }

// richShape is what goldmark finds in rich Markdown.
type richShape struct {
	blocks  int
	depth   int // nesting of blocks and inline formatting
	columns int // the widest table's
}

// measureRich parses md as rich Markdown takes it (CommonMark with GFM
// tables and strikethrough). Its cost grows linearly with md.
func measureRich(md string) richShape {
	src := []byte(md)
	doc := markdownParser().Parse(text.NewReader(src))
	var s richShape
	var walk func(n ast.Node, depth int)
	walk = func(n ast.Node, depth int) {
		if n.Kind() != ast.KindText && n.Kind() != ast.KindString {
			s.depth = max(s.depth, depth)
		}
		if n.Type() == ast.TypeBlock && n.Kind() != east.KindTableCell {
			s.blocks++
		}
		if n.Kind() == east.KindTableRow || n.Kind() == east.KindTableHeader {
			s.columns = max(s.columns, n.ChildCount())
		}
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			walk(c, depth+1)
		}
	}
	for c := doc.FirstChild(); c != nil; c = c.NextSibling() {
		walk(c, 1)
	}
	return s
}

// richPart is one rich message's share of an answer's Markdown.
type richPart struct {
	md   string
	cost richCost
	// ok is false when the part nests deeper or has a wider table than a
	// rich message may: it goes as HTML messages instead.
	ok bool
}

// richRenderer cuts an answer that grows by appending into parts that
// each fit one rich message, cutting only its new end (an mdsplit.Stream,
// which closes a code block cut between parts and reopens it in the next,
// and closes one still being written). It is not safe for concurrent use.
type richRenderer struct {
	split mdsplit.Stream
	last  []richPart // the parts of the previous call
	fit   richPart   // the part Fits measured last: mostly the one returned
}

// render returns the parts of md that hold something, in order.
func (rr *richRenderer) render(md string) []richPart {
	if rr.split.Fits == nil {
		rr.split.CloseFence = true
		rr.split.Fits = func(part string) bool {
			units := utf16Len(part)
			if units > richMaxText {
				return false
			}
			rr.fit = newRichPart(part, units)
			return rr.fit.cost.fits()
		}
	}
	mds := rr.split.Split(sanitize(md))
	parts := make([]richPart, 0, len(mds))
	for i, p := range mds {
		switch {
		case strings.TrimSpace(p) == "":
			continue
		case i < len(rr.last) && rr.last[i].md == p:
			parts = append(parts, rr.last[i])
		case rr.fit.md == p:
			parts = append(parts, rr.fit)
		default:
			parts = append(parts, newRichPart(p, utf16Len(p)))
		}
	}
	rr.fit = richPart{}
	rr.last = parts
	return parts
}

func newRichPart(md string, units int) richPart {
	s := measureRich(md)
	return richPart{md: md, cost: richCost{units, s.blocks}, ok: s.depth < richMaxDepth && s.columns <= richMaxColumns}
}

// richEscape makes s rich Markdown that shows s as it is: every ASCII
// punctuation character is backslash-escaped, as CommonMark allows, so
// that none of it is markup.
func richEscape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf && strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// richReasoningParagraphs bounds the paragraphs of reasoning shown, so
// that reasoning never costs more than a tenth of a message's blocks.
const richReasoningParagraphs = 50

// reasoningTail is the newest part of reasoning, at most limit UTF-16
// units, marked "…" where it was cut; "" for none.
func reasoningTail(reasoning string, limit int) string {
	cut := false
	if w := 3*limit + 4; len(reasoning) > w {
		i := len(reasoning) - w
		for i < len(reasoning) && !utf8.RuneStart(reasoning[i]) {
			i++
		}
		reasoning, cut = reasoning[i:], true
	}
	reasoning = strings.TrimSpace(sanitize(reasoning))
	if cut || utf16Len(reasoning) > limit {
		reasoning = "…" + tailUTF16(reasoning, limit-1)
	}
	return reasoning
}

// richReasoning shows a model's reasoning in a details block, collapsed
// unless mode is full: its newest reasoningLimit units, in at most
// richReasoningParagraphs paragraphs, as plain text.
func richReasoning(reasoning string, mode sessions.ReasoningMode) (string, richCost) {
	paras := strings.Split(reasoningTail(reasoning, reasoningLimit), "\n\n")
	paras = paras[max(0, len(paras)-richReasoningParagraphs):]
	var b strings.Builder
	b.WriteString("<details")
	if mode == sessions.ReasoningFull {
		b.WriteString(" open")
	}
	b.WriteString("><summary>💭 Reasoning</summary>\n\n")
	n := 0
	for _, p := range paras {
		if p = strings.TrimSpace(p); p != "" {
			b.WriteString(richEscape(p))
			b.WriteString("\n\n")
			n++
		}
	}
	b.WriteString("</details>")
	md := b.String()
	return md, richCost{utf16Len(md), n + 2}
}

// richThinkingTail is how much of the reasoning the thinking block of a
// draft shows after its label, in UTF-16 units.
const richThinkingTail = 200

// richThinking is a draft's thinking block (<tg-thinking>, which rich
// Markdown takes as in rich HTML: a "Thinking…" placeholder allowed only in
// sendRichMessageDraft): the status ("💭 Thinking… 4 s") or "Thinking…",
// then the newest words of the reasoning, when shown, on one line.
func richThinking(status, reasoning string) (string, richCost) {
	label := strings.TrimSpace(sanitize(status))
	if label == "" {
		label = "Thinking…"
	}
	if reasoning != "" {
		label += ": " + strings.Join(strings.Fields(reasoningTail(reasoning, richThinkingTail)), " ")
	}
	md := "<tg-thinking>" + richEscape(label) + "</tg-thinking>"
	return md, richCost{utf16Len(md), 1}
}

// richStatus shows a status line in italics.
func richStatus(status string) (string, richCost) {
	status = strings.TrimSpace(sanitize(clipUTF16(status, 1000)))
	md := "*" + richEscape(status) + "*"
	return md, richCost{utf16Len(md), 1}
}
