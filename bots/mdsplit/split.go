// Package mdsplit cuts Markdown into parts that each fit a platform's
// message length limit, at the most natural boundary available, keeping
// fenced code blocks intact across the cut.
package mdsplit

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// Boundary preferences, best first. A cut of rank r is also a cut of every
// rank after it.
const (
	rankParagraph = iota // before a line that follows a blank line, a heading, a code block
	rankLine             // at the start of a line
	rankSentence         // after ". ", "! ", "? " or a CJK full stop
	rankWord             // after a run of spaces
	numRanks
)

// initialStep is the first probe length, in bytes, when searching for the
// longest part that fits.
const initialStep = 1024

// Split cuts text into parts that each satisfy fits, in order.
//
// It prefers cutting between paragraphs, then between lines, then after a
// sentence, then between words, and only then anywhere on a rune boundary
// (so a UTF-8 sequence or a UTF-16 surrogate pair is never split). A cut
// boundary is taken only if it keeps at least half of the longest part that
// fits. A fenced code block that is cut is closed at the end of one part
// (with its closing line, "\n```") and reopened with its opening line ("```go\n") at the start of
// the next, and fits sees each part exactly as it is returned.
//
// Each part has its trailing whitespace trimmed and the blank lines at its
// start dropped; apart from that and the added fence lines the parts
// concatenate back to text. A text that is empty or only whitespace yields
// no parts.
//
// fits must be (close to) monotonic: if a part fits, a prefix of it should
// fit too; Split finds cuts by exponential and binary search, calling fits
// O(log n) times per part. If not even one rune fits, that part holds one
// rune (or one fence line) anyway, so Split always terminates.
func Split(text string, fits func(part string) bool) []string {
	sp := &splitter{text: text, fits: fits}
	s := sp.skip(0)
	if s >= len(text) {
		return nil
	}
	if p := sp.part(s, len(text)); fits(p) {
		return []string{p}
	}
	sp.fences = scanFences(text)
	sp.newlines = newlines(text)
	sp.scanBoundaries()
	var parts []string
	for s < len(text) {
		if p := sp.part(s, len(text)); fits(p) {
			parts = append(parts, p)
			break
		}
		e := sp.cut(s)
		parts = append(parts, sp.part(s, e))
		s = sp.skip(e)
	}
	return parts
}

type splitter struct {
	text     string
	fits     func(string) bool
	fences   []fence
	newlines []int           // offsets of the text's '\n', in order
	cands    [numRanks][]int // sorted cut positions of rank <= index
}

// newlines lists the offsets of the '\n' in text.
func newlines(text string) []int {
	var nl []int
	for i := 0; i < len(text); {
		j := strings.IndexByte(text[i:], '\n')
		if j < 0 {
			break
		}
		nl = append(nl, i+j)
		i += j + 1
	}
	return nl
}

// lineStart is the offset where the line holding offset p starts.
func (sp *splitter) lineStart(p int) int {
	i := sort.SearchInts(sp.newlines, p) // the first '\n' at or after p
	if i == 0 {
		return 0
	}
	return sp.newlines[i-1] + 1
}

// part is the text between byte offsets s and e as it will be sent: with
// trailing whitespace trimmed and with the fence lines added when s or e
// lies inside a code block.
func (sp *splitter) part(s, e int) string {
	body := strings.TrimRight(sp.text[s:e], " \t\r\n")
	open := sp.fenceAt(s)
	var closing *fence
	if e < len(sp.text) {
		closing = sp.fenceAt(e)
	}
	if open == nil && closing == nil {
		return body // most parts: no copy
	}
	var b strings.Builder
	if f := open; f != nil {
		b.Grow(len(f.open) + 1 + len(body) + 1 + len(f.closer))
		b.WriteString(f.open)
		b.WriteByte('\n')
	}
	b.WriteString(body)
	if f := closing; f != nil {
		b.WriteByte('\n')
		b.WriteString(f.closer)
	}
	return b.String()
}

// fenceAt returns the code block whose content contains offset p, if any.
func (sp *splitter) fenceAt(p int) *fence {
	i := sort.Search(len(sp.fences), func(i int) bool { return sp.fences[i].openStart >= p }) - 1
	if i < 0 {
		return nil
	}
	f := &sp.fences[i]
	if f.openEnd <= p && p <= f.closeStart && p > f.openStart {
		return f
	}
	return nil
}

// skip moves p past blank lines, and past the closing line of a code block
// that the previous part already closed.
func (sp *splitter) skip(p int) int {
	for p < len(sp.text) {
		end, next := lineBounds(sp.text, p)
		if strings.TrimSpace(sp.text[p:end]) == "" {
			p = next
			continue
		}
		if f := sp.fenceAt(p); f != nil && f.closed && p == f.closeStart {
			p = f.closeEnd
			continue
		}
		break
	}
	return p
}

// cut returns the end of the part starting at s, given that the rest of the
// text does not fit.
func (sp *splitter) cut(s int) int {
	h := sp.longest(s)
	if h < 0 {
		return sp.smallest(s)
	}
	half := s + (h-s+1)/2
	for r := range numRanks {
		if c := sp.largest(sp.cands[r], half, h, s); c > 0 {
			return c
		}
	}
	return h
}

// largest returns the last candidate in [lo, hi] whose part from s fits, or
// -1.
func (sp *splitter) largest(cs []int, lo, hi, s int) int {
	a := sort.SearchInts(cs, max(lo, s+1))
	b := sort.SearchInts(cs, hi+1)
	if a >= b {
		return -1
	}
	ok := func(c int) bool { return !sp.breaksFence(s, c) && sp.fits(sp.part(s, c)) }
	if ok(cs[b-1]) {
		return cs[b-1]
	}
	good, bad := a-1, b-1
	for bad-good > 1 {
		mid := int(uint(good+bad) >> 1)
		if ok(cs[mid]) {
			good = mid
		} else {
			bad = mid
		}
	}
	if good < a {
		return -1
	}
	return cs[good]
}

// longest returns the furthest rune boundary e > s whose part fits, or -1.
func (sp *splitter) longest(s int) int {
	ok := func(p int) bool {
		q := sp.snap(p, s)
		return q > s && sp.fits(sp.part(s, q))
	}
	good, bad := s, len(sp.text)
	for step := initialStep; ; step *= 2 {
		p := good + step
		if p >= len(sp.text) {
			break
		}
		if !ok(p) {
			bad = p
			break
		}
		good = p
	}
	for bad-good > 1 {
		mid := int(uint(good+bad) >> 1)
		if ok(mid) {
			good = mid
		} else {
			bad = mid
		}
	}
	if good == s {
		return -1
	}
	return sp.snap(good, s)
}

// snap moves p back to the nearest position where a hard cut is allowed: a
// rune boundary outside any fence line. It returns s or less when there is
// none after s.
func (sp *splitter) snap(p, s int) int {
	for p > s && !utf8.RuneStart(sp.text[p]) {
		p--
	}
	if f := sp.fenceOfLine(p); f != nil {
		switch {
		case p > f.openStart && p <= f.openEnd:
			return f.openStart
		case f.closed && p > f.closeStart && p < f.closeEnd:
			return f.closeStart
		}
	}
	if sp.breaksFence(s, p) {
		p = max(sp.lineStart(p), s)
	}
	return p
}

// breaksFence reports whether cutting the line at p, in a part starting at
// s, would make either half a fence line that the whole line is not: an
// opening fence in prose, a closing fence inside a code block.
func (sp *splitter) breaksFence(s, p int) bool {
	ls := max(sp.lineStart(p), s)
	if p == ls || p >= len(sp.text) {
		return false
	}
	le, _ := lineBounds(sp.text, p)
	head := strings.TrimRight(sp.text[ls:p], " \t")
	tail := strings.TrimSuffix(sp.text[p:le], "\r")
	if f := sp.fenceAt(p); f != nil {
		return closingFence(head, f.marker) || closingFence(tail, f.marker)
	}
	_, h := openingFence(head)
	_, t := openingFence(tail)
	return h || t
}

// fenceOfLine returns the code block that p falls in, fence lines included.
func (sp *splitter) fenceOfLine(p int) *fence {
	i := sort.Search(len(sp.fences), func(i int) bool { return sp.fences[i].openStart > p }) - 1
	if i < 0 || p >= sp.fences[i].closeEnd {
		return nil
	}
	return &sp.fences[i]
}

// smallest returns the first allowed cut after s, used when nothing fits.
func (sp *splitter) smallest(s int) int {
	if f := sp.fenceOfLine(s); f != nil {
		if s == f.openStart {
			return f.openEnd
		}
		if f.closed && s == f.closeStart {
			return f.closeEnd
		}
	}
	_, size := utf8.DecodeRuneInString(sp.text[s:])
	return s + size
}

// scanBoundaries fills sp.cands with every cut position and its rank.
func (sp *splitter) scanBoundaries() {
	text := sp.text
	add := func(p, rank int) {
		for r := rank; r < numRanks; r++ {
			sp.cands[r] = append(sp.cands[r], p)
		}
	}
	fi := 0
	prevBlank := false
	for pos := 0; pos < len(text); {
		end, next := lineBounds(text, pos)
		line := text[pos:end]
		for fi < len(sp.fences) && sp.fences[fi].closeEnd <= pos && sp.fences[fi].closeEnd < len(text) {
			fi++
		}
		var f *fence
		if fi < len(sp.fences) && sp.fences[fi].openStart <= pos {
			f = &sp.fences[fi]
		}
		delim := f != nil && (pos == f.openStart || (f.closed && pos == f.closeStart))
		content := f != nil && !delim
		if pos > 0 && (f == nil || pos != f.openEnd) {
			rank := rankLine
			switch {
			case f != nil && pos == f.openStart:
				rank = rankParagraph
			case pos > 0 && sp.afterFence(pos):
				rank = rankParagraph
			case !content && (prevBlank || strings.HasPrefix(strings.TrimLeft(line, " "), "#")):
				rank = rankParagraph
			}
			add(pos, rank)
		}
		if f == nil {
			sp.scanLine(pos, end, add)
		}
		prevBlank = !content && strings.TrimSpace(line) == ""
		pos = next
	}
}

// afterFence reports whether pos is just past a closed code block.
func (sp *splitter) afterFence(pos int) bool {
	i := sort.Search(len(sp.fences), func(i int) bool { return sp.fences[i].closeEnd >= pos })
	return i < len(sp.fences) && sp.fences[i].closed && sp.fences[i].closeEnd == pos
}

// scanLine adds the sentence and word boundaries inside one prose line.
func (sp *splitter) scanLine(pos, end int, add func(int, int)) {
	text := sp.text
	i := pos
	for i < end && (text[i] == ' ' || text[i] == '\t') {
		i++ // leading indentation is no boundary
	}
	for i < end {
		c := text[i]
		if c == ' ' || c == '\t' {
			j := i
			for j < end && (text[j] == ' ' || text[j] == '\t') {
				j++
			}
			if j < end && j > pos && !sp.breaksFence(0, j) {
				rank := rankWord
				if p := text[i-1]; p == '.' || p == '!' || p == '?' {
					rank = rankSentence
				}
				add(j, rank)
			}
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:end])
		i += size
		if (r == '。' || r == '！' || r == '？') && i < end && text[i] != ' ' && text[i] != '\t' && !sp.breaksFence(0, i) {
			add(i, rankSentence)
		}
	}
}
