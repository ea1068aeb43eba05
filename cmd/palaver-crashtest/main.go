// Command palaver-crashtest checks that Palaver loses no message when it
// is killed at any moment, on loopback only.
//
// It starts a fake model (llm/llmtest), a fake Telegram
// (bots/telegram/telegramtest) and a fake Discord (bots/discord/discordtest)
// that enforce the platforms' limits, and runs the real `palaver run`
// binary against them. Each cycle starts Palaver, sends messages to two
// private Telegram chats, a Telegram group and a Discord channel (mentions
// there; several at once so that some queue) at random moments, kills
// Palaver with SIGKILL at a random moment, restarts it, waits until it has
// recovered and taken every update Telegram held, stops it cleanly, and
// checks Palaver's store against what the platforms recorded:
//
//   - every message whose Telegram update the bot confirmed is in the
//     history exactly once (Telegram never sends a confirmed update
//     again), and so is every Discord mention the bot showed a reply to;
//   - every message in the history has a reply in the chat whose final
//     text is its answer (exactly the history's) or an "interrupted" or
//     "restarted" note, and only one;
//   - no bot message still has its Stop button;
//   - Palaver always started again.
//
// Discord delivers a gateway event once, with no acknowledgement: a
// mention the bot received and died before taking leaves no trace, and is
// counted as dropped, not as a violation.
//
// A final phase sends messages with no kill to follow: each must be
// answered in full.
//
//	go run ./cmd/palaver-crashtest -cycles 200
//
// The random choices (when messages go, where, when the kill comes)
// follow -seed. It exits 1 when a promise is broken and 2 on a usage or
// set-up error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/palaver-bot/palaver/cmd/internal/palaverproc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command's flags.
type options struct {
	cycles   int
	seed     uint64
	messages int
	verbose  bool
	discord  bool
	palaver  string
	keep     bool
}

// maxMessages bounds -messages: a cycle's messages and the ones
// redelivered after it must fit Palaver's queue (chat.queue is queueRoom).
const maxMessages = 30

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("palaver-crashtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.cycles, "cycles", 20, "kill-and-restart cycles")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the random choices")
	fs.IntVar(&o.messages, "messages", 8, "messages sent per cycle")
	fs.BoolVar(&o.verbose, "v", false, "print each violation as it is found")
	fs.BoolVar(&o.discord, "discord", true, "also mention the bot in a Discord channel (discordtest)")
	fs.StringVar(&o.palaver, "palaver", "", "palaver binary to test (default: build ./cmd/palaver)")
	fs.BoolVar(&o.keep, "keep", false, "keep the directory with the config, the store and the logs")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.cycles < 0:
		return o, errors.New("-cycles must be 0 or more")
	case o.messages < 1 || o.messages > maxMessages:
		return o, fmt.Errorf("-messages must be between 1 and %d", maxMessages)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "palaver-crashtest:", err)
		return 2
	}
	r, err := crashTest(ctx, opts, stdout)
	if r != nil {
		r.writeSummary(stdout, 20)
	}
	if err != nil {
		fmt.Fprintln(stderr, "palaver-crashtest:", err)
		if r == nil || len(r.Found) == 0 {
			return 2
		}
	}
	if r != nil && len(r.Found) > 0 {
		return 1
	}
	return 0
}

// crashTest runs a campaign and returns its report; the report is non-nil
// once the campaign started, even when it could not finish.
func crashTest(ctx context.Context, opts options, progress io.Writer) (*report, error) {
	dir, err := os.MkdirTemp("", "palaver-crashtest-")
	if err != nil {
		return nil, err
	}
	keep := opts.keep
	defer func() {
		if keep {
			fmt.Fprintln(progress, "files (config, store, palaver-NNN.log) in", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	bin := opts.palaver
	if bin == "" {
		fmt.Fprintln(progress, "building palaver…")
		if bin, err = palaverproc.Build(ctx, dir); err != nil {
			return nil, err
		}
	}
	r, err := campaignIn(ctx, dir, bin, opts, progress)
	if r != nil && len(r.Found) > 0 {
		keep = true // the logs explain the violations
	}
	return r, err
}

// campaignIn runs a campaign with its files in dir.
func campaignIn(ctx context.Context, dir, bin string, opts options, progress io.Writer) (*report, error) {
	w, err := newWorld(dir, opts.discord)
	if err != nil {
		return nil, err
	}
	defer w.close()
	c, err := newCampaign(opts, w, bin, progress)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "%d cycles of %d messages, seed %d\n", opts.cycles, opts.messages, opts.seed)
	err = c.run(ctx)
	c.report.Starts = c.starts
	for _, q := range w.sent() {
		if w.modelRequests(q.n) > 1 {
			c.report.ModelReasked++
		}
	}
	return &c.report, err
}
