package termmd

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
// The files hold the terminal's bytes: cat one in a terminal to see it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
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
		t.Errorf("%s differs (run with -update to accept):\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func newRenderer(t testing.TB, width int) *Renderer {
	t.Helper()
	r, err := New(Options{Width: width, Profile: termenv.ANSI256})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenderer_Render(t *testing.T) {
	tests := []struct {
		name string
		md   string
		// shown must appear in the output with its styling stripped, and
		// hidden must not: the Markdown syntax is rendered, not printed.
		shown  []string
		hidden []string
	}{
		{"headings", "# Title\n\n## Section\n\nText under it.\n",
			[]string{"Title", "Section", "Text under it."}, []string{"# Title"}},
		{"emphasis", "Some **bold**, *italic*, ~~struck~~ and `code` words.\n",
			[]string{"bold", "italic", "code"}, []string{"**", "`", "*italic*"}},
		{"lists", "- one\n- two\n  - nested\n- three\n\n1. first\n2. second\n",
			[]string{"• one", "nested", "1. first", "2. second"}, []string{"- one"}},
		{"code", "```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\n",
			[]string{"func main() {", `fmt.Println("hi")`}, []string{"```"}},
		{"table", "| Name | Value |\n|------|------:|\n| a | 1 |\n| bb | 22 |\n",
			[]string{"Name", "Value", "bb", "22", "│"}, []string{"|---"}},
		{"links", "See [the docs](https://example.com/docs) or <https://example.org>.\n",
			[]string{"the docs", "https://example.com/docs", "https://example.org"}, []string{"]("}},
		{"quote", "> quoted\n> text\n", []string{"│ quoted text"}, nil},
		{"wrap", strings.Repeat("word ", 30), []string{"word word"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newRenderer(t, 60).Render(tt.md)
			golden(t, tt.name+".golden", got+"\n")
			plain := ansi.Strip(got)
			for _, s := range tt.shown {
				if !strings.Contains(plain, s) {
					t.Errorf("output lacks %q:\n%s", s, plain)
				}
			}
			for _, s := range tt.hidden {
				if strings.Contains(plain, s) {
					t.Errorf("output shows %q:\n%s", s, plain)
				}
			}
			for i, l := range strings.Split(got, "\n") {
				if w := ansi.StringWidth(l); w > 60 {
					t.Errorf("line %d is %d columns wide, want at most 60: %q", i, w, ansi.Strip(l))
				}
				if strings.HasSuffix(ansi.Strip(l), " ") && tt.name != "headings" {
					t.Errorf("line %d keeps its padding: %q", i, l)
				}
			}
		})
	}
}

func TestRenderer_Render_Highlights(t *testing.T) {
	got := newRenderer(t, 60).Render("```go\nfunc main() {}\n```\n")
	// Chroma colours the keyword apart from the identifier.
	i, j := strings.Index(got, "func"), strings.Index(got, "main")
	if i < 0 || j < 0 || !strings.Contains(got[i:j], "\x1b[") {
		t.Errorf("the keyword is not highlighted: %q", got)
	}
}

func TestRenderer_SetWidth(t *testing.T) {
	r := newRenderer(t, 80)
	text := strings.Repeat("word ", 40)
	wide := strings.Count(r.Render(text), "\n")
	r.SetWidth(30)
	if got := r.Width(); got != 30 {
		t.Fatalf("Width() = %d, want 30", got)
	}
	if narrow := strings.Count(r.Render(text), "\n"); narrow <= wide {
		t.Errorf("at 30 columns %d line ends, at 80 %d: want more when narrower", narrow, wide)
	}
	r.SetWidth(5)
	if got := r.Width(); got != MinWidth {
		t.Errorf("Width() after SetWidth(5) = %d, want %d", got, MinWidth)
	}
	r.SetWidth(1000)
	if got := r.Width(); got != MaxWidth {
		t.Errorf("Width() after SetWidth(1000) = %d, want %d", got, MaxWidth)
	}
}

func TestNew_ErrStyle(t *testing.T) {
	_, err := New(Options{Style: "auto"})
	if err == nil || !strings.Contains(err.Error(), `unknown style "auto"`) {
		t.Errorf("New(auto) = %v, want an unknown style error", err)
	}
}

func TestTrimPadding(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"Plain", "text   ", "text"},
		{"StyledSpaces", "\x1b[38;5;252mtext\x1b[0m\x1b[38;5;252m \x1b[0m\x1b[38;5;252m \x1b[0m", "\x1b[38;5;252mtext\x1b[0m"},
		{"Background", "\x1b[38;5;228;48;5;63;1m Title \x1b[0m\x1b[38;5;252m \x1b[0m", "\x1b[38;5;228;48;5;63;1m Title \x1b[0m"},
		{"OpenStyle", "\x1b[1mbold   ", "\x1b[1mbold\x1b[0m"},
		{"Wide", "日本  ", "日本"},
		{"Empty", "\x1b[38;5;252m \x1b[0m", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := trimPadding(tt.in); got != tt.want {
				t.Errorf("trimPadding(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
