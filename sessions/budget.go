package sessions

import (
	"context"
	"slices"
	"sync"
	"time"
)

// budget is a bot's global request budget, shared by all its
// destinations: at most window.Requests requests in any span of
// window.Per. Waiting requests are served most urgent first, across
// destinations; a typing indicator only takes a request nobody waits for.
// A global rate limit from the platform stops every request for its
// retry_after.
type budget struct {
	window Window

	mu      sync.Mutex
	sent    []time.Time // the grants of the last window, oldest first
	paused  time.Time
	waiting []*waiter
	timer   *time.Timer
	peak    peakCounter
}

func newBudget(w Window) *budget { return &budget{window: w} }

// readyLocked is the earliest time a request of urgency u may be granted.
// Growing text, status changes and typing may use the window less a
// fifth, which is kept for final views, first appearances and notices:
// a user waiting for any sign, or for the end, does not queue behind
// text. b.mu must be held.
func (b *budget) readyLocked(u int, now time.Time) time.Time {
	// A fifth of the window more: a bot's requests leave from many
	// goroutines, and a busy machine delays some more than others.
	span := b.window.Per + b.window.Per/5
	b.sent = forget(b.sent, span, now)
	free := b.window.Requests
	if u < urgencyFirst {
		free = max(1, free-max(1, free/5))
	}
	return windowReady(b.sent, free, span, now, later(now, b.paused))
}

func (b *budget) grantLocked(now time.Time) {
	b.sent = append(b.sent, now)
	b.peak.add(now)
}

// charge counts n more requests made now under one grant (a view that
// took several): the next grants wait for them.
func (b *budget) charge(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	for range n {
		b.grantLocked(now)
	}
}

// acquire waits for the budget to allow a request, granted to the most
// urgent waiter first.
func (b *budget) acquire(ctx context.Context, urgency func() int) error {
	w := &waiter{urgency: urgency, granted: make(chan struct{})}
	b.mu.Lock()
	b.waiting = append(b.waiting, w)
	b.handOutLocked()
	b.mu.Unlock()
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		if i := slices.Index(b.waiting, w); i >= 0 {
			b.waiting = slices.Delete(b.waiting, i, i+1)
		}
		// A grant made just now stays charged: the budget errs on the
		// safe side.
		return ctx.Err()
	}
}

// try takes a request when the budget allows one now and no request waits.
func (b *budget) try() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if len(b.waiting) > 0 || b.readyLocked(urgencyStatus, now).After(now) {
		return false
	}
	b.grantLocked(now)
	return true
}

// handOutLocked grants requests to waiters, most urgent first, while the
// budget allows; otherwise it sets the timer for the next one. b.mu must
// be held.
func (b *budget) handOutLocked() {
	now := time.Now()
	for len(b.waiting) > 0 {
		i, u := mostUrgent(b.waiting)
		if at := b.readyLocked(u, now); at.After(now) {
			d := at.Sub(now)
			if b.timer == nil {
				b.timer = time.AfterFunc(d, b.due)
			} else {
				b.timer.Reset(d)
			}
			return
		}
		w := b.waiting[i]
		b.waiting = slices.Delete(b.waiting, i, i+1)
		b.grantLocked(now)
		close(w.granted)
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
	if until := time.Now().Add(d); until.After(b.paused) {
		b.paused = until
	}
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
