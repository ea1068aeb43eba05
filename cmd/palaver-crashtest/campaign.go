package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/cmd/internal/palaverproc"
)

// Bounds of a cycle. Messages go out in bursts at random moments in the
// first sendWindow after Palaver starts; those due after the kill wait for
// the restart, as Telegram keeps them. The kill comes in one of three ways
// (see killPlan): at a uniform moment of the first killWindow, which spans
// start-up and recovery, answers queued and streaming, and answers being
// finalised; within nearSend after a burst, most often in its first
// milliseconds, while Palaver takes the messages; or as soon as Telegram
// sees a burst confirmed. The moments between an update's confirmation and
// its message's commit are a few milliseconds long: uniform kills alone
// would seldom meet them.
const (
	sendWindow   = 700 * time.Millisecond
	killWindow   = 1500 * time.Millisecond
	nearSend     = 30 * time.Millisecond
	confirmDelay = 2 * time.Millisecond
	confirmWait  = 5 * time.Second // for a burst to be confirmed
	maxBurst     = 3               // messages sent at once to one conversation (some queue)
	// queueRoom is chat.queue: room for a cycle's messages and the
	// redelivered ones, so that no message is refused for a full queue.
	queueRoom = 50
)

// Kill modes.
const (
	killUniform   = "uniform"
	killAfterSend = "after a burst"
	killAtConfirm = "at a confirmation"
)

// killPlan is when a cycle's kill comes: at a moment after the start
// (killUniform), or delay after burst is sent (killAfterSend) or seen
// confirmed by Telegram (killAtConfirm).
type killPlan struct {
	mode  string
	at    time.Duration
	burst int
	delay time.Duration
}

// planKill draws a kill: uniform two times in five, after a burst or at
// its confirmation otherwise. A kill at a confirmation picks the first
// burst one time in two: a process's first turn has the most to do before
// it commits its message (today, fetching the model list), which makes
// the window between the confirmation and the commit widest there.
func (c *campaign) planKill(bursts []burst) killPlan {
	switch r := c.rng.IntN(10); {
	case r < 4:
		return killPlan{mode: killUniform, at: time.Duration(c.rng.Int64N(int64(killWindow))), burst: -1}
	case r < 7:
		u := c.rng.Float64()
		return killPlan{mode: killAfterSend, burst: c.rng.IntN(len(bursts)), delay: time.Duration(u * u * u * float64(nearSend))}
	default:
		b := 0
		if c.rng.IntN(2) == 0 {
			b = c.rng.IntN(len(bursts))
		}
		return killPlan{mode: killAtConfirm, burst: b, delay: time.Duration(c.rng.Int64N(int64(confirmDelay)))}
	}
}

// Bounds of the waits for Palaver.
const (
	readyTimeout   = 30 * time.Second // to poll again after a start
	settleTimeout  = 60 * time.Second // to confirm every update
	stopGrace      = 40 * time.Second // palaver's own grace is 20 s
	pollGoneWithin = 5 * time.Second  // a dead process's long poll to end
)

// campaign runs the cycles and keeps their figures.
type campaign struct {
	opts options
	w    *world
	bin  string
	cfg  string
	rng  *rand.Rand
	log  io.Writer // progress and -v detail

	starts   int             // palaver processes started
	reported map[string]bool // violations already reported, by id
	answered int             // questions answered in full at the last check
	noted    int             // questions finalised with a note at the last check
	dropped  int             // Discord mentions without trace at the last check
	window   int             // replies left in the commit window at the last check
	lastKill time.Time       // the kill the next check follows; zero after a clean stop
	report   report
}

// cycleReport is the figures of one cycle; the final phase is one too.
type cycleReport struct {
	Cycle int
	// Sent is the messages the cycle sent.
	Sent int
	// KilledAt is when the kill came, after the start; 0 for the final
	// phase. KillMode is how its moment was chosen (see killPlan).
	// DuringStartup is true when Palaver had not polled yet.
	KilledAt      time.Duration
	KillMode      string
	DuringStartup bool
	// UnconfirmedAtKill is the updates Telegram still held at the kill
	// (delivered again after the restart, or for the first time).
	UnconfirmedAtKill int
	// Redeliveries is the updates Telegram delivered again during the
	// cycle because the bot had not confirmed them.
	Redeliveries int
	// Answered and Interrupted count the questions the cycle's check
	// found newly answered in full, and newly finalised with a note.
	Answered    int
	Interrupted int
	// Dropped counts the Discord mentions sent before the kill that left
	// no trace: Discord never delivers a gateway event again, and a bot
	// killed before it took one cannot know of it.
	Dropped int
	// Window counts the replies left as they were because the kill came
	// within commitWindow of their message being made (documented, not a
	// violation).
	Window int
	// Violations counts the violations found for the first time, by kind.
	Violations map[string]int
	found      []violation
}

// newCampaign lays out the world and writes the config.
func newCampaign(opts options, w *world, bin string, log io.Writer) (*campaign, error) {
	cfg, err := w.writeConfig(queueRoom)
	if err != nil {
		return nil, err
	}
	return &campaign{
		opts:     opts,
		w:        w,
		bin:      bin,
		cfg:      cfg,
		rng:      rand.New(rand.NewPCG(opts.seed, 0x70a1a7e5)),
		log:      log,
		reported: map[string]bool{},
	}, nil
}

// run runs every cycle and the final phase. It returns an error only when
// the campaign cannot go on (the set-up failed, or Palaver did not
// restart: that is a violation as well).
func (c *campaign) run(ctx context.Context) error {
	for i := 1; i <= c.opts.cycles; i++ {
		cr, err := c.cycle(ctx, i)
		c.add(cr)
		if err != nil {
			return err
		}
	}
	cr, err := c.final(ctx)
	c.add(cr)
	return err
}

// add records a cycle's figures and prints its line.
func (c *campaign) add(cr cycleReport) {
	c.report.Cycles = append(c.report.Cycles, cr)
	fmt.Fprintln(c.log, cr.line())
	if c.opts.verbose {
		for _, v := range cr.found {
			fmt.Fprintf(c.log, "    %s %s: %s\n", v.kind, v.subject, v.detail)
		}
	}
}

// cycle starts Palaver, sends messages at random moments, kills it at a
// random moment, restarts it, lets it settle, stops it cleanly and checks.
func (c *campaign) cycle(ctx context.Context, n int) (cr cycleReport, err error) {
	cr.Cycle = n
	redelivered := c.w.tg.Redeliveries()
	defer func() { cr.Redeliveries = c.w.tg.Redeliveries() - redelivered }()

	bursts := c.plan(c.opts.messages, sendWindow)
	kp := c.planKill(bursts)
	cr.KillMode = kp.mode
	r, err := c.start(ctx)
	if err != nil {
		return cr, err
	}
	p := r.proc
	start := time.Now()
	polls := len(c.w.tg.CallsTo("getUpdates"))
	killed := false
	type mention struct {
		q  *question
		at time.Time
	}
	var mentions []mention // Discord questions, sent while Palaver ran
	kill := func() {
		if exited, err := p.Exited(); exited {
			c.violation(&cr, kindExited, fmt.Sprintf("run %d", c.starts), "palaver exited by itself (%v); log: %s", err, p.LogPath())
		}
		p.Kill()
		killed = true
		now := time.Now()
		c.lastKill = now
		cr.KilledAt = now.Sub(start)
		cr.DuringStartup = c.w.tg.Pollers() == 0 && len(c.w.tg.CallsTo("getUpdates")) == polls
		cr.UnconfirmedAtKill = c.w.tg.PendingUpdates()
		for _, m := range mentions {
			m.q.kill = max(now.Sub(m.at), time.Nanosecond)
		}
	}
	defer func() {
		if !killed {
			p.Kill() // the context ended
		}
	}()
	for i, b := range bursts {
		if !killed && kp.mode == killUniform && b.at > kp.at {
			if !sleepUntil(ctx, start.Add(kp.at)) {
				return cr, ctx.Err()
			}
			kill()
		}
		if !sleepUntil(ctx, start.Add(b.at)) {
			return cr, ctx.Err()
		}
		if b.conv.platform == discord && (killed || !c.w.discordConnected(r.sessions)) {
			// Discord delivers no event to a bot that is not connected,
			// and never later: these go to Telegram instead (the Discord
			// channel is the last conversation).
			b.conv = c.w.convs[c.rng.IntN(len(c.w.convs)-1)]
		}
		for range b.size {
			q, err := c.w.send(c.rng, b.conv, n, false)
			if err != nil {
				return cr, err
			}
			cr.Sent++
			if q.conv.platform == discord {
				mentions = append(mentions, mention{q, time.Now()})
			}
		}
		if killed || i != kp.burst {
			continue
		}
		if kp.mode == killAtConfirm && b.conv.platform == telegram {
			last := c.w.tg.LastUpdateID()
			wctx, cancel := context.WithTimeout(ctx, confirmWait)
			_ = c.w.tg.WaitFor(wctx, func() bool { return c.w.tg.ConfirmedUpdateID() >= last })
			cancel() // unconfirmed after confirmWait: the kill comes all the same
		}
		if !sleepUntil(ctx, time.Now().Add(kp.delay)) {
			return cr, ctx.Err()
		}
		kill()
	}
	if !killed {
		if !sleepUntil(ctx, start.Add(kp.at)) {
			return cr, ctx.Err()
		}
		kill()
	}
	return cr, c.settleAndCheck(ctx, &cr)
}

// final starts Palaver once more, sends messages with no kill to follow,
// waits for them to be taken, stops it cleanly and checks: every message
// of this phase must be answered in full.
func (c *campaign) final(ctx context.Context) (cr cycleReport, err error) {
	cr.Cycle = c.opts.cycles + 1
	redelivered := c.w.tg.Redeliveries()
	defer func() { cr.Redeliveries = c.w.tg.Redeliveries() - redelivered }()
	r, err := c.start(ctx)
	if err != nil {
		return cr, err
	}
	if err := c.waitReady(ctx, r, &cr); err != nil {
		return cr, err
	}
	start := time.Now()
	var mentions []string // the Discord messages sent
	for _, b := range c.plan(c.opts.messages, sendWindow) {
		if !sleepUntil(ctx, start.Add(b.at)) {
			r.proc.Kill()
			return cr, ctx.Err()
		}
		for range b.size {
			q, err := c.w.send(c.rng, b.conv, cr.Cycle, true)
			if err != nil {
				r.proc.Kill()
				return cr, err
			}
			cr.Sent++
			if q.conv.platform == discord {
				mentions = append(mentions, q.ref)
			}
		}
	}
	// Telegram holds an update until the bot confirms it, and the wait
	// for that is in stopAndCheck; a Discord event is in flight until the
	// bot shows a reply, and one the interrupt overtakes is gone.
	if len(mentions) > 0 {
		wctx, cancel := whileRunning(ctx, r.proc, settleTimeout)
		bot := c.w.dc.BotUser().ID
		// The predicate sees every message after every change: it strikes
		// out the mentions replied to and holds once none is left.
		_, err := c.w.dc.WaitMessage(wctx, func(m discordtest.Message) bool {
			if m.AuthorID == bot {
				mentions = slices.DeleteFunc(mentions, func(ref string) bool { return ref == m.ReferenceID })
			}
			return len(mentions) == 0
		})
		cancel()
		if ctx.Err() != nil {
			r.proc.Kill()
			return cr, ctx.Err()
		}
		_ = err // a mention never answered is the check's to report
	}
	return cr, c.stopAndCheck(ctx, r.proc, &cr)
}

// settleAndCheck restarts Palaver after a kill, waits until it has
// recovered and taken every update Telegram held, stops it cleanly (it
// finishes the answers it started) and checks.
func (c *campaign) settleAndCheck(ctx context.Context, cr *cycleReport) error {
	r, err := c.start(ctx)
	if err != nil {
		return err
	}
	if err := c.waitReady(ctx, r, cr); err != nil {
		return err
	}
	return c.stopAndCheck(ctx, r.proc, cr)
}

// stopAndCheck waits until Palaver has confirmed every update, stops it
// with an interrupt and checks the result.
func (c *campaign) stopAndCheck(ctx context.Context, p *palaverproc.Proc, cr *cycleReport) error {
	wctx, cancel := whileRunning(ctx, p, settleTimeout)
	err := c.w.tg.WaitUpdatesConsumed(wctx)
	cancel()
	if err != nil {
		p.Kill()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		why := fmt.Sprintf("it did not take the %d pending updates within %s", c.w.tg.PendingUpdates(), settleTimeout)
		if exited, exitErr := p.Exited(); exited {
			why = fmt.Sprintf("it exited: %v", exitErr)
		}
		c.violation(cr, kindExited, fmt.Sprintf("run %d", c.starts), "%s; log: %s\n%s", why, p.LogPath(), logTail(p.LogPath(), 10))
		return errors.New("palaver stopped taking updates")
	}
	if err := p.Stop(stopGrace); err != nil {
		c.violation(cr, kindUncleanStop, fmt.Sprintf("run %d", c.starts), "%v", err)
	}
	st, err := c.w.readSnapshot(ctx)
	if err != nil {
		c.violation(cr, kindNoRestart, fmt.Sprintf("run %d", c.starts), "%v", err)
		return err
	}
	st.killed, c.lastKill = c.lastKill, time.Time{}
	out := c.w.check(st)
	for _, v := range out.violations {
		if !c.reported[v.id()] {
			c.reported[v.id()] = true
			c.record(cr, v)
		}
	}
	cr.Answered, cr.Interrupted, cr.Dropped = out.answered-c.answered, out.noted-c.noted, out.dropped-c.dropped
	cr.Window = out.window - c.window
	c.answered, c.noted, c.dropped, c.window = out.answered, out.noted, out.dropped, out.window
	return nil
}

// palaverRun is one palaver process and what the fakes knew before it
// started.
type palaverRun struct {
	proc     *palaverproc.Proc
	since    time.Time // just before the start
	sessions []string  // Discord gateway sessions connected before the start
}

// start starts palaver once the previous process's long poll has ended.
func (c *campaign) start(ctx context.Context) (*palaverRun, error) {
	wctx, cancel := context.WithTimeout(ctx, pollGoneWithin)
	err := c.w.tg.WaitFor(wctx, func() bool { return c.w.tg.Pollers() == 0 })
	cancel()
	if err != nil {
		return nil, fmt.Errorf("the previous palaver's long poll did not end: %w", err)
	}
	r := &palaverRun{since: time.Now()}
	if c.w.dc != nil {
		r.sessions = c.w.discordSessions()
	}
	c.starts++
	logPath := filepath.Join(c.w.dir, fmt.Sprintf("palaver-%03d.log", c.starts))
	r.proc, err = palaverproc.Start(c.bin, []string{"run", "--config", c.cfg}, logPath)
	return r, err
}

// waitReady waits until the new process polls Telegram and has connected
// to Discord and registered its commands there: it has opened the store
// and finalised what the last run left (recovery runs before the first
// poll and before the registration). A process that exits or never gets
// there is a violation, and the campaign cannot go on.
func (c *campaign) waitReady(ctx context.Context, r *palaverRun, cr *cycleReport) error {
	p := r.proc
	wctx, cancel := whileRunning(ctx, p, readyTimeout)
	defer cancel()
	err := c.w.tg.WaitFor(wctx, func() bool { return c.w.tg.Pollers() > 0 })
	if err == nil && c.w.dc != nil {
		_, err = c.w.dc.WaitGateway(wctx, func(discordtest.GatewaySession) bool { return c.w.discordReady(r.sessions, r.since) })
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		p.Kill()
		return ctx.Err()
	}
	why := fmt.Sprintf("it did not connect to the platforms within %s", readyTimeout)
	if exited, exitErr := p.Exited(); exited {
		why = fmt.Sprintf("it exited: %v", exitErr)
	}
	p.Kill()
	c.violation(cr, kindNoRestart, fmt.Sprintf("run %d", c.starts), "%s; log: %s\n%s", why, p.LogPath(), logTail(p.LogPath(), 10))
	return errors.New("palaver did not restart")
}

// whileRunning is ctx ended after timeout or when p exits, whichever comes
// first.
func whileRunning(ctx context.Context, p *palaverproc.Proc, timeout time.Duration) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	go func() {
		select {
		case <-p.Done():
			cancel()
		case <-wctx.Done():
		}
	}()
	return wctx, cancel
}

// burst is messages sent at once to one conversation.
type burst struct {
	at   time.Duration
	conv *conv
	size int
}

// plan spreads n messages over window in bursts of 1 to maxBurst, each to
// a random conversation, in time order.
func (c *campaign) plan(n int, window time.Duration) []burst {
	var bs []burst
	for n > 0 {
		b := burst{
			at:   time.Duration(c.rng.Int64N(int64(window))),
			conv: c.w.convs[c.rng.IntN(len(c.w.convs))],
			size: 1 + c.rng.IntN(min(n, maxBurst)),
		}
		bs = append(bs, b)
		n -= b.size
	}
	slices.SortStableFunc(bs, func(a, b burst) int { return int(a.at - b.at) })
	return bs
}

// violation records a violation of the campaign itself (not of one
// message).
func (c *campaign) violation(cr *cycleReport, kind, subject, format string, args ...any) {
	c.record(cr, violation{kind: kind, subject: subject, detail: fmt.Sprintf(format, args...)})
}

func (c *campaign) record(cr *cycleReport, v violation) {
	if cr.Violations == nil {
		cr.Violations = map[string]int{}
	}
	cr.Violations[v.kind]++
	cr.found = append(cr.found, v)
	c.report.Found = append(c.report.Found, v)
}

// sleepUntil waits until t or ctx ends, reporting whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// logTail returns the last n lines of a log file, indented.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(bytes.TrimSpace(data)), "\n")
	lines = lines[max(0, len(lines)-n):]
	return "      " + strings.Join(lines, "\n      ")
}
