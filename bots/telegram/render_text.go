package telegram

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// escapeTo writes s with <, > and & escaped, and " too when attr is set.
func escapeTo(b *bytes.Buffer, s string, attr bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			if attr {
				b.WriteString("&quot;")
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
}

// escape returns s escaped for HTML text.
func escape(s string) string {
	var b bytes.Buffer
	escapeTo(&b, s, false)
	return b.String()
}

// TextLen is the length of a Telegram HTML text as Telegram counts it
// against MaxMessageLen: the visible characters after entity parsing, in
// UTF-16 code units. Tags count nothing, "&lt;" counts one, a character
// outside the Basic Multilingual Plane (most emoji) counts two. Telegram
// also trims leading and trailing whitespace before counting; TextLen does
// not, so it never under-counts.
func TextLen(html string) int {
	n := 0
	for i := 0; i < len(html); {
		switch html[i] {
		case '<':
			end := strings.IndexByte(html[i:], '>')
			if end < 0 {
				return n + utf16Len(html[i:])
			}
			i += end + 1
			continue
		case '&':
			if r, size := decodeEntity(html[i:]); size > 0 {
				n += utf16.RuneLen(r)
				i += size
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(html[i:])
		if r == utf8.RuneError && size == 1 {
			n++
		} else {
			n += utf16.RuneLen(r)
		}
		i += size
	}
	return n
}

// decodeEntity decodes the character reference at the start of s the way
// Telegram does (&lt; &gt; &amp; &quot; and numeric references, the ';'
// optional), returning size 0 when there is none.
func decodeEntity(s string) (rune, int) {
	if len(s) < 2 {
		return 0, 0
	}
	end := 1
	var r rune
	if s[1] == '#' {
		end = 2
		base := rune(10)
		if len(s) > 2 && s[2] == 'x' {
			base, end = 16, 3
		}
		for ; end < len(s); end++ {
			d := digitValue(s[end])
			if d < 0 || d >= base {
				break
			}
			if r < 0x110000 {
				r = r*base + d
			}
		}
		if r == 0 || r >= 0x10ffff || end >= 10 {
			return 0, 0
		}
	} else {
		for end < len(s) && (s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z') {
			end++
		}
		switch s[1:end] {
		case "lt":
			r = '<'
		case "gt":
			r = '>'
		case "amp":
			r = '&'
		case "quot":
			r = '"'
		default:
			return 0, 0
		}
	}
	if end < len(s) && s[end] == ';' {
		end++
	}
	return r, end
}

// digitValue is the value of a hexadecimal digit, or -1.
func digitValue(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// RenderReasoning shows a model's reasoning as Telegram HTML: plain escaped
// text in an expandable (collapsed) quote. When limit is positive and the
// text is longer than limit UTF-16 units, only its end is kept, after an
// ellipsis, so that the quote shows the newest thoughts; then only the last
// 3*limit+4 bytes are read (which hold limit units unless they are mostly
// invalid UTF-8 or white space), so that the cost does not grow with the
// reasoning. Empty reasoning renders as "".
func RenderReasoning(reasoning string, limit int) string {
	cut := false
	if w := 3*limit + 4; limit > 0 && len(reasoning) > w {
		i := len(reasoning) - w
		for i < len(reasoning) && !utf8.RuneStart(reasoning[i]) {
			i++
		}
		reasoning, cut = reasoning[i:], true
	}
	reasoning = strings.TrimSpace(sanitize(reasoning))
	if reasoning == "" && !cut {
		return ""
	}
	if cut || limit > 0 && utf16Len(reasoning) > limit {
		reasoning = "…" + tailUTF16(reasoning, limit-1)
	}
	return "<blockquote expandable>" + escape(reasoning) + "</blockquote>"
}

// tailUTF16 returns the longest suffix of s at most n UTF-16 units long.
func tailUTF16(s string, n int) string {
	i := len(s)
	for i > 0 && n > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if utf16.RuneLen(r) > n {
			break
		}
		n -= utf16.RuneLen(r)
		i -= size
	}
	return s[i:]
}

// RenderStatus shows a status line ("Thinking… 4 s", "(stopped)") in
// italics; an empty status renders as "".
func RenderStatus(status string) string {
	status = strings.TrimSpace(sanitize(status))
	if status == "" {
		return ""
	}
	return "<i>" + escape(status) + "</i>"
}
