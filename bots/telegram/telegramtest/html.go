package telegramtest

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseHTML parses a text sent with parse_mode "HTML" the way Telegram does
// (TDLib's parse_html): it returns the visible text and its entities, with
// offsets and lengths in UTF-16 code units, or an error worded as Telegram
// words it after "Bad Request: can't parse entities: ".
//
// Accepted tags: b, strong, i, em, u, ins, s, strike, del, span
// class="tg-spoiler", tg-spoiler, a href, code (class="language-x"), pre,
// blockquote (with the expandable attribute) and tg-emoji emoji-id. The
// entities &lt; &gt; &amp; &quot; and numeric references are decoded; any
// other '&' is literal text. Like Telegram, ParseHTML does not reject
// entities nested in ways Telegram later simplifies.
func ParseHTML(s string) (string, []MessageEntity, error) {
	p := htmlParser{s: s}
	return p.parse()
}

// ValidateHTML reports whether Telegram would accept s as an HTML text,
// returning the reason (as ParseHTML words it) when not.
func ValidateHTML(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("text must be encoded in UTF-8")
	}
	_, _, err := ParseHTML(s)
	return err
}

// UTF16Len is the length of s in UTF-16 code units, the unit of Telegram's
// message length limit and entity offsets.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

var errInvalidUnicode = errors.New("Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units")

type openTag struct {
	name      string
	argument  string
	offset    int // UTF-16 offset of the entity's start
	textStart int // byte offset in the output text
	expand    bool
}

type htmlParser struct {
	s        string
	out      strings.Builder
	offset   int
	entities []MessageEntity
	stack    []openTag
}

// at returns the byte at i, or 0 past the end (TDLib reads a C string).
func (p *htmlParser) at(i int) byte {
	if i < len(p.s) {
		return p.s[i]
	}
	return 0
}

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 || c == '\v'
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

var supportedTags = map[string]bool{
	"a": true, "b": true, "strong": true, "i": true, "em": true, "s": true, "strike": true, "del": true,
	"u": true, "ins": true, "tg-spoiler": true, "tg-emoji": true, "span": true, "pre": true, "code": true,
	"blockquote": true,
}

func (p *htmlParser) parse() (string, []MessageEntity, error) {
	for i := 0; i < len(p.s); {
		c := p.s[i]
		if c == '&' {
			if r, size := decodeEntity(p.s[i:]); size > 0 {
				if r >= 0xd800 && r <= 0xdfff {
					return "", nil, errInvalidUnicode
				}
				p.out.WriteRune(r)
				p.offset += utf16.RuneLen(r)
				i += size
				continue
			}
		}
		if c != '<' {
			if utf8.RuneStart(c) {
				p.offset++
				if c >= 0xf0 {
					p.offset++
				}
			}
			p.out.WriteByte(c)
			i++
			continue
		}
		var err error
		if p.at(i+1) != '/' {
			i, err = p.startTag(i)
		} else {
			i, err = p.endTag(i)
		}
		if err != nil {
			return "", nil, err
		}
	}
	if len(p.stack) > 0 {
		return "", nil, fmt.Errorf("Can't find end tag corresponding to start tag %s", p.stack[len(p.stack)-1].name)
	}
	for i := range p.entities {
		if p.entities[i].Type == "code" {
			p.entities[i].Language = ""
		}
	}
	sort.SliceStable(p.entities, func(a, b int) bool {
		ea, eb := p.entities[a], p.entities[b]
		if ea.Offset != eb.Offset {
			return ea.Offset < eb.Offset
		}
		return ea.Length > eb.Length
	})
	text := p.out.String()
	if !utf8.ValidString(text) {
		return "", nil, errInvalidUnicode
	}
	return text, p.entities, nil
}

// startTag parses the start tag at begin and returns the index after it.
func (p *htmlParser) startTag(begin int) (int, error) {
	i := begin + 1
	for !isHTMLSpace(p.at(i)) && p.at(i) != '>' {
		i++
	}
	if p.at(i) == 0 {
		return 0, fmt.Errorf("Unclosed start tag at byte offset %d", begin)
	}
	name := strings.ToLower(p.s[begin+1 : i])
	if !supportedTags[name] {
		return 0, fmt.Errorf("Unsupported start tag %q at byte offset %d", name, begin)
	}
	tag := openTag{name: name, offset: p.offset, textStart: p.out.Len()}
	for p.at(i) != '>' {
		for p.at(i) != 0 && isHTMLSpace(p.at(i)) {
			i++
		}
		if p.at(i) == '>' {
			break
		}
		attrBegin := i
		for !isHTMLSpace(p.at(i)) && p.at(i) != '=' && p.at(i) != '>' {
			i++
		}
		attr := p.s[attrBegin:i]
		if attr == "" {
			return 0, fmt.Errorf("Empty attribute name in the tag %q at byte offset %d", name, begin)
		}
		for p.at(i) != 0 && isHTMLSpace(p.at(i)) {
			i++
		}
		if p.at(i) != '=' {
			if name == "blockquote" && attr == "expandable" {
				tag.expand = true
				if p.at(i) == 0 {
					return 0, fmt.Errorf("Unclosed start tag at byte offset %d", begin)
				}
				continue
			}
			return 0, fmt.Errorf("Expected equal sign in declaration of an attribute of the tag %q at byte offset %d", name, begin)
		}
		i++
		for p.at(i) != 0 && isHTMLSpace(p.at(i)) {
			i++
		}
		if p.at(i) == 0 {
			return 0, fmt.Errorf("Unclosed start tag %q at byte offset %d", name, begin)
		}
		var value string
		if q := p.at(i); q != '\'' && q != '"' {
			tokenBegin := i
			for isAlnum(p.at(i)) || p.at(i) == '.' || p.at(i) == '-' {
				i++
			}
			value = strings.ToLower(p.s[tokenBegin:i])
			if !isHTMLSpace(p.at(i)) && p.at(i) != '>' {
				return 0, fmt.Errorf("Unexpected end of name token at byte offset %d", tokenBegin)
			}
		} else {
			i++
			var v strings.Builder
			for p.at(i) != q && p.at(i) != 0 {
				if p.at(i) == '&' {
					if r, size := decodeEntity(p.s[i:]); size > 0 {
						v.WriteRune(r)
						i += size
						continue
					}
				}
				v.WriteByte(p.s[i])
				i++
			}
			if p.at(i) == q {
				i++
			}
			value = v.String()
		}
		if p.at(i) == 0 {
			return 0, fmt.Errorf("Unclosed start tag at byte offset %d", begin)
		}
		switch {
		case name == "a" && attr == "href":
			tag.argument = value
		case name == "code" && attr == "class" && strings.HasPrefix(value, "language-"):
			tag.argument = value[len("language-"):]
		case name == "span" && attr == "class" && strings.HasPrefix(value, "tg-"):
			tag.argument = value[len("tg-"):]
		case name == "tg-emoji" && attr == "emoji-id":
			tag.argument = value
		}
	}
	if name == "span" && tag.argument != "spoiler" {
		return 0, fmt.Errorf("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", begin)
	}
	p.stack = append(p.stack, tag)
	return i + 1, nil
}

// endTag parses the end tag at begin and returns the index after it.
func (p *htmlParser) endTag(begin int) (int, error) {
	if len(p.stack) == 0 {
		return 0, fmt.Errorf("Unexpected end tag at byte offset %d", begin)
	}
	i := begin + 2
	for !isHTMLSpace(p.at(i)) && p.at(i) != '>' {
		i++
	}
	endName := strings.ToLower(p.s[begin+2 : i])
	for p.at(i) != 0 && isHTMLSpace(p.at(i)) {
		i++
	}
	if p.at(i) != '>' {
		return 0, fmt.Errorf("Unclosed end tag at byte offset %d", begin)
	}
	tag := p.stack[len(p.stack)-1]
	if endName != "" && endName != tag.name {
		return 0, fmt.Errorf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", begin, tag.name, endName)
	}
	p.stack = p.stack[:len(p.stack)-1]
	if p.offset > tag.offset {
		if err := p.addEntity(tag); err != nil {
			return 0, err
		}
	}
	return i + 1, nil
}

// addEntity records the entity that a closed tag spans.
func (p *htmlParser) addEntity(tag openTag) error {
	e := MessageEntity{Offset: tag.offset, Length: p.offset - tag.offset}
	last := func() *MessageEntity {
		if len(p.entities) == 0 {
			return nil
		}
		l := &p.entities[len(p.entities)-1]
		if l.Offset != e.Offset || l.Length != e.Length {
			return nil
		}
		return l
	}
	switch tag.name {
	case "i", "em":
		e.Type = "italic"
	case "b", "strong":
		e.Type = "bold"
	case "s", "strike", "del":
		e.Type = "strikethrough"
	case "u", "ins":
		e.Type = "underline"
	case "tg-spoiler", "span":
		e.Type = "spoiler"
	case "tg-emoji":
		id, err := strconv.ParseInt(tag.argument, 10, 64)
		if err != nil || id == 0 {
			return errors.New("Invalid custom emoji identifier specified")
		}
		e.Type, e.CustomEmojiID = "custom_emoji", tag.argument
	case "a":
		url := strings.TrimSpace(tag.argument)
		if url == "" {
			url = strings.TrimSpace(p.out.String()[tag.textStart:])
		}
		if url == "" {
			return nil // Telegram drops a link it cannot check
		}
		e.Type, e.URL = "text_link", url
	case "pre":
		if l := last(); l != nil && l.Type == "code" && l.Language != "" {
			l.Type = "pre"
			return nil
		}
		e.Type = "pre"
	case "code":
		if l := last(); l != nil && l.Type == "pre" && tag.argument != "" {
			l.Language = tag.argument
			return nil
		}
		e.Type, e.Language = "code", tag.argument
	case "blockquote":
		e.Type = "blockquote"
		if tag.expand {
			e.Type = "expandable_blockquote"
		}
	}
	p.entities = append(p.entities, e)
	return nil
}

// decodeEntity decodes a character reference at the start of s as TDLib
// does (&lt; &gt; &amp; &quot; and numeric ones, the ';' optional),
// returning size 0 when there is none.
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
