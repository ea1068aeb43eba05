package llm

import (
	"encoding/json"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// chunk is what the client reads from one streamed chat-completion chunk.
// parse reuses its buffers, so decoding a chunk allocates nothing beyond
// the strings the caller makes from it.
//
// Of "choices", only the choices with index 0 (or no index) count; their
// texts are concatenated. Everything else in the chunk is skipped.
type chunk struct {
	content      []byte // choices[].delta.content
	reasoning    []byte // choices[].delta.reasoning_content
	reasoningAlt []byte // choices[].delta.reasoning (vLLM ≥ 0.11, Ollama)
	finish       []byte // choices[].finish_reason
	usage        Usage
	hasUsage     bool
	errRaw       []byte // the top-level "error" value, nil when absent or null
	keyBuf       []byte
}

// errSyntax is the error of text that is not the JSON a chunk should be.
var errSyntax = fmt.Errorf("%w: invalid JSON", ErrMalformed)

// parse decodes one chunk. The chunk's previous contents are discarded.
func (c *chunk) parse(b []byte) error {
	c.content = c.content[:0]
	c.reasoning = c.reasoning[:0]
	c.reasoningAlt = c.reasoningAlt[:0]
	c.finish = c.finish[:0]
	c.usage, c.hasUsage = Usage{}, false
	c.errRaw = c.errRaw[:0]
	hasErr := false

	s := scan{b: b}
	if err := s.begin('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := s.more('}', first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		key, err := c.key(&s)
		if err != nil {
			return err
		}
		switch string(key) {
		case "choices":
			err = c.choices(&s)
		case "usage":
			start := s.i
			if err = s.skip(); err == nil {
				err = c.setUsage(b[start:s.i])
			}
		case "error":
			start := s.i
			if err = s.skip(); err == nil {
				raw := b[start:s.i]
				hasErr = string(raw) != "null"
				c.errRaw = append(c.errRaw[:0], raw...)
			}
		default:
			err = s.skip()
		}
		if err != nil {
			return err
		}
	}
	s.ws()
	if s.i != len(b) {
		return fmt.Errorf("%w: data after the chunk", errSyntax)
	}
	if !hasErr {
		c.errRaw = c.errRaw[:0]
	}
	return nil
}

// setUsage decodes a usage value; null clears it.
func (c *chunk) setUsage(raw []byte) error {
	if string(raw) == "null" {
		c.usage, c.hasUsage = Usage{}, false
		return nil
	}
	if !c.hasUsage {
		c.usage = Usage{}
	}
	if err := json.Unmarshal(raw, &c.usage); err != nil {
		return fmt.Errorf("%w: usage: %w", ErrMalformed, err)
	}
	c.hasUsage = true
	return nil
}

// key reads an object key and the colon after it.
func (c *chunk) key(s *scan) ([]byte, error) {
	key, err := s.key(&c.keyBuf)
	if err != nil {
		return nil, err
	}
	if err := s.colon(); err != nil {
		return nil, err
	}
	return key, nil
}

// choices reads the "choices" array.
func (c *chunk) choices(s *scan) error {
	if s.null() {
		return nil
	}
	if err := s.begin('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := s.more(']', first)
		if err != nil || !more {
			return err
		}
		if err := c.choice(s); err != nil {
			return err
		}
	}
}

// choice reads one element of "choices", keeping its texts only when its
// index is 0.
func (c *chunk) choice(s *scan) error {
	if s.null() {
		return nil
	}
	if err := s.begin('{'); err != nil {
		return err
	}
	n0, n1, n2, n3 := len(c.content), len(c.reasoning), len(c.reasoningAlt), len(c.finish)
	finishSet := false
	index0 := true
	for first := true; ; first = false {
		more, err := s.more('}', first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		key, err := c.key(s)
		if err != nil {
			return err
		}
		switch string(key) {
		case "delta":
			err = c.delta(s)
		case "finish_reason":
			c.finish, finishSet = c.finish[:n3], false
			if !s.null() {
				c.finish, err = s.str(c.finish)
				finishSet = true
			}
		case "index":
			index0, err = s.zero()
		default:
			err = s.skip()
		}
		if err != nil {
			return err
		}
	}
	switch {
	case !index0:
		c.content, c.reasoning, c.reasoningAlt, c.finish = c.content[:n0], c.reasoning[:n1], c.reasoningAlt[:n2], c.finish[:n3]
	case finishSet:
		// The last finish reason of an index-0 choice wins.
		c.finish = append(c.finish[:0], c.finish[n3:]...)
	default:
		c.finish = c.finish[:n3]
	}
	return nil
}

// delta reads a choice's "delta" object.
func (c *chunk) delta(s *scan) error {
	if s.null() {
		return nil
	}
	if err := s.begin('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := s.more('}', first)
		if err != nil || !more {
			return err
		}
		key, err := c.key(s)
		if err != nil {
			return err
		}
		var dst *[]byte
		switch string(key) {
		case "content":
			dst = &c.content
		case "reasoning_content":
			dst = &c.reasoning
		case "reasoning":
			dst = &c.reasoningAlt
		default:
			if err := s.skip(); err != nil {
				return err
			}
			continue
		}
		if s.null() {
			continue
		}
		if *dst, err = s.str(*dst); err != nil {
			return fmt.Errorf("delta.%s: %w", key, err)
		}
	}
}

// scan walks JSON text. Its methods skip leading white space themselves.
type scan struct {
	b []byte
	i int
}

func (s *scan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scan) errAt(what string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("%w: unexpected end, want %s", errSyntax, what)
	}
	return fmt.Errorf("%w: at offset %d, want %s", errSyntax, s.i, what)
}

// begin consumes the opening bracket ch.
func (s *scan) begin(ch byte) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ch {
		return s.errAt(string(ch))
	}
	s.i++
	return nil
}

// more reports whether another member or element follows in the object or
// array closed by end, consuming the separating comma or the closing end.
func (s *scan) more(end byte, first bool) (bool, error) {
	s.ws()
	if s.i >= len(s.b) {
		return false, s.errAt(string(end))
	}
	if s.b[s.i] == end {
		s.i++
		return false, nil
	}
	if !first {
		if s.b[s.i] != ',' {
			return false, s.errAt("',' or " + string(end))
		}
		s.i++
		s.ws()
	}
	return true, nil
}

func (s *scan) colon() error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return s.errAt("':'")
	}
	s.i++
	return nil
}

// null consumes a null literal if one comes next.
func (s *scan) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// zero reads a number (or null) and reports whether it is zero.
func (s *scan) zero() (bool, error) {
	if s.null() {
		return true, nil
	}
	start := s.i
	if err := s.skip(); err != nil {
		return false, err
	}
	switch string(s.b[start:s.i]) {
	case "0", "-0":
		return true, nil
	}
	return false, nil
}

// key reads an object key, undoing escapes into *buf only when it has any.
func (s *scan) key(buf *[]byte) ([]byte, error) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, s.errAt("object key")
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			k := s.b[s.i+1 : j]
			s.i = j + 1
			return k, nil
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			var err error
			*buf, err = s.str((*buf)[:0])
			return *buf, err
		}
	}
	s.i = len(s.b)
	return nil, s.errAt("end of string")
}

// str appends the string value that comes next to dst, undoing escapes.
// Invalid UTF-8 and lone surrogates become U+FFFD, as encoding/json does.
func (s *scan) str(dst []byte) ([]byte, error) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return dst, s.errAt("string")
	}
	b := s.b
	i := s.i + 1
	for {
		// Copy the longest run that needs no attention at once.
		j := i
		for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 && b[j] < utf8.RuneSelf {
			j++
		}
		dst = append(dst, b[i:j]...)
		i = j
		if i >= len(b) {
			s.i = i
			return dst, s.errAt("end of string")
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return dst, nil
		case c < 0x20:
			s.i = i
			return dst, s.errAt("no control character in string")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, b[i:i+size]...)
			}
			i += size
		default: // backslash
			if i+1 >= len(b) {
				s.i = len(b)
				return dst, s.errAt("escape")
			}
			e := b[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(b, i)
				if !ok {
					s.i = i
					return dst, s.errAt("4 hex digits")
				}
				i += 4
				if utf16.IsSurrogate(r) {
					high := r
					r = utf8.RuneError
					if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						if low, ok := hex4(b, i+2); ok {
							if d := utf16.DecodeRune(high, low); d != utf8.RuneError {
								r = d
								i += 6
							}
						}
					}
				}
				dst = utf8.AppendRune(dst, r)
			default:
				s.i = i - 1
				return dst, s.errAt("escape character")
			}
		}
	}
}

// hex4 decodes the 4 hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

// skip steps over one value of any kind without decoding it. Strings and
// literals are checked; numbers only for their alphabet.
func (s *scan) skip() error {
	s.ws()
	if s.i >= len(s.b) {
		return s.errAt("value")
	}
	depth := 0
	for {
		s.ws()
		if s.i >= len(s.b) {
			return s.errAt("value")
		}
		switch c := s.b[s.i]; c {
		case '{', '[':
			depth++
			s.i++
			continue
		case '}', ']':
			if depth == 0 {
				return s.errAt("value")
			}
			depth--
			s.i++
		case ',', ':':
			if depth == 0 {
				return s.errAt("value")
			}
			s.i++
			continue
		case '"':
			if err := s.skipString(); err != nil {
				return err
			}
		case 't':
			if err := s.literal("true"); err != nil {
				return err
			}
		case 'f':
			if err := s.literal("false"); err != nil {
				return err
			}
		case 'n':
			if err := s.literal("null"); err != nil {
				return err
			}
		default:
			start := s.i
			for s.i < len(s.b) && isNumberByte(s.b[s.i]) {
				s.i++
			}
			if s.i == start {
				return s.errAt("value")
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func (s *scan) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.errAt(lit)
	}
	s.i += len(lit)
	return nil
}

func (s *scan) skipString() error {
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return nil
		case c == '\\':
			j++
		case c < 0x20:
			s.i = j
			return s.errAt("no control character in string")
		}
	}
	s.i = len(s.b)
	return s.errAt("end of string")
}
