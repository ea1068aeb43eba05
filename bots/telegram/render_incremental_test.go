package telegram

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/sessions"
)

// growingDoc is an answer with the constructs whose rendering depends on
// what follows them: code blocks cut across parts (one closed by a longer
// fence, one left open at the end), tables, nested lists, a setext
// heading, a link reference defined after its use, emphasis across lines.
func growingDoc(sections int) string {
	var b strings.Builder
	for i := range sections {
		fmt.Fprintf(&b, "Section %d\n---\n\nText with **bold\nacross lines** and a [ref][r%d] & <raw>.\n\n", i, i)
		switch i % 5 {
		case 0:
			b.WriteString("```python\n")
			for j := range 25 {
				fmt.Fprintf(&b, "print('%d < %d')\n", j, i)
			}
			b.WriteString("```\n\n")
		case 1:
			b.WriteString("| name | value |\n|:--|--:|\n| a | 1 |\n| b & c | 22 |\n\n")
		case 2:
			b.WriteString("- one\n- two\n  - nested *x*\n    1. deep\n3. three\n\n> quoted\n> lines\n\n")
		case 3:
			b.WriteString("~~~\n" + strings.Repeat("tilde code\n", 20) + "\n~~~~~\n\n")
		case 4:
			b.WriteString(strings.Repeat("A sentence that repeats itself. ", 30) + "\n\n")
		}
		fmt.Fprintf(&b, "[r%d]: https://example.com/%d\n\n", i, i)
	}
	b.WriteString("```go\nfunc main() {\n\tfmt.Println(\"<open>\")\n")
	return b.String()
}

// views are the views of an answer whose content and reasoning grow by
// step bytes, the last one final.
func views(content, reasoning string, step int, mode sessions.ReasoningMode) []sessions.View {
	var vs []sessions.View
	for n := 0; n < len(content); {
		n = min(n+step, len(content))
		for n < len(content) && !utf8.RuneStart(content[n]) {
			n++
		}
		r := reasoning[:min(n, len(reasoning))]
		for len(r) > 0 && !utf8.ValidString(r) {
			r = r[:len(r)-1]
		}
		vs = append(vs, sessions.View{Content: content[:n], Reasoning: r, ReasoningMode: mode, Status: "Writing…"})
	}
	last := vs[len(vs)-1]
	last.Status, last.Final = "", true
	return append(vs, last)
}

// checkIncremental shows every view with one partRenderer, as a reply does,
// and fails unless each layout is the one a fresh renderer gives. It
// compares about 100 views, evenly spread, and the last: a part made final
// too early stays wrong, so the later comparisons find it.
func checkIncremental(t *testing.T, vs []sessions.View, limit int) {
	t.Helper()
	pr := partRenderer{limit: limit}
	stride := max(1, len(vs)/100)
	for i, v := range vs {
		got := layout(v, pr.render(v.Content))
		if i%stride != 0 && i < len(vs)-1 {
			continue
		}
		fresh := partRenderer{limit: limit}
		want := layout(v, fresh.render(v.Content))
		if len(got) != len(want) {
			t.Fatalf("view %d (%d bytes): %d pieces incrementally, %d in full", i, len(v.Content), len(got), len(want))
		}
		for j := range got {
			if got[j].html != want[j].html {
				t.Fatalf("view %d (%d bytes), piece %d:\nincremental %q\nfull        %q", i, len(v.Content), j, got[j].html, want[j].html)
			}
			if got[j].plain() != want[j].plain() {
				t.Fatalf("view %d, piece %d: plain text differs", i, j)
			}
		}
	}
}

func TestPartRenderer_Incremental(t *testing.T) {
	doc := growingDoc(7)
	reasoning := strings.Repeat("Let me think about <this> & that. ", 300)
	tests := []struct {
		name  string
		step  int
		limit int
		mode  sessions.ReasoningMode
	}{
		{"SmallSteps", 7, 300, sessions.ReasoningHidden},
		{"Tokens", 23, 500, sessions.ReasoningCollapsed},
		{"Kilobytes", 1024, 300, sessions.ReasoningFull},
		{"MessageLimit", 61, MaxMessageLen, sessions.ReasoningCollapsed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkIncremental(t, views(doc, reasoning, tt.step, tt.mode), tt.limit)
		})
	}
}

// TestPartRenderer_Restart shows that content that does not extend the
// previous content is rendered from the start.
func TestPartRenderer_Restart(t *testing.T) {
	doc := growingDoc(6)
	pr := partRenderer{limit: 300}
	pr.render(doc)
	for _, md := range []string{"Other " + doc[6:], doc[:len(doc)/2], ""} {
		fresh := partRenderer{limit: 300}
		if got, want := pr.render(md), fresh.render(md); !slices.Equal(got, want) {
			t.Errorf("render(%.20q…) = %q, want %q", md, got, want)
		}
	}
}

// TestRenderReasoning_Long checks that a long reasoning shows its newest
// end, as much of it as the limit allows.
func TestRenderReasoning_Long(t *testing.T) {
	long := strings.Repeat("older thoughts ", 5000) + "the newest <thought>"
	got := RenderReasoning(long, 100)
	checkHTML(t, got)
	if !strings.HasSuffix(got, "the newest &lt;thought&gt;</blockquote>") || !strings.Contains(got, "…") {
		t.Errorf("RenderReasoning(long) = %q, want the newest end after …", got)
	}
	if n := TextLen(got); n != 100 {
		t.Errorf("TextLen = %d, want 100", n)
	}
	if got := RenderReasoning(strings.Repeat("x", 1000)+strings.Repeat(" ", 400), 100); got != "<blockquote expandable>…</blockquote>" {
		t.Errorf("RenderReasoning(blank end) = %q", got)
	}
}

// fuzzBudget is the most time one fuzz input may take: far more than
// rendering 256 KB needs, far less than a quadratic split of it.
const fuzzBudget = 4 * time.Second

// grow repeats md until it is at least rep KiB long.
func grow(md string, rep uint8) string {
	for len(md) > 0 && len(md) < int(rep)<<10 {
		md += md
	}
	return md
}

// FuzzPartRenderer checks that rendering a growing answer part by part
// gives what rendering it whole gives, for answers up to about 256 KB (rep
// KiB of md repeated) grown by step bytes, each within fuzzBudget.
func FuzzPartRenderer(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "render", "*.md"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b), 300, uint16(400), uint8(0))
		}
	}
	f.Add(growingDoc(3), 200, uint16(60), uint8(0))
	f.Add("```\nopen code <x>\n", 100, uint16(1000), uint8(8))
	f.Fuzz(func(t *testing.T, md string, limit int, step uint16, rep uint8) {
		if len(md) > 3000 {
			t.Skip()
		}
		md = grow(md, rep)
		limit = 64 + max(limit%2000, 0)
		pr := partRenderer{limit: limit}
		var got []renderedPart
		var spent time.Duration // in pr.render: all updates together
		checks := 0
		for n := 0; n < len(md); {
			n = min(n+max(1+int(step), len(md)>>6), len(md)) // at most ~64 updates
			start := time.Now()
			got = pr.render(md[:n])
			spent += time.Since(start)
			if len(md) < 4<<10 || n == len(md) || checks*len(md) < n*4 {
				checks++
				start := time.Now()
				fresh := partRenderer{limit: limit}
				want := fresh.render(md[:n])
				if d := time.Since(start); d > fuzzBudget {
					t.Fatalf("rendering %d bytes took %v, more than %v", n, d, fuzzBudget)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("at %d of %d bytes, limit %d:\nincremental %q\nfull        %q", n, len(md), limit, got, want)
				}
			}
		}
		if spent > fuzzBudget {
			t.Fatalf("growing %d bytes took %v, more than %v", len(md), spent, fuzzBudget)
		}
		for i, p := range got {
			checkHTML(t, p.html)
			if n := TextLen(p.html); n > limit {
				t.Fatalf("part %d: TextLen %d > limit %d", i, n, limit)
			}
		}
	})
}
