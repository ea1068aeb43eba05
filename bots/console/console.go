// Package console is the terminal adapter behind `palaver chat`: what the
// user types becomes turns of one conversation, answers are shown as their
// tokens arrive, and the same commands as on the platforms work.
//
// In a terminal (Options.Terminal) the input is edited in place with a
// history, a paste is one message, and answers are rendered as Markdown
// (package termmd). Otherwise each line read is a message, in order, and
// answers are printed as the model wrote them.
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

	"github.com/palaver-bot/palaver/bots/console/termmd"
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
	UsageReport(ctx context.Context, r sessions.UsageRequest) (string, error)
	Recover(ctx context.Context, platform string, restore func(sessions.Progress) (sessions.Reply, error)) error
	SetFetcher(platform string, f sessions.Fetcher)
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
	opts       Options

	// In a terminal, set by runTerminal before any output.
	// pending are the files /attach holds for the next message.
	pending []sessions.Attachment
	ui      *ui
	md      *termmd.Renderer

	mu sync.Mutex // serialises writes to out
}

// Options configure a Chat.
type Options struct {
	// User names the conversation (one history per user name).
	User string
	// Color turns on ANSI styling (for a terminal).
	Color bool
	// Interrupts delivers Ctrl-C (SIGINT); nil disables it. In a terminal
	// Ctrl-C is a key, and this is for a signal sent from elsewhere.
	Interrupts <-chan os.Signal
	Logger     *slog.Logger
	// LogFile, when set, is named in the banner as where the logs go.
	LogFile string

	// Terminal runs the chat for a person at a terminal: in and out must
	// be the terminal (its stdin and stdout files). The input is edited in
	// place (cursor keys, Home/End, Ctrl-A/E/W/U/K, Ctrl-L clears the
	// screen), ↑/↓ recall earlier messages, a paste is one message, Enter
	// sends and Alt-Enter, Ctrl-J or a line ending in a backslash starts a
	// new line. What is sent while an answer streams waits for its end
	// (up to MaxHeld messages), except /stop and /quit. Ctrl-C stops an
	// answer, else clears the input, else (twice) leaves; so does Ctrl-D at
	// an empty prompt. Answers are rendered as Markdown.
	Terminal bool
	// HistoryFile keeps the terminal's input history (HistoryEntries
	// entries, shared by every conversation name); "" keeps it for the
	// session only.
	HistoryFile string
	// MaxInput is the longest message the terminal's input takes, in
	// characters; 0 means DefaultMaxInput.
	MaxInput int
	// Style is the Markdown style, one of termmd.Styles; "" is
	// termmd.DefaultStyle.
	Style string
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
		in: in, out: out, color: opts.Color, interrupts: opts.Interrupts, log: log, opts: opts,
	}
}

// Run reads what the user sends until the input ends, ctx ends, or the
// user quits.
func (c *Chat) Run(ctx context.Context) error {
	c.m.SetFetcher(Platform, files{})
	if err := c.m.Recover(ctx, Platform, func(sessions.Progress) (sessions.Reply, error) { return nil, nil }); err != nil {
		c.log.Warn("recover interrupted answers", "platform", Platform, "error", err)
	}
	model, err := c.m.Model(ctx, c.key)
	if err != nil {
		return err
	}
	if c.opts.Terminal {
		return c.runTerminal(ctx, model)
	}
	c.printf("%s\n", c.dim(fmt.Sprintf("Palaver — talking to %s. /help lists commands, /quit leaves. Ctrl-C stops an answer.", model)))
	c.intro(ctx)

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
	case "/attach":
		c.attachFile(arg)
	case "/help", "/start":
		c.printf("%s\n", c.markdown(help(c.ui != nil)))
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
		if len(ms) == 0 && err == nil {
			c.printf("%s\n", c.dim("No models are available."))
		}
		if err != nil {
			c.log.Debug("list models", "error", err)
		}
		for _, n := range sessions.ModelsNotes(err) {
			c.printf("%s\n", c.dim(n))
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
			c.printf("%s\n", c.settings(s))
		}
	case "/usage":
		report, err := c.m.UsageReport(ctx, sessions.UsageRequest{Key: c.key, Author: c.author()})
		if err != nil {
			c.note(err)
		} else {
			c.printf("%s\n", c.lines(report))
		}
	default:
		c.printf("%s\n", c.dim(fmt.Sprintf("Unknown command %s. /help lists the commands.", cmd)))
	}
	return nil, false
}

// newReply returns where an answer is shown: the terminal's live area, or
// the output as it grows.
func (c *Chat) newReply() sessions.Reply {
	if c.ui != nil {
		return c.newTermReply()
	}
	return &reply{c: c}
}

func (c *Chat) ask(ctx context.Context, text string) *sessions.Turn {
	r := c.newReply()
	msg := sessions.Message{Key: c.key, Author: c.author(), Text: text, Attachments: c.pending}
	c.pending = nil
	t, err := c.m.Handle(ctx, msg, r)
	if err != nil {
		c.note(err)
		return nil
	}
	return t
}

// author is the person at the terminal: the operator, who has the
// config and the store at hand, so an admin (restricted models, no usage
// limits).
func (c *Chat) author() sessions.Author {
	return sessions.Author{ID: c.key.Chat, Name: c.key.Chat, Admin: true}
}

func (c *Chat) note(err error) {
	var ue *sessions.UserError
	if !errors.As(err, &ue) {
		c.log.Debug("command failed", "platform", Platform, "error", err)
	}
	c.printf("%s\n", c.dim(sessions.Explain(err)))
}

// intro says where the logs go and how much of the conversation the model
// still sees.
func (c *Chat) intro(ctx context.Context) {
	if c.opts.LogFile != "" {
		c.printf("%s\n", c.dim("Logs go to "+c.opts.LogFile+"."))
	}
	s, err := c.m.Settings(ctx, c.key)
	if err != nil {
		c.log.Warn("read settings", "platform", Platform, "error", err)
		return
	}
	if s.Messages > 0 {
		c.printf("%s\n", c.dim(fmt.Sprintf("Resuming: %s in context (/reset forgets them).",
			plural(s.Messages, "earlier message is", "earlier messages are"))))
	}
}

// printf prints to the output; in a terminal, as lines above the input.
func (c *Chat) printf(format string, args ...any) {
	if c.ui != nil {
		c.ui.print(strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format, args...)
}

// markdown renders md for the terminal, or as plain text without its
// markup for a plain output.
func (c *Chat) markdown(md string) string {
	if c.md != nil {
		return c.md.Render(md)
	}
	return strings.NewReplacer("**", "", "`", "").Replace(md)
}

// settings is the summary for /settings: in a terminal rendered line by
// line (each line a setting), else as before, without the bold markers.
func (c *Chat) settings(s sessions.Summary) string {
	if c.md == nil {
		return strings.ReplaceAll(s.Markdown(), "**", "")
	}
	return c.lines(s.Markdown())
}

// lines renders Markdown whose lines each stand alone (/settings, /usage):
// in a terminal line by line, so that no two join into one paragraph;
// else without its markup.
func (c *Chat) lines(md string) string {
	if c.md == nil {
		return c.markdown(md)
	}
	lines := strings.Split(md, "\n")
	for i, l := range lines {
		lines[i] = c.md.Render(l)
	}
	return strings.Join(lines, "\n")
}

func (c *Chat) dim(s string) string  { return dim(c.color, s) }
func (c *Chat) bold(s string) string { return bold(c.color, s) }

// dim is s faint, when on.
func dim(on bool, s string) string {
	if !on || s == "" {
		return s
	}
	return "\x1b[2m" + s + "\x1b[0m"
}

// dimLines is s faint line by line, so that each line stands alone.
func dimLines(on bool, s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = dim(on, l)
	}
	return strings.Join(lines, "\n")
}

func bold(on bool, s string) string {
	if !on {
		return s
	}
	return "\x1b[1m" + s + "\x1b[0m"
}
