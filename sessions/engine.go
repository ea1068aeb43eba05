package sessions

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Engine decides when an answer's visible text changes. Every destination
// (a Telegram chat, a Discord channel) has one schedule shared by all the
// replies going to it: at most one platform request per Interval, paused as
// a whole when the platform answers with a *RateLimitError. A reply only
// ever shows its newest text, never the same text twice, and always its
// final text.
//
// When several replies wait for a destination, the next request goes to the
// most urgent: a final view first (it completes an answer), then a reply's
// first appearance or first text (its user is waiting for any sign), then
// the growing text of running answers, and last the status changes of
// replies already shown (a queue position moving). Replies of the same
// urgency take turns in arrival order.
//
// The zero Engine is not usable; call NewEngine.
type Engine struct {
	log      *slog.Logger
	observer Observer

	mu    sync.Mutex
	dests map[string]*schedule
}

// Observer receives the engine's events, for metrics. Every field may be nil.
type Observer struct {
	// Shown is called after each successful Show with the requests it made.
	Shown func(dest string, requests int, final bool)
	// Coalesced is called when text changes are folded into one update.
	Coalesced func(dest string, n int)
	// RateLimited is called when the platform refused an update.
	RateLimited func(dest string, retryAfter time.Duration)
	// FirstVisible is called once per answer with the time from its first
	// text to the Show that made it visible.
	FirstVisible func(dest string, d time.Duration)
}

// NewEngine returns an engine. A nil logger means slog.Default().
func NewEngine(log *slog.Logger, obs Observer) *Engine {
	if log == nil {
		log = slog.Default()
	}
	return &Engine{log: log, observer: obs, dests: make(map[string]*schedule)}
}

// schedule is one destination's request budget. Holding it grants the
// right to send the destination's next request. It is handed out when the
// destination's next request is due, to the most urgent waiting reply, the
// earliest among equals.
type schedule struct {
	id       string
	interval time.Duration
	users    int // replies attached; guarded by Engine.mu

	mu      sync.Mutex
	next    time.Time   // earliest time of the next request
	busy    bool        // a reply holds the schedule
	waiting []*waiter   // in arrival order
	timer   *time.Timer // hands the schedule out when next comes
}

// waiter is a reply waiting for the schedule. Its urgency is read when the
// schedule is handed out, so that a view that became final meanwhile is
// served as one.
type waiter struct {
	urgency func() int
	granted chan struct{}
}

func (e *Engine) attach(d Destination) *schedule {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.dests[d.ID]
	if s == nil {
		s = &schedule{id: d.ID, interval: d.Interval}
		e.dests[d.ID] = s
	}
	s.users++
	return s
}

func (e *Engine) detach(s *schedule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.users--
	if s.users > 0 {
		return
	}
	s.mu.Lock()
	idle := !time.Now().Before(s.next)
	if idle && s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	// A destination paused by the platform keeps its schedule so that the
	// next reply honours the pause; an idle one is forgotten.
	if idle {
		delete(e.dests, s.id)
	}
}

// acquire waits until the schedule is handed to the caller, at a time the
// destination accepts a request. On success the caller must call release.
func (s *schedule) acquire(ctx context.Context, urgency func() int) error {
	w := &waiter{urgency: urgency, granted: make(chan struct{})}
	s.mu.Lock()
	s.waiting = append(s.waiting, w)
	s.handOutLocked()
	s.mu.Unlock()
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		if i := slices.Index(s.waiting, w); i >= 0 {
			s.waiting = slices.Delete(s.waiting, i, i+1)
			return ctx.Err()
		}
		// Handed to us just now: pass it on, uncharged.
		s.busy = false
		s.handOutLocked()
		return ctx.Err()
	}
}

// handOutLocked gives the schedule to the most urgent waiter, the earliest
// among equals, when it is free and the next request is due; when it is
// free but not yet due, it sets the timer for then. s.mu must be held.
func (s *schedule) handOutLocked() {
	if s.busy || len(s.waiting) == 0 {
		return
	}
	if wait := time.Until(s.next); wait > 0 {
		if s.timer == nil {
			s.timer = time.AfterFunc(wait, s.due)
		} else {
			s.timer.Reset(wait)
		}
		return
	}
	best, bestUrgency := 0, s.waiting[0].urgency()
	for i, w := range s.waiting[1:] {
		if u := w.urgency(); u > bestUrgency {
			best, bestUrgency = i+1, u
		}
	}
	w := s.waiting[best]
	s.waiting = slices.Delete(s.waiting, best, best+1)
	s.busy = true
	close(w.granted)
}

// due runs when the destination's next request becomes due.
func (s *schedule) due() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handOutLocked()
}

// pause keeps the destination's next request at least d away.
func (s *schedule) pause(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until := time.Now().Add(d); until.After(s.next) {
		s.next = until
	}
	s.handOutLocked()
}

// release gives up the schedule, charging the requests made since acquire
// (or a pause, when the platform asked for one).
func (s *schedule) release(requests int, pause time.Duration) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if pause > 0 {
		s.next = now.Add(pause)
	} else if requests > 0 {
		s.next = now.Add(time.Duration(requests) * s.interval)
	}
	s.busy = false
	s.handOutLocked()
}

// Live is one answer being shown through a Reply. The producer calls Update
// as text arrives and Finish once; Live shows the newest view on the
// destination's schedule from its own goroutine.
type Live struct {
	e     *Engine
	reply Reply
	sched *schedule
	// OnShown, when set before the first Update, is called after each
	// successful Show with the view shown (for crash-safety records).
	onShown func(View)

	mu        sync.Mutex
	view      View
	version   uint64
	firstText time.Time // when the view first had content or reasoning
	gone      bool
	shownAny  bool // a Show succeeded
	shownText bool // a Show with content or reasoning succeeded
	held      bool // only the final view is to be shown

	changed chan struct{} // capacity 1: "there is something new"
	done    chan struct{} // closed when the final view was shown or abandoned
	goneCh  chan struct{} // closed when the reply reported ErrReplyGone
}

// Start begins showing an answer on reply. The context bounds every Show;
// cancelling it abandons the reply (the final view is not shown).
func (e *Engine) Start(ctx context.Context, reply Reply, onShown func(View)) *Live {
	l := &Live{
		e:       e,
		reply:   reply,
		sched:   e.attach(reply.Destination()),
		onShown: onShown,
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
		goneCh:  make(chan struct{}),
	}
	go l.run(ctx)
	return l
}

// Update makes v the newest view. It never blocks.
func (l *Live) Update(v View) {
	l.mu.Lock()
	if l.firstText.IsZero() && (v.Content != "" || v.Reasoning != "") {
		l.firstText = time.Now()
	}
	l.view = v
	l.version++
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Finish makes v (with Final set) the last view and waits until it has been
// shown, the reply is gone, or ctx ends.
func (l *Live) Finish(ctx context.Context, v View) error {
	v.Final = true
	l.Update(v)
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hold says that the answer is complete and its final view follows (with
// Finish) after some last work: views not final are no longer shown, so
// that the destination's next request goes to the final view.
func (l *Live) Hold() {
	l.mu.Lock()
	l.held = true
	l.mu.Unlock()
}

// NextShow is the earliest time the reply's destination accepts another
// request: when new text could next become visible. It is in the past
// while the destination is free.
func (l *Live) NextShow() time.Time {
	l.sched.mu.Lock()
	defer l.sched.mu.Unlock()
	return l.sched.next
}

// Gone is closed when the platform reported the reply's message deleted.
func (l *Live) Gone() <-chan struct{} { return l.goneCh }

// Done is closed when the final view has been shown or abandoned.
func (l *Live) Done() <-chan struct{} { return l.done }

// typingEvery is how often a typing indicator is renewed until the first
// Show; platforms expire it after 5 (Telegram) to 10 (Discord) seconds.
const typingEvery = 4 * time.Second

// finalAttempts bounds how often a failing final Show is tried again.
const finalAttempts = 6

func (l *Live) run(ctx context.Context) {
	defer close(l.done)
	defer l.e.detach(l.sched)

	typer, _ := l.reply.(Typer)
	var typing <-chan time.Time
	if typer != nil {
		l.typing(ctx, typer)
		t := time.NewTicker(typingEvery)
		defer t.Stop()
		typing = t.C
	}

	var (
		shown      View
		shownVer   uint64
		everShown  bool
		failures   int
		firstShown bool
	)
	for {
		select {
		case <-l.changed:
		case <-typing:
			l.typing(ctx, typer)
			continue
		case <-ctx.Done():
			return
		}

		if l.holding() {
			continue
		}
		if err := l.sched.acquire(ctx, l.urgency); err != nil {
			return
		}
		l.mu.Lock()
		v, ver, first, held := l.view, l.version, l.firstText, l.held
		l.mu.Unlock()
		if ver == shownVer || (everShown && v == shown) || (held && !v.Final) {
			l.sched.release(0, 0)
			if v.Final {
				return
			}
			continue
		}
		if n := ver - shownVer; n > 1 && l.e.observer.Coalesced != nil {
			l.e.observer.Coalesced(l.sched.id, int(n-1))
		}
		requests, err := l.reply.Show(ctx, v)
		var rl *RateLimitError
		if err == nil || errors.Is(err, ErrMore) {
			// All or (ErrMore) part of v is visible.
			l.mu.Lock()
			l.shownAny = true
			l.shownText = l.shownText || v.Content != "" || v.Reasoning != ""
			l.mu.Unlock()
			l.sched.release(requests, 0)
			failures = 0
			typing = nil
			if !firstShown && !first.IsZero() && (v.Content != "" || v.Reasoning != "") {
				firstShown = true
				if l.e.observer.FirstVisible != nil {
					l.e.observer.FirstVisible(l.sched.id, time.Since(first))
				}
			}
			if l.e.observer.Shown != nil {
				l.e.observer.Shown(l.sched.id, requests, v.Final && err == nil)
			}
		}
		switch {
		case err == nil:
			shown, shownVer, everShown = v, ver, true
			if l.onShown != nil && !v.Final {
				l.onShown(v)
			}
			if v.Final {
				return
			}
		case errors.Is(err, ErrMore):
			// Come back for the rest, with the newest view, when the
			// schedule allows.
			l.poke()
		case errors.As(err, &rl):
			retry := max(rl.RetryAfter, l.sched.interval)
			l.sched.release(requests, retry)
			if l.e.observer.RateLimited != nil {
				l.e.observer.RateLimited(l.sched.id, rl.RetryAfter)
			}
			l.e.log.Warn("rate limited", "destination", l.sched.id, "retry_after", rl.RetryAfter)
			l.poke()
		case errors.Is(err, ErrReplyGone):
			l.sched.release(requests, 0)
			l.mu.Lock()
			l.gone = true
			l.mu.Unlock()
			close(l.goneCh)
			return
		default:
			// The request failed for another reason (network, platform
			// error): charge it, and try again with the newest text. A
			// final view is tried a bounded number of times.
			l.sched.release(max(requests, 1), 0)
			failures++
			l.e.log.Warn("show reply", "destination", l.sched.id, "error", err, "attempt", failures)
			if ctx.Err() != nil {
				return
			}
			if v.Final && failures >= finalAttempts {
				return
			}
			if !v.Final && failures >= finalAttempts {
				// Give up on intermediate views; wait for the next change.
				failures = 0
				continue
			}
			l.poke()
		}
	}
}

// typing shows the typing indicator. A platform that answers it with a
// rate limit gets the same pause as for an update: the limit is the
// destination's, whatever the request.
func (l *Live) typing(ctx context.Context, typer Typer) {
	err := typer.Typing(ctx)
	var rl *RateLimitError
	switch {
	case errors.As(err, &rl):
		l.sched.pause(max(rl.RetryAfter, l.sched.interval))
		if l.e.observer.RateLimited != nil {
			l.e.observer.RateLimited(l.sched.id, rl.RetryAfter)
		}
		l.e.log.Warn("rate limited", "destination", l.sched.id, "retry_after", rl.RetryAfter, "request", "typing")
	case err != nil:
		l.e.log.Debug("typing", "destination", l.sched.id, "error", err)
	}
}

// holding reports whether l waits for its final view.
func (l *Live) holding() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held && !l.view.Final
}

// Urgencies of a reply waiting for its destination, most urgent last.
const (
	urgencyStatus = iota // a status change of a reply already shown
	urgencyText          // the growing text of a running answer
	urgencyFirst         // the reply's first appearance, or its first text
	urgencyFinal         // the final view
)

// urgency ranks the view l waits to show (see Engine).
func (l *Live) urgency() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	hasText := l.view.Content != "" || l.view.Reasoning != ""
	switch {
	case l.view.Final:
		return urgencyFinal
	case !l.shownAny, hasText && !l.shownText:
		return urgencyFirst
	case hasText:
		return urgencyText
	}
	return urgencyStatus
}

// poke re-arms the change notification so the loop tries again.
func (l *Live) poke() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}
