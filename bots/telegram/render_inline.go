package telegram

import (
	"bytes"
	"strings"

	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/util"
)

// inlineChildren writes the inline children of n.
func (w *writer) inlineChildren(n ast.Node) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		w.inline(c)
	}
}

// inline writes one inline node.
func (w *writer) inline(n ast.Node) {
	switch n := n.(type) {
	case *ast.Text:
		v := n.Value(w.src)
		if !n.IsRaw() {
			v = resolveText(v)
		}
		w.text(string(v))
		if n.SoftLineBreak() || n.HardLineBreak() {
			w.nl()
		}
	case *ast.String:
		v := n.Value
		if !n.IsRaw() && !n.IsCode() {
			v = resolveText(v)
		}
		w.text(string(v))
	case *ast.CodeSpan:
		var sb strings.Builder
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			switch t := c.(type) {
			case *ast.Text:
				sb.Write(bytes.ReplaceAll(t.Value(w.src), []byte("\n"), []byte(" ")))
			case *ast.String:
				sb.Write(t.Value)
			}
		}
		opened := w.enter("code", "")
		w.text(sb.String())
		w.leave("code", opened)
	case *ast.Emphasis:
		name := "i"
		if n.Level >= 2 {
			name = "b"
		}
		opened := w.enter(name, "")
		w.inlineChildren(n)
		w.leave(name, opened)
	case *east.Strikethrough:
		opened := w.enter("s", "")
		w.inlineChildren(n)
		w.leave("s", opened)
	case *ast.Link:
		w.link(string(util.URLEscape(n.Destination, true)), func() { w.inlineChildren(n) }, w.nodeText(n))
	case *ast.Image:
		alt := w.nodeText(n)
		if alt == "" {
			alt = "image"
		}
		w.link(string(util.URLEscape(n.Destination, true)), func() { w.text(alt) }, alt)
	case *ast.AutoLink:
		url := string(n.URL(w.src))
		if n.AutoLinkType == ast.AutoLinkEmail && !strings.HasPrefix(strings.ToLower(url), "mailto:") {
			url = "mailto:" + url
		}
		label := string(n.Label(w.src))
		w.link(url, func() { w.text(label) }, label)
	case *ast.RawHTML:
		segs := n.Segments
		for i := range segs.Len() {
			seg := segs.At(i)
			w.text(string(seg.Value(w.src)))
		}
	default:
		w.inlineChildren(n)
	}
}

// link writes a link to url whose visible content content writes (label is
// that content as plain text). A URL with a scheme Telegram should not link
// (or any scheme but http, https, tg and mailto) leaves the content as text.
// Plain output shows the URL after the label.
func (w *writer) link(url string, content func(), label string) {
	if !allowedURL(url) || w.open["a"] > 0 {
		content()
		return
	}
	if w.plain {
		content()
		if label == "" {
			w.text(url)
		} else if label != url && strings.TrimPrefix(url, "mailto:") != label {
			w.text(" (" + url + ")")
		}
		return
	}
	var attr bytes.Buffer
	attr.WriteString(` href="`)
	escapeTo(&attr, url, true)
	attr.WriteByte('"')
	opened := w.enter("a", attr.String())
	if label == "" {
		w.text(url)
	} else {
		content()
	}
	w.leave("a", opened)
}

// allowedURL reports whether url has a scheme that Render turns into a
// link.
func allowedURL(url string) bool {
	lower := strings.ToLower(url)
	for _, scheme := range []string{"http://", "https://", "tg://", "mailto:"} {
		if strings.HasPrefix(lower, scheme) && len(lower) > len(scheme) {
			return !strings.ContainsAny(url, " \t\r\n")
		}
	}
	return false
}

// resolveText applies Markdown's backslash escapes and character references.
func resolveText(v []byte) []byte {
	v = util.UnescapePunctuations(v)
	v = util.ResolveNumericReferences(v)
	return util.ResolveEntityNames(v)
}
