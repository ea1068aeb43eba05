package discord

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/bots/mdsplit"
	"github.com/palaver-bot/palaver/sessions"
)

// MessageLimit is the most characters Discord accepts in a message's
// content.
const MessageLimit = 2000

// TextLimitV2 is the most characters Discord accepts across the text
// displays of a Components V2 message.
const TextLimitV2 = 4000

// PartLimitV2 is the limit a Components V2 answer is cut at: TextLimitV2
// less room for its buttons' labels, which some of Discord's guides count
// as text too.
const PartLimitV2 = TextLimitV2 - 20

// collapsedReasoning is how many characters of the newest reasoning the
// collapsed display shows.
const collapsedReasoning = 300

// statusReserve is the room, in characters, that every part keeps free for
// the status line, so that parts are cut at the same places whether or not
// a status is shown and a message already sent never has to be re-cut.
func statusReserve(limit int) int { return min(200, limit/10) }

// RenderParts renders a view as Discord message contents, each at most
// limit characters (Unicode code points, as Discord counts them; limit is
// normally MessageLimit). Part i is the content of the reply's i-th message.
//
// The answer is Discord Markdown already and passes through unchanged,
// except that a code block still open mid-stream is closed for display.
// Long answers are cut by mdsplit at the best boundary available, each part
// keeping statusReserve(limit) characters free, so that the cuts depend only
// on the answer and stay put as the answer grows.
//
// Reasoning, in the collapsed and full modes, opens the first part as
// subtext ("-# " lines): collapsed shows the newest ~300 characters on one
// "-# 💭 " line, full shows every line. It only takes the room the first
// part has left: the oldest reasoning is dropped ("…") when it does not
// fit, and it never pushes the answer into another part. The status, if
// any, closes the last part as a "-# " line (shortened to the reserve).
//
// RenderParts returns no parts when the view has nothing to show. Its cost
// grows linearly with the length of the answer; a reply rendering each
// view of a growing answer uses a renderer, which gives the same parts at a
// cost that does not grow with the answer.
func RenderParts(v sessions.View, limit int) []string {
	var rd renderer
	return texts(rd.parts(v, limit))
}

// texts are the parts' texts.
func texts(parts []part) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p.text()
	}
	return out
}

// part is one message of an answer: the reasoning opening it (first part
// only), its share of the answer, and the status line closing it (last
// part only). A message's content is its text; a Components V2 message
// shows each of the three as a text display of its own.
type part struct {
	reasoning, body, status string
}

// text is the part as one message content: its non-empty pieces, one
// after the other on lines of their own.
func (p part) text() string {
	var b strings.Builder
	for _, s := range [...]string{p.reasoning, p.body, p.status} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
	}
	return b.String()
}

// renderer renders the views of one answer. It keeps the parts of the
// answer that its growth can no longer change, and cuts only the answer's
// new end. Its zero value is ready to use; it is not safe for concurrent
// use.
type renderer struct {
	limit int
	split mdsplit.Stream
}

// parts is RenderParts(v, limit), in pieces.
func (rd *renderer) parts(v sessions.View, limit int) []part {
	reserve := statusReserve(limit)
	if rd.split.Fits == nil || rd.limit != limit {
		room := limit - reserve
		rd.limit = limit
		rd.split = mdsplit.Stream{
			Fits:       func(p string) bool { return utf8.RuneCountInString(p) <= room },
			CloseFence: true, // a code block still open mid-stream
		}
	}
	bodies := rd.split.Split(v.Content)
	parts := make([]part, len(bodies))
	for i, b := range bodies {
		parts[i].body = b
	}

	if v.Reasoning != "" && (v.ReasoningMode == sessions.ReasoningCollapsed || v.ReasoningMode == sessions.ReasoningFull) {
		room := limit - reserve
		if len(parts) > 0 {
			room -= utf8.RuneCountInString(parts[0].body) + 1 // the newline after the reasoning
		}
		reasoning, cut := recentReasoning(v.Reasoning, limit)
		var r string
		if v.ReasoningMode == sessions.ReasoningCollapsed {
			r = collapsedReasoningLine(reasoning, cut, room)
		} else {
			r = fullReasoningLines(reasoning, cut, room)
		}
		switch {
		case r == "":
		case len(parts) == 0:
			parts = []part{{reasoning: r}}
		default:
			parts[0].reasoning = r
		}
	}

	if line := statusLine(v.Status, reserve-1); line != "" {
		if len(parts) == 0 {
			parts = []part{{status: line}}
		} else {
			parts[len(parts)-1].status = line
		}
	}
	return parts
}

// recentReasoning is the newest part of reasoning that a message of limit
// characters can show: its last 4*limit+64 bytes, from the first line
// break in them when there is one. cut reports that older text was left
// out. Reading no more keeps the cost of a runaway reasoning bounded.
func recentReasoning(reasoning string, limit int) (recent string, cut bool) {
	n := 4*limit + 64
	if len(reasoning) <= n {
		return reasoning, false
	}
	recent = reasoning[len(reasoning)-n:]
	if i := strings.IndexByte(recent, '\n'); i >= 0 {
		return recent[i+1:], true
	}
	for len(recent) > 0 && !utf8.RuneStart(recent[0]) {
		recent = recent[1:]
	}
	return recent, true
}

// statusLine renders status as one subtext line of at most room characters.
func statusLine(status string, room int) string {
	s := strings.Join(strings.Fields(status), " ")
	if s == "" || room < 8 {
		return ""
	}
	return "-# " + truncateEnd(s, room-len("-# "))
}

// escapeReasoning keeps reasoning text from acting as Markdown that spans
// lines: a backtick could open a code block that swallows the answer.
func escapeReasoning(s string) string {
	return strings.ReplaceAll(s, "`", "\\`")
}

// collapsedReasoningLine is "-# 💭 " and the newest reasoning, on one line
// of at most room characters, or "" when too little fits. cut says that
// older reasoning was left out of reasoning.
func collapsedReasoningLine(reasoning string, cut bool, room int) string {
	const prefix = "-# 💭 "
	text := strings.Join(strings.Fields(escapeReasoning(reasoning)), " ")
	n := min(collapsedReasoning, room-utf8.RuneCountInString(prefix))
	if text == "" || n < 10 {
		return ""
	}
	text = tail(text, n)
	if cut && !strings.HasPrefix(text, "…") {
		text = tail("…"+text, n)
	}
	return prefix + text
}

// fullReasoningLines renders every non-blank line of reasoning as a "-# "
// line, keeping only the newest lines (and, for a line too long, its end)
// when they do not fit in room characters; "" when too little fits. cut
// says that older lines were left out of reasoning.
func fullReasoningLines(reasoning string, cut bool, room int) string {
	var lines []string
	for _, l := range strings.Split(escapeReasoning(reasoning), "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	// Take lines from the end while they fit, keeping one character for
	// the "…" that marks dropped lines.
	used, first := 0, len(lines)
	for i := len(lines) - 1; i >= 0; i-- {
		n := utf8.RuneCountInString(lines[i]) + len("-# ")
		if first < len(lines) {
			n++ // the newline before the next kept line
		}
		marker := 0
		if i > 0 || cut {
			marker = 1
		}
		if used+n+marker > room {
			break
		}
		used += n
		first = i
	}
	if first == len(lines) {
		// Not even the newest line fits: show its end.
		n := room - len("-# ")
		if n < 10 {
			return ""
		}
		return "-# " + tail(lines[len(lines)-1], n)
	}
	kept := slices.Clone(lines[first:])
	if first > 0 || cut {
		kept[0] = "…" + kept[0]
	}
	var b strings.Builder
	for i, l := range kept {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("-# ")
		b.WriteString(l)
	}
	return b.String()
}

// tail returns the last n characters of s, starting with "…" (counted in
// n) when s is longer, and cut at a space when one is near.
func tail(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	t := string(r[len(r)-(n-1):])
	if i := strings.IndexByte(t, ' '); i >= 0 && i < 20 && i < len(t)-1 {
		t = t[i+1:]
	}
	return "…" + t
}

// truncateEnd returns the first n characters of s, ending with "…"
// (counted in n) when s is longer.
func truncateEnd(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
