package termmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// answer is a streamed answer with every kind of block.
const answer = "# Plan\n" +
	"First a paragraph with **bold** text\nthat runs over two lines.\n\n" +
	"- a list\n- of items\n\n" +
	"1. loose\n\n   with more\n2. second\n\n" +
	"```go\nfunc main() {\n\n\tprintln(\"a blank line above\")\n}\n```\n" +
	"Right after the code.\n\n" +
	"| a | b |\n|---|---|\n| 1 | 2 |\n\n" +
	"## Done\nThe end."

// feed streams text into a new Stream step bytes at a time, returning
// what would be printed: each non-empty chunk of Next and Finish printed
// as lines.
func feed(t *testing.T, r *Renderer, text string, step int) string {
	t.Helper()
	s := NewStream(r)
	var printed []string
	for i := step; i < len(text)+step; i += step {
		if out := s.Next(text[:min(i, len(text))]); out != "" {
			printed = append(printed, out)
		}
	}
	if out := s.Finish(text); out != "" {
		printed = append(printed, out)
	}
	return strings.Join(printed, "\n")
}

func TestStream_Golden(t *testing.T) {
	r := newRenderer(t, 60)
	got := feed(t, r, answer, 1)
	golden(t, "stream.golden", got+"\n")
	for _, step := range []int{3, 17, 64, len(answer)} {
		if other := feed(t, r, answer, step); other != got {
			t.Errorf("fed %d bytes at a time:\n%s\nwant as fed one at a time:\n%s", step, ansi.Strip(other), ansi.Strip(got))
		}
	}
	plain := ansi.Strip(got)
	for _, s := range []string{"Plan", "bold text", "• a list", "1. loose", "with more", "a blank line above", "Right after the code.", "│", "Done"} {
		if !strings.Contains(plain, s) {
			t.Errorf("output lacks %q:\n%s", s, plain)
		}
	}
	if strings.Contains(plain, "```") || strings.Contains(plain, "**") {
		t.Errorf("Markdown syntax printed:\n%s", plain)
	}
}

func TestStream_Next(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // the blocks Next finishes, plain
	}{
		{"OpenParagraph", "one\ntwo\n", nil},
		{"BlankLine", "one\n\ntwo", []string{"one"}},
		{"Indented", "- one\n\n  more\n", nil},
		{"Heading", "# Title\n", []string{"Title"}},
		{"HeadingAfterText", "text\n# Title\nmore", []string{"text", "Title"}},
		{"OpenFence", "```\ncode\n\nmore code\n", nil},
		{"ClosedFence", "```\ncode\n\n```\n", []string{"code"}},
		{"FenceAfterText", "text\n~~~\ncode\n~~~\n", []string{"text", "code"}},
		{"IndentedFence", "- item\n  ```\n  code\n  ```\n", nil},
		{"NotFence", "``` a`b\n\nx", []string{"``` a`b"}},
		{"PartialLine", "one\n\ntwo\n\nthr", []string{"one", "two"}},
	}
	r := newRenderer(t, 60)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(r)
			got := ansi.Strip(s.Next(tt.text))
			var blocks []string
			for _, b := range strings.Split(got, "\n\n") {
				if b = strings.TrimSpace(b); b != "" {
					blocks = append(blocks, b)
				}
			}
			if fmt.Sprint(blocks) != fmt.Sprint(tt.want) {
				t.Errorf("Next(%q) finished %q, want %q", tt.text, blocks, tt.want)
			}
		})
	}
}

func TestStream_Tail(t *testing.T) {
	r := newRenderer(t, 60)
	t.Run("OpenCodeBlock", func(t *testing.T) {
		s := NewStream(r)
		text := "Intro.\n\n```go\nfunc main() {\n\tprintln(1)\n"
		done := ansi.Strip(s.Next(text))
		if !strings.Contains(done, "Intro.") {
			t.Errorf("Next = %q, want the paragraph before the code", done)
		}
		tail := s.Tail(text, 10)
		if !strings.Contains(ansi.Strip(tail), "func main() {") || !strings.Contains(tail, "\x1b[") {
			t.Errorf("Tail = %q, want the open code block, highlighted", tail)
		}
	})
	t.Run("MaxLines", func(t *testing.T) {
		s := NewStream(r)
		var b strings.Builder
		for i := range 50 {
			fmt.Fprintf(&b, "line %d\\\n", i) // hard line breaks: one paragraph
		}
		text := b.String()
		s.Next(text)
		tail := ansi.Strip(s.Tail(text, 5))
		if n := strings.Count(tail, "\n") + 1; n != 5 || !strings.Contains(tail, "line 49") {
			t.Errorf("Tail(5) = %d lines %q, want the last 5", n, tail)
		}
	})
	t.Run("Long", func(t *testing.T) {
		s := NewStream(r)
		text := "```\n" + strings.Repeat("0123456789 abcdefghij\n", 1000)
		s.Next(text)
		tail := ansi.Strip(s.Tail(text, 3))
		if n := strings.Count(tail, "\n") + 1; n != 3 || !strings.Contains(tail, "0123456789 abcdefghij") {
			t.Errorf("Tail(3) of a long block = %q, want its last 3 lines, plain", tail)
		}
	})
	t.Run("Finished", func(t *testing.T) {
		s := NewStream(r)
		s.Next("done\n\n")
		if tail := ansi.Strip(s.Tail("done\n\n", 5)); strings.TrimSpace(tail) != "done" {
			t.Errorf("Tail before the next line = %q, want the last block", tail)
		}
		s.Finish("done\n\n")
		if tail := s.Tail("done\n\n", 5); tail != "" {
			t.Errorf("Tail after Finish = %q, want empty", tail)
		}
	})
}

// TestStream_WorkPerUpdate checks that an update renders only what it
// finished and at most TailRenderMax bytes of the tail: a long answer is
// not rendered again from its start on every token.
func TestStream_WorkPerUpdate(t *testing.T) {
	r := newRenderer(t, 80)
	var b strings.Builder
	for b.Len() < 32<<10 {
		fmt.Fprintf(&b, "Paragraph %d has **some** words in it, and then a few more.\n\n", b.Len())
	}
	text := b.String()
	s := NewStream(r)
	const step = 100
	updates := 0
	for i := step; i <= len(text); i += step {
		s.Next(text[:i])
		s.Tail(text[:i], 20)
		updates++
	}
	s.Finish(text)
	// Every block is rendered once by Next; the tail adds at most one
	// paragraph (shorter than 100 bytes) per update.
	if limit := len(text) + updates*100; r.work > limit {
		t.Errorf("rendered %d bytes for a %d-byte answer in %d updates, want at most %d", r.work, len(text), updates, limit)
	}
}

func TestStream_Restart(t *testing.T) {
	r := newRenderer(t, 60)
	s := NewStream(r)
	s.Next("first answer\n\nmore\n")
	if got := ansi.Strip(s.Next("new\n\nx")); strings.TrimSpace(got) != "new" {
		t.Errorf("after a shorter text Next = %q, want the new text's block", got)
	}
}

func BenchmarkStream_Token(b *testing.B) {
	r := newRenderer(b, 80)
	text := strings.Repeat("Some words of an answer, with **bold** and `code` in it.\n\n", 2000)
	b.ReportAllocs()
	b.ResetTimer()
	s := NewStream(r)
	n := 0
	for b.Loop() {
		n += 8
		if n > len(text) {
			s, n = NewStream(r), 8
		}
		s.Next(text[:n])
		s.Tail(text[:n], 20)
	}
}
