package sessions

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Engine decides when an answer's visible text changes, and sends every
// message the bot shows through the same rules. Every destination (a
// Telegram chat, a Discord channel or thread) has one schedule shared by all
// the replies and notices going to it: the platform's sliding window
// (Destination.Windows), of which the last request is kept for final views,
// so that an answer that ends is shown complete within one round trip; and
// between two updates of growing text or status at least
// Destination.Interval. The schedule is paused as a whole when the platform
// answers with a *RateLimitError. Every request also draws on the bot's
// global budget (SetBudget), paused as a whole by a global rate limit. A
// reply only ever shows its newest text, never the same text twice, and
// always its final text.
//
// When several replies wait for a destination, or for the bot's budget,
// the next request goes to the most urgent: a final view first (it
// completes an answer), then a reply's first appearance or first text, and
// notices (their user is waiting for any sign), then the growing text of
// running answers, and last the status changes of replies already shown (a
// queue position moving). Replies of the same urgency take turns in arrival
// order. Typing indicators take only budget nobody waits for.
//
// The zero Engine is not usable; call NewEngine.
type Engine struct {
	log      *slog.Logger
	observer Observer

	mu      sync.Mutex
	dests   map[string]*schedule
	budgets map[string]*budget
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

// SetBudget gives the bot named name (Destination.Budget) a global budget
// of at most w.Requests requests in any span of w.Per, shared by all its
// destinations. Call it before replies draw on it; a zero w removes it.
func (e *Engine) SetBudget(name string, w Window) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.budgets == nil {
		e.budgets = make(map[string]*budget)
	}
	if w.Requests <= 0 || w.Per <= 0 {
		delete(e.budgets, name)
		return
	}
	e.budgets[name] = newBudget(w)
}

// Spend waits until the named budget allows one request that goes to the
// platform outside any Reply (a Discord thread's creation, an interaction's
// answer), served as urgently as a reply's first appearance. A name with
// no budget returns at once.
func (e *Engine) Spend(ctx context.Context, name string) error {
	e.mu.Lock()
	b := e.budgets[name]
	e.mu.Unlock()
	if b == nil {
		return nil
	}
	return b.acquire(ctx, func() int { return urgencyFirst })
}

// BudgetPeak reports the most requests the named budget granted within one
// second so far.
func (e *Engine) BudgetPeak(name string) int {
	e.mu.Lock()
	b := e.budgets[name]
	e.mu.Unlock()
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak.max
}

func (e *Engine) attach(d Destination) *schedule {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.dests[d.ID]
	if s == nil {
		s = newSchedule(d, e.budgets[d.Budget])
		e.dests[d.ID] = s
	}
	s.users++
	return s
}

// detach lets go of s; a schedule nobody uses is forgotten once it holds
// nothing a later reply must honour (a window, a pause).
func (e *Engine) detach(s *schedule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.users--
	if s.users > 0 {
		return
	}
	if d := s.idleFor(); d > 0 {
		time.AfterFunc(d, func() { e.forget(s) })
		return
	}
	e.forgetLocked(s)
}

func (e *Engine) forget(s *schedule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forgetLocked(s)
}

func (e *Engine) forgetLocked(s *schedule) {
	if s.users > 0 || e.dests[s.id] != s || s.idleFor() > 0 {
		return
	}
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	delete(e.dests, s.id)
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
	notice    bool // a notice (Engine.Notify): as urgent as a first appearance
	taken     bool // a view was taken to be shown (Amend no longer works)

	changed chan struct{} // capacity 1: "there is something new"
	done    chan struct{} // closed when the final view was shown or abandoned
	goneCh  chan struct{} // closed when the reply reported ErrReplyGone
}

// Start begins showing an answer on reply. The context bounds every Show;
// cancelling it abandons the reply (the final view is not shown).
func (e *Engine) Start(ctx context.Context, reply Reply, onShown func(View)) *Live {
	l := e.newLive(reply)
	l.onShown = onShown
	go l.run(ctx)
	return l
}

// newLive is a Live showing nothing yet on reply, attached to its
// destination's schedule.
func (e *Engine) newLive(reply Reply) *Live {
	return &Live{
		e:       e,
		reply:   reply,
		sched:   e.attach(reply.Destination()),
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
		goneCh:  make(chan struct{}),
	}
}

// Notify shows v, a notice (a command's answer, a refusal, a note), on
// reply as its one final view, on the destination's schedule: as urgent as
// an answer's first appearance, and never in the slot kept for final views
// of answers. The returned Live is done once it was shown or abandoned.
func (e *Engine) Notify(ctx context.Context, reply Reply, v View) *Live {
	l := e.newLive(reply)
	l.notice = true
	v.Final = true
	l.view, l.version = v, 1
	l.changed <- struct{}{}
	go l.run(ctx)
	return l
}

// Amend replaces the view of a notice not yet taken to be shown with v,
// reporting whether it did: one request then carries what several
// notices would have said.
func (l *Live) Amend(v View) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.taken || !l.notice {
		return false
	}
	v.Final = true
	l.view = v
	l.version++
	return true
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
	if v.Final {
		// A reply waiting for a later slot may now take the one kept
		// for final views.
		l.sched.due()
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
// update of growing text: when new text could next become visible. It is
// not in the future while the destination is free.
func (l *Live) NextShow() time.Time { return l.sched.nextText() }

// Gone is closed when the platform reported the reply's message deleted.
func (l *Live) Gone() <-chan struct{} { return l.goneCh }

// Done is closed when the final view has been shown or abandoned.
func (l *Live) Done() <-chan struct{} { return l.done }

// typingEvery is how often a typing indicator is renewed until the first
// Show; platforms expire it after 5 (Telegram) to 10 (Discord) seconds.
const typingEvery = 4 * time.Second

// budgetRetry is the least time before growing text skipped for a short
// bot budget is tried again; it waits the destination's interval.
const budgetRetry = 100 * time.Millisecond

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
		u := l.urgency()
		l.mu.Lock()
		v, ver, first, held := l.view, l.version, l.firstText, l.held
		l.taken = true
		l.mu.Unlock()
		if ver == shownVer || (everShown && v == shown) || (held && !v.Final) {
			l.sched.release(0, -1, 0)
			if v.Final {
				return
			}
			continue
		}
		drafted := l.draft(v)
		if g := l.sched.global; g != nil && !drafted {
			if u < urgencyFirst {
				// Growing text and status take only budget nobody waits
				// for: while the bot's budget is short they are skipped
				// (the newest view comes a little later), so that finals
				// and first appearances never queue behind them.
				if !g.try() {
					l.sched.release(0, -1, 0)
					time.AfterFunc(max(l.sched.interval, budgetRetry), l.poke)
					continue
				}
			} else if err := g.acquire(ctx, l.urgency); err != nil {
				l.sched.release(0, -1, 0)
				return
			}
		}
		if n := ver - shownVer; n > 1 && l.e.observer.Coalesced != nil {
			l.e.observer.Coalesced(l.sched.id, int(n-1))
		}
		requests, err := l.reply.Show(ctx, v)
		if g := l.sched.global; g != nil && !drafted {
			g.charge(requests - 1) // the grant paid for one
		}
		var rl *RateLimitError
		if err == nil || errors.Is(err, ErrMore) {
			// All or (ErrMore) part of v is visible.
			l.mu.Lock()
			l.shownAny = true
			l.shownText = l.shownText || v.Content != "" || v.Reasoning != ""
			l.mu.Unlock()
			l.sched.release(requests, u, 0)
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
			l.rateLimited(rl, requests, u, false)
			l.poke()
		case errors.Is(err, ErrReplyGone):
			l.sched.release(requests, u, 0)
			l.mu.Lock()
			l.gone = true
			l.mu.Unlock()
			close(l.goneCh)
			return
		default:
			// The request failed for another reason (network, platform
			// error): charge it, and try again with the newest text. A
			// final view is tried a bounded number of times.
			l.sched.release(max(requests, 1), u, 0)
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

// rateLimited honours a platform's rate limit answer to a request of
// urgency u (or to a typing indicator): a global one pauses the bot's
// budget, any other the destination, which is released, charged with the
// requests made.
func (l *Live) rateLimited(rl *RateLimitError, requests, u int, typing bool) {
	pause := max(rl.RetryAfter, l.sched.interval)
	if rl.Global && l.sched.global != nil {
		l.sched.global.pause(rl.RetryAfter)
		pause = 0
	}
	if typing {
		l.sched.pause(pause)
	} else {
		l.sched.release(requests, u, pause)
	}
	if l.e.observer.RateLimited != nil {
		l.e.observer.RateLimited(l.sched.id, rl.RetryAfter)
	}
	l.e.log.Warn("rate limited", "destination", l.sched.id, "retry_after", rl.RetryAfter, "global", rl.Global)
}

// typing shows the typing indicator when the destination shows none (one
// indicator covers every answer there) and the bot's global budget has a
// request nobody waits for; otherwise it is dropped. A platform that answers
// it with a rate limit gets the same pause as for an update.
func (l *Live) typing(ctx context.Context, typer Typer) {
	if !l.sched.typingDue() {
		return // the destination shows one already
	}
	if g := l.sched.global; g != nil && !g.try() {
		return
	}
	err := typer.Typing(ctx)
	var rl *RateLimitError
	switch {
	case errors.As(err, &rl):
		l.rateLimited(rl, 0, -1, true)
	case err != nil:
		l.e.log.Debug("typing", "destination", l.sched.id, "error", err)
	}
}

// draft reports whether the reply shows v as a draft (see Drafter).
func (l *Live) draft(v View) bool {
	d, ok := l.reply.(Drafter)
	return ok && d.Draft(v)
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
	urgencyFirst         // the reply's first appearance or first text; a notice
	urgencyFinal         // the final view of an answer
)

// urgency ranks the view l waits to show (see Engine).
func (l *Live) urgency() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	hasText := l.view.Content != "" || l.view.Reasoning != ""
	switch {
	case l.notice:
		return urgencyFirst
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
