package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"time"

	"github.com/palaver-bot/palaver/bots/console"
	"github.com/palaver-bot/palaver/sessions"
)

// cmdChat runs the terminal chat on the same Manager, store and providers
// as the bots. Ctrl-C stops an answer; at the prompt it leaves.
func cmdChat(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	name := fs.String("user", "", "conversation name (one history per name; default your login name)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	c, err := openCore(cfg, log, sessions.Observer{}, sessions.TurnObserver{}, nil)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			fmt.Fprintf(e.stderr, "palaver chat: %v\n", err)
		}
	}()

	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)

	who := *name
	if who == "" {
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
	}
	chat := console.New(c.manager, e.stdin, e.stdout, console.Options{
		User:       who,
		Color:      isTerminal(e.stdout),
		Interrupts: interrupts,
		Logger:     log,
	})
	return chat.Run(ctx)
}
