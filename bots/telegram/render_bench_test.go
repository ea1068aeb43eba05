package telegram

import (
	"fmt"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/sessions"
)

// answerOf returns n bytes of a long answer as models write them:
// paragraphs with inline markup, lists, tables and code blocks longer
// than a message.
func answerOf(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "## Section %d\n\nParagraph %d with **bold**, _italic_, `code` and a [link](https://example.com/%d). The quick brown fox jumps over the lazy dog. Again & again <here>.\n\n", i, i, i)
		switch i % 4 {
		case 0:
			b.WriteString("- item one\n- item **two**\n  - nested `three`\n1. first\n2. second\n\n")
		case 1:
			b.WriteString("| name | value |\n|:-----|------:|\n| a | 1 |\n| b <c> | 22 |\n\n")
		case 2:
			b.WriteString("```python\n")
			for j := range 120 {
				fmt.Fprintf(&b, "print('line %d of a long program <x> & y')\n", j)
			}
			b.WriteString("```\n\n")
		case 3:
			b.WriteString("> a quote with *emphasis*\n> on two lines\n\n")
		}
	}
	return b.String()[:n]
}

// BenchmarkLayout_Grow1KB is the rendering cost of one update of a 1 MB
// answer that grew by 1 KB.
func BenchmarkLayout_Grow1KB(b *testing.B) {
	const start = 1 << 20
	full := answerOf(start + (b.N+1)*1024)
	var pr partRenderer
	layout(sessions.View{Content: full[:start]}, pr.render(full[:start]))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := sessions.View{Content: full[:start+(i+1)*1024]}
		layout(v, pr.render(v.Content))
	}
}

func BenchmarkSplitRendered_1MB(b *testing.B) { benchSplitRendered(b, 1<<20) }
func BenchmarkSplitRendered_2MB(b *testing.B) { benchSplitRendered(b, 2<<20) }

func benchSplitRendered(b *testing.B, n int) {
	md := answerOf(n)
	b.SetBytes(int64(n))
	for b.Loop() {
		SplitRendered(md, MaxMessageLen)
	}
}

// BenchmarkLayout_StreamAnswer is the rendering cost of one 3 KB answer
// shown as it streams, 300 bytes (a second of tokens) more each update:
// what one answer of the load test costs.
func BenchmarkLayout_StreamAnswer(b *testing.B) {
	full := answerOf(3 << 10)
	for b.Loop() {
		var pr partRenderer
		for n := 300; ; n += 300 {
			v := sessions.View{Content: full[:min(n, len(full))]}
			layout(v, pr.render(v.Content))
			if n >= len(full) {
				break
			}
		}
	}
}
