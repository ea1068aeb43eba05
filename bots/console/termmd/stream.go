package termmd

import (
	"strings"
)

// Bounds on the work of one Stream update.
const (
	// TailRenderMax is the longest unfinished block rendered as Markdown
	// on each update; a longer one is shown as plain text.
	TailRenderMax = 4 << 10
	// tailPlainMax is how much of the end of a longer unfinished block is
	// looked at to show its last lines.
	tailPlainMax = 16 << 10
)

// Stream renders a Markdown text that grows by appending, as a streamed
// answer does. Text is cut into blocks where one ends for good: before a
// line begun at the margin after a blank line, around a heading, and
// around a fenced code block at the margin (an indented line continues
// the block, as a list item's next paragraph does). Each finished block is
// rendered once (Next), the unfinished end is shown as it is now (Tail),
// and Finish renders what is left. Each update reads only the text added
// since the one before, so that its work does not grow with the length of
// the answer.
//
// Blocks are rendered apart, so a reference-style link whose definition
// is in a later block is shown as written.
//
// The zero Stream is not usable; use NewStream. A Stream is not safe for
// concurrent use.
type Stream struct {
	r       *Renderer
	scanned int    // text before this is in complete lines already read
	start   int    // the first byte not rendered yet
	fence   string // the open fenced code block's marker, "" outside one
	margin  bool   // the open fence is at the margin
	blank   bool   // the last line read was blank
	blocks  int    // blocks rendered so far
}

// NewStream returns a Stream rendering with r.
func NewStream(r *Renderer) *Stream { return &Stream{r: r} }

// Next reads text, which must extend the text of the call before (a text
// that is shorter starts the Stream again), and returns the blocks it
// finished, rendered: lines to print below those returned before, a blank
// line separating blocks. It is "" when no block finished.
func (s *Stream) Next(text string) string {
	if len(text) < s.scanned {
		*s = Stream{r: s.r}
	}
	var b strings.Builder
	for {
		nl := strings.IndexByte(text[s.scanned:], '\n')
		if nl < 0 {
			break
		}
		ls, next := s.scanned, s.scanned+nl+1
		s.scanned = next
		if cut, after := s.line(strings.TrimRight(text[ls:next-1], "\r"), ls > s.start); cut {
			if after {
				s.emit(&b, text[s.start:next])
				s.start = next
			} else {
				s.emit(&b, text[s.start:ls])
				s.start = ls
				// The line that starts the new block may end it too.
				if s.fence == "" && heading(text[ls:next-1]) {
					s.emit(&b, text[s.start:next])
					s.start = next
				}
			}
		}
	}
	// A line begun at the margin after a blank line ends the block before
	// it, whatever the rest of the line turns out to be.
	if s.fence == "" && s.blank && s.start < s.scanned && s.scanned < len(text) {
		if c := text[s.scanned]; c != ' ' && c != '\t' && c != '\r' {
			s.emit(&b, text[s.start:s.scanned])
			s.start = s.scanned
		}
	}
	return b.String()
}

// line reads one complete line, given whether a block is open before it,
// and reports whether a block ends before it (after false) or with it
// (after true).
func (s *Stream) line(l string, open bool) (cut, after bool) {
	if s.fence != "" {
		if closingFence(l, s.fence) {
			s.fence = ""
			s.blank = false
			return s.margin, true
		}
		return false, false
	}
	if strings.TrimSpace(l) == "" {
		s.blank = true
		return false, false
	}
	atMargin := l[0] != ' ' && l[0] != '\t'
	marker, isFence := openingFence(l)
	cut = open && atMargin && (s.blank || heading(l) || isFence)
	s.blank = false
	if isFence {
		s.fence, s.margin = marker, atMargin
		return cut, false
	}
	if !cut && atMargin && heading(l) {
		return true, true
	}
	return cut, false
}

// emit renders block into b, unless it is only blank lines. Blocks are
// separated by a blank line, also from those of an earlier call: b's lines
// are printed below theirs.
func (s *Stream) emit(b *strings.Builder, block string) {
	if strings.TrimSpace(block) == "" {
		return
	}
	out := s.r.Render(block)
	if out == "" {
		return
	}
	if b.Len() > 0 {
		b.WriteString("\n\n")
	} else if s.blocks > 0 {
		b.WriteString("\n")
	}
	b.WriteString(out)
	s.blocks++
}

// Tail is the unfinished end of text (as last given to Next) as it looks
// now: rendered as Markdown when it is at most TailRenderMax bytes long,
// else its last lines as plain text; in both cases at most maxLines lines,
// the last ones. It is "" when nothing is unfinished.
func (s *Stream) Tail(text string, maxLines int) string {
	if s.start > len(text) {
		return ""
	}
	tail := text[s.start:]
	if strings.TrimSpace(tail) == "" || maxLines <= 0 {
		return ""
	}
	var out string
	if len(tail) <= TailRenderMax {
		out = s.r.Render(tail)
	} else {
		from := len(tail) - tailPlainMax
		if from > 0 {
			// Start at a line boundary within the window.
			if nl := strings.IndexByte(tail[from:], '\n'); nl >= 0 {
				from += nl + 1
			}
		}
		out = s.r.Plain(lastLines(tail[max(from, 0):], maxLines))
	}
	return lastLines(out, maxLines)
}

// Finish renders what text (the whole answer) holds after the blocks
// already rendered, as Next does; "" when nothing is left.
func (s *Stream) Finish(text string) string {
	out := s.Next(text)
	if s.start < len(text) {
		var b strings.Builder
		if out != "" {
			b.WriteString(out)
		}
		s.emit(&b, text[s.start:])
		out = b.String()
		s.start, s.scanned = len(text), len(text)
	}
	return out
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	i := len(s)
	for ; n > 0 && i > 0; n-- {
		i = strings.LastIndexByte(s[:i], '\n')
		if i < 0 {
			return s
		}
	}
	if n > 0 {
		return s
	}
	return s[i+1:]
}

// heading reports whether l is an ATX heading ("# Title") at the margin.
func heading(l string) bool {
	n := 0
	for n < len(l) && l[n] == '#' {
		n++
	}
	return n >= 1 && n <= 6 && (n == len(l) || l[n] == ' ' || l[n] == '\t')
}

// openingFence reports whether l opens a fenced code block (up to three
// spaces, then at least three backticks or tildes), returning its marker.
func openingFence(l string) (string, bool) {
	t := strings.TrimLeft(l, " ")
	if len(l)-len(t) > 3 || len(t) < 3 || (t[0] != '`' && t[0] != '~') {
		return "", false
	}
	n := 0
	for n < len(t) && t[n] == t[0] {
		n++
	}
	if n < 3 || (t[0] == '`' && strings.Contains(t[n:], "`")) {
		return "", false // a backtick fence's info string has no backtick
	}
	return t[:n], true
}

// closingFence reports whether l closes a block opened with marker: the
// same character, at least as many, nothing else but spaces.
func closingFence(l, marker string) bool {
	t := strings.TrimLeft(l, " ")
	if len(l)-len(t) > 3 {
		return false
	}
	t = strings.TrimRight(t, " \t")
	return len(t) >= len(marker) && strings.Trim(t, marker[:1]) == ""
}
