package telegram

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// checkHTML fails the test unless Telegram would accept html and TextLen
// agrees with Telegram's own count.
func checkHTML(t *testing.T, html string) {
	t.Helper()
	if err := telegramtest.ValidateHTML(html); err != nil {
		t.Fatalf("invalid Telegram HTML: %v\n%s", err, html)
	}
	text, _, _ := telegramtest.ParseHTML(html)
	if got, want := TextLen(html), telegramtest.UTF16Len(text); got != want {
		t.Errorf("TextLen = %d, Telegram counts %d\n%s", got, want, html)
	}
}

func TestRender_Golden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "render", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".md")
		t.Run(name, func(t *testing.T) {
			md, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []struct {
				ext    string
				render func(string) string
			}{{".html", Render}, {".txt", PlainText}} {
				got := v.render(string(md))
				golden := strings.TrimSuffix(in, ".md") + v.ext
				if *update {
					if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if got != strings.TrimSuffix(string(want), "\n") {
					t.Errorf("%s differs:\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
				}
			}
			checkHTML(t, Render(string(md)))
		})
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name, md, want string
	}{
		{"Empty", "", ""},
		{"EscapesText", "a < b & c > d", "a &lt; b &amp; c &gt; d"},
		{"RawInlineHTMLIsText", "x <b>y</b>", "x &lt;b&gt;y&lt;/b&gt;"},
		{"EscapesCode", "`<b>&amp;</b>`", "<code>&lt;b&gt;&amp;amp;&lt;/b&gt;</code>"},
		{"AttributeQuote", `[x](https://e.com/?q="a")`, `<a href="https://e.com/?q=%22a%22">x</a>`},
		{"UnsafeLinkIsText", "[x](javascript:alert(1))", "x"},
		{"MailtoLink", "[mail](mailto:a@b.c)", `<a href="mailto:a@b.c">mail</a>`},
		{"NoNestedBold", "# **Bold** title", "<b>Bold title</b>"},
		{"EmptyLinkText", "[](https://e.com)", `<a href="https://e.com">https://e.com</a>`},
		{"InvalidUTF8", "a\xffb\x00c", "a\uFFFDb\uFFFDc"},
		{"Strike", "~~gone~~", "<s>gone</s>"},
		{"Heading", "## Hi", "<b>Hi</b>"},
		{"ThematicBreak", "a\n\n***\n\nb", "a\n\n———\n\nb"},
		{"CodeNoLanguage", "```\nx<y\n```", "<pre>x&lt;y</pre>"},
		{"CodeLanguageEscaped", "```a\"b\nx\n```", `<pre><code class="language-a&quot;b">x</code></pre>`},
		{"EmptyCodeBlockDropped", "```\n```", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(tt.md)
			if got != tt.want {
				t.Errorf("Render(%q) =\n%q\nwant\n%q", tt.md, got, tt.want)
			}
			checkHTML(t, got)
		})
	}
}

// TestRender_Partial renders every prefix of a streamed answer, as the
// adapter does on each edit: each must be valid HTML.
func TestRender_Partial(t *testing.T) {
	full := "# Plan\n\nHere is **bold _nested_ text** and a [link](https://example.com/a_b).\n\n" +
		"```go\nfunc main() {\n\tfmt.Println(\"<hi>\")\n}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote *x*\n\n- item `code`\n  - sub ~~s~~\n"
	for i := range len(full) + 1 {
		if !utf8.ValidString(full[:i]) {
			continue
		}
		html := Render(full[:i])
		if err := telegramtest.ValidateHTML(html); err != nil {
			t.Fatalf("prefix %d %q: %v\n%s", i, full[:i], err, html)
		}
	}
	if got := Render("Some **unfinished"); got != "Some **unfinished" {
		t.Errorf("half-written bold = %q, want it shown as text", got)
	}
	if got := Render("```py\nprint(1"); got != `<pre><code class="language-py">print(1</code></pre>` {
		t.Errorf("open fence = %q, want it closed", got)
	}
}

func TestTextLen(t *testing.T) {
	tests := []struct {
		html string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"<b>abc</b>", 3},
		{"&lt;&gt;&amp;&quot;", 4},
		{"&lt", 1},
		{"&unknown;", 9},
		{"&#x1F600;", 2},
		{"&#65;", 1},
		{"😀", 2},
		{"é", 1},
		{`<a href="https://x.y/?a&amp;b">t</a>`, 1},
		{"<pre><code class=\"language-go\">x</code></pre>", 1},
	}
	for _, tt := range tests {
		if got := TextLen(tt.html); got != tt.want {
			t.Errorf("TextLen(%q) = %d, want %d", tt.html, got, tt.want)
		}
		checkHTML(t, tt.html)
	}
}

func TestRenderReasoning(t *testing.T) {
	if got, want := RenderReasoning("think <hard> & long", 0), "<blockquote expandable>think &lt;hard&gt; &amp; long</blockquote>"; got != want {
		t.Errorf("RenderReasoning = %q, want %q", got, want)
	}
	if got := RenderReasoning("  ", 0); got != "" {
		t.Errorf("RenderReasoning(blank) = %q, want empty", got)
	}
	got := RenderReasoning(strings.Repeat("😀", 100)+"end", 11)
	if want := "<blockquote expandable>…😀😀😀end</blockquote>"; got != want {
		t.Errorf("RenderReasoning(long) = %q, want %q", got, want)
	}
	checkHTML(t, got)
	if n := TextLen(got); n > 11 {
		t.Errorf("TextLen(RenderReasoning(long, 11)) = %d, want <= 11", n)
	}
	if got, want := RenderStatus("Thinking… <4 s>"), "<i>Thinking… &lt;4 s&gt;</i>"; got != want {
		t.Errorf("RenderStatus = %q, want %q", got, want)
	}
	if got := RenderStatus(""); got != "" {
		t.Errorf("RenderStatus(empty) = %q, want empty", got)
	}
}

func TestSplitRendered(t *testing.T) {
	var b strings.Builder
	for i := range 60 {
		b.WriteString("Paragraph with **bold** text, a [link](https://example.com) and `code` — number ")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(".\n\n")
		if i%15 == 0 {
			b.WriteString("```python\n")
			for range 40 {
				b.WriteString("print('<escaped & long line of code>')\n")
			}
			b.WriteString("```\n\n")
		}
	}
	md := b.String()
	for _, limit := range []int{MaxMessageLen, 1000, 300} {
		parts := SplitRendered(md, limit)
		if len(parts) < 2 {
			t.Fatalf("limit %d: %d parts, want several", limit, len(parts))
		}
		for i, p := range parts {
			checkHTML(t, p)
			if n := TextLen(p); n > limit {
				t.Errorf("limit %d: part %d has TextLen %d", limit, i, n)
			}
		}
		// A cut code block is reopened with its language.
		reopened := 0
		for _, p := range parts[1:] {
			if strings.HasPrefix(p, `<pre><code class="language-python">`) {
				reopened++
			}
		}
		if limit <= 1000 && reopened == 0 {
			t.Errorf("limit %d: no part starts with a reopened python block", limit)
		}
	}
	if got := SplitRendered("short *answer*", MaxMessageLen); len(got) != 1 || got[0] != "short <i>answer</i>" {
		t.Errorf("SplitRendered(short) = %q", got)
	}
	if got := SplitRendered("  \n", MaxMessageLen); len(got) != 0 {
		t.Errorf("SplitRendered(blank) = %q, want none", got)
	}
}

// FuzzRender renders and splits Markdown of up to about 256 KB (rep KiB of
// md repeated), each input within fuzzBudget.
func FuzzRender(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "render", "*.md"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b), 200, uint8(0))
		}
	}
	f.Add("**a *b `c` d* e** <x> &amp; [l](http://x)", 10, uint8(0))
	f.Add("- a\n  > q\n  > ```\n  > c\n", 5, uint8(1))
	f.Add("| a | b |\n|---|---|\n| <x> | & |", 8, uint8(3))
	f.Fuzz(func(t *testing.T, md string, limit int, rep uint8) {
		if len(md) > 3000 {
			t.Skip()
		}
		md = grow(md, rep)
		start := time.Now()
		html := Render(md)
		plain := PlainText(md)
		limit = 64 + max(limit%2000, 0)
		parts := SplitRendered(md, limit)
		if d := time.Since(start); d > fuzzBudget {
			t.Fatalf("%d bytes took %v, more than %v", len(md), d, fuzzBudget)
		}
		checkHTML(t, html)
		if !utf8.ValidString(plain) {
			t.Fatalf("PlainText(%q) is not valid UTF-8", md)
		}
		for i, p := range parts {
			checkHTML(t, p)
			if n := TextLen(p); n > limit {
				t.Fatalf("part %d: TextLen %d > limit %d\n%s", i, n, limit, p)
			}
		}
	})
}

func BenchmarkRender(b *testing.B) {
	md, err := os.ReadFile(filepath.Join("testdata", "render", "code.md"))
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat(string(md)+"\n\n", 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Render(text)
	}
}

func BenchmarkSplitRendered(b *testing.B) {
	var sb strings.Builder
	for range 300 {
		sb.WriteString("Paragraph with **bold** text and `code`. Another sentence.\n\n```go\nfmt.Println(\"x\")\n```\n\n")
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		SplitRendered(text, MaxMessageLen)
	}
}
