package telegram

import (
	"strconv"
	"strings"

	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
)

// thematicBreak is how a Markdown "---" line is shown.
const thematicBreak = "———"

// blockChildren writes the block children of n, separated by a line break
// when tight and by an empty line otherwise. A child that writes nothing
// gets no separator.
func (w *writer) blockChildren(n ast.Node, tight bool) {
	first := true
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		mark := w.buf.Len()
		if !first {
			if tight {
				w.nl()
			} else {
				w.blankLine()
			}
		}
		body := w.buf.Len()
		w.block(c, tight)
		if w.buf.Len() == body {
			w.buf.Truncate(mark)
			continue
		}
		first = false
	}
}

// block writes one block node.
func (w *writer) block(n ast.Node, tight bool) {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		w.inlineChildren(n)
	case *ast.Heading:
		opened := w.enter("b", "")
		w.inlineChildren(n)
		w.leave("b", opened)
	case *ast.ThematicBreak:
		w.text(thematicBreak)
	case *ast.FencedCodeBlock:
		w.code(n, string(n.Language(w.src)))
	case *ast.CodeBlock:
		w.code(n, "")
	case *ast.Blockquote:
		w.blockquote(n)
	case *ast.List:
		w.list(n)
	case *ast.HTMLBlock:
		w.htmlBlock(n)
	case *east.Table:
		w.table(n)
	default:
		w.blockChildren(n, tight)
	}
}

// code writes a code block as <pre>, with its language when known.
func (w *writer) code(n ast.Node, lang string) {
	var sb strings.Builder
	lines := n.Lines()
	for i := range lines.Len() {
		seg := lines.At(i)
		sb.Write(seg.Value(w.src))
	}
	body := strings.TrimRight(sb.String(), "\n")
	if body == "" {
		return
	}
	lang = strings.TrimSpace(lang)
	switch {
	case w.plain:
	case lang != "":
		w.buf.WriteString(`<pre><code class="language-`)
		escapeTo(&w.buf, lang, true)
		w.buf.WriteString(`">`)
	default:
		w.buf.WriteString("<pre>")
	}
	w.text(body)
	switch {
	case w.plain:
	case lang != "":
		w.buf.WriteString("</code></pre>")
	default:
		w.buf.WriteString("</pre>")
	}
}

// blockquote writes a quote. Telegram cannot nest quotes, so an inner quote
// is written as its content.
func (w *writer) blockquote(n *ast.Blockquote) {
	if w.plain || w.quote > 0 {
		w.blockChildren(n, false)
		return
	}
	w.quote++
	mark := w.buf.Len()
	w.buf.WriteString("<blockquote>")
	body := w.buf.Len()
	w.blockChildren(n, false)
	if w.buf.Len() == body {
		w.buf.Truncate(mark)
	} else {
		w.buf.WriteString("</blockquote>")
	}
	w.quote--
}

// list writes each item on its own line with a bullet or number; the lines
// of an item after the first are indented past the marker.
func (w *writer) list(n *ast.List) {
	num := n.Start
	first := true
	for item := n.FirstChild(); item != nil; item = item.NextSibling() {
		if !first {
			if n.IsTight {
				w.nl()
			} else {
				w.blankLine()
			}
		}
		first = false
		marker := "• "
		if n.IsOrdered() {
			marker = strconv.Itoa(num) + string(n.Marker) + " "
			num++
		}
		w.text(marker)
		saved := w.indent
		w.indent += strings.Repeat(" ", runeLen(marker))
		w.blockChildren(item, n.IsTight)
		w.indent = saved
	}
}

// htmlBlock writes raw HTML as the text it is.
func (w *writer) htmlBlock(n *ast.HTMLBlock) {
	var sb strings.Builder
	lines := n.Lines()
	for i := range lines.Len() {
		seg := lines.At(i)
		sb.Write(seg.Value(w.src))
	}
	if n.HasClosure() {
		sb.Write(n.ClosureLine.Value(w.src))
	}
	for i, line := range strings.Split(strings.TrimRight(sb.String(), "\n"), "\n") {
		if i > 0 {
			w.nl()
		}
		w.text(line)
	}
}
