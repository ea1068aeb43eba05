package main

import (
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Syntax errors: the YAML parser's complaint, placed on the right line and
// column and worded for people who edit a config by hand.

// syntaxError turns err, the YAML parser's error for data, into a
// *ConfigError with a line, a column and, for the common mistakes (a tab in
// the indentation, an unclosed quote or bracket, a missing colon, a colon
// inside a value, a line indented wrongly), a hint.
//
// go.yaml.in/yaml/v3 reports only a line, and often the line where the
// enclosing mapping or string began rather than the line at fault. The line
// is therefore found again: it is the last line of the shortest run of
// whole lines from the top of data that fails with the very same error.
// Parsing stops at the first error, so a longer prefix fails the same way
// and a shorter one does not (truncating a document yields other errors, or
// none), which lets a binary search find it in a few parses.
func syntaxError(file string, data []byte, err error) *ConfigError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if _, after, found := strings.Cut(rest, ": "); found {
			msg = after
		}
	}
	lines := strings.SplitAfter(string(data), "\n")
	n := 1 + sort.Search(len(lines), func(i int) bool {
		prefix := strings.Join(lines[:i+1], "")
		var doc yaml.Node
		perr := yaml.Unmarshal([]byte(prefix), &doc)
		return perr != nil && perr.Error() == err.Error()
	})
	if n > len(lines) { // not found: keep the parser's line, if any
		return &ConfigError{File: file, Msg: msg}
	}
	e := &ConfigError{File: file, Line: n, Msg: msg}
	text := strings.TrimRight(lines[n-1], "\r\n")
	e.Column = indent(text) + 1

	lead := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
	if i := strings.IndexByte(lead, '\t'); i >= 0 {
		e.Column = i + 1
		e.Msg = "YAML does not allow tabs for indentation; use spaces"
		return e
	}
	switch {
	case strings.Contains(msg, "found unexpected end of stream"):
		// The string may start on an earlier line: the parser then
		// names the last.
		for p := n; p >= 1; p-- {
			if col, q := openQuote(strings.TrimRight(lines[p-1], "\r\n")); col > 0 {
				e.Line, e.Column = p, col
				e.Msg = "unclosed quote: the string that starts here has no closing " + string(q)
				break
			}
		}
	case strings.Contains(msg, "found character that cannot start any token"):
		if _, value, ok := strings.Cut(text, ": "); ok {
			if v := strings.TrimLeft(value, " "); v != "" && strings.IndexByte("@`%", v[0]) >= 0 {
				e.Column = len(text) - len(v) + 1
				e.Msg = msg + " (quote a value that starts with " + v[:1] + ")"
			}
		}
	case strings.Contains(msg, "did not find expected ',' or ']'"), strings.Contains(msg, "did not find expected ',' or '}'"):
		if col, b := openBracket(text); col > 0 {
			e.Column = col
			e.Msg = msg + " (the " + string(b) + " that opens here is not closed)"
		}
	case strings.HasPrefix(msg, "unknown anchor '"):
		name, _, _ := strings.Cut(strings.TrimPrefix(msg, "unknown anchor '"), "'")
		if i := strings.Index(text, "*"+name); i >= 0 {
			e.Column = i + 1
		}
	case strings.Contains(msg, "could not find expected ':'"):
		e.Msg = msg + ` (write "key: value", with a space after the colon)`
	case strings.Contains(msg, "mapping values are not allowed in this context"):
		if col := valueColon(text); col > 0 {
			e.Column = col
			e.Msg = msg + ` (quote a value that contains ": ")`
			break
		}
		if p := previousLine(lines, n); p > 0 {
			prev := strings.TrimRight(lines[p-1], "\r\n")
			if indent(prev) == indent(text) && !strings.Contains(prev, ":") && !strings.HasPrefix(strings.TrimSpace(prev), "-") {
				e.Line, e.Column = p, indent(prev)+1
				e.Msg = `this line has no ':' (write "key: value")`
				break
			}
		}
		e.Msg = msg + " (check this line's indentation)"
	case strings.Contains(msg, "did not find expected key"):
		e.Msg = msg + " (check this line's indentation: the keys of one mapping start in the same column)"
	case strings.Contains(msg, "did not find expected '-' indicator"):
		e.Msg = msg + " (check this line's indentation)"
	}
	return e
}

// indent is the number of spaces that start s.
func indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// previousLine returns the 1-based number of the last line before line n
// that is neither blank nor a comment, or 0.
func previousLine(lines []string, n int) int {
	for p := n - 1; p >= 1; p-- {
		if t := strings.TrimSpace(lines[p-1]); t != "" && !strings.HasPrefix(t, "#") {
			return p
		}
	}
	return 0
}

// openQuote returns the 1-based column and the character of a quote that
// starts a string on line s and is not closed on it, or 0.
func openQuote(s string) (int, byte) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '#' && (i == 0 || s[i-1] == ' ') {
			return 0, 0 // a comment
		}
		if (c != '"' && c != '\'') || (i > 0 && !strings.ContainsRune(" \t[{,:-", rune(s[i-1]))) {
			continue
		}
		end := closingQuote(s, i)
		if end < 0 {
			return i + 1, c
		}
		i = end
	}
	return 0, 0
}

// closingQuote returns the index of the quote that closes the string
// opened at s[open], or -1. A double-quoted string escapes with '\', a
// single-quoted one by doubling the quote.
func closingQuote(s string, open int) int {
	q := s[open]
	for i := open + 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case s[i] == q:
			return i
		}
	}
	return -1
}

// openBracket returns the 1-based column and the character of the last '['
// or '{' on line s that the line does not close, or 0. Brackets inside
// quotes are not told apart: this only places an error the parser found.
func openBracket(s string) (int, byte) {
	var open []int
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '{':
			open = append(open, i)
		case ']', '}':
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		}
	}
	if len(open) == 0 {
		return 0, 0
	}
	i := open[len(open)-1]
	return i + 1, s[i]
}

// valueColon returns the 1-based column of a ": " (or a final ':') inside
// the plain value of a "key: value" line s, or 0.
func valueColon(s string) int {
	_, value, ok := strings.Cut(s, ": ")
	if !ok {
		return 0
	}
	if v := strings.TrimLeft(value, " "); v == "" || strings.ContainsRune(`"'[{|>&*!`, rune(v[0])) {
		return 0
	}
	start := len(s) - len(value)
	if i := strings.Index(value, ": "); i >= 0 {
		return start + i + 1
	}
	if strings.HasSuffix(value, ":") {
		return len(s)
	}
	return 0
}
