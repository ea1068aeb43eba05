package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/palaver-bot/palaver/bots/console/termmd"
	"github.com/palaver-bot/palaver/sessions"
)

// Terminal limits.
const (
	// MaxHeld is how many messages typed while an answer streams may wait
	// for it to end; one more is refused with a note and stays in the
	// input.
	MaxHeld = 32
	// DefaultMaxInput is the longest message the input takes, in
	// characters, when Options.MaxInput is 0 (chat.max_message's default).
	DefaultMaxInput = 16000
	// maxInputRows is how tall the input area grows; longer input scrolls
	// within it.
	maxInputRows = 8
	// reasoningLines is how many lines of reasoning are shown while the
	// model thinks.
	reasoningLines = 6
)

// runTerminal is Run in a terminal: the program owns the screen and the
// keyboard, and this loop runs what the user sends, one answer at a time.
func (c *Chat) runTerminal(ctx context.Context, model string) (err error) {
	md, err := termmd.New(termmd.Options{Style: c.opts.Style, Profile: c.profile()})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	hist, herr := loadHistory(c.opts.HistoryFile)
	if herr != nil {
		c.log.Warn("input history", "platform", Platform, "error", herr)
	}
	c.md = md
	c.ui = startUI(c.in, c.out, md, hist, c.opts.MaxInput, c.color, c.log)
	u := c.ui
	var turns []*sessions.Turn // the running answer, and any started before it
	defer func() {
		// Leaving stops the answer, so that it is saved as stopped and
		// its end shown before the terminal is given back.
		if len(turns) > 0 && c.m.Stop(c.key, "") {
			for _, t := range turns {
				select {
				case <-t.Done():
				case <-ctx.Done():
				}
			}
		}
		err = errors.Join(err, u.close())
	}()

	c.printf("%s\n", c.dim(fmt.Sprintf("Palaver — talking to %s. /help lists commands and keys; /quit or Ctrl-D leaves. Ctrl-C stops an answer.", model)))
	c.intro(ctx)
	for {
		var done <-chan struct{}
		var lines <-chan string
		if len(turns) > 0 {
			done = turns[0].Done()
		} else {
			lines = u.lines // what is sent during an answer waits for its end
		}
		select {
		case <-ctx.Done():
			return nil
		case <-u.done:
			return nil // the program ended: close reports its error
		case <-u.quit:
			return nil
		case <-c.interrupts:
			if len(turns) == 0 || !c.m.Stop(c.key, "") {
				return nil
			}
		case <-u.stops:
			if len(turns) > 0 {
				c.m.Stop(c.key, "")
			}
		case <-done:
			turns = turns[1:]
			if len(turns) == 0 {
				u.setBusy(false)
			}
		case text := <-lines:
			c.echo(text)
			t, quit := c.line(ctx, text)
			if quit {
				return nil
			}
			if t != nil {
				turns = append(turns, t)
				u.setBusy(true)
			}
		}
	}
}

// echo prints what the user sent above the answer, as they typed it.
func (c *Chat) echo(text string) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if i == 0 {
			lines[i] = c.bold("you›") + " " + l
		} else {
			lines[i] = "     " + l
		}
	}
	c.printf("\n%s\n", strings.Join(lines, "\n"))
}

// ui is the terminal: a Bubble Tea program that owns the screen and the
// keyboard. Finished output is printed above its live area, which holds
// the answer being written, then the input. It never calls the Manager:
// what the user sends goes out on its channels, for the chat loop.
//
// Output from other goroutines goes through the program's message queue
// in the order it is sent, so that one goroutine's prints and live
// updates appear in the order it made them.
type ui struct {
	p    *tea.Program
	send func(tea.Msg) // p.Send: queues a message for the program, in order
	// lines are the messages and commands the user sent, in order; the
	// chat loop reads them only while no answer runs, so that what is
	// typed during an answer waits for its end.
	lines chan string
	stops chan struct{} // Ctrl-C or /stop while an answer runs
	quit  chan struct{} // closed when the user leaves
	once  sync.Once
	done  chan struct{} // closed once the program ended and the terminal is restored
	err   error         // the program's error, set before done is closed

	md     *termmd.Renderer
	height atomic.Int64
}

// Messages the chat sends to the program.
type (
	busyMsg  bool   // an answer runs (or not)
	liveMsg  string // the live area's answer
	closeMsg struct{}
)

// startUI runs the terminal program on in and out.
func startUI(in io.Reader, out io.Writer, md *termmd.Renderer, hist *history, maxInput int, color bool, log *slog.Logger) *ui {
	u := &ui{
		lines: make(chan string, MaxHeld),
		stops: make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		md:    md,
	}
	m := newInput(u, lipgloss.NewRenderer(out), hist, maxInput, color, log)
	u.p = tea.NewProgram(m, tea.WithInput(in), tea.WithOutput(out), tea.WithoutSignalHandler())
	u.send = u.p.Send
	go func() {
		defer close(u.done)
		_, err := u.p.Run()
		if err != nil {
			u.err = fmt.Errorf("console: terminal: %w", err)
		}
	}()
	return u
}

// print prints s above the live area, as lines.
func (u *ui) print(s string) { u.send(tea.Println(s)()) }

// setLive shows s, an answer being written, above the input.
func (u *ui) setLive(s string) { u.send(liveMsg(s)) }

// setBusy says whether an answer runs: Ctrl-C stops it, and what is sent
// waits.
func (u *ui) setBusy(b bool) { u.send(busyMsg(b)) }

func (u *ui) leave() { u.once.Do(func() { close(u.quit) }) }

func (u *ui) stop() {
	select {
	case u.stops <- struct{}{}:
	default:
	}
}

// close ends the program, leaving nothing of the live area on the
// screen, and restores the terminal.
func (u *ui) close() error {
	u.send(closeMsg{})
	u.p.Quit()
	<-u.done
	return u.err
}

// liveLines is how many lines of an answer the live area shows: what the
// screen holds besides the input.
func (u *ui) liveLines() int {
	h := int(u.height.Load())
	if h == 0 {
		return 20
	}
	return max(h-maxInputRows-4, 3)
}

// profile is the colour profile of out for Markdown: none without colour.
func (c *Chat) profile() termenv.Profile {
	if !c.color {
		return termenv.Ascii
	}
	return termenv.NewOutput(c.out).EnvColorProfile()
}
