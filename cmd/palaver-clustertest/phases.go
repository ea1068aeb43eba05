package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// harness is one run: the world, the deployment and what the
// phases recorded.
type harness struct {
	opts     options
	w        *world
	d        *deployment
	cli      *clientv3.Client // reads the member records
	mon      *shardMonitor
	drv      *drivers
	kills    *killLog
	rng      *rand.Rand
	progress io.Writer

	report  report
	events  []event                           // kills, stops and restarts, in order
	periods map[string][2]time.Time           // phase → its start and end
	botWide map[string][2]int                 // phase → Telegram's bot-wide 429s at its start and end
	answers map[string]map[*member][2]float64 // phase → answers at its start and end
}

// runIn runs the phases with the files in dir and checks the result.
func runIn(ctx context.Context, dir, bin string, opts options, progress io.Writer) (*report, error) {
	fmt.Fprintln(progress, "starting etcd (3 members), the fakes and 3 palaver processes…")
	w, err := newWorld(dir, opts)
	if err != nil {
		return nil, err
	}
	defer w.close()
	d, err := newDeployment(w, bin)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: w.etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	r := &harness{
		opts: opts, w: w, d: d, cli: cli, kills: &killLog{}, progress: progress,
		rng:     rand.New(rand.NewPCG(opts.seed, 0x6b111)),
		periods: map[string][2]time.Time{},
		botWide: map[string][2]int{},
		answers: map[string]map[*member][2]float64{},
	}
	r.drv = newDrivers(w, r.kills)
	r.report.Settings = r.settings()
	r.mon = startShardMonitor(w)
	defer d.killAll()
	r.event(time.Now(), "the first start")
	if err := d.startAll(); err != nil {
		return nil, err
	}
	if err := r.settle(ctx, "start"); err != nil {
		return r.finish(ctx, err)
	}
	for _, phase := range opts.phases {
		var err error
		switch phase {
		case phaseLoad:
			err = r.load(ctx)
		case phaseKill:
			err = r.killPhase(ctx)
		case phaseRolling:
			err = r.rolling(ctx)
		}
		if err != nil {
			return r.finish(ctx, err)
		}
	}
	return r.finish(ctx, nil)
}

func (r *harness) settings() settingsReport {
	s := settingsReport{Conversations: len(r.w.convs), Shards: r.opts.shards, MaxConcurrency: r.opts.maxConcurrency,
		Failover: millis(r.opts.failover), Processes: processes, EtcdMembers: 3, Fsync: r.opts.fsync, Seed: r.opts.seed}
	for _, c := range r.w.convs {
		if c.platform() == discord {
			s.Discord++
		} else {
			s.Telegram++
		}
	}
	return s
}

// settle waits until the deployment is settled, recording a violation
// (subject says when) if it does not settle in time.
func (r *harness) settle(ctx context.Context, subject string) error {
	err := r.d.waitSettled(ctx, r.settleTimeout())
	if err != nil && ctx.Err() == nil {
		r.violation(kindNotSettled, subject, "%v", err)
	}
	return err
}

// settleTimeout bounds the wait for every shard to be up once: each
// IDENTIFY waits its bucket's 5 s.
func (r *harness) settleTimeout() time.Duration {
	perBucket := (r.opts.shards + r.opts.maxConcurrency - 1) / r.opts.maxConcurrency
	return readyTimeout + 2*time.Duration(perBucket)*identifyWindow + 2*r.opts.failover
}

// event is something the harness did to a process.
type event struct {
	at   time.Time
	what string
}

func (r *harness) event(at time.Time, what string) { r.events = append(r.events, event{at, what}) }

// since says how long after the last event before t it came: "2.1s after
// SIGKILL palaver-2", or "" when none came before.
func (r *harness) since(t time.Time) string {
	for i := len(r.events) - 1; i >= 0; i-- {
		if e := r.events[i]; !e.at.After(t) {
			return fmt.Sprintf("%s after %s", millis(t.Sub(e.at)), e.what)
		}
	}
	return ""
}

func (r *harness) violation(kind, subject, format string, args ...any) {
	v := violation{Kind: kind, Subject: subject, Detail: fmt.Sprintf(format, args...)}
	r.report.Violations = append(r.report.Violations, v)
	if r.opts.verbose {
		fmt.Fprintf(r.progress, "  VIOLATION %s %s: %s\n", v.Kind, v.Subject, v.Detail)
	}
}

func (r *harness) logf(format string, args ...any) {
	fmt.Fprintf(r.progress, format+"\n", args...)
}

// begin and end mark a phase's period and the processes' answers then.
func (r *harness) begin(ctx context.Context, phase string) {
	r.drv.phase.Store(phase)
	r.periods[phase] = [2]time.Time{time.Now()}
	r.botWide[phase] = [2]int{r.w.tg.BotFlood().Limited}
	r.answers[phase] = r.readAnswers(ctx, phase, 0, nil)
}

func (r *harness) end(ctx context.Context, phase string) {
	p := r.periods[phase]
	p[1] = time.Now()
	r.periods[phase] = p
	b := r.botWide[phase]
	b[1] = r.w.tg.BotFlood().Limited
	r.botWide[phase] = b
	r.answers[phase] = r.readAnswers(ctx, phase, 1, r.answers[phase])
	for _, s := range r.d.exitedByThemselves() {
		r.violation(kindExited, phase, "%s exited by itself", s)
	}
}

func (r *harness) readAnswers(ctx context.Context, phase string, i int, into map[*member][2]float64) map[*member][2]float64 {
	if into == nil {
		into = map[*member][2]float64{}
	}
	for _, m := range r.d.members {
		m.readAnswers(ctx)
		v := into[m]
		v[i] = m.totalAnswers()
		into[m] = v
	}
	return into
}

// load asks opts.questions questions in every conversation with no
// process killed, measuring commits meanwhile.
func (r *harness) load(ctx context.Context) error {
	r.logf("load: %d conversations × %d questions…", len(r.w.convs), r.opts.questions)
	probe, err := startCommitProbe(ctx, r.w)
	if err != nil {
		return err
	}
	r.begin(ctx, phaseLoad)
	r.drv.start(ctx, r.opts.questions, nil)
	derr := r.drv.wait()
	r.end(ctx, phaseLoad)
	cr, err := probe.finish()
	r.report.Commit = &cr
	return errors.Join(derr, err)
}

// killPhase kills a process opts.kills times while the conversations
// keep asking, measures each takeover and restarts the process.
func (r *harness) killPhase(ctx context.Context) (err error) {
	r.logf("kill: %d SIGKILLs while %d conversations ask…", r.opts.kills, len(r.w.convs))
	if err := r.settle(ctx, "before the kills"); err != nil {
		return err
	}
	r.begin(ctx, phaseKill)
	stop := make(chan struct{})
	r.drv.start(ctx, 0, stop)
	defer func() {
		close(stop)
		err = errors.Join(err, r.drv.wait())
		r.end(ctx, phaseKill)
	}()
	for i := 1; i <= r.opts.kills; i++ {
		if !sleep(ctx, time.Duration(500+r.rng.IntN(2000))*time.Millisecond) {
			return ctx.Err()
		}
		if err := r.killOne(ctx, i, i%2 == 1); err != nil {
			return err
		}
		restarted := time.Now()
		if err := r.settle(ctx, fmt.Sprintf("after kill %d", i)); err != nil {
			return err
		}
		r.report.Kills[len(r.report.Kills)-1].Rejoin = millis(time.Since(restarted))
	}
	return nil
}

// rolling stops each process in turn with an interrupt and starts it
// again, while the conversations keep asking.
func (r *harness) rolling(ctx context.Context) (err error) {
	r.logf("rolling: stop and start each process in turn while %d conversations ask…", len(r.w.convs))
	if err := r.settle(ctx, "before the rolling restart"); err != nil {
		return err
	}
	r.begin(ctx, phaseRolling)
	stop := make(chan struct{})
	r.drv.start(ctx, 0, stop)
	defer func() {
		close(stop)
		err = errors.Join(err, r.drv.wait())
		r.end(ctx, phaseRolling)
	}()
	for _, m := range r.d.members {
		if !sleep(ctx, time.Duration(1000+r.rng.IntN(2000))*time.Millisecond) {
			return ctx.Err()
		}
		h := m.health(ctx)
		ho := handover{Member: m.name, Leader: h.leads(), Shards: h.shardsUp(), ShardReady: map[int]millis{}}
		start := time.Now()
		stopped := make(chan error, 1)
		r.event(start, "interrupt "+m.name)
		go func() { stopped <- m.stop(ctx) }()
		wctx, cancel := context.WithTimeout(ctx, r.takeoverTimeout())
		var stopErr error
		exited := false
		for {
			now := time.Now()
			if !exited {
				select {
				case stopErr = <-stopped:
					exited = true
					ho.Stop = millis(now.Sub(start))
				default:
				}
			}
			if ho.Leader && ho.TelegramLeader == 0 && slices.ContainsFunc(r.d.look(wctx).leaders, func(l *member) bool { return l != m }) {
				ho.TelegramLeader = millis(now.Sub(start))
			}
			r.shardsReady(start, ho.Shards, ho.ShardReady)
			if exited && (!ho.Leader || ho.TelegramLeader > 0) && len(ho.ShardReady) == len(ho.Shards) {
				break
			}
			if !sleep(wctx, pollEvery) {
				break
			}
		}
		cancel()
		if !exited {
			stopErr = <-stopped
			ho.Stop = millis(time.Since(start))
		}
		for _, d := range ho.ShardReady {
			ho.ShardsReady = max(ho.ShardsReady, d)
		}
		r.report.Rolling = append(r.report.Rolling, ho)
		line := fmt.Sprintf("  %s (leader %t, shards %v) exited %s after the interrupt", m.name, ho.Leader, ho.Shards, ho.Stop)
		if ho.Leader {
			line += fmt.Sprintf(", a survivor led Telegram after %s", ho.TelegramLeader)
		}
		if len(ho.Shards) > 0 {
			line += fmt.Sprintf(", its shards were READY elsewhere after %s", ho.ShardsReady)
		}
		r.logf("%s", line)
		if stopErr != nil {
			r.violation(kindUncleanStop, m.name, "%v", stopErr)
		}
		if (ho.Leader && ho.TelegramLeader == 0) || len(ho.ShardReady) < len(ho.Shards) {
			r.violation(kindNoTakeover, m.name, "clean stop: not taken over within %s: %+v", r.takeoverTimeout(), ho)
		}
		if err := r.waitMemberGone(ctx, m.name); err != nil {
			return err
		}
		restarted := time.Now()
		r.event(restarted, "restart "+m.name)
		if err := m.start(r.d.bin, r.w.dir); err != nil {
			return err
		}
		if err := r.settle(ctx, "after restarting "+m.name); err != nil {
			return err
		}
		r.report.Rolling[len(r.report.Rolling)-1].Rejoin = millis(time.Since(restarted))
	}
	return nil
}

// sleep waits for d, reporting false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
