package attach

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNameChars caps the file name shown to the model.
const maxNameChars = 200

// prepareText decodes a text file and puts it in a block for the model.
func prepareText(in Input, t fileType, lim Limits) *Text {
	text, notes := decodeText(in.Data)
	return textBlock(in.Name, t.desc, t.lang, fmt.Sprintf("%s, %s", t.desc, formatBytes(int64(len(in.Data)))), text, notes, lim)
}

// textBlock cuts text at lim.MaxTextChars and builds the block the model
// reads: "File: NAME (ABOUT)", a line per note, then text fenced with lang.
func textBlock(name, desc, lang, about, text string, notes []string, lim Limits) *Text {
	chars := utf8.RuneCountInString(text)
	shown := chars
	if chars > lim.MaxTextChars {
		shown = lim.MaxTextChars
		text = text[:runeOffset(text, shown)]
		notes = append(notes, fmt.Sprintf("truncated: the file has %s characters; the first %s are shown",
			formatCount(chars), formatCount(shown)))
	}
	name = cleanName(name)
	var b strings.Builder
	b.Grow(len(text) + 256)
	fmt.Fprintf(&b, "File: %s (%s)\n", name, about)
	for _, n := range notes {
		fmt.Fprintf(&b, "[%s]\n", n)
	}
	fence := strings.Repeat("`", max(3, longestRun(text, '`')+1))
	b.WriteString(fence + lang + "\n")
	b.WriteString(text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteByte('\n')
	}
	b.WriteString(fence + "\n")
	return &Text{Block: b.String(), Name: name, Type: desc, Chars: chars, Shown: shown, Notes: notes}
}

// decodeText turns a text file's bytes into a string: UTF-8 (a byte order
// mark dropped), UTF-16 when a byte order mark says so, else UTF-8 with
// each invalid byte sequence replaced by U+FFFD, which a note reports.
func decodeText(data []byte) (string, []string) {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		data = data[3:]
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		return decodeUTF16(data[2:], false)
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		return decodeUTF16(data[2:], true)
	}
	if utf8.Valid(data) {
		return string(data), nil
	}
	var b strings.Builder
	b.Grow(len(data))
	bad := 0
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size == 1 {
			bad++
		}
		b.WriteRune(r)
		data = data[size:]
	}
	return b.String(), []string{fmt.Sprintf("the file is not valid UTF-8: %s invalid bytes were replaced with U+FFFD (�)", formatCount(bad))}
}

// decodeUTF16 decodes UTF-16 text (the byte order mark removed).
func decodeUTF16(data []byte, bigEndian bool) (string, []string) {
	var notes []string
	if len(data)%2 != 0 {
		data = data[:len(data)-1]
		notes = append(notes, "the file is UTF-16 with an odd number of bytes: the last byte was dropped")
	}
	units := make([]uint16, len(data)/2)
	for i := range units {
		if bigEndian {
			units[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		} else {
			units[i] = uint16(data[2*i+1])<<8 | uint16(data[2*i])
		}
	}
	return string(utf16.Decode(units)), notes
}

// runeOffset returns the byte offset of the n-th rune of s (len(s) when s
// has fewer).
func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

// longestRun returns the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// cleanName makes a sent file name safe to show on one line: control and
// format characters become spaces, and the name is cut at maxNameChars.
// An empty name becomes "untitled".
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > maxNameChars {
		name = name[:runeOffset(name, maxNameChars)] + "…"
	}
	if name == "" {
		return "untitled"
	}
	return name
}
