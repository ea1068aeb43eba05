// Command palaver-loadtest measures Palaver under load, on loopback only.
//
// It starts a fake model (llm/llmtest) and fake Telegram and Discord
// servers that enforce the platforms' limits, runs the real `palaver run`
// binary against them in its own process, and plays many users at once:
// people in private Telegram chats, several people addressing the bot in
// Telegram groups and Discord channels (their answers queue), and forum
// topics streaming side by side on one group's budget. Afterwards it
// rebuilds every answer from what the fake platforms recorded and prints
// how fast the text became visible, how smoothly it grew, whether any
// limit was exceeded and any text lost, and what Palaver's process spent.
//
//	go run ./cmd/palaver-loadtest -conversations 1000
//
// The crowd workload (-workload crowd) is instead many users asking at
// once in one Telegram group and one Discord channel (-crowd, default 50),
// or with -discord-threads in one Discord channel where Palaver answers
// each question in a thread of its own; it reports how long each asker
// waited for a first sign of life and for the final text.
//
//	go run ./cmd/palaver-loadtest -workload crowd
//	go run ./cmd/palaver-loadtest -workload crowd -discord-threads
//
// It exits 1 when an invariant breaks (a 429 nobody injected, local or
// global, a write during a 429 pause, a platform limit exceeded, an answer
// lost or different from the model's), 2 on a usage or set-up error, and
// with -strict also 1 when a performance target is missed. A run the
// palaver binary cannot do (its config lacks discord.threads) is skipped
// with a message and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
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

// options are the command's flags.
type options struct {
	workload        string
	crowd           int
	threads         bool
	conversations   int
	tokens          int
	rate            float64
	turns           int
	users           int
	topics          int
	mix             map[kind]int
	drafts          bool
	inject429       int
	drop            float64
	platformLatency time.Duration
	upstreamH2      bool
	ramp            time.Duration
	think           time.Duration
	timeout         time.Duration
	settle          time.Duration
	seed            int64
	idle            time.Duration
	palaver         string
	profile         string
	keep            bool
	jsonOut         bool
	strict          bool
	details         bool
	logLevel        string
}

const defaultMix = "telegram-private=40,telegram-group=10,telegram-topic=15,discord-channel=20,discord-dm=15"

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("palaver-loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.workload, "workload", mixWorkload, "what the users do: `mix` (many conversations of every kind) or crowd (many users in one group and one channel)")
	fs.IntVar(&o.crowd, "crowd", 50, "with -workload crowd, users asking at once in the Telegram group and in the Discord channel")
	fs.BoolVar(&o.threads, "discord-threads", false, "with -workload crowd, run the Discord channel alone with discord.threads: true")
	fs.IntVar(&o.conversations, "conversations", 100, "conversations driven at once")
	fs.IntVar(&o.tokens, "tokens", 500, "tokens per answer")
	fs.Float64Var(&o.rate, "rate", 50, "tokens per second of each answer")
	fs.IntVar(&o.turns, "turns", 1, "questions each user asks, one after the other")
	fs.IntVar(&o.users, "users", 3, "users asking at once in each group and Discord channel")
	fs.IntVar(&o.topics, "topics", 3, "topics (conversations) per Telegram forum")
	mix := fs.String("mix", defaultMix, "share of each kind of conversation, `kind=weight,…`")
	fs.BoolVar(&o.drafts, "drafts", true, "stream Telegram private answers as drafts (telegram.drafts)")
	fs.IntVar(&o.inject429, "inject-429", 0, "429s the fake platforms force on streaming destinations")
	fs.Float64Var(&o.drop, "drop", 0, "share of answers whose upstream stream breaks half-way, 0 to 1")
	fs.DurationVar(&o.platformLatency, "platform-latency", 0, "delay added to every request to the platforms")
	fs.BoolVar(&o.upstreamH2, "upstream-h2", false, "serve the model over TLS with HTTP/2, as DeepInfra does (its streams then share a few connections), instead of plain HTTP/1.1 like a local server")
	fs.DurationVar(&o.ramp, "ramp", 5*time.Second, "time over which the conversations start")
	fs.DurationVar(&o.think, "think", 2*time.Second, "pause between a finished answer and the user's next question")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "longest the run may take")
	fs.DurationVar(&o.settle, "settle", 0, "how long the last answers may take to be shown in full once every question is asked (0: the longest an answer takes on its destination's schedule; more when the per-bot budgets bind)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the random choices (drops, injections)")
	fs.DurationVar(&o.idle, "idle", 3*time.Second, "how long Palaver's CPU time at rest is measured before the load (0 skips)")
	fs.StringVar(&o.palaver, "palaver", "", "palaver binary to test (default: build ./cmd/palaver)")
	fs.StringVar(&o.profile, "profile", "", "build palaver with net/http/pprof (added by go build -overlay, not in the tree) and save its heap and goroutine profiles at the peak heap in `dir`")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, database, palaver.log)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.details, "details", false, "with -json, list every answer's timeline")
	fs.BoolVar(&o.strict, "strict", false, "also exit 1 when a performance target is missed")
	fs.StringVar(&o.logLevel, "log-level", "warn", "palaver's log.level")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch o.workload {
	case mixWorkload:
		if set["crowd"] || set["discord-threads"] {
			return o, errors.New("-crowd and -discord-threads need -workload crowd")
		}
	case crowdWorkload:
		if set["conversations"] || set["mix"] || set["users"] || set["topics"] {
			return o, errors.New("-workload crowd lays out its own conversations: drop -conversations, -mix, -users and -topics")
		}
		if o.crowd < 1 || o.crowd > maxCrowd {
			return o, fmt.Errorf("-crowd must be between 1 and %d", maxCrowd)
		}
		if !set["timeout"] {
			o.timeout = crowdTimeout
		}
		o.conversations, o.users = 2, 1
		if o.threads {
			o.conversations = 1
		}
	default:
		return o, fmt.Errorf("-workload must be %s or %s, not %q", mixWorkload, crowdWorkload, o.workload)
	}
	var err error
	if o.mix, err = parseMix(*mix); err != nil {
		return o, err
	}
	switch {
	case o.conversations < 1:
		return o, errors.New("-conversations must be at least 1")
	case o.tokens < 2:
		return o, errors.New("-tokens must be at least 2")
	case o.rate <= 0 || o.rate > 10000:
		return o, errors.New("-rate must be above 0 and at most 10000")
	case o.turns < 1 || o.users < 1 || o.topics < 1:
		return o, errors.New("-turns, -users and -topics must be at least 1")
	case o.users > 4:
		return o, errors.New("-users must be at most 4: Palaver queues 3 messages per conversation (chat.queue) besides the one it answers")
	case o.drop < 0 || o.drop > 1:
		return o, errors.New("-drop must be between 0 and 1")
	case o.inject429 < 0:
		return o, errors.New("-inject-429 must be 0 or more")
	case o.idle < 0 || o.ramp < 0 || o.think < 0 || o.platformLatency < 0 || o.timeout <= 0:
		return o, errors.New("-idle, -ramp, -think and -platform-latency must be 0 or more, -timeout above 0")
	case o.profile != "" && o.palaver != "":
		return o, errors.New("-profile builds palaver itself: drop -palaver")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "palaver-loadtest:", err)
		return 2
	}
	r, err := loadTest(ctx, opts, stderr)
	if skip := (*skipped)(nil); errors.As(err, &skip) {
		fmt.Fprintln(stderr, "palaver-loadtest: skipped:", skip.reason)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "palaver-loadtest:", err)
		return 2
	}
	if opts.jsonOut {
		if err := r.writeJSON(stdout); err != nil {
			fmt.Fprintln(stderr, "palaver-loadtest:", err)
			return 2
		}
	} else {
		r.writeTable(stdout)
	}
	failed := broken(r.Invariants)
	if opts.strict {
		failed = append(failed, broken(r.Targets)...)
	}
	if len(failed) > 0 {
		var names []string
		for _, c := range failed {
			names = append(names, c.Name)
		}
		fmt.Fprintln(stderr, "palaver-loadtest: failed:", strings.Join(names, "; "))
		return 1
	}
	return 0
}

// loadTest runs one load test and returns its report.
func loadTest(ctx context.Context, opts options, progress io.Writer) (*Report, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "palaver-loadtest-")
	if err != nil {
		return nil, err
	}
	if opts.keep {
		fmt.Fprintln(progress, "files in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := opts.palaver
	var prof *profiler
	switch {
	case opts.profile != "":
		fmt.Fprintln(progress, "building palaver with pprof…")
		if bin, err = buildProfiled(ctx, dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(opts.profile, 0o755); err != nil {
			return nil, err
		}
		addr, err := palaverproc.FreeAddr()
		if err != nil {
			return nil, err
		}
		// The child inherits the environment.
		os.Setenv(profileEnv, addr)
		defer os.Unsetenv(profileEnv)
		prof = &profiler{base: "http://" + addr, dir: opts.profile}
	case bin == "":
		fmt.Fprintln(progress, "building palaver…")
		if bin, err = buildPalaver(ctx, dir); err != nil {
			return nil, err
		}
	}
	var counts map[kind]int
	if opts.workload == mixWorkload {
		counts = split(opts.conversations, opts.mix)
	}
	w, err := newWorld(opts, counts)
	if err != nil {
		return nil, err
	}
	defer w.close()
	p, err := w.start(ctx, bin, dir)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.kill()
		}
	}()

	// Palaver's CPU time at rest (connected, scraped once a second), to
	// tell the cost of the load from the cost of being up.
	idle0, err := p.scrape(ctx)
	if err != nil {
		return nil, err
	}
	if !sleepUntil(ctx, time.Now().Add(opts.idle)) {
		return nil, ctx.Err()
	}
	before, err := p.scrape(ctx)
	if err != nil {
		return nil, err
	}
	idleRate := 0.0
	if opts.idle > 0 {
		idleRate = (before.value("process_cpu_seconds_total", nil) - idle0.value("process_cpu_seconds_total", nil)) / opts.idle.Seconds()
	}
	worldCPU0 := selfCPU()
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	samples := p.sample(sctx, time.Second, prof)

	fmt.Fprintf(progress, "driving %d conversations (%d answers)…\n", len(w.convs), len(w.answers))
	loadStart := time.Now()
	if err := w.drive(ctx); err != nil {
		return nil, err
	}
	an := w.settle(ctx)
	after, err := p.scrape(context.WithoutCancel(ctx))
	loadEnd := time.Now()
	if err != nil {
		return nil, err
	}
	stopSampling()
	health, _ := p.health()
	rss := p.peakRSS()
	worldCPU := selfCPU() - worldCPU0
	stopErr := p.stop(30 * time.Second)
	stopped = true
	if rss == 0 {
		rss = p.peakRSS()
	}
	r := w.report(an, before, after, samples, rss, worldCPU)
	if prof != nil {
		fmt.Fprintf(progress, "heap and goroutine profiles at the peak heap in use (%.0f MB) in %s\n", prof.peak/(1<<20), opts.profile)
	}
	r.Palaver.IdleCore = idleRate
	r.Palaver.WallSeconds = loadEnd.Sub(loadStart).Seconds()
	r.Metrics.HealthComponents = health
	if stopErr != nil {
		r.Invariants = append(r.Invariants, check("clean shutdown", "palaver exits 0 on Ctrl-C", false, "%v", stopErr))
	} else {
		r.Invariants = append(r.Invariants, check("clean shutdown", "palaver exits 0 on Ctrl-C", true, "exit 0"))
	}
	return r, nil
}

func allComplete(an *analysis) bool {
	for _, o := range an.answers {
		if !o.complete {
			return false
		}
	}
	return true
}

// settle waits until every answer is shown in full, nothing has reached
// the fake platforms for quietFor (what is missing will not come), or the
// time the slowest answer can take has passed, and returns the analysis.
// The answers of a conversation may take turns, each streaming for tokens
// / rate; the last may wait out a group's 3 s interval (times the topics
// sharing it, or once per asker in a crowd) and more after injected 429s;
// and every answer's requests wait for the per-bot budgets (budgetWait).
func (w *world) settle(ctx context.Context) *analysis {
	o := w.opts
	stream := time.Duration(float64(o.tokens) / o.rate * float64(time.Second))
	turns := 0
	for _, c := range w.convs {
		turns = max(turns, len(c.answers))
	}
	waits := o.topics + 2
	if o.workload == crowdWorkload {
		waits = o.crowd + 2
	}
	wait := time.Duration(turns)*stream + time.Duration(waits)*telegramGroupInterval + o.platformLatency*20
	deadline := time.Now().Add(max(wait, stream+w.budgetWait()))
	if o.settle > 0 {
		deadline = time.Now().Add(o.settle)
	}
	calls, quietSince := -1, time.Now()
	quiet := quietFor
	if o.workload == crowdWorkload {
		quiet = crowdQuietFor
	}
	for {
		an := w.analyze()
		if allComplete(an) || time.Now().After(deadline) {
			return an
		}
		if n := len(w.tg.Calls()) + len(w.dc.Calls()); n != calls {
			calls, quietSince = n, time.Now()
		} else if time.Since(quietSince) > quiet {
			return an
		}
		if !sleepUntil(ctx, time.Now().Add(500*time.Millisecond)) {
			return w.analyze()
		}
	}
}

// budgetWait is how long Palaver's per-bot budgets take, at the least, to
// let every answer's first appearance and final view out (and a Discord
// answer's further messages), each request counted for its round trip
// too (three quarters of the budget, say).
func (w *world) budgetWait() time.Duration {
	need := map[string]float64{}
	for _, a := range w.answers {
		p := platformOf(a.conv.kind)
		switch {
		case !w.drawsOnBudget(a.conv.kind):
			need[p]++ // the final message; the drafts are free
		case p == "discord":
			need[p] += 2 + float64(len(a.text()))/discordPart
		default:
			need[p] += 2
		}
	}
	rate := map[string]float64{"telegram": palaverTelegramBudget * 0.75, "discord": palaverDiscordBudget * 0.75}
	var d time.Duration
	for p, n := range need {
		d = max(d, time.Duration(n/rate[p]*float64(time.Second)))
	}
	return d
}

// discordPart is about how many characters a Discord message of an
// answer holds (its limit less the room kept for the status line).
const discordPart = 1800

// quietFor is how long the platforms hear nothing from Palaver before the
// load test stops waiting for answers still missing. A crowd in a Telegram
// group may wait out the group's whole window (20 a minute, spent at once
// on first signs of life), so crowds wait longer.
const (
	quietFor      = 10 * time.Second
	crowdQuietFor = 70 * time.Second
)

func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}
