package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"text/tabwriter"
)

// cmdModels prints the providers' models: provider, model, context length
// and price when known.
func cmdModels(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	router, err := newRouter(cfg, newLogger(cfg, e.stderr))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	models, listErr := router.Models(ctx)
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
	tw.Flush()
	if listErr != nil {
		return fmt.Errorf("%w", listErr)
	}
	return nil
}
