// Package console is the terminal adapter behind `palaver chat`: lines read
// from a terminal become turns of one conversation, answers are printed as
// their tokens arrive, and the same commands as on the platforms work.
package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// Platform is the conversation key's platform for the terminal.
const Platform = "console"

// Manager is what the console needs from the session manager.
type Manager interface {
	Handle(ctx context.Context, msg sessions.Message, reply sessions.Reply) (*sessions.Turn, error)
	Retry(ctx context.Context, key sessions.Key, reply sessions.Reply) (*sessions.Turn, error)
	Stop(key sessions.Key, author string) bool
	Model(ctx context.Context, key sessions.Key) (string, error)
	SetModel(ctx context.Context, key sessions.Key, name string) (string, error)
	Models(ctx context.Context) ([]llm.Model, error)
	SystemPrompt(ctx context.Context, key sessions.Key) (string, bool, error)
	SetSystemPrompt(ctx context.Context, key sessions.Key, prompt string) error
	ClearSystemPrompt(ctx context.Context, key sessions.Key) error
	Reset(ctx context.Context, key sessions.Key) error
	Settings(ctx context.Context, key sessions.Key) (sessions.Summary, error)
	Recover(ctx context.Context, platform string, restore func(sessions.Progress) (sessions.Reply, error)) error
}

// Chat is a terminal conversation.
type Chat struct {
	m   Manager
	key sessions.Key
	in  io.Reader
	out io.Writer
	// Color enables ANSI dimming of reasoning and notes.
	color bool
	// interrupts delivers Ctrl-C presses.
	interrupts <-chan os.Signal
	log        *slog.Logger

	mu sync.Mutex // serialises writes to out
}

// Options configure a Chat.
type Options struct {
	// User names the conversation (one history per user name).
	User string
	// Color turns on ANSI styling (for a terminal).
	Color bool
	// Interrupts delivers Ctrl-C; nil disables it.
	Interrupts <-chan os.Signal
	Logger     *slog.Logger
}

// New returns a terminal chat reading in and writing out.
func New(m Manager, in io.Reader, out io.Writer, opts Options) *Chat {
	user := opts.User
	if user == "" {
		user = "local"
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Chat{
		m: m, key: sessions.Key{Platform: Platform, Chat: user},
		in: in, out: out, color: opts.Color, interrupts: opts.Interrupts, log: log,
	}
}

// Run reads lines until the input ends, ctx ends, or the user quits.
func (c *Chat) Run(ctx context.Context) error {
	if err := c.m.Recover(ctx, Platform, func(sessions.Progress) (sessions.Reply, error) { return nil, nil }); err != nil {
		c.log.Warn("recover interrupted answers", "platform", Platform, "error", err)
	}
	model, err := c.m.Model(ctx, c.key)
	if err != nil {
		return err
	}
	c.printf("%s\n", c.dim(fmt.Sprintf("Palaver — talking to %s. /help lists commands, /quit leaves. Ctrl-C stops an answer.", model)))

	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(c.in)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()

	var turns []*sessions.Turn // running or queued answers, oldest first
	c.prompt(turns)
	for {
		var done <-chan struct{}
		if len(turns) > 0 {
			done = turns[0].Done()
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			// Input ended: let the answers finish, then leave.
			for _, t := range turns {
				select {
				case <-t.Done():
				case <-ctx.Done():
					return nil
				}
			}
			return err
		case <-c.interrupts:
			if len(turns) == 0 || !c.m.Stop(c.key, "") {
				c.printf("\n")
				return nil
			}
		case <-done:
			turns = turns[1:]
			c.prompt(turns)
		case line := <-lines:
			t, quit := c.line(ctx, line)
			if quit {
				return nil
			}
			if t != nil {
				turns = append(turns, t)
			} else {
				c.prompt(turns)
			}
		}
	}
}

func (c *Chat) prompt(turns []*sessions.Turn) {
	if len(turns) == 0 {
		c.printf("\n%s ", c.bold("you›"))
	}
}

// line handles one input line, returning the turn it started, if any.
func (c *Chat) line(ctx context.Context, line string) (*sessions.Turn, bool) {
	text := strings.TrimSpace(line)
	if text == "" {
		return nil, false
	}
	if !strings.HasPrefix(text, "/") {
		return c.ask(ctx, text), false
	}
	cmd, arg, _ := strings.Cut(text, " ")
	arg = strings.TrimSpace(arg)
	switch strings.ToLower(cmd) {
	case "/quit", "/exit", "/q":
		return nil, true
	case "/chat":
		return c.ask(ctx, arg), false
	case "/help", "/start":
		c.printf("%s\n", sessions.Help())
	case "/stop":
		if !c.m.Stop(c.key, "") {
			c.printf("%s\n", c.dim("Nothing to stop."))
		}
	case "/retry":
		r := c.newReply()
		t, err := c.m.Retry(ctx, c.key, r)
		if err != nil {
			c.note(err)
			return nil, false
		}
		return t, false
	case "/reset":
		if err := c.m.Reset(ctx, c.key); err != nil {
			c.note(err)
		} else {
			c.printf("%s\n", c.dim("History forgotten."))
		}
	case "/model":
		if arg == "" {
			m, err := c.m.Model(ctx, c.key)
			if err != nil {
				c.note(err)
			} else {
				c.printf("Model: %s\n", m)
			}
			break
		}
		m, err := c.m.SetModel(ctx, c.key, arg)
		if err != nil {
			c.note(err)
		} else {
			c.printf("Model set to %s.\n", m)
		}
	case "/models":
		ms, err := c.m.Models(ctx)
		current, _ := c.m.Model(ctx, c.key)
		for _, md := range ms {
			mark := "  "
			if md.Name() == current {
				mark = "* "
			}
			c.printf("%s%s\n", mark, md.Name())
		}
		if err != nil {
			c.note(err)
		}
	case "/system":
		switch {
		case arg == "":
			p, custom, err := c.m.SystemPrompt(ctx, c.key)
			if err != nil {
				c.note(err)
				break
			}
			origin := "default"
			if custom {
				origin = "set here"
			}
			c.printf("System prompt (%s): %s\n", origin, p)
		case strings.EqualFold(arg, "clear"), strings.EqualFold(arg, "default"):
			if err := c.m.ClearSystemPrompt(ctx, c.key); err != nil {
				c.note(err)
			} else {
				c.printf("System prompt back to the default.\n")
			}
		default:
			if err := c.m.SetSystemPrompt(ctx, c.key, arg); err != nil {
				c.note(err)
			} else {
				c.printf("System prompt set.\n")
			}
		}
	case "/settings":
		s, err := c.m.Settings(ctx, c.key)
		if err != nil {
			c.note(err)
		} else {
			c.printf("%s\n", strings.ReplaceAll(s.Markdown(), "**", ""))
		}
	default:
		c.printf("%s\n", c.dim(fmt.Sprintf("Unknown command %s. /help lists the commands.", cmd)))
	}
	return nil, false
}

func (c *Chat) ask(ctx context.Context, text string) *sessions.Turn {
	r := c.newReply()
	t, err := c.m.Handle(ctx, sessions.Message{Key: c.key, Author: sessions.Author{ID: c.key.Chat, Name: c.key.Chat}, Text: text}, r)
	if err != nil {
		c.note(err)
		return nil
	}
	return t
}

func (c *Chat) note(err error) {
	var ue *sessions.UserError
	if !errors.As(err, &ue) {
		c.log.Debug("command failed", "platform", Platform, "error", err)
	}
	c.printf("%s\n", c.dim(sessions.Explain(err)))
}

func (c *Chat) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format, args...)
}

func (c *Chat) dim(s string) string {
	if !c.color {
		return s
	}
	return "\x1b[2m" + s + "\x1b[0m"
}

func (c *Chat) bold(s string) string {
	if !c.color {
		return s
	}
	return "\x1b[1m" + s + "\x1b[0m"
}
