package console

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// The input's placeholder says what sending does now.
const (
	placeholderIdle = "Send a message (/help lists commands and keys)"
	placeholderBusy = "Answering… Ctrl-C stops it; what you send waits for its end"
)

// input is the program's model: the input area with its history, and the
// live area.
type input struct {
	u        *ui
	ta       textarea.Model
	hist     *history
	pos      int    // the history entry shown; len(hist.entries) when none
	draft    string // the input as it was before ↑ recalled an entry
	maxInput int
	color    bool
	log      *slog.Logger
	saveErr  bool // the history could not be saved (said once)

	busy    bool
	live    string
	note    string // one dim line under the input, until the next key
	armed   bool   // Ctrl-C was pressed at an empty prompt: again leaves
	closing bool
}

func newInput(u *ui, r *lipgloss.Renderer, hist *history, maxInput int, color bool, log *slog.Logger) *input {
	if maxInput <= 0 {
		maxInput = DefaultMaxInput
	}
	ta := textarea.New()
	// Plain styles: textarea's defaults adapt to the background colour,
	// which would make the terminal be asked for it while we read keys.
	plain := r.NewStyle()
	st := textarea.Style{
		Base: plain, CursorLine: plain, CursorLineNumber: plain, EndOfBuffer: plain,
		LineNumber: plain, Placeholder: plain.Faint(true), Prompt: plain.Bold(color), Text: plain,
	}
	ta.FocusedStyle, ta.BlurredStyle = st, st
	ta.ShowLineNumbers = false
	ta.Placeholder = placeholderIdle
	ta.SetPromptFunc(5, func(row int) string {
		if row == 0 {
			return "you› "
		}
		return "   … "
	})
	ta.CharLimit = maxInput
	ta.MaxHeight = 0 // the row count is capped by maxInputRows, the lines by textarea itself
	ta.KeyMap.InsertNewline = key.NewBinding(key.WithKeys("alt+enter", "ctrl+j"))
	ta.KeyMap.Paste.SetEnabled(false) // a paste arrives as bracketed paste; no clipboard programs
	ta.Cursor.SetMode(cursor.CursorStatic)
	ta.Focus()
	ta.SetHeight(1)
	return &input{u: u, ta: ta, hist: hist, pos: len(hist.entries), maxInput: maxInput, color: color, log: log}
}

func (m *input) Init() tea.Cmd { return nil }

func (m *input) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.u.height.Store(int64(msg.Height))
		m.u.md.SetWidth(msg.Width)
		m.ta.SetWidth(msg.Width)
	case busyMsg:
		m.busy = bool(msg)
		m.armed = false
		m.ta.Placeholder = placeholderIdle
		if m.busy {
			m.ta.Placeholder = placeholderBusy
		}
	case liveMsg:
		m.live = string(msg)
	case closeMsg:
		m.closing = true
	case tea.KeyMsg:
		cmd = m.key(msg)
	default:
		m.ta, cmd = m.ta.Update(msg)
	}
	m.ta.SetHeight(min(m.ta.LineCount(), maxInputRows))
	return m, cmd
}

// key handles a key press or a paste.
func (m *input) key(k tea.KeyMsg) tea.Cmd {
	if k.Type != tea.KeyCtrlC {
		m.armed = false
	}
	m.note = ""
	if k.Paste {
		m.paste(string(k.Runes))
		return nil
	}
	switch k.String() {
	case "ctrl+c":
		switch {
		case m.busy:
			m.u.stop()
		case m.ta.Value() != "":
			m.ta.Reset()
			m.pos = len(m.hist.entries)
		case m.armed:
			m.u.leave()
		default:
			m.armed = true
			m.note = "Press Ctrl-C again, or Ctrl-D, to leave."
		}
		return nil
	case "ctrl+d":
		if m.ta.Value() == "" {
			m.u.leave()
			return nil
		}
	case "ctrl+l":
		return tea.ClearScreen
	case "ctrl+z":
		return tea.Suspend
	case "enter":
		m.submit()
		return nil
	case "up", "ctrl+p":
		if m.ta.Line() == 0 && m.ta.LineInfo().RowOffset == 0 {
			m.recall(-1)
			return nil
		}
	case "down", "ctrl+n":
		if li := m.ta.LineInfo(); m.ta.Line() == m.ta.LineCount()-1 && li.RowOffset >= li.Height-1 {
			m.recall(+1)
			return nil
		}
	}
	var cmd tea.Cmd
	m.ta, cmd = m.ta.Update(k)
	return cmd
}

// paste inserts a paste as it is, line ends and all, unless it would make
// the message longer than the limit.
func (m *input) paste(s string) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if n := m.ta.Length() + utf8.RuneCountInString(s); n > m.maxInput {
		m.note = fmt.Sprintf("Not pasted: the message would be %d characters long; the limit is %d.", n, m.maxInput)
		return
	}
	m.ta.InsertString(s)
}

// submit sends the input: a line ending in a backslash continues on a new
// line instead; /quit leaves, and /stop stops a running answer, at once.
func (m *input) submit() {
	v := m.ta.Value()
	if strings.HasSuffix(v, "\\") {
		m.ta.SetValue(v[:len(v)-1] + "\n")
		return
	}
	text := strings.TrimSpace(v)
	if text == "" {
		m.ta.Reset()
		return
	}
	word := strings.ToLower(strings.Fields(text)[0])
	switch {
	case word == "/quit" || word == "/exit" || word == "/q":
		m.u.leave()
	case word == "/stop" && m.busy:
		m.u.stop()
	default:
		select {
		case m.u.lines <- text:
		default:
			m.note = fmt.Sprintf("%d messages already wait for the answer to end; send this one after it.", MaxHeld)
			return
		}
	}
	if err := m.hist.add(text); err != nil && !m.saveErr {
		m.saveErr = true
		m.log.Warn("input history not saved", "platform", Platform, "error", err)
	}
	m.pos, m.draft = len(m.hist.entries), ""
	m.ta.Reset()
}

// recall shows the history entry before (dir -1) or after (+1) the one
// shown; past the newest is the input as it was.
func (m *input) recall(dir int) {
	n := len(m.hist.entries)
	m.pos = min(m.pos, n)
	switch {
	case dir < 0 && m.pos > 0:
		if m.pos == n {
			m.draft = m.ta.Value()
		}
		m.pos--
		m.ta.SetValue(m.hist.entries[m.pos])
	case dir > 0 && m.pos < n:
		m.pos++
		if m.pos == n {
			m.ta.SetValue(m.draft)
		} else {
			m.ta.SetValue(m.hist.entries[m.pos])
		}
	}
}

func (m *input) View() string {
	if m.closing {
		return ""
	}
	var b strings.Builder
	if m.live != "" {
		b.WriteString(m.live)
		b.WriteString("\n")
	}
	b.WriteString("\n") // a blank line between the output and the input
	if n := len(m.u.lines); m.busy && n > 0 {
		b.WriteString(dim(m.color, fmt.Sprintf("⏳ %s sent when the answer ends.", plural(n, "message waits to be", "messages wait to be"))))
		b.WriteString("\n")
	}
	b.WriteString(m.ta.View())
	if m.note != "" {
		b.WriteString("\n")
		b.WriteString(dim(m.color, m.note))
	}
	return b.String()
}

// plural is "1 one" or "n many".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
