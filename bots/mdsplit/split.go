// Package mdsplit cuts Markdown into parts that each fit a platform's
// message length limit, at the most natural boundary available, keeping
// fenced code blocks intact across the cut. A Stream does the same for a
// text that grows, as a streamed answer does, cutting only its new end.
package mdsplit

import (
	"slices"
	"sort"
	"strings"
	"unicode"
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

// initialStep is the first guess, in bytes, of the longest first part that
// fits; the guess for a later part is the length of the part before it, but
// at least minStep. Parts are usually about as long as the one before, so
// that the search reads little past the cut.
const (
	initialStep = 1024
	minStep     = 64
)

// lookahead is how far past a position the splitter reads to judge it: a
// fence line is at most maxFenceLine bytes, an indentation is judged by its
// first maxFenceLine bytes, and a block's closing line counts as following
// a cut only within maxFenceLine bytes of it. A cut whose search ended
// lookahead bytes before the end of the text cannot change when more text
// is appended.
const lookahead = 2*maxFenceLine + 8

// Split cuts text into parts that each satisfy fits, in order.
//
// It prefers cutting between paragraphs, then between lines, then after a
// sentence, then between words, and only then anywhere on a rune boundary
// (so a UTF-8 sequence or a UTF-16 surrogate pair is never split). A cut
// boundary is taken only if it keeps at least half of the longest part that
// fits. A fenced code block that is cut is closed at the end of one part
// (with its own closing line when that follows the cut, else its marker:
// "\n```") and reopened with its opening line ("```go\n") at the start of
// the next, and fits sees each part exactly as it is returned.
//
// Each part has its trailing whitespace trimmed and the blank lines at its
// start dropped; apart from that and the added fence lines the parts
// concatenate back to text. A text that is empty or only whitespace yields
// no parts, and spaces, tabs and line ends at the end of text play no part.
//
// fits must be deterministic and should be (close to) monotonic: if a part
// fits, a prefix of it should fit too. Split finds each cut by probing from
// a guess (the length of the part before) and then by binary search,
// calling fits O(log n) times per part with parts at most about twice as
// long as the longest that fits, so that its cost grows linearly with the
// length of text. If not even one rune fits, that part holds one rune (or
// one fence line) anyway, so Split always terminates.
func Split(text string, fits func(part string) bool) []string {
	return (&Stream{Fits: fits}).Split(text)
}

// Stream splits a text that grows by appending, as a streamed answer does,
// into the same parts as Split, cutting only the text's new end on each
// call. A part is final once the search that cut it ended well before the
// end of the text (lookahead bytes): no appended text can change it or the
// parts before it, and later calls return it again without reading the
// text before its end.
//
// The zero Stream is not usable; set Fits. A Stream is not safe for
// concurrent use.
type Stream struct {
	// Fits reports whether a part fits, as for Split.
	Fits func(part string) bool
	// CloseFence closes a code block still open at the end of the text: the
	// last part ends with "\n" and its marker, and Fits sees it so. A
	// partial answer is shown this way.
	CloseFence bool

	text  string   // the text of the previous call
	end   int      // the length of text without its trailing white space
	last  []string // the parts of the previous call
	final []string // the parts no appended text can change
	next  resume   // where the part after the final ones starts
	// oneTail is set when one part followed the final ones: the rest of
	// the text fitted.
	oneTail bool
}

// resume is where splitting continues after the final parts.
type resume struct {
	cut   int    // the end of the last final part
	line  int    // the start of the line holding cut
	scan  int    // where scanning for fences and boundaries starts again
	fence *fence // the code block open at the start of that line, if any
	step  int    // the first probe length for the next part
}

// trailing is the white space that plays no part at the end of a text.
const trailing = " \t\r\n"

// Split returns the parts of text, as the package function Split does
// (with the closing fence if CloseFence is set). When text extends the
// previous call's text, only what follows the last final part is cut
// again, and nothing at all when only white space was appended; otherwise
// Split starts over. Its cost is then proportional to the text after the
// final parts and to the number of parts, plus comparing the previous text
// with the start of text, which takes no time when both share their memory
// (as successive strings of one strings.Builder do). The returned slice is
// the caller's.
func (st *Stream) Split(text string) []string {
	if len(text) < len(st.text) || text[:len(st.text)] != st.text {
		*st = Stream{Fits: st.Fits, CloseFence: st.CloseFence}
	}
	prev := st.end
	if t := strings.TrimRight(text[len(st.text):], trailing); t != "" {
		st.end = len(st.text) + len(t)
	}
	st.text = text
	if st.end == prev && st.last != nil {
		return slices.Clone(st.last)
	}
	text = text[:st.end]
	parts := slices.Clip(st.final)
	sp := &splitter{text: text, fits: st.Fits, closeFence: st.CloseFence, base: st.next.line, from: st.next.scan, step: st.next.step}
	if sp.step == 0 {
		sp.step = initialStep
	}
	// When the previous call left one part after the final ones, the text
	// grew a little since: the rest most likely fits still, and one probe
	// of all of it tells.
	sp.whole = st.oneTail
	sp.fences = scanFences(text, sp.from, st.next.fence)
	sp.newlines = newlines(text, sp.from)
	final := true
	for s := sp.skip(st.next.cut); s < len(text); {
		e, horizon := sp.cut(s)
		p := sp.part(s, e)
		sp.step = max(e-s, minStep)
		parts = append(parts, p)
		// A cut that read nothing near the end of the text is final, and
		// so are the parts before it.
		if final = final && horizon+lookahead <= len(text); final {
			st.final = append(st.final, p)
			st.next = sp.resumeAt(e)
		}
		s = sp.skip(e)
	}
	st.last = slices.Clone(parts)
	st.oneTail = len(parts) == len(st.final)+1
	return parts
}

type splitter struct {
	text       string
	fits       func(string) bool
	closeFence bool
	base       int // the start of the line where scanning began
	from       int // where scanning began: base, or a point of a long line
	step       int // the first probe length of the next search
	fences     []fence
	newlines   []int           // offsets of the text's '\n' after from, in order
	cands      [numRanks][]int // sorted cut positions of rank <= index
	scanned    bool            // cands are filled (once a cut needs them)
	whole      bool            // probe all of the rest first (see Stream.oneTail)
}

// newlines lists the offsets of the '\n' in text from offset from on.
func newlines(text string, from int) []int {
	var nl []int
	for i := from; i < len(text); {
		j := strings.IndexByte(text[i:], '\n')
		if j < 0 {
			break
		}
		nl = append(nl, i+j)
		i += j + 1
	}
	return nl
}

// lineStart is the offset where the line holding offset p (at or after
// base) starts.
func (sp *splitter) lineStart(p int) int {
	i := sort.SearchInts(sp.newlines, p) // the first '\n' at or after p
	if i == 0 {
		return sp.base
	}
	return sp.newlines[i-1] + 1
}

// resumeAt is where a later call continues after a part ending at e.
// Scanning starts again at the start of e's line, or, in a line longer
// than 2*maxFenceLine bytes (no fence line, then), just after the last
// character before e that is not white space, where the scan of the line
// has no state to recover: a long line of a runaway answer is not scanned
// again from its start on every call.
func (sp *splitter) resumeAt(e int) resume {
	r := resume{cut: e, line: sp.lineStart(e), step: sp.step}
	r.scan = r.line
	if e-r.line > 2*maxFenceLine {
		q := e
		for q > e-maxFenceLine {
			c, size := utf8.DecodeLastRuneInString(sp.text[:q])
			if !unicode.IsSpace(c) {
				r.scan = q
				break
			}
			q -= size
		}
	}
	if f := sp.fenceOfLine(r.line); f != nil && r.line != f.openStart {
		c := *f
		r.fence = &c
	}
	return r
}

// part is the text between byte offsets s and e as it will be sent: with
// trailing whitespace trimmed and with the fence lines added when s or e
// lies inside a code block: the opening line at the start, and at the end
// the block's own closing line when it follows e (see closesAt), else its
// marker. At the end of the text, a block still open is closed only with
// closeFence.
func (sp *splitter) part(s, e int) string {
	body := strings.TrimRight(sp.text[s:e], " \t\r\n")
	open := sp.fenceAt(s)
	var closing *fence
	if e < len(sp.text) || sp.closeFence {
		closing = sp.fenceAt(e)
	}
	if open == nil && closing == nil {
		return body // most parts: no copy
	}
	var b strings.Builder
	if f := open; f != nil {
		b.Grow(len(f.open) + 1 + len(body) + 1 + len(f.marker))
		b.WriteString(f.open)
		b.WriteByte('\n')
	}
	b.WriteString(body)
	if f := closing; f != nil {
		b.WriteByte('\n')
		if sp.closesAt(f, e) {
			b.WriteString(f.closer)
		} else {
			b.WriteString(f.marker)
		}
	}
	return b.String()
}

// closesAt reports whether the closing line of f is the first line with
// text after e, within maxFenceLine bytes of it: a part ending at e then
// ends with that line, and the next part does not repeat it.
func (sp *splitter) closesAt(f *fence, e int) bool {
	return f.closed && f.closeStart-e <= maxFenceLine && strings.TrimSpace(sp.text[e:f.closeStart]) == ""
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

// skip moves a cut p past blank lines, and past the closing line of a code
// block that the part ending at p already closed (with that line or its
// marker). It reads only the blank space it skips and the line it stops at.
func (sp *splitter) skip(p int) int {
	text := sp.text
	cut := p
	for p < len(text) {
		i := p
		for i < len(text) && text[i] != '\n' {
			r, size := utf8.DecodeRuneInString(text[i:])
			if !unicode.IsSpace(r) {
				break
			}
			i += size
		}
		if i == len(text) {
			return i
		}
		if text[i] == '\n' {
			p = i + 1
			continue
		}
		if f := sp.fenceAt(p); f != nil && f.closed && p == f.closeStart && (f.closer == f.marker || sp.closesAt(f, cut)) {
			p = f.closeEnd
			continue
		}
		break
	}
	return p
}

// cut returns the end of the part starting at s (len(text) when the rest
// fits), and the horizon: the text from there on, past lookahead, played no
// part in the choice.
func (sp *splitter) cut(s int) (e, horizon int) {
	h, horizon := sp.longest(s)
	if h == len(sp.text) {
		return h, h // the rest fits
	}
	if h < 0 {
		e := sp.smallest(s)
		return e, max(e, horizon)
	}
	if !sp.scanned {
		sp.scanBoundaries()
		sp.scanned = true
	}
	half := s + (h-s+1)/2
	for r := range numRanks {
		if c := sp.largest(sp.cands[r], half, h, s); c > 0 {
			return c, horizon
		}
	}
	return h, horizon
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

// longest returns the furthest rune boundary h > s whose part fits
// (len(text) when the whole rest does), or -1, and the horizon: the
// furthest position probed; nothing past it (and its lookahead) decided h.
func (sp *splitter) longest(s int) (h, horizon int) {
	n := len(sp.text)
	ok := func(p int) bool {
		if p == n {
			return sp.fits(sp.part(s, n))
		}
		q := sp.snap(p, s)
		return q > s && sp.fits(sp.part(s, q))
	}
	if sp.whole {
		// A failed probe plays no part in the search below.
		sp.whole = false
		if ok(n) {
			return n, n
		}
	}
	// Probe at the guess, then ever further past it, until a part does
	// not fit; then search between the last that did and that one.
	good, bad := s, s+sp.step
	for step := max(sp.step/4, minStep); ; step *= 2 {
		bad = min(bad, n)
		if !ok(bad) {
			break
		}
		if bad == n {
			return n, n
		}
		good, bad = bad, bad+step
	}
	horizon = bad
	for bad-good > 1 {
		mid := int(uint(good+bad) >> 1)
		if ok(mid) {
			good = mid
		} else {
			bad = mid
		}
	}
	if good == s {
		return -1, horizon
	}
	return sp.snap(good, s), horizon
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
// opening fence in prose, a closing fence inside a code block. It reads at
// most maxFenceLine bytes on either side of p.
func (sp *splitter) breaksFence(s, p int) bool {
	ls := max(sp.lineStart(p), s)
	if p == ls || p >= len(sp.text) || p-ls > maxFenceLine {
		return false
	}
	head := strings.TrimRight(sp.text[ls:p], " \t")
	tail, short := shortLine(sp.text, p)
	if f := sp.fenceAt(p); f != nil {
		return closingFence(head, f.marker) || short && closingFence(tail, f.marker)
	}
	_, h := openingFence(head)
	_, t := openingFence(tail)
	return h || short && t
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

// scanBoundaries fills sp.cands with every cut position after from and its
// rank. When from is inside a line (see resumeAt), that line is long, not
// blank, and past its indentation.
func (sp *splitter) scanBoundaries() {
	text := sp.text
	add := func(p, rank int) {
		for r := rank; r < numRanks; r++ {
			sp.cands[r] = append(sp.cands[r], p)
		}
	}
	fi := 0
	prevBlank := false
	pos := sp.from
	if pos > sp.base {
		end, next := lineBounds(text, pos)
		if len(sp.fences) == 0 || sp.fences[0].openStart > pos {
			sp.scanLine(sp.base, pos, end, add)
		}
		pos = next
	}
	for pos < len(text) {
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
		if pos > sp.base && (f == nil || pos != f.openEnd) {
			rank := rankLine
			switch {
			case f != nil && pos == f.openStart:
				rank = rankParagraph
			case sp.afterFence(pos):
				rank = rankParagraph
			case !content && (prevBlank || heading(line)):
				rank = rankParagraph
			}
			add(pos, rank)
		}
		if f == nil {
			sp.scanLine(pos, pos, end, add)
		}
		prevBlank = !content && strings.TrimSpace(line) == ""
		pos = next
	}
}

// heading reports whether line starts a heading: '#' after spaces, of which
// only the first maxFenceLine bytes are read.
func heading(line string) bool {
	line = line[:min(len(line), maxFenceLine)]
	return strings.HasPrefix(strings.TrimLeft(line, " "), "#")
}

// afterFence reports whether pos is just past a closed code block.
func (sp *splitter) afterFence(pos int) bool {
	i := sort.Search(len(sp.fences), func(i int) bool { return sp.fences[i].closeEnd >= pos })
	return i < len(sp.fences) && sp.fences[i].closed && sp.fences[i].closeEnd == pos
}

// scanLine adds the sentence and word boundaries inside one prose line
// that starts at ls, from i on: ls, or a position past the indentation
// that follows a character other than white space.
func (sp *splitter) scanLine(ls, i, end int, add func(int, int)) {
	text := sp.text
	if i == ls {
		for i < end && (text[i] == ' ' || text[i] == '\t') {
			i++ // leading indentation is no boundary
		}
	}
	for i < end {
		c := text[i]
		if c == ' ' || c == '\t' {
			j := i
			for j < end && (text[j] == ' ' || text[j] == '\t') {
				j++
			}
			if j < end && j > ls && !sp.breaksFence(0, j) {
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
