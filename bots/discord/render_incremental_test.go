package discord

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/sessions"
)

// fuzzBudget is the most time one fuzz input may take: far more than
// rendering 256 KB needs, far less than a quadratic split of it.
const fuzzBudget = 2 * time.Second

// grow repeats s until it is at least rep KiB long.
func grow(s string, rep uint8) string {
	for len(s) > 0 && len(s) < int(rep)<<10 {
		s += s
	}
	return s
}

// growingAnswer has code blocks longer than a message (one closed by a
// longer fence, one still open at the end), lists, tables and long lines.
func growingAnswer(sections int) string {
	var b strings.Builder
	for i := range sections {
		fmt.Fprintf(&b, "## Part %d\n\nSome text with `code` and **bold**. ", i)
		b.WriteString(strings.Repeat("More words follow here. ", 10) + "\n\n")
		switch i % 4 {
		case 0:
			b.WriteString(codeBlock(40) + "\n\n")
		case 1:
			b.WriteString("- one\n- two\n  - three\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n")
		case 2:
			b.WriteString("~~~ sh\n" + strings.Repeat("echo hello\n", 60) + "~~~~~\n\n")
		case 3:
			b.WriteString(strings.Repeat("runaway ", 400) + "\n\n")
		}
	}
	return b.String() + "```python\nprint('still writing')\n"
}

// checkGrowth shows views of content growing by step bytes through one
// renderer, as a reply does, and fails unless each gives what RenderParts
// gives. It compares about 200 views, evenly spread, and the last.
func checkGrowth(t *testing.T, content, reasoning string, step, limit int, mode sessions.ReasoningMode) {
	t.Helper()
	var rd renderer
	calls := len(content) / step
	for i, n := 0, 0; n < len(content); i++ {
		n = min(n+step, len(content))
		for n < len(content) && !utf8.RuneStart(content[n]) {
			n++
		}
		v := sessions.View{Content: content[:n], Reasoning: reasoning[:min(n, len(reasoning))], ReasoningMode: mode, Status: "Writing…"}
		if n == len(content) {
			v.Status, v.Final = "", true
		}
		got := texts(rd.parts(v, limit))
		if i%max(1, calls/200) != 0 && !v.Final {
			continue
		}
		if want := RenderParts(v, limit); !slices.Equal(got, want) {
			t.Fatalf("at %d bytes: renderer gives %q\nRenderParts %q", n, got, want)
		}
	}
}

func TestRenderer_Parts(t *testing.T) {
	answer := growingAnswer(12)
	reasoning := reasoningLines(200)
	tests := []struct {
		name  string
		step  int
		limit int
		mode  sessions.ReasoningMode
	}{
		{"Tokens", 11, MessageLimit, sessions.ReasoningCollapsed},
		{"SmallLimit", 17, 300, sessions.ReasoningFull},
		{"Kilobytes", 1024, MessageLimit, sessions.ReasoningHidden},
		{"Uneven", 333, 700, sessions.ReasoningFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGrowth(t, answer, reasoning, tt.step, tt.limit, tt.mode)
		})
	}
}

// TestRenderer_Parts_Restart shows that content that does not extend the
// previous content, or another limit, is rendered from the start.
func TestRenderer_Parts_Restart(t *testing.T) {
	answer := growingAnswer(6)
	var rd renderer
	rd.parts(sessions.View{Content: answer}, MessageLimit)
	for _, tc := range []struct {
		content string
		limit   int
	}{
		{"Other " + answer[6:], MessageLimit},
		{answer[:len(answer)/2], MessageLimit},
		{answer, 500},
		{"", 500},
	} {
		v := sessions.View{Content: tc.content, Final: true}
		if got, want := texts(rd.parts(v, tc.limit)), RenderParts(v, tc.limit); !slices.Equal(got, want) {
			t.Errorf("parts(%.20q…, %d) = %q, want %q", tc.content, tc.limit, got, want)
		}
	}
}

// TestRenderParts_LongReasoning checks that a long reasoning shows its
// newest end in both modes.
func TestRenderParts_LongReasoning(t *testing.T) {
	reasoning := reasoningLines(5000) + "The newest thought."
	for _, mode := range []sessions.ReasoningMode{sessions.ReasoningCollapsed, sessions.ReasoningFull} {
		parts := RenderParts(sessions.View{Content: "A", Reasoning: reasoning, ReasoningMode: mode}, MessageLimit)
		if len(parts) != 1 || !strings.Contains(parts[0], "…") || !strings.HasSuffix(parts[0], "The newest thought.\nA") {
			t.Errorf("%s: parts = %q, want the newest reasoning after …, then the answer", mode, parts)
		}
		if n := utf8.RuneCountInString(parts[0]); n > MessageLimit {
			t.Errorf("%s: %d characters", mode, n)
		}
	}
}

// FuzzRenderer checks that rendering a growing answer view by view gives
// what RenderParts gives, for answers up to about 256 KB (rep KiB of
// content repeated) grown by step bytes, each within fuzzBudget.
func FuzzRenderer(f *testing.F) {
	f.Add(growingAnswer(4), 2000, uint16(40), uint8(0))
	f.Add(codeBlock(50), 300, uint16(7), uint8(0))
	f.Add("```\nunclosed "+strings.Repeat("x ", 500), 100, uint16(1), uint8(1))
	f.Add("I will say it again. ", 2000, uint16(1000), uint8(255))
	f.Fuzz(func(t *testing.T, content string, limit int, step uint16, rep uint8) {
		if limit < 40 || limit > 4000 || !utf8.ValidString(content) || len(content) > 20000 {
			t.Skip()
		}
		content = grow(content, rep)
		var rd renderer
		var spent time.Duration // in rd.parts: all updates together
		checks := 0
		for n := 0; n < len(content); {
			n = min(n+max(1+int(step), len(content)>>6), len(content)) // at most ~64 updates
			for n < len(content) && !utf8.RuneStart(content[n]) {
				n++
			}
			v := sessions.View{Content: content[:n], Status: "…"}
			start := time.Now()
			got := texts(rd.parts(v, limit))
			spent += time.Since(start)
			if len(content) < 8<<10 || n == len(content) || checks*len(content) < n*8 {
				checks++
				start := time.Now()
				want := RenderParts(v, limit)
				if d := time.Since(start); d > fuzzBudget {
					t.Fatalf("rendering %d bytes took %v, more than %v", n, d, fuzzBudget)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("at %d of %d bytes, limit %d: renderer %q\nRenderParts %q", n, len(content), limit, got, want)
				}
			}
		}
		if spent > fuzzBudget {
			t.Fatalf("growing %d bytes took %v, more than %v", len(content), spent, fuzzBudget)
		}
	})
}
