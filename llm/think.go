package llm

import (
	"path"
	"strings"
)

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
)

// OmitsThinkOpen reports whether a model is known to start its output
// inside a reasoning block whose opening <think> tag the chat template
// already put in the prompt, so that only "</think>" appears in the output
// when a server passes the text through unparsed: the original DeepSeek-R1
// and its distills, QwQ-32B, and Qwen3 "Thinking-2507" models. The id is
// compared case-insensitively, without any "org/" prefix.
func OmitsThinkOpen(model string) bool {
	id := strings.ToLower(path.Base(model))
	switch {
	case id == "deepseek-r1",
		strings.HasPrefix(id, "deepseek-r1-distill"),
		strings.HasPrefix(id, "qwq-32b"),
		strings.Contains(id, "thinking-2507"):
		return true
	}
	return false
}

// States of a thinkSplitter.
const (
	thinkStart = iota // nothing but white space (or part of "<think>") seen yet
	thinkIn           // inside <think>…, looking for </think>
	thinkMaybe        // implicit mode: holding text until </think> or the end
	thinkOut          // after the reasoning block, or none: all is content
)

// thinkSplitter separates inline reasoning from the content text of a
// stream. Its rules:
//
//   - Content whose first non-white-space text is "<think>" is reasoning up
//     to the first "</think>"; both tags and the white space before the
//     opening tag are dropped, and the rest is content. Content that starts
//     otherwise passes through at once: no content is delayed except
//     leading white space and a leading prefix of "<think>".
//   - In implicit mode (a model that omits the opening tag, see
//     OmitsThinkOpen), text that does not start with "<think>" is held
//     until "</think>" arrives, which makes everything before it reasoning;
//     if the stream ends first, the held text is content after all.
//   - A "</think>" in text that already passed through as content stays in
//     the content: text that was delivered cannot be taken back.
//
// Only the first reasoning block counts; later tags are content.
type thinkSplitter struct {
	state    int
	implicit bool
	held     strings.Builder
}

func newThinkSplitter(implicit bool) thinkSplitter {
	return thinkSplitter{implicit: implicit}
}

// serverReasons is called when the server separates reasoning itself (a
// reasoning field arrived): implicit mode is off, and text held for it is
// released as content.
func (t *thinkSplitter) serverReasons() (content string) {
	t.implicit = false
	if t.state != thinkMaybe {
		return ""
	}
	t.state = thinkOut
	content = t.held.String()
	t.held.Reset()
	return content
}

// push takes the next piece of content text and returns what is certain
// now: reasoning that comes before content.
func (t *thinkSplitter) push(s string) (content, reasoning string) {
	switch t.state {
	case thinkOut:
		return s, ""
	case thinkStart:
		p := s
		if t.held.Len() > 0 {
			t.held.WriteString(s)
			p = t.held.String()
		}
		rest := strings.TrimLeft(p, " \t\r\n")
		switch {
		case strings.HasPrefix(rest, thinkOpen):
			t.held.Reset()
			t.state = thinkIn
			return t.push(rest[len(thinkOpen):])
		case rest == "" || strings.HasPrefix(thinkOpen, rest):
			if t.held.Len() == 0 {
				t.held.WriteString(s)
			}
			return "", ""
		case t.implicit:
			t.held.Reset()
			t.state = thinkMaybe
			return t.push(p)
		}
		t.held.Reset()
		t.state = thinkOut
		return p, ""
	case thinkIn:
		p := s
		if t.held.Len() > 0 {
			t.held.WriteString(s)
			p = t.held.String()
			t.held.Reset()
		}
		if i := strings.Index(p, thinkClose); i >= 0 {
			t.state = thinkOut
			return p[i+len(thinkClose):], p[:i]
		}
		keep := partialSuffix(p, thinkClose)
		t.held.WriteString(p[len(p)-keep:])
		return "", p[:len(p)-keep]
	default: // thinkMaybe
		from := max(0, t.held.Len()-(len(thinkClose)-1))
		t.held.WriteString(s)
		p := t.held.String()
		if i := strings.Index(p[from:], thinkClose); i >= 0 {
			i += from
			t.held.Reset()
			t.state = thinkOut
			return p[i+len(thinkClose):], p[:i]
		}
		return "", ""
	}
}

// flush ends the text: whatever is held is released.
func (t *thinkSplitter) flush() (content, reasoning string) {
	held := t.held.String()
	t.held.Reset()
	switch t.state {
	case thinkIn:
		return "", held
	case thinkStart, thinkMaybe:
		t.state = thinkOut
		return held, ""
	}
	return "", ""
}

// partialSuffix is the length of the longest proper prefix of tag that
// ends s.
func partialSuffix(s, tag string) int {
	for n := min(len(tag)-1, len(s)); n > 0; n-- {
		if strings.HasSuffix(s, tag[:n]) {
			return n
		}
	}
	return 0
}

// splitThink applies the splitter's rules to a whole text at once.
func splitThink(s string, implicit bool) (content, reasoning string) {
	t := newThinkSplitter(implicit)
	c1, r1 := t.push(s)
	c2, r2 := t.flush()
	return c1 + c2, r1 + r2
}
