package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// cmdAsk answers one question, streaming the answer to stdout. It keeps no
// history.
func cmdAsk(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	model := fs.String("model", "", "model to ask: `name` as in chat's /model (alias, provider/model, model id or a part of one name; default models.default)")
	reasoning := fs.String("reasoning", "", "how to show the model's reasoning, a `word` of chat.reasoning's: hidden, collapsed\n"+
		"(one line while it thinks) or full (default chat.reasoning). Reasoning goes to stdout\n"+
		"only when that is a terminal, else to stderr (full) or nowhere, so that\n"+
		"\"palaver ask Q > answer.txt\" holds the answer alone")
	system := fs.String("system", "", "system prompt (default chat.system_prompt)")
	var images, files pathList
	fs.Var(&images, "image", "a picture to ask about (`path`; JPEG, PNG, WebP or GIF; may be repeated): the model must see images")
	fs.Var(&files, "file", "a text file or PDF whose text goes with the question (`path`; may be repeated; pictures too)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("no question given (see palaver ask -h)")}
	}
	switch *reasoning {
	case "", ReasoningHidden, ReasoningCollapsed, ReasoningFull:
	default:
		return &exitError{code: 2, err: fmt.Errorf("--reasoning: want hidden, collapsed or full (as chat.reasoning), got %q", *reasoning)}
	}
	question := strings.Join(pos, " ")
	if question == "-" {
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return fmt.Errorf("read question: %w", err)
		}
		question = string(b)
	}
	question = strings.TrimSpace(question)
	if question == "" {
		return &exitError{code: 2, err: fmt.Errorf("the question is empty")}
	}

	cfg, err := e.config()
	if err != nil {
		return err
	}
	if *reasoning == "" {
		*reasoning = cfg.Chat.Reasoning
	}
	log := commandLogger(cfg, e.stderr)
	router, err := newRouter(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	// --model is typed by a person: it resolves as chat's /model does.
	opts := llm.ResolveOptions{Typed: *model != "", Allowed: cfg.Models.Allowed}
	name := *model
	if name == "" {
		name = cfg.Models.Default
	}
	res, err := router.Lookup(ctx, name, opts)
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: 130, err: fmt.Errorf("interrupted")}
		}
		return explained(log, err)
	}
	prompt := cfg.Chat.SystemPrompt
	if *system != "" {
		prompt = *system
	}
	var msgs []llm.Message
	if prompt = sessionsPrompt(prompt, res.Name); prompt != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: prompt})
	}
	imgs, blocks, err := readFiles(ctx, append(append([]string(nil), images...), files...), attachLimits(cfg))
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(blocks) > 0 {
		question += "\n\n" + strings.Join(blocks, "\n\n")
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: question, Images: imgs})
	req := llm.Request{Model: res.ID, Messages: msgs, Temperature: cfg.Chat.Temperature, MaxTokens: cfg.Chat.MaxTokens}

	rv := newReasoningView(*reasoning, e.stdout, e.stderr, e.getenv("NO_COLOR") == "")
	wrote := false
	for d, err := range res.Client.Stream(ctx, req) {
		if err != nil {
			rv.end()
			if wrote {
				fmt.Fprintln(e.stdout)
			}
			if ctx.Err() != nil {
				return &exitError{code: 130, err: fmt.Errorf("interrupted")}
			}
			return explained(log, err)
		}
		if d.Reasoning != "" {
			rv.reason(d.Reasoning)
		}
		if d.Content != "" {
			rv.end()
			fmt.Fprint(e.stdout, d.Content)
			wrote = true
		}
	}
	rv.end()
	fmt.Fprintln(e.stdout)
	return nil
}

// Terminal escapes of the reasoning view.
const (
	faint     = "\x1b[2m"
	plain     = "\x1b[0m"
	eraseLine = "\r\x1b[K"
)

// reasoningView shows the model's reasoning for palaver ask. It maps
// chat.reasoning's words to a terminal:
//
//   - hidden: nothing.
//   - collapsed: one faint line, "💭 thinking…", while the model reasons,
//     erased when the answer starts; on stdout when it is a terminal, else
//     on stderr when that is one, else nowhere.
//   - full: the reasoning itself, then a blank line; on stdout when it is a
//     terminal, else on stderr (so that stdout holds only the answer);
//     faint where that is a terminal and color is on.
type reasoningView struct {
	mode    string
	w       io.Writer // nil: nowhere
	term    bool      // w is a terminal
	color   bool      // faint text is allowed (NO_COLOR is unset)
	started bool      // something was shown
	ended   bool      // the answer started: show no more
}

func newReasoningView(mode string, stdout, stderr io.Writer, color bool) *reasoningView {
	v := &reasoningView{mode: mode, color: color}
	switch {
	case mode == ReasoningHidden:
	case isTerminal(stdout):
		v.w, v.term = stdout, true
	case isTerminal(stderr):
		v.w, v.term = stderr, true
	case mode == ReasoningFull:
		v.w = stderr
	}
	return v
}

// reason shows a piece of reasoning.
func (v *reasoningView) reason(text string) {
	if v.w == nil || v.ended {
		return
	}
	first := !v.started
	v.started = true
	switch v.mode {
	case ReasoningFull:
		if first && v.term && v.color {
			io.WriteString(v.w, faint)
		}
		io.WriteString(v.w, text)
	case ReasoningCollapsed:
		if first {
			line := "💭 thinking…"
			if v.color {
				line = faint + line + plain
			}
			io.WriteString(v.w, line)
		}
	}
}

// end closes what reason showed, once: the answer starts (or the stream
// ended).
func (v *reasoningView) end() {
	if !v.started || v.ended {
		v.ended = true
		return
	}
	v.ended = true
	switch v.mode {
	case ReasoningFull:
		if v.term && v.color {
			io.WriteString(v.w, plain)
		}
		io.WriteString(v.w, "\n\n")
	case ReasoningCollapsed:
		io.WriteString(v.w, eraseLine)
	}
}

// sessionsPrompt fills a system prompt's placeholders for a one-shot
// question, the way the session manager does for conversations.
func sessionsPrompt(p, model string) string {
	now := time.Now()
	return strings.NewReplacer(
		"{date}", now.Format("Monday, 2 January 2006"),
		"{time}", now.Format("15:04 MST"),
		"{model}", model,
		"{platform}", "terminal",
	).Replace(p)
}

// isTerminal reports whether w is a terminal (not merely a character
// device, as /dev/null is).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// commandLogger is the logger of a one-shot command (ask, models), whose
// user reads its sentences on the same stderr: it logs errors only (the
// ones no sentence explains), or everything at log.level debug.
func commandLogger(cfg *Config, w io.Writer) *slog.Logger {
	if cfg.Log.Level != "debug" {
		c := *cfg
		c.Log.Level = "error"
		cfg = &c
	}
	return newLogger(cfg, w)
}

// explained is err as the sentence a person at the command line reads.
// err itself is logged at debug level, or as an error when the sentence
// sends the reader to the log.
func explained(log *slog.Logger, err error) error {
	level := slog.LevelDebug
	if sessions.Unexplained(err) {
		level = slog.LevelError
	}
	log.Log(context.Background(), level, "request failed", "error", err)
	return errors.New(sessions.ExplainCommand(err))
}
