package console

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/palaver-bot/palaver/bots/console/termmd"
)

// newTestInput is the terminal's model without a program: keys go to
// Update, and what it sends is read from its ui's channels.
func newTestInput(t *testing.T, history string) *input {
	t.Helper()
	md, err := termmd.New(termmd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := &ui{lines: make(chan string, MaxHeld), stops: make(chan struct{}, 1), quit: make(chan struct{}), md: md}
	h, err := loadHistory(history)
	if err != nil {
		t.Fatal(err)
	}
	m := newInput(u, lipgloss.NewRenderer(io.Discard), h, 100, false, slog.New(slog.DiscardHandler))
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	return m
}

// press sends keys to m: strings are typed, Keys pressed.
func press(m *input, keys ...any) {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
		case tea.KeyType:
			m.Update(tea.KeyMsg{Type: k})
		case tea.KeyMsg:
			m.Update(k)
		}
	}
}

var (
	altEnter = tea.KeyMsg{Type: tea.KeyEnter, Alt: true}
	enter    = tea.KeyEnter
)

func paste(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s), Paste: true} }

// sent is what m sent to the chat loop so far.
func sent(m *input) []string {
	var out []string
	for {
		select {
		case l := <-m.u.lines:
			out = append(out, l)
		default:
			return out
		}
	}
}

func TestInput_Send(t *testing.T) {
	tests := []struct {
		name string
		keys []any
		want []string
	}{
		{"Line", []any{"hello", enter}, []string{"hello"}},
		{"Paste", []any{paste("first\r\nsecond\rthird"), enter}, []string{"first\nsecond\nthird"}},
		{"PasteWithEnterInside", []any{"say: ", paste("a\n\nb\n"), enter}, []string{"say: a\n\nb"}},
		{"AltEnter", []any{"a", altEnter, "b", enter}, []string{"a\nb"}},
		{"CtrlJ", []any{"a", tea.KeyCtrlJ, "b", enter}, []string{"a\nb"}},
		{"Backslash", []any{`a\`, enter, "b", enter}, []string{"a\nb"}},
		{"Blank", []any{"   ", enter, enter}, nil},
		{"Edit", []any{"helo", tea.KeyLeft, "l", tea.KeyCtrlE, " world", tea.KeyHome, "Say ", enter}, []string{"Say hello world"}},
		{"CtrlW", []any{"one two", tea.KeyCtrlW, "three", enter}, []string{"one three"}},
		{"CtrlU", []any{"one two", tea.KeyCtrlU, "three", enter}, []string{"three"}},
		{"CtrlA", []any{"b", tea.KeyCtrlA, "a", enter}, []string{"ab"}},
		{"FunctionKeys", []any{"x", tea.KeyF5, tea.KeyEscape, tea.KeyTab, tea.KeyCtrlRight, enter}, []string{"x"}},
		{"TooLongPaste", []any{"x", paste(strings.Repeat("y", 100)), enter}, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestInput(t, "")
			press(m, tt.keys...)
			if got := sent(m); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("sent %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInput_TooLongPaste_Note(t *testing.T) {
	m := newTestInput(t, "")
	press(m, paste(strings.Repeat("y", 101)))
	if !strings.Contains(m.View(), "the limit is 100") {
		t.Errorf("view after a paste over the limit:\n%s\nwant a note naming the limit", m.View())
	}
	if m.ta.Value() != "" {
		t.Errorf("input = %q, want the paste refused whole", m.ta.Value())
	}
}

func TestInput_History(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	m := newTestInput(t, path)
	press(m, "one", enter, "two\nlines", enter, "draft")
	sent(m)
	steps := []struct {
		key  tea.KeyType
		want string
	}{
		{tea.KeyUp, "two\nlines"},
		{tea.KeyUp, "two\nlines"}, // the cursor moves up within the entry first
		{tea.KeyUp, "one"},
		{tea.KeyUp, "one"},          // the oldest stays
		{tea.KeyDown, "two\nlines"}, // recalled with the cursor at its end
		{tea.KeyDown, "draft"},      // past the newest: the input as it was
	}
	for i, s := range steps {
		press(m, s.key)
		if got := m.ta.Value(); got != s.want {
			t.Fatalf("step %d (%v): input %q, want %q", i, s.key, got, s.want)
		}
	}

	// A new session reads the same history.
	m2 := newTestInput(t, path)
	press(m2, tea.KeyUp, tea.KeyUp, tea.KeyUp, enter)
	if got := sent(m2); len(got) != 1 || got[0] != "one" {
		t.Errorf("recalled in a new session %q, want [one]", got)
	}
}

func TestInput_CtrlC(t *testing.T) {
	t.Run("Busy", func(t *testing.T) {
		m := newTestInput(t, "")
		m.Update(busyMsg(true))
		press(m, "typing", tea.KeyCtrlC)
		select {
		case <-m.u.stops:
		default:
			t.Error("Ctrl-C during an answer did not stop it")
		}
		if m.ta.Value() != "typing" {
			t.Errorf("input = %q, want it kept", m.ta.Value())
		}
	})
	t.Run("ClearsInput", func(t *testing.T) {
		m := newTestInput(t, "")
		press(m, "typing", tea.KeyCtrlC)
		if m.ta.Value() != "" || isClosed(m.u.quit) {
			t.Errorf("input %q, left %v; want it cleared, not left", m.ta.Value(), isClosed(m.u.quit))
		}
	})
	t.Run("TwiceLeaves", func(t *testing.T) {
		m := newTestInput(t, "")
		press(m, tea.KeyCtrlC)
		if isClosed(m.u.quit) || !strings.Contains(m.View(), "Ctrl-C again") {
			t.Fatalf("one Ctrl-C: left %v, view %q; want a note and no leaving", isClosed(m.u.quit), m.View())
		}
		press(m, tea.KeyCtrlC)
		if !isClosed(m.u.quit) {
			t.Error("a second Ctrl-C did not leave")
		}
	})
	t.Run("OtherKeyDisarms", func(t *testing.T) {
		m := newTestInput(t, "")
		press(m, tea.KeyCtrlC, tea.KeyLeft, tea.KeyCtrlC)
		if isClosed(m.u.quit) {
			t.Error("Ctrl-C, ←, Ctrl-C left; want the second Ctrl-C to ask again")
		}
	})
}

func TestInput_Leave(t *testing.T) {
	tests := []struct {
		name  string
		keys  []any
		leave bool
	}{
		{"CtrlD", []any{tea.KeyCtrlD}, true},
		{"CtrlDWithText", []any{"ab", tea.KeyLeft, tea.KeyCtrlD}, false},
		{"Quit", []any{"/quit", enter}, true},
		{"QuitWhileBusy", []any{busyMsg(true), "/quit", enter}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestInput(t, "")
			for _, k := range tt.keys {
				if b, ok := k.(busyMsg); ok {
					m.Update(b)
					continue
				}
				press(m, k)
			}
			if got := isClosed(m.u.quit); got != tt.leave {
				t.Errorf("left = %v, want %v", got, tt.leave)
			}
		})
	}
	t.Run("CtrlDWithTextDeletes", func(t *testing.T) {
		m := newTestInput(t, "")
		press(m, "ab", tea.KeyLeft, tea.KeyCtrlD)
		if m.ta.Value() != "a" {
			t.Errorf("input = %q, want %q", m.ta.Value(), "a")
		}
	})
}

func TestInput_Busy(t *testing.T) {
	m := newTestInput(t, "")
	m.Update(busyMsg(true))
	press(m, "/stop", enter)
	select {
	case <-m.u.stops:
	default:
		t.Error("/stop during an answer did not stop it")
	}
	for range MaxHeld {
		press(m, "later", enter)
	}
	if !strings.Contains(m.View(), "32 messages wait") {
		t.Errorf("view = %q, want it to say how many messages wait", m.View())
	}
	press(m, "one too many", enter)
	if m.ta.Value() != "one too many" || !strings.Contains(m.View(), "already wait") {
		t.Errorf("input %q, view %q; want the message kept and a note", m.ta.Value(), m.View())
	}
	if got := sent(m); len(got) != MaxHeld {
		t.Errorf("%d messages sent, want %d (/stop is not one)", len(got), MaxHeld)
	}
}

func TestInput_View(t *testing.T) {
	m := newTestInput(t, "")
	m.Update(liveMsg("the answer so far"))
	press(m, "draft")
	v := m.View()
	if !strings.Contains(v, "the answer so far") || !strings.Contains(v, "you› draft") ||
		strings.Index(v, "the answer so far") > strings.Index(v, "you›") {
		t.Errorf("view:\n%s\nwant the live answer above the input", v)
	}
	m.Update(closeMsg{})
	if v := m.View(); v != "" {
		t.Errorf("view when closing = %q, want empty", v)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
