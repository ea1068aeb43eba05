package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Outcomes of a question as its conversation's driver saw it; the final
// check judges every question again against the store.
const (
	outAnswered     = "answered"      // its complete answer, no note
	outNoted        = "noted"         // finalised with an interrupted or restart note
	outWrong        = "wrong"         // a final reply that is neither
	outNotDelivered = "not-delivered" // Discord: no connection of its shard was open
	outDropped      = "dropped"       // Discord: delivered to a process killed before it took it
	outTimeout      = "timeout"       // no final reply within answerTimeout
)

// Timing of the drivers.
const (
	checkEvery = 200 * time.Millisecond
	// droppedAfter is how long after the shards of a killed process are
	// up elsewhere a Discord question it received, still without any
	// reply, is taken for dropped with it: recovery finalises within
	// that what the process had taken.
	droppedAfter = 10 * time.Second
)

// kill is one SIGKILL of the kill phase, as the drivers and the check
// need it.
type kill struct {
	at     time.Time
	member string
	shards []int // the shards it had up
	leader bool
	// over is when the survivors had taken over (zero until then).
	over time.Time
}

// killLog is the kills so far.
type killLog struct {
	mu    sync.Mutex
	kills []*kill
}

func (l *killLog) add(k *kill) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kills = append(l.kills, k)
}

func (l *killLog) done(k *kill, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k.over = at
}

// all returns copies of the kills.
func (l *killLog) all() []kill {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]kill, len(l.kills))
	for i, k := range l.kills {
		out[i] = *k
	}
	return out
}

// holderKilled returns the kill, at or after t, of the process that had
// shard up, if any.
func (l *killLog) holderKilled(shard int, t time.Time) (kill, bool) {
	for _, k := range l.all() {
		if !k.at.Before(t) && slices.Contains(k.shards, shard) {
			return k, true
		}
	}
	return kill{}, false
}

// drivers runs one driver per conversation.
type drivers struct {
	w     *world
	kills *killLog
	phase atomic.Value // string: the phase new questions belong to
	wg    sync.WaitGroup
	rngs  map[*conv]*rand.Rand

	mu  sync.Mutex
	err error // the first error that stopped a driver
}

func newDrivers(w *world, kills *killLog) *drivers {
	d := &drivers{w: w, kills: kills, rngs: map[*conv]*rand.Rand{}}
	for i, c := range w.convs {
		d.rngs[c] = rand.New(rand.NewPCG(w.opts.seed, uint64(i)))
	}
	return d
}

// start runs every conversation: each asks up to n questions (0: until
// stop is closed), one at a time.
func (d *drivers) start(ctx context.Context, n int, stop <-chan struct{}) {
	for _, c := range d.w.convs {
		rng := d.rngs[c]
		d.wg.Go(func() { d.drive(ctx, c, rng, n, stop) })
	}
}

// wait waits for every driver to return, and returns the first error
// that stopped one (the fakes refused a user's message: the harness is
// broken, not Palaver).
func (d *drivers) wait() error {
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// fail records err, the first one only.
func (d *drivers) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
	}
}

// answerTimeout bounds the wait for a question's final reply: a takeover,
// then the answer.
func (d *drivers) answerTimeout() time.Duration { return 3*d.w.opts.failover + 60*time.Second }

// drive asks up to n questions in c, waiting for each one's final reply;
// on a Telegram note it sends /retry and waits for that answer too. It
// thinks between questions, and returns when stop is closed or ctx ends
// (after the question in progress).
func (d *drivers) drive(ctx context.Context, c *conv, rng *rand.Rand, n int, stop <-chan struct{}) {
	// The first question waits a moment, so that the conversations do
	// not all start at once.
	if !d.pause(ctx, stop, time.Duration(rng.Int64N(int64(d.w.opts.think)+1))) {
		return
	}
	for i := 0; n <= 0 || i < n; i++ {
		q := d.w.newQuestion(c, d.phase.Load().(string))
		if err := d.w.send(q); err != nil {
			d.fail(fmt.Errorf("%s: %w", c.name, err))
			return
		}
		q.settle(d.await(ctx, q, false))
		if q.result() == outNoted && c.platform() == telegram {
			id := d.w.sendRetry(q)
			q.mu.Lock()
			q.retryRef = strconv.Itoa(id)
			q.mu.Unlock()
			out := d.await(ctx, q, true)
			q.mu.Lock()
			q.retried = out
			q.mu.Unlock()
		}
		if q.result() == outNotDelivered && !d.waitShard(ctx, stop, c.shard) {
			return
		}
		think := time.Duration((0.5 + rng.Float64()) * float64(d.w.opts.think))
		if !d.pause(ctx, stop, think) {
			return
		}
	}
}

// waitShard waits until a gateway connection of shard is open, as a
// user whose message went unanswered asks again later; false when stop
// is closed or ctx ends first.
func (d *drivers) waitShard(ctx context.Context, stop <-chan struct{}, shard int) bool {
	for {
		for _, g := range d.w.dc.GatewaySessions() {
			if g.Connected && g.Shard == [2]int{shard, d.w.opts.shards} {
				return true
			}
		}
		if !d.pause(ctx, stop, checkEvery) {
			return false
		}
	}
}

// pause waits for d, reporting false when stop is closed or ctx ends
// first.
func (d *drivers) pause(ctx context.Context, stop <-chan struct{}, dur time.Duration) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	}
}

// await waits for q's final reply (retry: the final reply to the /retry
// sent after it) and returns the outcome.
func (d *drivers) await(ctx context.Context, q *question, retry bool) string {
	deadline := time.Now().Add(d.answerTimeout())
	for {
		if out, ok := d.look(q, retry); ok {
			return out
		}
		if time.Now().After(deadline) {
			return outTimeout
		}
		select {
		case <-ctx.Done():
			return outTimeout
		case <-time.After(checkEvery):
		}
	}
}

// look reads q's replies and says whether it is settled, and how.
func (d *drivers) look(q *question, retry bool) (string, bool) {
	c := q.conv
	r := d.w.readReplies(c, d.w.convQuestions(c))
	rs := r.byQuestion[q.n]
	if retry {
		rs = r.retries[q.n]
	}
	for _, s := range rs {
		if !s.final() {
			continue
		}
		switch {
		case s.note == "" && s.content == q.answer():
			return outAnswered, true
		case s.note != "":
			return outNoted, true
		default:
			return outWrong, true
		}
	}
	if c.kind != dcChannel || len(rs) > 0 || retry {
		return "", false
	}
	if d.w.dc.Delivered(q.ref) == 0 {
		return outNotDelivered, true
	}
	if k, ok := d.kills.holderKilled(c.shard, q.sent); ok && !k.over.IsZero() && time.Since(k.over) > droppedAfter {
		return outDropped, true
	}
	return "", false
}

// settle records the driver's outcome for q.
func (q *question) settle(out string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.outcome = out
}

// result returns the driver's outcome for q.
func (q *question) result() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.outcome
}
