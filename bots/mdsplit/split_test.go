package mdsplit

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// utf16Fits returns a fits function allowing parts of valid UTF-8 of at
// most n UTF-16 units: one per byte that starts a rune, two for a rune of
// four bytes.
func utf16Fits(n int) func(string) bool {
	return func(s string) bool {
		units := 0
		for i := 0; i < len(s) && units <= n; i++ {
			switch c := s[i]; {
			case c >= 0xF0:
				units += 2
			case c < 0x80 || c >= 0xC0:
				units++
			}
		}
		return units <= n
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"Empty", "", 10, nil},
		{"Whitespace", " \n\n \n", 10, nil},
		{"Fits", "hello world\n", 100, []string{"hello world"}},
		{
			"Paragraphs",
			"first paragraph here.\n\nsecond paragraph here.\n\nthird one.",
			50,
			[]string{"first paragraph here.\n\nsecond paragraph here.", "third one."},
		},
		{
			"ParagraphPreferredOverLine",
			"aaaa aaaa aaaa aaaa\n\nbbbb\ncccc\ndddd",
			28,
			[]string{"aaaa aaaa aaaa aaaa", "bbbb\ncccc\ndddd"},
		},
		{
			"Lines",
			"line one\nline two\nline three\nline four",
			20,
			[]string{"line one\nline two", "line three\nline four"},
		},
		{
			"Sentences",
			"One sentence is here. Another follows it. And a third.",
			45,
			[]string{"One sentence is here. Another follows it.", "And a third."},
		},
		{
			"Words",
			"alpha beta gamma delta epsilon",
			12,
			[]string{"alpha beta", "gamma delta", "epsilon"},
		},
		{
			"HardCutKeepsRunes",
			"😀😀😀😀😀",
			4,
			[]string{"😀😀", "😀😀", "😀"},
		},
		{
			"CodeBlockReopened",
			"Intro\n\n```go\nline1()\nline2()\nline3()\nline4()\n```\n\nOutro",
			40,
			[]string{"Intro\n\n```go\nline1()\nline2()\nline3()\n```", "```go\nline4()\n```\n\nOutro"},
		},
		{
			"TildeFence",
			"~~~\naaaa\nbbbb\ncccc\n~~~",
			17,
			[]string{"~~~\naaaa\nbbbb\n~~~", "~~~\ncccc\n~~~"},
		},
		{
			"UnclosedFenceLastPartStaysOpen",
			"```py\nprint(1)\nprint(2)\nprint(3)",
			30,
			[]string{"```py\nprint(1)\nprint(2)\n```", "```py\nprint(3)"},
		},
		{
			"NothingFitsTakesOneRune",
			"abc",
			0,
			[]string{"a", "b", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.text, utf16Fits(tt.limit))
			if len(got) != len(tt.want) {
				t.Fatalf("Split(%q) = %q, want %q", tt.text, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("Split(%q)[%d] = %q, want %q", tt.text, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestOpenFence(t *testing.T) {
	tests := []struct {
		name           string
		text           string
		opener, closer string
		ok             bool
	}{
		{"NoCode", "hello", "", "", false},
		{"Closed", "```go\nx\n```\n", "", "", false},
		{"Open", "text\n```go\nfunc main() {", "```go", "```", true},
		{"OpenJustStarted", "```python", "```python", "```", true},
		{"LongerCloserNeeded", "````\n```\n", "````", "````", true},
		{"Tilde", "~~~ sh\nls\n", "~~~ sh", "~~~", true},
		{"IndentedFourIsNotFence", "    ```\ncode", "", "", false},
		{"BacktickInInfoIsNotFence", "```a`b\n", "", "", false},
		{"SecondOpen", "```\na\n```\ntext\n```js\n", "```js", "```", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opener, closer, ok := OpenFence(tt.text)
			if opener != tt.opener || closer != tt.closer || ok != tt.ok {
				t.Errorf("OpenFence(%q) = %q, %q, %v; want %q, %q, %v", tt.text, opener, closer, ok, tt.opener, tt.closer, tt.ok)
			}
		})
	}
}

// TestSplit_Long checks a long mixed document part by part.
func TestSplit_Long(t *testing.T) {
	var b strings.Builder
	for i := range 200 {
		b.WriteString("Paragraph number with some words in it. Another sentence follows here.\n\n")
		if i%20 == 0 {
			b.WriteString("```python\n")
			for range 30 {
				b.WriteString("    print('hello world')\n")
			}
			b.WriteString("```\n\n")
		}
	}
	text := b.String()
	parts := Split(text, utf16Fits(1000))
	checkParts(t, text, parts, 1000)
}

// checkParts verifies that every part fits, that fences are balanced in each
// part, and that no non-space text was lost or reordered.
func checkParts(t *testing.T, text string, parts []string, limit int) {
	t.Helper()
	fits := utf16Fits(limit)
	for i, p := range parts {
		if !fits(p) {
			t.Errorf("part %d does not fit %d: %d units", i, limit, len(utf16.Encode([]rune(p))))
		}
		if !utf8.ValidString(p) {
			t.Errorf("part %d is not valid UTF-8", i)
		}
		if i < len(parts)-1 {
			if _, _, open := OpenFence(p); open {
				t.Errorf("part %d ends inside a code block:\n%s", i, p)
			}
		}
	}
	orig := dropSpace(text)
	joined := dropSpace(strings.Join(parts, ""))
	if !isSubsequence(orig, joined) {
		t.Fatalf("parts lost text\norig:   %q\njoined: %q", orig, joined)
	}
}

func dropSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

func isSubsequence(sub, s string) bool {
	for _, r := range sub {
		i := strings.IndexRune(s, r)
		if i < 0 {
			return false
		}
		s = s[i+utf8.RuneLen(r):]
	}
	return true
}

// fuzzBudget is the most time one fuzz input may take: far more than
// splitting 256 KB needs, far less than a quadratic split of it.
const fuzzBudget = 2 * time.Second

// fuzzLimit turns a fuzzed limit into one that leaves room for a reopened
// fence around some text: at least a quarter of the fence lines, so that
// the parts do not repeat a long fence line for every rune (the output
// stays within a few times the input).
func fuzzLimit(text string, limit int) int {
	overhead := 0
	for _, fe := range scanFences(text, 0, nil) {
		overhead = max(overhead, len(utf16.Encode([]rune(fe.open)))+len(fe.closer)+4)
	}
	return max(limit%500, overhead/4) + overhead + 2
}

// FuzzSplit splits texts of up to about 256 KB (rep kilobytes of text
// repeated), each within fuzzBudget.
func FuzzSplit(f *testing.F) {
	f.Add("hello world", 5, uint8(0))
	f.Add("a\n\nb\n\nc", 2, uint8(0))
	f.Add("```go\nx := 1\ny := 2\n```\ntext after", 12, uint8(1))
	f.Add("~~~~\n```\ninner\n```\n~~~~\n", 9, uint8(0))
	f.Add("日本語の文章です。次の文です。", 6, uint8(2))
	f.Add("😀 😀 😀 😀", 3, uint8(0))
	f.Add("```\nunclosed\ncode\nblock", 10, uint8(0))
	f.Add("I will say it again. ", 1800, uint8(255))
	f.Fuzz(func(t *testing.T, text string, limit int, rep uint8) {
		if !utf8.ValidString(text) || len(text) > 4000 {
			t.Skip()
		}
		for len(text) > 0 && len(text) < int(rep)<<10 {
			text += text
		}
		limit = fuzzLimit(text, limit)
		start := time.Now()
		parts := Split(text, utf16Fits(limit))
		if d := time.Since(start); d > fuzzBudget {
			t.Fatalf("%d bytes took %v, more than %v", len(text), d, fuzzBudget)
		}
		checkParts(t, text, parts, limit)
	})
}

func BenchmarkSplit(b *testing.B) {
	var sb strings.Builder
	for range 400 {
		sb.WriteString("Some words in a sentence. And another sentence here.\n\n```go\nfmt.Println(\"x\")\n```\n\n")
	}
	text := sb.String()
	fits := utf16Fits(4096)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Split(text, fits)
	}
}
