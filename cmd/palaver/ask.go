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

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// cmdAsk answers one question, streaming the answer to stdout. It keeps no
// history.
func cmdAsk(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	model := fs.String("model", "", "model to ask (`provider/model`, alias or bare id; default models.default)")
	reasoning := fs.String("reasoning", "dim", "how to show the model's reasoning: `hidden`, dim or plain")
	system := fs.String("system", "", "system prompt (default chat.system_prompt)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: palaver ask [flags] QUESTION   (QUESTION \"-\" reads stdin)\n")
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("no question given")}
	}
	switch *reasoning {
	case "hidden", "dim", "plain":
	default:
		return &exitError{code: 2, err: fmt.Errorf("--reasoning: want hidden, dim or plain, got %q", *reasoning)}
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
	log := newLogger(cfg, e.stderr)
	router, err := newRouter(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	name := *model
	if name == "" {
		name = cfg.Models.Default
	}
	client, id, canonical, err := router.Resolve(ctx, name)
	if err != nil {
		return explained(log, err)
	}
	prompt := cfg.Chat.SystemPrompt
	if *system != "" {
		prompt = *system
	}
	var msgs []llm.Message
	if prompt = sessionsPrompt(prompt, canonical); prompt != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: prompt})
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: question})
	req := llm.Request{Model: id, Messages: msgs, Temperature: cfg.Chat.Temperature, MaxTokens: cfg.Chat.MaxTokens}

	color := isTerminal(e.stdout)
	inReasoning, wrote := false, false
	for d, err := range client.Stream(ctx, req) {
		if err != nil {
			if wrote {
				fmt.Fprintln(e.stdout)
			}
			if ctx.Err() != nil {
				return &exitError{code: 130, err: fmt.Errorf("interrupted")}
			}
			return explained(log, err)
		}
		if d.Reasoning != "" && *reasoning != "hidden" {
			if !inReasoning && *reasoning == "dim" && color {
				fmt.Fprint(e.stdout, "\x1b[2m")
			}
			inReasoning = true
			fmt.Fprint(e.stdout, d.Reasoning)
			wrote = true
		}
		if d.Content != "" {
			if inReasoning {
				if *reasoning == "dim" && color {
					fmt.Fprint(e.stdout, "\x1b[0m")
				}
				fmt.Fprint(e.stdout, "\n\n")
				inReasoning = false
			}
			fmt.Fprint(e.stdout, d.Content)
			wrote = true
		}
	}
	if inReasoning && *reasoning == "dim" && color {
		fmt.Fprint(e.stdout, "\x1b[0m")
	}
	fmt.Fprintln(e.stdout)
	return nil
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

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// explained is err as the sentence a user reads; the error itself goes to
// the log, where the sentence may send the reader.
func explained(log *slog.Logger, err error) error {
	if ue, ok := errors.AsType[*sessions.UserError](err); !ok || ue == nil {
		log.Warn("ask failed", "error", err)
	}
	return errors.New(sessions.Explain(err))
}
