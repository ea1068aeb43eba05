// Package termmd renders Markdown for a terminal: headings, emphasis,
// lists, tables, links and code blocks with syntax highlighting, through
// glamour, wrapped to the terminal's width. A Stream renders a text that
// grows, as a streamed answer does, block by block.
package termmd

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/charmbracelet/glamour"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// Width bounds: a narrower terminal is rendered as MinWidth columns (the
// terminal wraps), and a wider one as MaxWidth, since longer lines are hard
// to read.
const (
	MinWidth = 20
	MaxWidth = 120
)

// DefaultStyle is the glamour style used when Options.Style is empty.
const DefaultStyle = "dark"

// Styles are the names Options.Style accepts: glamour's standard styles
// except "auto", which would ask the terminal for its background colour
// while the chat reads keys.
var Styles = []string{"dark", "light", "notty", "ascii", "dracula", "tokyo-night", "pink"}

// Options configure a Renderer.
type Options struct {
	// Width is the terminal's width in columns, clamped to
	// [MinWidth, MaxWidth]; 0 means 80.
	Width int
	// Style is one of Styles; empty means DefaultStyle.
	Style string
	// Profile is the terminal's colour profile (termenv.Ascii renders no
	// colours); the zero value is termenv.TrueColor.
	Profile termenv.Profile
}

// Renderer renders Markdown for a terminal. It is safe for concurrent use;
// renders are serialised, since glamour's renderer keeps state while it
// works.
type Renderer struct {
	style   string
	profile termenv.Profile

	mu    sync.Mutex
	width int
	tr    *glamour.TermRenderer // for width; nil until first needed
	work  int                   // bytes given to Render, for tests of the work bound
}

// New returns a Renderer, or an error naming an unknown style.
func New(o Options) (*Renderer, error) {
	style := o.Style
	if style == "" {
		style = DefaultStyle
	}
	known := false
	for _, s := range Styles {
		known = known || s == style
	}
	if !known {
		return nil, fmt.Errorf("termmd: unknown style %q (want one of %s)", style, strings.Join(Styles, ", "))
	}
	return &Renderer{style: style, profile: o.Profile, width: clampWidth(o.Width)}, nil
}

func clampWidth(w int) int {
	if w <= 0 {
		w = 80
	}
	return min(max(w, MinWidth), MaxWidth)
}

// SetWidth makes later renders wrap at w columns (clamped as for
// Options.Width).
func (r *Renderer) SetWidth(w int) {
	w = clampWidth(w)
	r.mu.Lock()
	defer r.mu.Unlock()
	if w != r.width {
		r.width, r.tr = w, nil
	}
}

// Width is the width renders wrap at.
func (r *Renderer) Width() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.width
}

// Render renders a Markdown document: its lines, without the blank lines
// glamour puts around a document or the spaces it pads lines with, and
// without a final line end. Should glamour fail, the text is shown as
// plain wrapped lines.
func (r *Renderer) Render(md string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.work += len(md)
	if r.tr == nil {
		tr, err := glamour.NewTermRenderer(
			glamour.WithStandardStyle(r.style),
			glamour.WithWordWrap(r.width),
			glamour.WithColorProfile(r.profile),
		)
		if err != nil {
			return r.plainLocked(md)
		}
		r.tr = tr
	}
	out, err := r.tr.Render(md)
	if err != nil {
		return r.plainLocked(md)
	}
	return tidy(out)
}

// Plain wraps text at the render width, indented like rendered Markdown,
// with no styling: for text that is not Markdown, or not complete yet.
func (r *Renderer) Plain(text string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.plainLocked(text)
}

// margin is the indentation of glamour's standard styles.
const margin = "  "

func (r *Renderer) plainLocked(text string) string {
	lines := strings.Split(strings.TrimRight(text, " \t\r\n"), "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		w := ansi.Wrap(l, r.width-len(margin), "")
		lines[i] = margin + strings.ReplaceAll(w, "\n", "\n"+margin)
	}
	return strings.Join(lines, "\n")
}

// tidy drops the blank lines around rendered text and the padding at the
// end of each line.
func tidy(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = trimPadding(l)
	}
	blank := func(l string) bool { return strings.TrimSpace(ansi.Strip(l)) == "" }
	for len(lines) > 0 && blank(lines[0]) {
		lines = lines[1:]
	}
	for len(lines) > 0 && blank(lines[len(lines)-1]) {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// trimPadding drops what glamour pads a line with up to the wrap width:
// spaces without a background colour, each in its own colour sequence.
// Spaces with a background (a heading's) stay. A line that loses styling
// with its padding ends with a reset.
func trimPadding(l string) string {
	keep := 0   // bytes kept: the end of the last visible cell
	bg := false // the current style has a background colour
	for i := 0; i < len(l); {
		if m := sgr.FindStringIndex(l[i:]); m != nil && m[0] == 0 {
			bg = hasBackground(l[i+2:i+m[1]-1], bg)
			i += m[1]
			continue
		}
		if l[i] != ' ' || bg {
			keep = i + 1
			for keep < len(l) && !utf8.RuneStart(l[keep]) {
				keep++
			}
		}
		i++
	}
	t := l[:keep]
	if keep < len(l) && strings.Contains(t, "\x1b[") {
		t += "\x1b[0m"
	}
	return t
}

// sgr matches a Select Graphic Rendition sequence.
var sgr = regexp.MustCompile(`^\x1b\[[0-9;:]*m`)

// hasBackground reports whether the SGR parameters params leave a
// background colour set, given whether one was set before.
func hasBackground(params string, before bool) bool {
	if params == "" {
		return false // a reset
	}
	ps := strings.Split(params, ";")
	for i := 0; i < len(ps); i++ {
		switch p := ps[i]; {
		case p == "" || p == "0" || p == "49":
			before = false
		case p == "38" && i+1 < len(ps): // foreground 38;5;n or 38;2;r;g;b
			if ps[i+1] == "5" {
				i += 2
			} else {
				i += 4
			}
		case p == "48":
			return true
		case len(p) == 2 && p[0] == '4' && p[1] >= '0' && p[1] <= '7',
			len(p) == 3 && p[:2] == "10" && p[2] >= '0' && p[2] <= '7':
			before = true
		}
	}
	return before
}
