package llm

import (
	"strings"
	"testing"
)

// splitWhole is the reference for thinkSplitter: its rules applied to the
// whole text at once, written independently of the streaming code.
func splitWhole(s string, implicit bool) (content, reasoning string) {
	if rest := strings.TrimLeft(s, " \t\r\n"); strings.HasPrefix(rest, "<think>") {
		rest = rest[len("<think>"):]
		if i := strings.Index(rest, "</think>"); i >= 0 {
			return rest[i+len("</think>"):], rest[:i]
		}
		return "", rest
	}
	if implicit {
		if i := strings.Index(s, "</think>"); i >= 0 {
			return s[i+len("</think>"):], s[:i]
		}
	}
	return s, ""
}

// splitPieces runs the streaming splitter over pieces.
func splitPieces(pieces []string, implicit bool) (content, reasoning string, held bool) {
	t := newThinkSplitter(implicit)
	var c, r strings.Builder
	for _, p := range pieces {
		pc, pr := t.push(p)
		// Reasoning never follows content.
		if pr != "" && c.Len() > 0 {
			held = true
		}
		c.WriteString(pc)
		r.WriteString(pr)
	}
	fc, fr := t.flush()
	c.WriteString(fc)
	r.WriteString(fr)
	return c.String(), r.String(), held
}

func TestThinkSplitter(t *testing.T) {
	tests := []struct {
		name          string
		pieces        []string
		implicit      bool
		wantContent   string
		wantReasoning string
	}{
		{"NoThink", []string{"Hello", " world"}, false, "Hello world", ""},
		{"Whole", []string{"<think>a b</think>\n\nHi"}, false, "\n\nHi", "a b"},
		{"SplitTags", []string{"<", "thi", "nk>a", " b</", "think", ">Hi"}, false, "Hi", "a b"},
		{"LeadingSpace", []string{"\n", " <think>", "x</think>y"}, false, "y", "x"},
		{"LookalikeStart", []string{"<thing>"}, false, "<thing>", ""},
		{"PartialOpenAtEnd", []string{"<thi"}, false, "<thi", ""},
		{"Unclosed", []string{"<think>still going</th"}, false, "", "still going</th"},
		{"CloseNoOpen", []string{"a</think>b"}, false, "a</think>b", ""},
		{"CloseNoOpenImplicit", []string{"a</th", "ink>b"}, true, "b", "a"},
		{"ImplicitNeverCloses", []string{"just", " text"}, true, "just text", ""},
		{"ImplicitWithOpen", []string{"<think>x</think>y"}, true, "y", "x"},
		{"SecondBlockIsContent", []string{"<think>x</think>y<think>z</think>"}, false, "y<think>z</think>", "x"},
		{"LongHeldTail", []string{"<think>ab</", "/think>c</think>d"}, false, "d", "ab<//think>c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, r, _ := splitPieces(tt.pieces, tt.implicit)
			if c != tt.wantContent || r != tt.wantReasoning {
				t.Errorf("got content %q reasoning %q, want %q %q", c, r, tt.wantContent, tt.wantReasoning)
			}
			wc, wr := splitWhole(strings.Join(tt.pieces, ""), tt.implicit)
			if c != wc || r != wr {
				t.Errorf("reference disagrees: %q %q", wc, wr)
			}
		})
	}
}

func TestThinkSplitter_NoDelay(t *testing.T) {
	// Models that never think get their text at once.
	tt := newThinkSplitter(false)
	if c, _ := tt.push("Sure"); c != "Sure" {
		t.Errorf("first piece held: %q", c)
	}
	if c, _ := tt.push(" thing"); c != " thing" {
		t.Errorf("second piece held: %q", c)
	}
}

func TestThinkSplitter_ServerReasons(t *testing.T) {
	tt := newThinkSplitter(true)
	if c, r := tt.push("held"); c != "" || r != "" {
		t.Fatalf("implicit mode did not hold: %q %q", c, r)
	}
	if c := tt.serverReasons(); c != "held" {
		t.Errorf("serverReasons released %q", c)
	}
	if c, _ := tt.push(" more"); c != " more" {
		t.Errorf("after serverReasons: %q", c)
	}
}

func TestOmitsThinkOpen(t *testing.T) {
	for model, want := range map[string]bool{
		"deepseek-ai/DeepSeek-R1":                     true,
		"DeepSeek-R1":                                 true,
		"deepseek-ai/DeepSeek-R1-Distill-Llama-70B":   true,
		"Qwen/QwQ-32B":                                true,
		"Qwen/Qwen3-235B-A22B-Thinking-2507":          true,
		"deepseek-ai/DeepSeek-R1-0528-Turbo":          false,
		"deepseek-ai/DeepSeek-V3-0324":                false,
		"meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo": false,
	} {
		if got := OmitsThinkOpen(model); got != want {
			t.Errorf("OmitsThinkOpen(%q) = %v, want %v", model, got, want)
		}
	}
}

// FuzzThinkSplit checks that any split of any text gives what the whole
// text gives: no text lost, duplicated or reordered, tags removed only
// where the rules say, and reasoning never after content.
func FuzzThinkSplit(f *testing.F) {
	f.Add("<think>abc</think>def", []byte{1, 3, 9}, false)
	f.Add("  <think>\nreason</think>\n\nanswer", []byte{2, 2, 2, 2, 2}, false)
	f.Add("reason</think>answer", []byte{5, 1, 1, 1}, true)
	f.Add("no tags at all", []byte{4}, true)
	f.Add("<think>open only </thin", []byte{7, 7}, false)
	f.Add("</think></think><think>", []byte{1, 1, 1, 1, 1, 1, 1, 1}, true)
	f.Fuzz(func(t *testing.T, s string, cuts []byte, implicit bool) {
		var pieces []string
		rest := s
		for _, c := range cuts {
			if rest == "" {
				break
			}
			n := int(c) % (len(rest) + 1)
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		pieces = append(pieces, rest)
		c, r, late := splitPieces(pieces, implicit)
		wc, wr := splitWhole(s, implicit)
		if c != wc || r != wr {
			t.Fatalf("pieces %q: got %q / %q, want %q / %q", pieces, c, r, wc, wr)
		}
		if late {
			t.Fatalf("pieces %q: reasoning after content", pieces)
		}
		removed := len(s) - len(c) - len(r)
		if removed < 0 || removed > len(s)-len(strings.TrimLeft(s, " \t\r\n"))+len("<think></think>") {
			t.Fatalf("%d bytes removed from %q", removed, s)
		}
	})
}
