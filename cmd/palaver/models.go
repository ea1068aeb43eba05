package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// cmdModels prints the providers' models: provider, model, context length
// and price when known. Providers that cannot list theirs are named on
// stderr, one line each with the reason; when none can, that is all it
// prints, and it exits 1.
func cmdModels(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	log := commandLogger(cfg, e.stderr)
	router, err := newRouter(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	models, listErr := router.Models(ctx)
	if ctx.Err() != nil {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	les := llm.ListErrors(listErr)
	if len(models) == 0 {
		switch {
		case len(les) == 1:
			log.Debug("list models", "error", listErr)
			return errors.New(les[0].Reason() + ".")
		case len(les) > 1:
			log.Debug("list models", "error", listErr)
			rs := make([]string, len(les))
			for i, le := range les {
				rs[i] = le.Reason()
			}
			return errors.New("no provider could list its models: " + strings.Join(rs, "; ") + ".")
		case listErr != nil:
			return explained(log, listErr)
		}
		return errors.New("the providers list no models")
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tMODEL\tCONTEXT\tPRICE (USD/1M in/out)")
	for _, m := range models {
		ctxLen, price := "-", "-"
		if m.ContextLength > 0 {
			ctxLen = fmt.Sprint(m.ContextLength)
		}
		if m.Pricing != nil {
			price = fmt.Sprintf("%.2f / %.2f", m.Pricing.InputTokens, m.Pricing.OutputTokens)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Provider, m.ID, ctxLen, price)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if listErr != nil {
		log.Debug("list models", "error", listErr)
		for _, note := range sessions.ModelsNotes(listErr) {
			fmt.Fprintf(e.stderr, "palaver models: %s\n", strings.Trim(note, "()"))
		}
	}
	return nil
}
