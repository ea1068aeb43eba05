package telegram

import (
	"strings"

	east "github.com/yuin/goldmark/extension/ast"
)

// table writes a GFM table as a <pre> block of plain-text columns, padded to
// line up in a monospace font, with a rule under the header.
func (w *writer) table(t *east.Table) {
	var rows [][]string
	header := -1
	for r := t.FirstChild(); r != nil; r = r.NextSibling() {
		if _, ok := r.(*east.TableHeader); ok {
			header = len(rows)
		}
		var cells []string
		for c := r.FirstChild(); c != nil; c = c.NextSibling() {
			cells = append(cells, strings.TrimSpace(w.nodeText(c)))
		}
		rows = append(rows, cells)
	}
	cols := len(t.Alignments)
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	if cols == 0 {
		return
	}
	widths := make([]int, cols)
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], runeLen(c))
		}
	}
	var sb strings.Builder
	for ri, r := range rows {
		if ri > 0 {
			sb.WriteByte('\n')
		}
		var line strings.Builder
		for i := range cols {
			if i > 0 {
				line.WriteString(" | ")
			}
			cell := ""
			if i < len(r) {
				cell = r[i]
			}
			pad := strings.Repeat(" ", widths[i]-runeLen(cell))
			if i < len(t.Alignments) && t.Alignments[i] == east.AlignRight {
				line.WriteString(pad + cell)
			} else if i < len(t.Alignments) && t.Alignments[i] == east.AlignCenter {
				left := len(pad) / 2
				line.WriteString(pad[:left] + cell + pad[left:])
			} else {
				line.WriteString(cell + pad)
			}
		}
		sb.WriteString(strings.TrimRight(line.String(), " "))
		if ri == header {
			sb.WriteByte('\n')
			for i := range cols {
				if i > 0 {
					sb.WriteString("-+-")
				}
				sb.WriteString(strings.Repeat("-", max(widths[i], 1)))
			}
		}
	}
	w.tag("<pre>")
	w.text(sb.String())
	w.tag("</pre>")
}
