package discord

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/sessions"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func paragraphs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Paragraph %d. The quick brown fox jumps over the lazy dog, again and again, until the paragraph is long enough to matter.\n\n", i+1)
	}
	return b.String()
}

func codeBlock(lines int) string {
	var b strings.Builder
	b.WriteString("Here is the code:\n\n```go\n")
	for i := range lines {
		fmt.Fprintf(&b, "fmt.Println(\"line %d of a long program that prints things\")\n", i+1)
	}
	b.WriteString("```\n\nThat is all.")
	return b.String()
}

func reasoningLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Step %d: consider whether `x` holds, then weigh the alternatives carefully.\n", i+1)
	}
	return b.String()
}

func TestRenderParts_Golden(t *testing.T) {
	tests := []struct {
		name string
		v    sessions.View
	}{
		{"empty", sessions.View{}},
		{"short", sessions.View{Content: "Hello **world**.", Final: true}},
		{"status_only", sessions.View{Status: "Thinking… 4 s"}},
		{"open_fence", sessions.View{Content: "Sure:\n\n```python\nprint('hi')\nfor i in range(3):", Status: "Writing…"}},
		{"long_paragraphs", sessions.View{Content: paragraphs(40), Status: "(stopped)"}},
		{"long_code", sessions.View{Content: codeBlock(80), Final: true}},
		{"collapsed_reasoning", sessions.View{Content: "The answer is 42.", Reasoning: reasoningLines(12), ReasoningMode: sessions.ReasoningCollapsed, Status: "Thinking… 9 s"}},
		{"collapsed_reasoning_no_content", sessions.View{Reasoning: "Let me think about `this`.\nFirst, the premise.", ReasoningMode: sessions.ReasoningCollapsed, Status: "Thinking… 2 s"}},
		{"full_reasoning", sessions.View{Content: "Done.", Reasoning: reasoningLines(3), ReasoningMode: sessions.ReasoningFull}},
		{"full_reasoning_trimmed", sessions.View{Content: paragraphs(10), Reasoning: reasoningLines(40), ReasoningMode: sessions.ReasoningFull}},
		{"full_reasoning_no_room", sessions.View{Content: paragraphs(30), Reasoning: reasoningLines(5), ReasoningMode: sessions.ReasoningFull, Status: "Writing…"}},
		{"hidden_reasoning", sessions.View{Content: "Visible.", Reasoning: "secret", ReasoningMode: sessions.ReasoningHidden}},
		{"long_status", sessions.View{Content: "Partial", Status: "⚠️ The model provider refused: " + strings.Repeat("very long error text ", 20)}},
		{"wide_runes", sessions.View{Content: strings.Repeat("日本語のテキスト。", 300), Final: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := RenderParts(tt.v, MessageLimit)
			var b strings.Builder
			for i, p := range parts {
				n := utf8.RuneCountInString(p)
				if n > MessageLimit {
					t.Errorf("part %d has %d characters", i, n)
				}
				fmt.Fprintf(&b, "===== part %d (%d characters) =====\n%s\n", i+1, n, p)
			}
			got := b.String()
			path := filepath.Join("testdata", "render", tt.name+".golden")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("RenderParts differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// TestRenderParts_StableCuts checks that a growing answer keeps the parts
// already sent: streaming never has to re-cut an earlier message.
func TestRenderParts_StableCuts(t *testing.T) {
	full := paragraphs(40) + codeBlock(60)
	final := RenderParts(sessions.View{Content: full, Final: true}, MessageLimit)
	for n := 1000; n < len(full); n += 397 {
		prefix := full[:n]
		parts := RenderParts(sessions.View{Content: prefix, Status: "Writing…"}, MessageLimit)
		for i := 0; i < len(parts)-1; i++ {
			got := strings.TrimSuffix(parts[i], "\n-# Writing…")
			if got != final[i] {
				t.Fatalf("at %d bytes, part %d differs from the final one:\n%q\nvs\n%q", n, i, got, final[i])
			}
		}
	}
}

func TestRenderParts_Reasoning(t *testing.T) {
	tests := []struct {
		name string
		v    sessions.View
		want []string // substrings of the first part
		not  []string
	}{
		{"Collapsed", sessions.View{Content: "A", Reasoning: strings.Repeat("word ", 200) + "end", ReasoningMode: sessions.ReasoningCollapsed},
			[]string{"-# 💭 …", "word end\nA"}, []string{"\n-# word"}},
		{"FullEachLine", sessions.View{Content: "A", Reasoning: "one\n\ntwo", ReasoningMode: sessions.ReasoningFull},
			[]string{"-# one\n-# two\nA"}, nil},
		{"EscapesBackticks", sessions.View{Content: "A", Reasoning: "```go", ReasoningMode: sessions.ReasoningFull},
			[]string{"-# \\`\\`\\`go\nA"}, nil},
		{"Hidden", sessions.View{Content: "A", Reasoning: "x", ReasoningMode: sessions.ReasoningHidden},
			nil, []string{"-#"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := RenderParts(tt.v, MessageLimit)
			if len(parts) != 1 {
				t.Fatalf("got %d parts, want 1", len(parts))
			}
			for _, w := range tt.want {
				if !strings.Contains(parts[0], w) {
					t.Errorf("%q lacks %q", parts[0], w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(parts[0], w) {
					t.Errorf("%q has %q", parts[0], w)
				}
			}
			if n := utf8.RuneCountInString(parts[0]); n > MessageLimit {
				t.Errorf("%d characters", n)
			}
		})
	}
}

// isSubsequence reports whether every rune of want appears in got, in
// order.
func isSubsequence(want, got string) bool {
	g := []rune(got)
	j := 0
	for _, r := range want {
		for j < len(g) && g[j] != r {
			j++
		}
		if j == len(g) {
			return false
		}
		j++
	}
	return true
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// FuzzRenderParts renders views whose content and reasoning are up to
// about 256 KB (rep KiB of them repeated), each within fuzzBudget.
func FuzzRenderParts(f *testing.F) {
	f.Add(paragraphs(30), reasoningLines(10), "Thinking… 3 s", 2000, uint8(1), uint8(0))
	f.Add(codeBlock(50), "", "", 2000, uint8(0), uint8(0))
	f.Add("```\nunclosed "+strings.Repeat("x ", 1500), "r", "s", 500, uint8(2), uint8(1))
	f.Add(strings.Repeat("🙂", 5000), strings.Repeat("🤔", 3000), strings.Repeat("⚠️", 300), 2000, uint8(2), uint8(0))
	f.Add("a", "b", "c", 40, uint8(1), uint8(0))
	f.Add("I will say it again. ", "and again ", "", 2000, uint8(1), uint8(255))
	f.Fuzz(func(t *testing.T, content, reasoning, status string, limit int, mode, rep uint8) {
		if limit < 40 || limit > 4000 || !utf8.ValidString(content) ||
			len(content) > 20000 || len(reasoning) > 20000 || len(status) > 2000 {
			t.Skip()
		}
		content, reasoning = grow(content, rep), grow(reasoning, rep)
		modes := []sessions.ReasoningMode{sessions.ReasoningHidden, sessions.ReasoningCollapsed, sessions.ReasoningFull}
		v := sessions.View{Content: content, Reasoning: reasoning, Status: status, ReasoningMode: modes[int(mode)%3]}
		start := time.Now()
		parts := RenderParts(v, limit)
		if d := time.Since(start); d > fuzzBudget {
			t.Fatalf("%d bytes took %v, more than %v", len(content), d, fuzzBudget)
		}
		for i, p := range parts {
			if n := utf8.RuneCountInString(p); n > limit {
				t.Fatalf("part %d has %d characters, limit %d", i, n, limit)
			}
		}
		// No content is lost: without reasoning and status, the parts hold
		// every non-space character of the answer, in order.
		bare := RenderParts(sessions.View{Content: content}, limit)
		if !isSubsequence(stripSpace(content), stripSpace(strings.Join(bare, ""))) {
			t.Fatalf("content lost:\n%q\nparts %q", content, bare)
		}
		// Reasoning and status never move the answer: the content parts are
		// the same with them.
		if len(parts) < len(bare) {
			t.Fatalf("%d parts with reasoning and status, %d without", len(parts), len(bare))
		}
		for i := range bare {
			if !strings.Contains(parts[i], bare[i]) {
				t.Fatalf("part %d %q does not contain the bare part %q", i, parts[i], bare[i])
			}
		}
	})
}
