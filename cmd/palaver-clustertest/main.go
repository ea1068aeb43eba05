// Command palaver-clustertest checks that three Palaver processes on one
// etcd cluster answer every question exactly once while any of them is
// killed or restarted, and measures how fast they take over from each
// other, on loopback only.
//
// It starts, in its own process, an embedded etcd cluster of three
// members (sessions/etcdstore/etcdtest, syncing to disk as production
// etcd does), a fake model (llm/llmtest), a fake Telegram
// (bots/telegram/telegramtest) and a fake Discord
// (bots/discord/discordtest) with -shards shards and guilds on every
// shard, all enforcing the platforms' limits at their real pace. It runs
// three `palaver run` processes of the real binary against them, sharing
// storage.etcd, each with its own cluster.member, /healthz and /metrics.
// Conversations (Telegram private chats and groups, Discord channels on
// every shard) each ask one question at a time, waiting for its final
// reply, then think, then ask again. The phases:
//
//   - load: each conversation asks -questions questions; every one must be
//     answered in full, exactly once, with no 429 from either platform.
//     It reports the answers each process handled (palaver_answers_total)
//     and the commit latency of the etcd store under that load, next to a
//     bbolt file's on the same disk.
//   - kill: -kills times, while answers stream, SIGKILL one process: the
//     Telegram leader first, then a process holding Discord shards and
//     leading nothing, in turn (which one at random when several fit),
//     with -seed; measure how long the survivors take to lead
//     Telegram and to have the dead process's shards READY, then restart
//     it. Every Telegram question must be answered exactly once (Telegram
//     holds what the bot did not confirm), answers cut off finalised with
//     the "interrupted" note, and a /retry there answered in full. A
//     Discord message written while no connection of its shard was open
//     is counted as not delivered by Discord (Discord replays events only
//     to a RESUME of the same session, which a killed process never
//     sends), and one delivered to the process just before it was killed
//     as dropped with it: neither is a Palaver loss.
//   - rolling: stop each process in turn with an interrupt (a clean
//     shutdown) and start it again, while questions keep coming; every
//     question must be answered in full, exactly once, and a Discord one
//     written while its shard had no connection is a violation here:
//     shards are to move make-before-break.
//
// At the end the processes stop, and the harness reads the store (an
// etcd store client of its own) and checks it against what the fakes
// recorded. It prints a report (-json for JSON) and exits 1 when a
// promise is broken, 2 on a usage or set-up error.
//
//	go run ./cmd/palaver-clustertest
//	go run ./cmd/palaver-clustertest -kills 10
//
// docs/scaling.md reports its figures.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/cmd/internal/palaverproc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Phases.
const (
	phaseLoad    = "load"
	phaseKill    = "kill"
	phaseRolling = "rolling"
)

var allPhases = []string{phaseLoad, phaseKill, phaseRolling}

// options are the command's flags.
type options struct {
	conversations  int
	questions      int
	kills          int
	failover       time.Duration
	shards         int
	maxConcurrency int
	tokens         int
	rate           float64
	think          time.Duration
	restartAfter   time.Duration
	phases         []string
	seed           uint64
	fsync          bool
	timeout        time.Duration
	palaver        string
	keep           bool
	jsonOut        bool
	verbose        bool
}

// Bounds of the flags: each conversation is a fake user of its own, and
// each answer a stream of the fake model.
const (
	maxConversations = 1000
	minTokens        = 8 // the tag and a few words
	maxTokens        = 2000
	minFailover      = 2 * time.Second // palaver's own minimum
)

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("palaver-clustertest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.conversations, "conversations", 100, "conversations asking at once: Telegram private chats and groups, Discord channels on every shard")
	fs.IntVar(&o.questions, "questions", 3, "questions each conversation asks in the load phase")
	fs.IntVar(&o.kills, "kills", 6, "SIGKILLs in the kill phase (each followed by a restart)")
	fs.DurationVar(&o.failover, "failover", 10*time.Second, "cluster.failover of every process (the session lease's TTL)")
	fs.IntVar(&o.shards, "shards", 4, "discord.shards, and the fake's recommended count")
	fs.IntVar(&o.maxConcurrency, "max-concurrency", 1, "the fake Discord's max_concurrency (identify buckets; one IDENTIFY per bucket every 5 s)")
	fs.IntVar(&o.tokens, "tokens", 50, "longest answer, in tokens (each is 1/4 to all of it)")
	fs.Float64Var(&o.rate, "rate", 20, "tokens per second of each answer")
	fs.DurationVar(&o.think, "think", time.Second, "mean pause between a final reply and the conversation's next question")
	fs.DurationVar(&o.restartAfter, "restart-after", 2*time.Second, "how long a killed process stays dead once the others have taken over")
	phases := fs.String("phases", strings.Join(allPhases, ","), "phases to run, in order: `load,kill,rolling` or a part of it")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the random choices (which process dies, when, the questions)")
	fs.BoolVar(&o.fsync, "fsync", true, "make the etcd members sync their logs to disk, as production etcd does")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "longest the whole run may take")
	fs.StringVar(&o.palaver, "palaver", "", "palaver binary to test (default: build ./cmd/palaver)")
	fs.BoolVar(&o.keep, "keep", false, "keep the directory with the configs, etcd's data and the logs")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.verbose, "v", false, "print each violation as it is found")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for p := range strings.SplitSeq(*phases, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allPhases, p) {
			return o, fmt.Errorf("-phases: unknown phase %q (want load, kill, rolling)", p)
		}
		if slices.Contains(o.phases, p) {
			return o, fmt.Errorf("-phases: %q twice", p)
		}
		o.phases = append(o.phases, p)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.conversations < 1 || o.conversations > maxConversations:
		return o, fmt.Errorf("-conversations must be between 1 and %d", maxConversations)
	case o.questions < 1:
		return o, errors.New("-questions must be 1 or more")
	case o.kills < 0:
		return o, errors.New("-kills must be 0 or more")
	case o.failover < minFailover:
		return o, fmt.Errorf("-failover must be at least %s", minFailover)
	case o.shards < 1 || o.shards > 64:
		return o, errors.New("-shards must be between 1 and 64")
	case o.maxConcurrency < 1:
		return o, errors.New("-max-concurrency must be 1 or more")
	case o.tokens < minTokens || o.tokens > maxTokens:
		return o, fmt.Errorf("-tokens must be between %d and %d", minTokens, maxTokens)
	case o.rate <= 0:
		return o, errors.New("-rate must be positive")
	case o.think < 0 || o.restartAfter < 0:
		return o, errors.New("-think and -restart-after must not be negative")
	case o.timeout <= 0:
		return o, errors.New("-timeout must be positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "palaver-clustertest:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	r, err := clusterTest(ctx, opts, stderr)
	if r != nil {
		if opts.jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(r)
		} else {
			r.write(stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "palaver-clustertest:", err)
		if r == nil || len(r.Violations) == 0 {
			return 2
		}
	}
	if r != nil && len(r.Violations) > 0 {
		return 1
	}
	return 0
}

// clusterTest builds palaver unless given, runs the phases in a new
// temporary directory and returns the report; the report is non-nil once
// the processes started, even when the run could not finish.
func clusterTest(ctx context.Context, opts options, progress io.Writer) (*report, error) {
	dir, err := os.MkdirTemp("", "palaver-clustertest-")
	if err != nil {
		return nil, err
	}
	keep := opts.keep
	defer func() {
		if keep {
			fmt.Fprintln(progress, "files (configs, etcd data, member-N.log) in", dir)
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
	r, err := runIn(ctx, dir, bin, opts, progress)
	if r != nil && len(r.Violations) > 0 || err != nil {
		keep = true // the logs explain what went wrong
	}
	return r, err
}
