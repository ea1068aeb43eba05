package mdsplit

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// mixedDoc is a Markdown answer with every construct the splitter treats
// specially: paragraphs, headings, lists, a table, CJK sentences, emoji,
// code blocks (backtick and tilde, closed by a longer fence, indented,
// with CRLF ends, left open at the end) and runs of blank lines.
func mixedDoc(sections int) string {
	var b strings.Builder
	for i := range sections {
		fmt.Fprintf(&b, "## Section %d\n\nSome words in a sentence. Another sentence here! And a question? ", i)
		b.WriteString(strings.Repeat("word ", 40) + "\n\n")
		switch i % 8 {
		case 0:
			b.WriteString("```go\n" + strings.Repeat("fmt.Println(\"x\")\n", 30) + "```\n\n")
		case 1:
			b.WriteString("- item one\n- item two\n  - nested item\n1. first\n2. second\n\n")
		case 2:
			b.WriteString("| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n")
		case 3:
			b.WriteString("日本語の文章です。次の文です。" + strings.Repeat("😀 ", 30) + "\n\n")
		case 4:
			b.WriteString("~~~~ sh\n" + strings.Repeat("ls -l\n", 20) + "\n\n\n~~~~~~\n")
		case 5:
			b.WriteString("  ```\r\n" + strings.Repeat("code line\r\n", 25) + "  ```\r\n\r\n")
		case 6:
			b.WriteString(strings.Repeat("\n", 40) + "```py\n" + strings.Repeat("print(1)\n", 10) + "\n\n````\n")
		case 7:
			b.WriteString(strings.Repeat("loooooong", 200) + "\n\n")
		}
	}
	b.WriteString("```js\nconsole.log(1)\nconsole.log(2)\n")
	return b.String()
}

// checkGrowth feeds text to a Stream in steps of the given sizes
// (cycling), and fails unless the calls return exactly what a fresh Split
// returns. It compares about 400 calls, evenly spread, and the last: a part
// made final too early stays wrong, so the later comparisons find it.
func checkGrowth(t *testing.T, text string, steps []int, fits func(string) bool, closeFence bool) {
	t.Helper()
	avg := 0
	for _, s := range steps {
		avg += s
	}
	stride := max(1, len(text)*len(steps)/avg/400)
	st := &Stream{Fits: fits, CloseFence: closeFence}
	for i, n := 0, 0; n < len(text); i++ {
		n = min(n+steps[i%len(steps)], len(text))
		for n < len(text) && !utf8.RuneStart(text[n]) {
			n++
		}
		got := st.Split(text[:n])
		if i%stride != 0 && n < len(text) {
			continue
		}
		want := (&Stream{Fits: fits, CloseFence: closeFence}).Split(text[:n])
		if !slices.Equal(got, want) {
			for j := range min(len(got), len(want)) {
				if got[j] != want[j] {
					t.Fatalf("at %d bytes, part %d of %d differs:\nincremental %q\nfull        %q", n, j, len(want), got[j], want[j])
				}
			}
			t.Fatalf("at %d bytes: %d parts incrementally, %d in full", n, len(got), len(want))
		}
	}
}

func TestStream_Split_Growth(t *testing.T) {
	small := mixedDoc(8)
	large := mixedDoc(40)
	runaway := strings.Repeat("I will say it again and again. ", 800)
	tests := []struct {
		name  string
		text  string
		limit int
		steps []int
	}{
		{"ByteByByte", small, 300, []int{1}},
		{"SmallSteps", large, 500, []int{7, 1, 13}},
		{"Kilobytes", large, 1800, []int{1024}},
		{"Uneven", large, 1000, []int{1, 300, 5, 2048, 64}},
		{"TinyLimit", small, 40, []int{3, 50}},
		{"Runaway", runaway, 1800, []int{31, 1000}},
		{"OneLine", strings.Repeat("x", 20000), 1000, []int{17, 999}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, closeFence := range []bool{false, true} {
				checkGrowth(t, tt.text, tt.steps, utf16Fits(tt.limit), closeFence)
			}
		})
	}
}

// TestStream_Split_Random grows random Markdown-like texts by random steps:
// short lines full of fences, and long lines of words and spaces.
func TestStream_Split_Random(t *testing.T) {
	short := []string{"```", "~~~", "````", "```go", "\n", "\n\n", " ", "word", "x. ", "# h", "  ", "。", "😀", "- ", "\r\n", "|a|b|\n|-|-|\n"}
	long := []string{"word", " ", "      ", "x. ", "。", "😀", "```", "\t", "a!", "\u00a0", "\r"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 60 {
		var b strings.Builder
		for range 300 + r.IntN(700) {
			if i%2 == 0 {
				b.WriteString(short[r.IntN(len(short))])
			} else if r.IntN(400) == 0 {
				b.WriteString("\n")
			} else {
				b.WriteString(long[r.IntN(len(long))])
			}
		}
		steps := []int{1 + r.IntN(20), 1 + r.IntN(200), 1 + r.IntN(3)}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkGrowth(t, b.String(), steps, utf16Fits(20+r.IntN(300)), i%4 < 2)
		})
	}
}

// TestStream_Split_Restart shows that a text that does not extend the
// previous one is split from the start.
func TestStream_Split_Restart(t *testing.T) {
	fits := utf16Fits(300)
	st := &Stream{Fits: fits}
	text := mixedDoc(10)
	st.Split(text)
	changed := "Changed. " + text[9:]
	if got, want := st.Split(changed), Split(changed, fits); !slices.Equal(got, want) {
		t.Errorf("after a change: %q\nwant %q", got, want)
	}
	short := text[:len(text)/3]
	if got, want := st.Split(short), Split(short, fits); !slices.Equal(got, want) {
		t.Errorf("after shrinking: %q\nwant %q", got, want)
	}
}

// TestStream_Split_WorkPerUpdate counts what fits sees: once a long answer
// has been split, each kilobyte appended costs a bounded amount of work,
// however long the answer.
func TestStream_Split_WorkPerUpdate(t *testing.T) {
	text := mixedDoc(400) // about 400 KB
	seen := 0
	fits := utf16Fits(1800)
	st := &Stream{Fits: func(p string) bool { seen += len(p); return fits(p) }}
	start := len(text) / 2
	st.Split(text[:start])
	for n := start + 1024; n < len(text); n += 1024 {
		seen = 0
		st.Split(text[:n])
		if seen > 200<<10 {
			t.Fatalf("at %d bytes, one update passed %d bytes to fits", n, seen)
		}
	}
	// A full split passes each byte to fits a bounded number of times.
	seen = 0
	Split(text, st.Fits)
	if seen > 40*len(text) {
		t.Errorf("a full split of %d bytes passed %d bytes to fits", len(text), seen)
	}
}

// FuzzStream checks that splitting a growing text gives the parts a full
// split gives, for texts up to about 256 KB (rep kilobytes of text
// repeated) grown by step bytes.
func FuzzStream(f *testing.F) {
	f.Add("hello world. ", 5, uint16(3), uint8(0), false)
	f.Add("```go\nx := 1\n```\ntext after\n\n", 12, uint16(7), uint8(2), true)
	f.Add("~~~~\n```\ninner\n```\n~~~~~\n", 9, uint16(1), uint8(1), false)
	f.Add("日本語の文章です。次の文です。😀 ", 6, uint16(100), uint8(4), true)
	f.Add("```\nunclosed\n\n\n", 40, uint16(2000), uint8(8), true)
	f.Fuzz(func(t *testing.T, text string, limit int, step uint16, rep uint8, closeFence bool) {
		if !utf8.ValidString(text) || len(text) > 4000 || strings.TrimSpace(text) == "" {
			t.Skip()
		}
		for len(text) < int(rep)<<10 {
			text += text
		}
		limit = fuzzLimit(text, limit)
		fits := utf16Fits(limit)
		st := &Stream{Fits: fits, CloseFence: closeFence}
		var got []string
		var spent time.Duration // in st.Split: all updates together
		checks := 0
		for n := 0; n < len(text); {
			n = min(n+max(1+int(step), len(text)>>6), len(text)) // at most ~64 updates
			for n < len(text) && !utf8.RuneStart(text[n]) {
				n++
			}
			start := time.Now()
			got = st.Split(text[:n])
			spent += time.Since(start)
			// Compare every step of small texts, some steps of large ones.
			if len(text) < 8<<10 || n == len(text) || checks*len(text) < n*8 {
				checks++
				start := time.Now()
				want := (&Stream{Fits: fits, CloseFence: closeFence}).Split(text[:n])
				if d := time.Since(start); d > fuzzBudget {
					t.Fatalf("a split of %d bytes took %v, more than %v", n, d, fuzzBudget)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("at %d of %d bytes, limit %d: incremental %q\nfull %q", n, len(text), limit, got, want)
				}
			}
		}
		if spent > fuzzBudget {
			t.Fatalf("growing %d bytes took %v, more than %v", len(text), spent, fuzzBudget)
		}
		if !closeFence {
			checkParts(t, text, got, limit)
		}
	})
}

// TestStream_Split_TrailingSpace shows that white space appended to a text
// costs no splitting, and that the parts returned are the caller's.
func TestStream_Split_TrailingSpace(t *testing.T) {
	text := mixedDoc(4)
	calls := 0
	fits := utf16Fits(300)
	st := &Stream{Fits: func(p string) bool { calls++; return fits(p) }}
	want := st.Split(text)
	want[0] = "changed by the caller"
	for _, space := range []string{" ", "\n\n", "\t\r\n", strings.Repeat("\n", 5000)} {
		text += space
		calls = 0
		got := st.Split(text)
		if calls != 0 {
			t.Errorf("appending %q: fits called %d times", space, calls)
		}
		if got[0] == want[0] || !slices.Equal(got[1:], want[1:]) {
			t.Errorf("appending %q: parts changed", space)
		}
	}
	if got, want := st.Split(text+"x"), Split(text+"x", fits); !slices.Equal(got, want) {
		t.Errorf("after more text: %q\nwant %q", got, want)
	}
}
