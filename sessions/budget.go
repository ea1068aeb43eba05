package sessions

import (
	"context"
	"slices"
	"sync"
	"time"
)

// budget is a bot's global request budget, shared by all its
// destinations: at most window.Requests requests in any span of
// window.Per, as the platform counts them.
//
// A request counts from when it is granted until a span after it came
// back (its answer received): the platform counted it somewhere in
// between, so however late a request leaves or arrives on a busy machine
// or network, the platform never sees more than the window allows. Its
// cost is the round trip, added to each request's span.
//
// Finals, first appearances and notices wait for a request, most urgent
// first, across destinations (enqueue; acquire blocks). Growing text,
// status changes and typing may use the window less a fifth, and only
// when nobody waits (try); growing text that found none sleeps, and the
// sleepers are asked in turn, round and round in arrival order, whether
// their destination would take a request: the first that would is woken
// with one granted as soon as one is free (sleep). A global rate limit from the
// platform stops every request for its retry_after.
//
// With several processes drawing on one bot's budget (see
// Engine.BudgetDraws), each keeps to an equal share of it: the window's
// requests divided by the processes drawing. A process that starts
// drawing while others draw waits one span first, so that what they sent
// under their larger shares has left the window.
type budget struct {
	window Window
	span   time.Duration // window.Per and a margin

	mu       sync.Mutex
	until    []time.Time // when each request that came back counts no more, soonest first
	inflight int         // requests granted that have not come back
	paused   time.Time
	waiting  []*waiter  // finals, first appearances, notices
	sleepers []*sleeper // growing text and status skipped for want of budget, in order
	turn     int        // the sleeper the next hand-out asks first
	timer    *time.Timer
	peak     peakCounter

	// Sharing with other processes (Engine.BudgetDraws).
	others   int         // other processes drawing on the bot's budget; -1 until told (SetBudgetOthers)
	shared   bool        // BudgetDraws was asked for
	shareGen uint64      // counts share calls: a delayed one applies only if none came since
	users    int         // replies (and Spends) drawing on it now
	drawing  bool        // announced as drawing
	linger   *time.Timer // stops drawing after drawLinger without users
	draws    chan bool   // the newest drawing state, for the announcer
}

// drawLinger is how long a process that drew on a budget still counts
// as drawing once its last reply ended: short pauses between answers do
// not make it wait a span again.
const drawLinger = 10 * time.Second

// sleeper is growing text waiting for the bot's budget (budget.sleep).
// Both functions are called with the budget's lock held and must not
// block: ready reports whether its destination would take the request
// now (a grant it cannot use would sit idle), wake whether it still
// wants one, which it is then granted (and must complete).
type sleeper struct {
	ready func() bool
	wake  func() bool
}

// sleepersScanned bounds how many sleepers one hand-out asks whether
// their destination is ready (the next hand-out goes on from there);
// sleeperRetry is how soon it asks again when none was.
const (
	sleepersScanned = 64
	sleeperRetry    = 50 * time.Millisecond
)

// spendLead is how much longer a request made outside any Reply
// (Engine.Spend) counts: it leaves after the grant, and the budget does
// not learn when it came back.
func spendLead(w Window) time.Duration { return w.Per / 5 }

func newBudget(w Window) *budget {
	return &budget{window: w, span: w.Per + min(w.Per/50, 100*time.Millisecond), draws: make(chan bool, 1)}
}

// free is how many requests of urgency u the window admits: all of this
// process's share for finals, first appearances and notices; less a
// fifth for growing text, status and typing, so that a user waiting for
// any sign, or for the end, does not queue behind text.
func (b *budget) free(u int) int {
	drawers := 1 + b.others
	if b.others < 0 {
		drawers = 2 // others not counted yet: as if one drew on it
	}
	n := max(1, b.window.Requests/drawers)
	if u < urgencyFirst {
		n = max(1, n-max(1, n/5))
	}
	return n
}

// readyLocked is the earliest time a request of urgency u may be granted,
// and false when only a request in flight coming back can tell. b.mu must
// be held.
func (b *budget) readyLocked(u int, now time.Time) (time.Time, bool) {
	i := 0
	for i < len(b.until) && !b.until[i].After(now) {
		i++
	}
	b.until = b.until[i:]
	free := b.free(u)
	n := len(b.until) + b.inflight
	t := later(now, b.paused)
	switch {
	case n < free:
		return t, true
	case b.inflight >= free:
		return time.Time{}, false
	}
	// Once the n-free+1 soonest have aged out, one more fits.
	return later(t, b.until[n-free]), true
}

// grantLocked counts a request in flight. b.mu must be held.
func (b *budget) grantLocked(now time.Time) {
	b.inflight++
	b.peak.add(now)
}

// complete says that a request granted has come back, having made n
// requests to the platform (0 when it was not used; more when one grant
// covered several). They count from now on for the budget's span, and
// lead longer.
func (b *budget) complete(n int, lead time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.completeLocked(n, lead)
	b.handOutLocked()
}

func (b *budget) completeLocked(n int, lead time.Duration) {
	now := time.Now()
	b.inflight--
	until := now.Add(b.span + lead)
	for k := range n {
		i, _ := slices.BinarySearchFunc(b.until, until, time.Time.Compare)
		b.until = slices.Insert(b.until, i, until)
		if k > 0 {
			b.peak.add(now)
		}
	}
}

// enqueue makes w wait for a request, granted to the most urgent waiter
// first (w.grant runs with the budget's lock held); the caller must then
// call complete. It does not block.
func (b *budget) enqueue(w *waiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting = append(b.waiting, w)
	b.handOutLocked()
}

// cancel takes w out of the waiting line, reporting whether it was there
// (false: it was granted a request, or never waited).
func (b *budget) cancel(w *waiter) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.waiting, w)
	if i < 0 {
		return false
	}
	b.waiting = slices.Delete(b.waiting, i, i+1)
	b.handOutLocked()
	return true
}

// acquire waits for the budget to grant a request (see enqueue). On
// success the caller must call complete.
func (b *budget) acquire(ctx context.Context, urgency func() int) error {
	granted := make(chan struct{})
	w := &waiter{urgency: urgency, grant: func() { close(granted) }}
	b.enqueue(w)
	select {
	case <-granted:
		return nil
	case <-ctx.Done():
		if !b.cancel(w) {
			// Granted just now: it stays charged, the budget erring on
			// the safe side.
			b.complete(1, 0)
		}
		return ctx.Err()
	}
}

// try grants a request when the budget allows one for growing text now
// and nobody waits or sleeps. On success the caller must call complete.
func (b *budget) try() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if len(b.waiting) > 0 || len(b.sleepers) > 0 {
		return false
	}
	if at, ok := b.readyLocked(urgencyStatus, now); !ok || at.After(now) {
		return false
	}
	b.grantLocked(now)
	return true
}

// sleep lines s up for a request for growing text: s.wake is called, in
// its turn among the sleepers whose destination is ready, when one is
// free and no final, first appearance or notice waits.
func (b *budget) sleep(s *sleeper) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sleepers = append(b.sleepers, s)
	b.handOutLocked()
}

// unsleep takes s out of the line.
func (b *budget) unsleep(s *sleeper) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.sleepers, s); i >= 0 {
		b.sleepers = slices.Delete(b.sleepers, i, i+1)
		if i < b.turn {
			b.turn--
		}
	}
}

// handOutLocked grants requests to waiters, most urgent first, then to
// sleepers whose destination is ready, in turn, while the budget
// allows; otherwise it sets the timer for the next one (a request coming
// back hands out again). b.mu must be held.
func (b *budget) handOutLocked() {
	now := time.Now()
	for len(b.waiting) > 0 {
		i, u := mostUrgent(b.waiting)
		at, ok := b.readyLocked(u, now)
		if !ok {
			return
		}
		if at.After(now) {
			b.armLocked(at.Sub(now))
			return
		}
		w := b.waiting[i]
		b.waiting = slices.Delete(b.waiting, i, i+1)
		b.grantLocked(now)
		w.grant()
	}
	for asked := 0; len(b.sleepers) > 0; {
		at, ok := b.readyLocked(urgencyText, now)
		if !ok {
			return
		}
		if at.After(now) {
			b.armLocked(at.Sub(now))
			return
		}
		if asked >= min(sleepersScanned, len(b.sleepers)) {
			break
		}
		if b.turn >= len(b.sleepers) {
			b.turn = 0
		}
		s := b.sleepers[b.turn]
		asked++
		if !s.ready() {
			b.turn++
			continue
		}
		b.sleepers = slices.Delete(b.sleepers, b.turn, b.turn+1)
		if s.wake() {
			b.grantLocked(now)
		}
	}
	if len(b.sleepers) > 0 {
		// Their destinations are busy: ask again soon.
		b.armLocked(sleeperRetry)
	}
}

// armLocked sets the timer to hand out again in d. b.mu must be held.
func (b *budget) armLocked(d time.Duration) {
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.due)
	} else {
		b.timer.Reset(d)
	}
}

func (b *budget) due() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handOutLocked()
}

// pause stops every request for d: the platform said the bot as a whole
// sends too fast.
func (b *budget) pause(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pauseLocked(d)
	b.handOutLocked()
}

func (b *budget) pauseLocked(d time.Duration) {
	if until := time.Now().Add(d); until.After(b.paused) {
		b.paused = until
	}
}

// use counts a reply (or a Spend) drawing on the budget from now on
// (delta +1) or no more (-1). The first after an idle spell makes the
// process a drawer: announced, and, when others draw, a span's wait.
func (b *budget) use(delta int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.users += delta
	if b.users > 0 {
		if b.linger != nil {
			b.linger.Stop()
		}
		if !b.drawing {
			b.drawing = true
			b.announceLocked()
			if b.others != 0 {
				b.pauseLocked(b.span) // others draw, or may
			}
		}
		return
	}
	if b.linger == nil {
		b.linger = time.AfterFunc(drawLinger, b.idle)
	} else {
		b.linger.Reset(drawLinger)
	}
}

// idle ends the process's drawing once drawLinger passed without users.
func (b *budget) idle() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.users == 0 && b.drawing {
		b.drawing = false
		b.announceLocked()
	}
}

// announceLocked leaves the drawing state for the announcer, replacing
// one it has not taken. b.mu must be held.
func (b *budget) announceLocked() {
	select {
	case <-b.draws:
	default:
	}
	b.draws <- b.drawing
}

// share sets how many other processes draw on the bot's budget. Fewer
// take effect a span later: what a process that stopped drawing sent
// still counts at the platform until it leaves the window.
func (b *budget) share(others int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	others = max(0, others)
	b.shareGen++
	if b.others > 0 && others < b.others {
		gen := b.shareGen
		time.AfterFunc(b.span, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.shareGen == gen {
				b.others = others
				b.handOutLocked()
			}
		})
		return
	}
	b.others = others
	b.handOutLocked()
}

// peakCounter keeps the most requests granted within one second.
type peakCounter struct {
	times []time.Time // the grants of the last second
	max   int
}

func (p *peakCounter) add(now time.Time) {
	i := 0
	for i < len(p.times) && now.Sub(p.times[i]) >= time.Second {
		i++
	}
	p.times = append(p.times[i:], now)
	p.max = max(p.max, len(p.times))
}
