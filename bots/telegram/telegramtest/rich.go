package telegramtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"
)

// Rich message limits, as core.telegram.org/bots/api#rich-messages
// ("Rich Message Limits", Bot API 10.1) states them: up to 32768 UTF-8
// characters of text (custom emoji alternative text and formula source
// included), up to 500 blocks (nested blocks, list items, table rows,
// quotation and details blocks included), up to 16 levels of nested
// formatting and blocks, up to 50 media and up to 20 table columns. The
// fake counts the characters as code points of the visible text.
const (
	MaxRichText    = 32768
	MaxRichBlocks  = 500
	MaxRichDepth   = 16
	MaxRichMedia   = 50
	MaxRichColumns = 20
)

// RichMessage is the content of a rich message or rich draft as the bot
// sent it (an InputRichMessage): exactly one of HTML, Markdown and Blocks
// is set.
type RichMessage struct {
	HTML     string
	Markdown string
	// Blocks is the blocks array as sent, compact JSON.
	Blocks json.RawMessage
}

// methodNotFound is the answer of a Bot API server to a method it does not
// know, as telegram-bot-api answers one (older self-hosted servers answer
// the rich methods of Bot API 10.1 so).
func methodNotFound() *apiError {
	return &apiError{code: 404, description: "Not Found: method not found"}
}

// isRichMethod reports whether a method came with Bot API 10.1's rich
// messages.
func isRichMethod(method string) bool {
	return strings.EqualFold(method, "sendRichMessage") || strings.EqualFold(method, "sendRichMessageDraft")
}

// richRefusal is a refused rich message. Telegram documents none of these
// descriptions; the fake words them as other clients report them
// ("Bad Request: can't parse rich message", "… rich message is too long").
func richRefusal(format string, args ...any) *apiError {
	return badRequest(fmt.Sprintf(format, args...))
}

// parseRich reads an InputRichMessage parameter and checks it as Telegram
// does: exactly one of html, markdown and blocks, the documented limits,
// known and balanced tags, and the thinking block (<tg-thinking>, a block
// of type "thinking") only in drafts. It returns the message and the text a
// client shows.
func parseRich(raw string, draft bool) (RichMessage, string, *apiError) {
	var in struct {
		HTML     *string         `json:"html"`
		Markdown *string         `json:"markdown"`
		Blocks   json.RawMessage `json:"blocks"`
	}
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" {
		return RichMessage{}, "", badRequest("rich_message is empty")
	}
	if err := json.Unmarshal([]byte(raw), &in); err != nil || !strings.HasPrefix(raw, "{") {
		return RichMessage{}, "", badRequest("can't parse rich message JSON object")
	}
	set := 0
	for _, ok := range []bool{in.HTML != nil, in.Markdown != nil, len(in.Blocks) > 0 && string(in.Blocks) != "null"} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return RichMessage{}, "", badRequest("exactly one of html, markdown and blocks must be specified in the rich message")
	}
	var (
		rm   RichMessage
		st   richStats
		aerr *apiError
	)
	switch {
	case in.Markdown != nil:
		rm.Markdown = *in.Markdown
		st, aerr = markdownStats(rm.Markdown, draft)
	case in.HTML != nil:
		rm.HTML = *in.HTML
		st, aerr = htmlStats(rm.HTML, draft)
	default:
		var buf bytes.Buffer
		if json.Compact(&buf, in.Blocks) != nil {
			return RichMessage{}, "", badRequest("can't parse rich message JSON object")
		}
		rm.Blocks = buf.Bytes()
		st, aerr = blockStats(rm.Blocks, draft)
	}
	if aerr != nil {
		return RichMessage{}, "", aerr
	}
	visible := strings.TrimSpace(blankLines.ReplaceAllString(st.text.String(), "\n\n"))
	switch {
	case !utf8.ValidString(visible):
		return RichMessage{}, "", badRequest("text must be encoded in UTF-8")
	case visible == "" && st.blocks == 0:
		return RichMessage{}, "", badRequest("rich message is empty")
	case utf8.RuneCountInString(visible) > MaxRichText:
		return RichMessage{}, "", richRefusal("rich message is too long")
	case st.blocks > MaxRichBlocks:
		return RichMessage{}, "", richRefusal("rich message has too many blocks")
	case st.depth > MaxRichDepth:
		return RichMessage{}, "", richRefusal("rich message nesting is too deep")
	case st.media > MaxRichMedia:
		return RichMessage{}, "", richRefusal("rich message has too many media")
	case st.columns > MaxRichColumns:
		return RichMessage{}, "", richRefusal("rich message table has too many columns")
	}
	return rm, visible, nil
}

// richStats is what parseRich measures of a rich message.
type richStats struct {
	text    bytes.Buffer // the visible text
	blocks  int
	depth   int
	media   int
	columns int
}

// richTags are the tags rich HTML (and Markdown, which admits them) knows,
// after core.telegram.org/bots/api#rich-html-style; block tags count as
// blocks.
var richTags = map[string]bool{
	"b": false, "strong": false, "i": false, "em": false, "u": false, "ins": false, "s": false, "strike": false,
	"del": false, "code": false, "a": false, "mark": false, "sub": false, "sup": false, "span": false,
	"tg-spoiler": false, "tg-emoji": false, "tg-time": false, "tg-math": false, "tg-reference": false, "cite": false,
	"br": false, "img": false, "video": false, "audio": false, "figcaption": false,
	"p": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "pre": true,
	"blockquote": true, "aside": true, "details": true, "summary": false, "ul": true, "ol": true, "li": true,
	"table": true, "tr": true, "td": false, "th": false, "hr": true, "footer": true, "figure": true,
	"tg-thinking": true, "tg-math-block": true, "tg-map": true, "tg-collage": true, "tg-slideshow": true,
}

// voidTags have no end tag.
var voidTags = map[string]bool{"br": true, "hr": true, "img": true, "tg-map": true}

// blankLines are runs of more than one blank line in a visible text.
var blankLines = regexp.MustCompile(`\n\s*\n(\s*\n)+`)

var tagPattern = regexp.MustCompile(`</?([A-Za-z][A-Za-z0-9-]*)[^>]*?(/?)>`)

// tagScanner checks the tags of a rich message in document order.
type tagScanner struct {
	draft bool
	stack []string
	cells int // cells of the table row open
	st    *richStats
}

// scan reads the tags of s, returning the text between them.
func (ts *tagScanner) scan(s string) (string, *apiError) {
	var out strings.Builder
	last := 0
	for _, m := range tagPattern.FindAllStringSubmatchIndex(s, -1) {
		out.WriteString(s[last:m[0]])
		last = m[1]
		name := strings.ToLower(s[m[2]:m[3]])
		closing := s[m[0]+1] == '/'
		selfClosing := m[5] > m[4] || voidTags[name]
		block, known := richTags[name]
		if !known {
			return "", richRefusal("can't parse rich message: unsupported tag <%s>", name)
		}
		if name == "tg-thinking" && !ts.draft {
			return "", richRefusal("can't parse rich message: the thinking block is allowed only in drafts")
		}
		switch {
		case closing:
			if len(ts.stack) == 0 || ts.stack[len(ts.stack)-1] != name {
				return "", richRefusal("can't parse rich message: unexpected end tag </%s>", name)
			}
			ts.stack = ts.stack[:len(ts.stack)-1]
			if name == "tr" {
				ts.st.columns = max(ts.st.columns, ts.cells)
			}
			if block {
				out.WriteByte('\n')
			}
		default:
			if block {
				ts.st.blocks++
			}
			switch name {
			case "img", "video", "audio":
				ts.st.media++
			case "tr":
				ts.cells = 0
			case "td", "th":
				ts.cells++
			}
			if !selfClosing {
				ts.stack = append(ts.stack, name)
				ts.st.depth = max(ts.st.depth, len(ts.stack))
			}
		}
	}
	out.WriteString(s[last:])
	return html.UnescapeString(out.String()), nil
}

// end checks that every tag was closed.
func (ts *tagScanner) end() *apiError {
	if len(ts.stack) > 0 {
		return richRefusal("can't parse rich message: unclosed tag <%s>", ts.stack[len(ts.stack)-1])
	}
	return nil
}

func htmlStats(s string, draft bool) (richStats, *apiError) {
	var st richStats
	ts := tagScanner{draft: draft, st: &st}
	t, aerr := ts.scan(s)
	if aerr == nil {
		aerr = ts.end()
	}
	st.text.WriteString(t)
	return st, aerr
}

// richMarkdown is goldmark's CommonMark parser with GFM tables and
// strikethrough, the Markdown rich messages take.
var richMarkdown = goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough)).Parser()

// markdownStats measures rich Markdown: its blocks (list items and table
// rows each count, table cells do not), its nesting (Markdown's and that
// of the HTML tags it holds, added), its table columns and its visible
// text.
func markdownStats(md string, draft bool) (richStats, *apiError) {
	var st richStats
	src := []byte(md)
	doc := richMarkdown.Parse(text.NewReader(src))
	ts := tagScanner{draft: draft, st: &st}
	tagDepth := 0
	var walk func(n ast.Node, depth int) *apiError
	walk = func(n ast.Node, depth int) *apiError {
		if n.Kind() != ast.KindText && n.Kind() != ast.KindString {
			st.depth = max(st.depth, depth)
		}
		if n.Type() == ast.TypeBlock && n.Kind() != east.KindTableCell {
			st.blocks++
		}
		leaf := false // its text is written: its children are not walked
		switch v := n.(type) {
		case *ast.Text:
			st.text.WriteString(markdownText(v.Segment.Value(src)))
			if v.SoftLineBreak() || v.HardLineBreak() {
				st.text.WriteByte('\n')
			}
			return nil
		case *ast.String:
			st.text.Write(v.Value)
			return nil
		case *ast.RawHTML:
			var b strings.Builder
			for i := range v.Segments.Len() {
				seg := v.Segments.At(i)
				b.Write(seg.Value(src))
			}
			t, aerr := ts.scan(b.String())
			st.text.WriteString(t)
			tagDepth = max(tagDepth, len(ts.stack))
			return aerr
		case *ast.HTMLBlock:
			var b strings.Builder
			for i := range v.Lines().Len() {
				seg := v.Lines().At(i)
				b.Write(seg.Value(src))
			}
			if v.HasClosure() {
				b.Write(v.ClosureLine.Value(src))
			}
			t, aerr := ts.scan(b.String())
			st.text.WriteString(t)
			tagDepth = max(tagDepth, len(ts.stack))
			if aerr != nil {
				return aerr
			}
			leaf = true
		case *ast.FencedCodeBlock, *ast.CodeBlock:
			for i := range n.Lines().Len() {
				seg := n.Lines().At(i)
				st.text.Write(seg.Value(src))
			}
			leaf = true
		case *ast.Image:
			st.media++
		case *east.TableRow, *east.TableHeader:
			st.columns = max(st.columns, n.ChildCount())
		}
		for c := n.FirstChild(); c != nil && !leaf; c = c.NextSibling() {
			if aerr := walk(c, depth+1); aerr != nil {
				return aerr
			}
			if n.Kind() == east.KindTableRow || n.Kind() == east.KindTableHeader {
				if c.NextSibling() != nil {
					st.text.WriteString(" | ")
				}
			}
		}
		if n.Type() == ast.TypeBlock && n.Kind() != east.KindTableCell {
			// Blocks one per line, and a blank line after a top-level
			// one, as a client sets paragraphs apart.
			st.text.WriteByte('\n')
			if depth == 1 {
				st.text.WriteByte('\n')
			}
		}
		return nil
	}
	for c := doc.FirstChild(); c != nil; c = c.NextSibling() {
		if aerr := walk(c, 1); aerr != nil {
			return st, aerr
		}
	}
	if aerr := ts.end(); aerr != nil {
		return st, aerr
	}
	st.depth += tagDepth
	return st, nil
}

// entityPattern matches a character reference at the start of a string.
var entityPattern = regexp.MustCompile(`^&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});`)

// markdownText is the text a Markdown text segment shows: backslash
// escapes of ASCII punctuation and character references resolved in one
// pass, as CommonMark does (an escaped '&' starts no reference).
func markdownText(seg []byte) string {
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c == '\\' && i+1 < len(seg) && strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", seg[i+1]) >= 0:
			i++
			b.WriteByte(seg[i])
		case c == '&':
			if m := entityPattern.Find(seg[i:]); m != nil {
				b.WriteString(html.UnescapeString(string(m)))
				i += len(m) - 1
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// blockStats measures a blocks array: every object with a "type" is a
// block (or a rich text entity), nesting counts, and the strings under
// "text" are the visible text.
func blockStats(raw json.RawMessage, draft bool) (richStats, *apiError) {
	var st richStats
	var blocks []any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return st, badRequest("can't parse rich message JSON object")
	}
	var walk func(v any, depth int, key string) *apiError
	walk = func(v any, depth int, key string) *apiError {
		switch x := v.(type) {
		case string:
			if key == "text" || key == "summary" {
				st.text.WriteString(x)
			}
		case []any:
			for _, e := range x {
				if aerr := walk(e, depth, key); aerr != nil {
					return aerr
				}
			}
		case map[string]any:
			typ, _ := x["type"].(string)
			if typ != "" {
				depth++
				st.depth = max(st.depth, depth)
				if key == "" || key == "blocks" {
					st.blocks++
				}
			}
			switch typ {
			case "thinking":
				if !draft {
					return richRefusal("can't parse rich message: the thinking block is allowed only in drafts")
				}
			case "photo", "video", "audio", "animation", "voice_note":
				st.media++
			case "table":
				if rows, ok := x["cells"].([]any); ok {
					st.blocks += len(rows)
					for _, r := range rows {
						if cells, ok := r.([]any); ok {
							st.columns = max(st.columns, len(cells))
						}
					}
				}
			}
			for _, k := range slices.Sorted(maps.Keys(x)) {
				if aerr := walk(x[k], depth, k); aerr != nil {
					return aerr
				}
			}
			if typ != "" && (key == "" || key == "blocks") {
				st.text.WriteByte('\n')
			}
		}
		return nil
	}
	return st, walk(blocks, 0, "")
}

// cloneRich copies a rich message, nil for none.
func cloneRich(r *RichMessage) *RichMessage {
	if r == nil {
		return nil
	}
	c := *r
	c.Blocks = slices.Clone(r.Blocks)
	return &c
}
