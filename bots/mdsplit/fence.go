package mdsplit

import "strings"

// maxFenceLine is the longest line, in bytes, that is taken for a fence
// line. A line's status then depends on its first maxFenceLine+1 bytes
// only, so that a long line still being written cannot turn the text before
// it into code or back. Real fence lines are a few bytes long.
const maxFenceLine = 256

// fence is one fenced code block of a Markdown text, located by byte offsets.
type fence struct {
	openStart  int    // start of the opening fence line
	openEnd    int    // just past the opening line's newline (len(text) if none)
	closeStart int    // start of the closing fence line; len(text) when unclosed
	closeEnd   int    // just past the closing line; len(text) when unclosed
	open       string // the opening line without its line ending ("```go")
	marker     string // the fence characters that open it ("```")
	closer     string // the closing line without indentation, else marker
	closed     bool
}

// OpenFence reports whether text ends inside a fenced code block that is
// not closed yet, as a streaming answer does while the model writes code. It
// returns the opening line ("```go") and the marker that closes the block
// ("```"); appending "\n"+closer to text closes it.
//
// Fences are recognised as CommonMark defines them at the top level: up to
// three spaces of indentation, then three or more backticks or tildes (a
// backtick fence's info string holds no backtick); the closing line uses the
// same character, at least as many times, and nothing else. A line longer
// than 256 bytes is never a fence line.
func OpenFence(text string) (opener, closer string, ok bool) {
	fs := scanFences(text, 0, nil)
	if len(fs) == 0 || fs[len(fs)-1].closed {
		return "", "", false
	}
	f := fs[len(fs)-1]
	return f.open, f.marker, true
}

// scanFences returns the fenced code blocks of text from the line starting
// at from on, in order. When open is not nil, that block is open at from
// and comes first, its end found anew. A from inside a line (see resumeAt)
// starts at the next line: a line that long is no fence line.
func scanFences(text string, from int, open *fence) []fence {
	var fs []fence
	var cur *fence
	if open != nil {
		f := *open
		f.closeStart, f.closeEnd, f.closed, f.closer = len(text), len(text), false, f.marker
		fs = append(fs, f)
		cur = &fs[0]
	}
	if from > 0 && text[from-1] != '\n' {
		_, from = lineBounds(text, from)
	}
	for pos := from; pos < len(text); {
		end, next := lineBounds(text, pos)
		if end-pos > maxFenceLine {
			pos = next
			continue
		}
		line := strings.TrimSuffix(text[pos:end], "\r")
		if cur == nil {
			if marker, ok := openingFence(line); ok {
				fs = append(fs, fence{
					openStart:  pos,
					openEnd:    next,
					closeStart: len(text),
					closeEnd:   len(text),
					open:       strings.TrimRight(line, " \t"),
					marker:     marker,
					closer:     marker,
				})
				cur = &fs[len(fs)-1]
			}
		} else if closingFence(line, cur.marker) {
			cur.closeStart, cur.closeEnd, cur.closed = pos, next, true
			cur.closer = strings.TrimSpace(line)
			cur = nil
		}
		pos = next
	}
	return fs
}

// shortLine returns the line of text starting at pos without its line
// ending, reading at most maxFenceLine+1 bytes; ok is false when the line
// is longer than maxFenceLine bytes, and so no fence line.
func shortLine(text string, pos int) (line string, ok bool) {
	end := min(len(text), pos+maxFenceLine+1)
	if i := strings.IndexByte(text[pos:end], '\n'); i >= 0 {
		end = pos + i
	} else if end-pos > maxFenceLine {
		return "", false
	}
	return strings.TrimSuffix(text[pos:end], "\r"), true
}

// lineBounds returns the end of the line starting at pos (the index of its
// '\n', or len(text)) and the start of the next line.
func lineBounds(text string, pos int) (end, next int) {
	i := strings.IndexByte(text[pos:], '\n')
	if i < 0 {
		return len(text), len(text)
	}
	return pos + i, pos + i + 1
}

// openingFence reports whether line opens a fenced code block and returns its
// marker.
func openingFence(line string) (string, bool) {
	rest, ok := stripIndent(line)
	if !ok || len(rest) < 3 || (rest[0] != '`' && rest[0] != '~') {
		return "", false
	}
	n := run(rest, rest[0])
	if n < 3 {
		return "", false
	}
	if rest[0] == '`' && strings.IndexByte(rest[n:], '`') >= 0 {
		return "", false
	}
	return rest[:n], true
}

// closingFence reports whether line closes a block opened with marker.
func closingFence(line, marker string) bool {
	rest, ok := stripIndent(line)
	if !ok || len(rest) == 0 || rest[0] != marker[0] {
		return false
	}
	n := run(rest, rest[0])
	return n >= len(marker) && strings.TrimRight(rest[n:], " \t") == ""
}

// stripIndent removes up to three leading spaces; it fails on four or more.
func stripIndent(line string) (string, bool) {
	i := 0
	for i < len(line) && i < 4 && line[i] == ' ' {
		i++
	}
	if i == 4 {
		return "", false
	}
	return line[i:], true
}

// run counts the leading bytes of s equal to c.
func run(s string, c byte) int {
	n := 0
	for n < len(s) && s[n] == c {
		n++
	}
	return n
}
