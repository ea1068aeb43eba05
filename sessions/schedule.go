package sessions

import (
	"slices"
	"sync"
	"time"
)

// schedule is one destination's request budget: a sliding window of the
// platform's limit, with its last request kept for final views, and the
// Interval between updates of growing text and status. Holding it grants
// the right to send the destination's next request. It is handed out, when
// a request is allowed, to the most urgent waiting reply, the earliest
// among equals; a waiter of lower urgency never passes one of higher
// urgency (the rules only grow stricter as urgency falls).
//
// Times are read with time.Now, whose monotonic reading makes windows
// immune to wall-clock jumps.
type schedule struct {
	id       string
	interval time.Duration
	windows  []Window
	span     time.Duration // the longest window's span, margin included
	keep     int           // the most requests any window counts
	global   *budget       // the bot's global budget, nil for none
	users    int           // replies attached; guarded by Engine.mu

	mu      sync.Mutex
	sent    []time.Time // the requests of the last window, oldest first
	paced   time.Time   // the last request that waited for interval
	paused  time.Time   // no request before this (the platform's retry_after)
	typed   time.Time   // when a typing indicator was last shown
	busy    bool        // a reply holds the schedule
	waiting []*waiter   // in arrival order
	timer   *time.Timer // hands the schedule out when a request is allowed
}

// waiter is a reply waiting for the schedule (or a budget). Its urgency
// is read when the schedule is handed out, so that a view that became
// final meanwhile is served as one. A waiter costs no goroutine: the
// schedule calls grant on a goroutine of its own, a budget calls it with
// its lock held (it must not block then).
type waiter struct {
	urgency func() int
	grant   func()
}

func newSchedule(d Destination, global *budget) *schedule {
	s := &schedule{id: d.ID, interval: d.Interval, global: global}
	for _, w := range d.Windows {
		if w.Requests > 0 && w.Per > 0 {
			s.windows = append(s.windows, w)
		}
	}
	if len(s.windows) == 0 {
		s.windows = []Window{{Requests: 1, Per: d.Interval}}
	}
	for _, w := range s.windows {
		s.span = max(s.span, spanOf(w))
		s.keep = max(s.keep, w.Requests)
	}
	return s
}

// spanOf is w's span with a margin: the platform counts a request when it
// arrives, and arrival times vary by the network's jitter.
func spanOf(w Window) time.Duration {
	return w.Per + min(w.Per/50, 100*time.Millisecond)
}

// readyLocked is the earliest time a request of urgency u may be sent,
// now or later. s.mu must be held.
func (s *schedule) readyLocked(u int, now time.Time) time.Time {
	t := later(now, s.paused)
	s.sent = forget(s.sent, s.span, now) // out of every window that matters
	for _, w := range s.windows {
		free := w.Requests
		if u != urgencyFinal && free >= 2 {
			free-- // kept for a final view
		}
		t = windowReady(s.sent, free, spanOf(w), now, t)
	}
	if paced(u) {
		if at := s.paced.Add(s.interval); at.After(t) {
			t = at
		}
	}
	return t
}

// paced reports whether requests of urgency u wait for the interval.
func paced(u int) bool { return u == urgencyText || u == urgencyStatus }

// enqueue makes w wait for the schedule: when a request is allowed and w
// is the most urgent waiter, the schedule is handed to it (w.grant runs),
// and the holder must call release. It does not block.
func (s *schedule) enqueue(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting = append(s.waiting, w)
	s.handOutLocked()
}

// cancel takes w out of the waiting line, reporting whether it was there
// (false: the schedule was handed to it already, or it never waited).
func (s *schedule) cancel(w *waiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.waiting, w)
	if i < 0 {
		return false
	}
	s.waiting = slices.Delete(s.waiting, i, i+1)
	s.handOutLocked()
	return true
}

// handOutLocked gives the schedule to the most urgent waiter, the earliest
// among equals, when it is free and that waiter's request is allowed; when
// it is free but the request is not yet allowed, it sets the timer for
// then. s.mu must be held.
func (s *schedule) handOutLocked() {
	if s.busy || len(s.waiting) == 0 {
		return
	}
	best, bestUrgency := mostUrgent(s.waiting)
	now := time.Now()
	if at := s.readyLocked(bestUrgency, now); at.After(now) {
		wait := at.Sub(now)
		if s.timer == nil {
			s.timer = time.AfterFunc(wait, s.due)
		} else {
			s.timer.Reset(wait)
		}
		return
	}
	w := s.waiting[best]
	s.waiting = slices.Delete(s.waiting, best, best+1)
	s.busy = true
	go w.grant()
}

// mostUrgent returns the index and urgency of the most urgent waiter, the
// earliest among equals.
func mostUrgent(ws []*waiter) (int, int) {
	best, bestUrgency := 0, ws[0].urgency()
	for i, w := range ws[1:] {
		if u := w.urgency(); u > bestUrgency {
			best, bestUrgency = i+1, u
		}
	}
	return best, bestUrgency
}

// due runs when a waiting request may be allowed.
func (s *schedule) due() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handOutLocked()
}

// pause keeps the destination's next request at least d away.
func (s *schedule) pause(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until := time.Now().Add(d); until.After(s.paused) {
		s.paused = until
	}
	s.handOutLocked()
}

// release gives up the schedule, charging the requests made since it was handed out
// for a view of urgency u (-1 when nothing was shown), and a pause when the
// platform asked for one. Every view shown but a final one (a notice is
// its reply's final view) starts the interval, even when the platform
// charges it nothing (a Telegram draft): growing text waits the interval
// after an answer's first appearance or first text too, instead of
// spending the window's next request on a few more words.
func (s *schedule) release(requests, u int, pause time.Duration) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if pause > 0 && now.Add(pause).After(s.paused) {
		s.paused = now.Add(pause)
	}
	// A view that took several requests charges the later ones as if
	// spaced evenly across the window: a burst is paid back before the
	// next request, whichever way the platform counts.
	step := s.windows[0].Per / time.Duration(s.windows[0].Requests)
	for k := range requests {
		s.sent = append(s.sent, now.Add(time.Duration(k)*step))
	}
	// Requests charged ahead of time (above) may lie after this one.
	slices.SortFunc(s.sent, time.Time.Compare)
	if n := len(s.sent) - s.keep; n > 0 {
		s.sent = s.sent[n:] // only the newest window's worth can matter
	}
	if u >= 0 && u != urgencyFinal {
		s.paced = now.Add(time.Duration(max(requests, 1)-1) * step)
	}
	s.busy = false
	s.handOutLocked()
}

// free reports whether the schedule would be handed to a request of
// urgency u now: nobody holds it or waits for it, and the destination's
// limits allow one.
func (s *schedule) free(u int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	return !s.busy && len(s.waiting) == 0 && !s.readyLocked(u, now).After(now)
}

// nextText is the earliest time growing text could next be sent.
func (s *schedule) nextText() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyLocked(urgencyText, time.Now())
}

// idleFor is how long until the schedule holds nothing a later reply must
// honour (no pause, no request in a window, interval passed); 0 when idle.
func (s *schedule) idleFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	last := s.paused
	if n := len(s.sent); n > 0 {
		if at := s.sent[n-1].Add(s.span); at.After(last) {
			last = at
		}
	}
	if at := s.paced.Add(s.interval); at.After(last) {
		last = at
	}
	return max(last.Sub(now), 0)
}

// typingDue reports whether a typing indicator should be shown now: none
// was within typingEvery, which platforms keep one showing for. It
// records the one about to be shown, and returns the record before it,
// for untyped.
func (s *schedule) typingDue() (bool, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.typed) < typingEvery {
		return false, time.Time{}
	}
	before := s.typed
	s.typed = now
	return true, before
}

// untyped takes back the record typingDue made (before was the one it
// replaced): no indicator was shown after all.
func (s *schedule) untyped(before time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.typed = before
}

// forget drops from sent (oldest first) the requests no window of span
// counts at now.
func forget(sent []time.Time, span time.Duration, now time.Time) []time.Time {
	i := 0
	for i < len(sent) && !sent[i].Add(span).After(now) {
		i++
	}
	return sent[i:]
}

// windowReady is the earliest time, not before t, at which one more
// request fits a window of span that allows free requests, given the
// times of those sent (oldest first): the free-th newest within the span
// must age out first.
func windowReady(sent []time.Time, free int, span time.Duration, now, t time.Time) time.Time {
	n := 0
	for j := len(sent) - 1; j >= 0 && sent[j].Add(span).After(now); j-- {
		n++
	}
	if n >= free {
		return later(t, sent[len(sent)-free].Add(span))
	}
	return t
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
