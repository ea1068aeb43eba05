package telegram

import (
	"bytes"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
)

// MaxMessageLen is Telegram's limit on a message's text, in UTF-16 code
// units after entity parsing (see TextLen).
const MaxMessageLen = 4096

// markdownParser is goldmark's CommonMark parser with the GFM strikethrough
// and table extensions. It is stateless and safe for concurrent use.
var markdownParser = sync.OnceValue(func() parser.Parser {
	return goldmark.New(goldmark.WithExtensions(extension.Strikethrough, extension.Table)).Parser()
})

// Render converts Markdown as a language model writes it into the HTML
// subset Telegram accepts with parse_mode "HTML"
// (core.telegram.org/bots/api#html-style).
//
// Bold, italic, strikethrough, inline code and links map to <b>, <i>, <s>,
// <code> and <a href>; only http, https, tg and mailto links become links,
// others stay text. Fenced code becomes <pre><code class="language-x">, a
// block quote <blockquote>, a heading a bold line, list items bullet or
// numbered lines (nested lists indented), a table a <pre> block with aligned
// columns, an image a link to it. Raw HTML in the input is shown as text.
//
// Every text is escaped and every tag closed, so the result is always valid
// for Telegram, also for a partial answer in the middle of a stream: an
// unclosed code fence runs to the end of the text and is closed, and a
// half-written "**bold" shows as written.
func Render(markdown string) string {
	return render(markdown, false)
}

// PlainText renders Markdown as text without any markup, for the case where
// Telegram rejects the HTML anyway: the same layout as Render, with links
// written as "text (url)".
func PlainText(markdown string) string {
	return render(markdown, true)
}

func render(markdown string, plain bool) string {
	src := []byte(sanitize(markdown))
	doc := markdownParser().Parse(text.NewReader(src))
	w := &writer{src: src, plain: plain}
	w.blockChildren(doc, false)
	return strings.TrimRight(w.buf.String(), " \t\n")
}

// sanitize makes s valid UTF-8 without NUL bytes, which Telegram refuses.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// writer accumulates the output of one rendering.
type writer struct {
	buf    bytes.Buffer
	src    []byte
	plain  bool   // write text without tags or escaping
	indent string // written after every line break, inside list items
	quote  int    // depth of open <blockquote>
	// open counts the inline tags currently open, by name, so that a tag is
	// never nested in itself (Telegram has no use for <b><b>).
	open map[string]int
}

// nl starts a new line at the current indentation.
func (w *writer) nl() {
	w.buf.WriteByte('\n')
	w.buf.WriteString(w.indent)
}

// blankLine ends a block with an empty line.
func (w *writer) blankLine() {
	w.buf.WriteString("\n\n")
	w.buf.WriteString(w.indent)
}

// text writes s, escaped for HTML unless the writer is plain.
func (w *writer) text(s string) {
	if w.plain {
		w.buf.WriteString(s)
		return
	}
	escapeTo(&w.buf, s, false)
}

// tag writes an opening or closing tag (with attributes already escaped),
// unless the writer is plain.
func (w *writer) tag(s string) {
	if !w.plain {
		w.buf.WriteString(s)
	}
}

// enter opens an inline tag unless the same tag is already open; it returns
// whether it did, for leave.
func (w *writer) enter(name, attrs string) bool {
	if w.plain || w.open[name] > 0 {
		return false
	}
	if w.open == nil {
		w.open = map[string]int{}
	}
	w.open[name]++
	w.buf.WriteString("<" + name + attrs + ">")
	return true
}

// leave closes a tag that enter opened.
func (w *writer) leave(name string, opened bool) {
	if opened {
		w.open[name]--
		w.buf.WriteString("</" + name + ">")
	}
}

// nodeText is the text of a node's inline children as plain text.
func (w *writer) nodeText(n ast.Node) string {
	sub := &writer{src: w.src, plain: true}
	sub.inlineChildren(n)
	return sub.buf.String()
}

// runeLen is the number of runes in s.
func runeLen(s string) int { return utf8.RuneCountInString(s) }
