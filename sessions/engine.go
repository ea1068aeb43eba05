package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// budget is the named budget, nil for none.
func (e *Engine) budget(name string) *budget {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.budgets[name]
}

// BudgetDraws reports, on a channel that holds only the newest state,
// whether this process draws on the named budget: true once a reply (or
// a Spend) uses it, false drawLinger after the last ended; nil for a
// name with no budget. With several processes sending as one bot, the
// caller announces it to the others and tells each process how many
// others draw (SetBudgetOthers), so that each keeps to its share.
//
// From this call until the first SetBudgetOthers, the process keeps to
// half the budget and waits a window before it first draws, as if
// another process drew on it: the count is not known yet.
func (e *Engine) BudgetDraws(name string) <-chan bool {
	b := e.budget(name)
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.shared {
		b.shared, b.others = true, -1
	}
	return b.draws
}

// SetBudgetOthers says how many other processes draw on the named budget
// (see BudgetDraws): this process keeps to the budget divided by them
// and itself.
func (e *Engine) SetBudgetOthers(name string, n int) {
	b := e.budget(name)
	if b != nil {
		b.share(n)
	}
}

// Spend waits until the named budget allows one request that goes to the
// platform outside any Reply (a Discord thread's creation, an interaction's
// answer), served as urgently as a reply's first appearance. A name with
// no budget returns at once.
func (e *Engine) Spend(ctx context.Context, name string) error {
	b := e.budget(name)
	if b == nil {
		return nil
	}
	b.use(1)
	defer b.use(-1)
	if err := b.acquire(ctx, func() int { return urgencyFirst }); err != nil {
		return err
	}
	b.complete(1, spendLead(b.window))
	return nil
}

// BudgetPeak reports the most requests the named budget granted within one
// second so far.
func (e *Engine) BudgetPeak(name string) int {
	b := e.budget(name)
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak.max
}

// maxCarried bounds the requests Recent reports and Honour takes: more
// than any platform's window counts (a Telegram group's, 20).
const maxCarried = 64

// Recent reports the requests made to destination id that one of its
// windows still counts, as their ages now, newest first (at most
// maxCarried); nil when there are none.
func (e *Engine) Recent(id string) []time.Duration {
	e.mu.Lock()
	s := e.dests[id]
	e.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.sent = forget(s.sent, s.span, now)
	var ages []time.Duration
	for i := len(s.sent) - 1; i >= 0 && len(ages) < maxCarried; i-- {
		ages = append(ages, now.Sub(s.sent[i]))
	}
	return ages
}

// Honour makes destination d's windows count, besides its own requests,
// requests made there elsewhere (by another process) ages ago: what is
// left of each window is then all its replies may send. At most
// maxCarried are taken.
func (e *Engine) Honour(d Destination, ages []time.Duration) {
	if len(ages) == 0 {
		return
	}
	s := e.attach(d)
	defer e.detach(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, a := range ages[:min(len(ages), maxCarried)] {
		if a >= s.span {
			continue // no window counts it any more
		}
		at := now.Add(-max(a, 0))
		i, _ := slices.BinarySearchFunc(s.sent, at, time.Time.Compare)
		s.sent = slices.Insert(s.sent, i, at)
	}
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
	if s.global != nil {
		s.global.use(1)
	}
	return s
}

// detach lets go of s; a schedule nobody uses is forgotten once it holds
// nothing a later reply must honour (a window, a pause).
func (e *Engine) detach(s *schedule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.users--
	if s.global != nil {
		s.global.use(-1)
	}
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
// destination's schedule.
//
// A Live costs no goroutine while it waits, for text or for its turn: the
// schedule hands it the destination on a goroutine that makes one request
// (a step) and ends, and the bot's budget wakes growing text it had to
// skip.
type Live struct {
	e     *Engine
	ctx   context.Context // bounds every Show; its end abandons the reply
	reply Reply
	sched *schedule
	typer Typer // nil when the reply shows no typing indicator
	// OnShown, when set before the first Update, is called after each
	// successful Show with the view shown (for crash-safety records).
	onShown func(View)
	waiter  waiter  // in the schedule's line while waiting for it
	bwaiter waiter  // in the budget's line while an urgent view waits for it
	sleeper sleeper // in the budget's line while growing text waits for it

	mu        sync.Mutex
	view      View
	version   uint64
	firstText time.Time // when the view first had content or reasoning
	gone      bool
	goneFn    func()      // called when the reply is gone (afterGone)
	failed    error       // why the final view was abandoned
	shownAny  bool        // a Show succeeded
	shownText bool        // a Show with content or reasoning succeeded
	held      bool        // only the final view is to be shown
	notice    bool        // a notice (Engine.Notify): as urgent as a first appearance
	taken     bool        // a view was taken to be shown (Amend no longer works)
	dirty     bool        // there is something new to show
	active    bool        // lined up for the schedule, a step runs, or a view waits for the budget
	sleeping  bool        // growing text waits for the bot's budget
	granted   bool        // the budget granted growing text a request (woken)
	ended     bool        // done is closed, or about to be
	typing    *time.Timer // renews the typing indicator
	started   time.Time   // when the reply began: charged typing waits typingGrace
	stopCtx   func() bool // stops watching ctx

	// What the steps showed, and the view waiting for the budget; only
	// the step holding the schedule uses them.
	pend       pending
	shown      View
	shownVer   uint64
	everShown  bool
	failures   int
	firstShown bool

	done   chan struct{} // closed when the final view was shown or abandoned
	goneCh chan struct{} // closed when the reply reported ErrReplyGone
}

// Start begins showing an answer on reply. The context bounds every Show;
// cancelling it abandons the reply (the final view is not shown).
func (e *Engine) Start(ctx context.Context, reply Reply, onShown func(View)) *Live {
	l := e.newLive(ctx, reply)
	l.onShown = onShown
	l.begin()
	return l
}

// newLive is a Live showing nothing yet on reply, attached to its
// destination's schedule.
func (e *Engine) newLive(ctx context.Context, reply Reply) *Live {
	l := &Live{
		e:       e,
		ctx:     ctx,
		started: time.Now(),
		reply:   reply,
		sched:   e.attach(reply.Destination()),
		done:    make(chan struct{}),
		goneCh:  make(chan struct{}),
	}
	l.waiter = waiter{urgency: l.urgency, grant: l.step}
	l.bwaiter = waiter{urgency: l.urgency, grant: func() { go l.budgeted() }}
	l.sleeper = sleeper{ready: l.readyToWake, wake: l.wake}
	return l
}

// begin starts the typing indicator and watches the context.
func (l *Live) begin() {
	if t, ok := l.reply.(Typer); ok {
		l.typer = t
		l.mu.Lock()
		l.typing = time.AfterFunc(typingGrace, l.typingTick)
		l.mu.Unlock()
		go l.typingNow()
	}
	stop := context.AfterFunc(l.ctx, l.abandon)
	l.mu.Lock()
	l.stopCtx = stop
	l.mu.Unlock()
}

// Notify shows v, a notice (a command's answer, a refusal, a note), on
// reply as its one final view, on the destination's schedule: as urgent as
// an answer's first appearance, and never in the slot kept for final views
// of answers. The returned Live is done once it was shown or abandoned.
func (e *Engine) Notify(ctx context.Context, reply Reply, v View) *Live {
	l := e.newLive(ctx, reply)
	l.notice = true
	v.Final = true
	l.view, l.version = v, 1
	l.begin()
	l.kick()
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
	l.kick()
	if v.Final {
		// A reply waiting for a later slot may now take the one kept
		// for final views.
		l.sched.due()
	}
}

// Finish makes v (with Final set) the last view and waits until it has been
// shown, the reply is gone, or ctx ends. A final view the platform kept
// refusing (finalAttempts times, for another reason than a rate limit) is
// abandoned with ErrNotShown.
func (l *Live) Finish(ctx context.Context, v View) error {
	v.Final = true
	l.Update(v)
	select {
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.failed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNotShown reports a final view abandoned after the platform refused it
// finalAttempts times.
var ErrNotShown = errors.New("sessions: the final view could not be shown")

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

// afterGone arranges for f to be called once the platform reported the
// reply's message deleted (at once when it did already); stop cancels
// that. One f at a time.
func (l *Live) afterGone(f func()) (stop func()) {
	l.mu.Lock()
	if l.gone {
		l.mu.Unlock()
		f()
		return func() {}
	}
	l.goneFn = f
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		l.goneFn = nil
		l.mu.Unlock()
	}
}

// Done is closed when the final view has been shown or abandoned.
func (l *Live) Done() <-chan struct{} { return l.done }

// typingEvery is how often a typing indicator is renewed until the first
// Show; platforms expire it after 5 (Telegram) to 10 (Discord) seconds.
const typingEvery = 4 * time.Second

// typingGrace is how long after a reply begins a typing indicator the
// platform charges first goes out, when nothing shows yet: most first
// texts come sooner, and an indicator sent just before one takes a
// request of the bot's budget that a wave of first texts needs. A sign
// the platform does not charge (a Telegram draft) goes out at once.
const typingGrace = time.Second

// finalAttempts bounds how often a failing final Show is tried again.
const finalAttempts = 6

// kick notes that there is something new to show, and unless a step is
// under way (it sees the note) or growing text sleeps for the budget (a
// more urgent view wakes it), lines the reply up for its destination.
func (l *Live) kick() {
	l.mu.Lock()
	l.dirty = true
	if l.active || l.ended || (l.sleeping && l.urgencyLocked() < urgencyFirst) {
		l.mu.Unlock()
		return
	}
	sleeping := l.sleeping
	l.sleeping, l.active = false, true
	l.mu.Unlock()
	if sleeping {
		l.sched.global.unsleep(&l.sleeper)
	}
	l.next()
}

// readyToWake reports whether l's destination would take its growing
// text now. It runs with the budget's lock held.
func (l *Live) readyToWake() bool { return l.sched.free(urgencyText) }

// wake is the budget's call to growing text that slept for it: it reports
// whether l still sleeps, and is then granted a request. It runs with the
// budget's lock held, and lines l up for its destination at once, so that
// the budget wakes no other reply for the same destination meanwhile (its
// grant would wait there). A context ended meanwhile is seen by the step.
func (l *Live) wake() bool {
	l.mu.Lock()
	if !l.sleeping || l.ended {
		l.mu.Unlock()
		return false
	}
	l.sleeping, l.granted = false, true
	idle := !l.active
	if idle {
		// The view that slept is still to be shown (dirty).
		l.active, l.dirty = true, false
	}
	l.mu.Unlock()
	if idle {
		l.sched.enqueue(&l.waiter)
	}
	return true
}

// next lines l up for its destination's schedule when there is something
// new to show, or leaves it idle. Only the holder of l.active calls it.
func (l *Live) next() {
	l.mu.Lock()
	if !l.dirty || l.sleeping || (l.held && !l.view.Final) {
		granted := l.granted
		l.active, l.granted = false, false
		l.mu.Unlock()
		if granted {
			l.sched.global.complete(0, 0) // woken for a view that waits now
		}
		if l.ctx.Err() != nil {
			l.abandon()
		}
		return
	}
	l.dirty = false
	l.mu.Unlock()
	l.sched.enqueue(&l.waiter)
	if l.ctx.Err() != nil {
		l.abandon()
	}
}

// step runs, on a goroutine of its own, when the schedule was handed to
// l: it shows the newest view, then lines up again, idles or ends; or it
// leaves the view waiting for the bot's budget, whose grant goes on.
func (l *Live) step() { l.then(l.show()) }

// budgeted runs, on a goroutine of its own, when the bot's budget granted
// the request of the view waiting for it.
func (l *Live) budgeted() { l.then(l.send(l.pend)) }

// then goes on after a step.
func (l *Live) then(o outcome) {
	switch o {
	case goOn:
		l.next()
	case stop:
		l.end()
	}
}

// outcome is what follows a step.
type outcome int

const (
	goOn    outcome = iota // line up for what is new, or idle
	stop                   // the final view was shown, the reply is gone, or the context ended
	waiting                // the view waits for the bot's budget (budgeted goes on)
)

// pending is a view taken to be shown while l holds its destination's
// schedule.
type pending struct {
	v       View
	ver     uint64
	first   time.Time // when the view first had text
	u       int       // its urgency
	charged bool      // it draws on the bot's budget
}

// abandon ends l when its context has ended: at once when it waits or
// idles; a step under way ends it itself.
func (l *Live) abandon() {
	if l.sched.cancel(&l.waiter) {
		l.end()
		return
	}
	if g := l.sched.global; g != nil && g.cancel(&l.bwaiter) {
		l.sched.release(0, -1, 0)
		l.end()
		return
	}
	l.mu.Lock()
	if l.active || l.ended {
		l.mu.Unlock()
		return
	}
	l.active = true // nobody else may step now
	l.mu.Unlock()
	l.end()
}

// end closes done, once: the final view was shown or abandoned. Only the
// holder of l.active calls it.
func (l *Live) end() {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.ended = true
	sleeping, granted, stopCtx := l.sleeping, l.granted, l.stopCtx
	l.sleeping, l.granted = false, false
	if l.typing != nil {
		l.typing.Stop()
	}
	l.mu.Unlock()
	if g := l.sched.global; g != nil {
		if sleeping {
			g.unsleep(&l.sleeper)
		}
		if granted {
			g.complete(0, 0)
		}
	}
	if stopCtx != nil {
		stopCtx()
	}
	l.e.detach(l.sched)
	close(l.done)
}

// mark notes that the step under way leaves something to show.
func (l *Live) mark() {
	l.mu.Lock()
	l.dirty = true
	l.mu.Unlock()
}

// show makes one request (or none) towards the newest view while l holds
// its destination's schedule, and gives the schedule back; or it leaves
// the view waiting for the bot's budget, holding the schedule.
func (l *Live) show() outcome {
	ctx := l.ctx
	l.mu.Lock()
	p := pending{v: l.view, ver: l.version, first: l.firstText, u: l.urgencyLocked()}
	held, granted := l.held, l.granted
	l.granted = false
	l.taken = true
	l.mu.Unlock()
	g := l.sched.global
	if ctx.Err() != nil {
		l.sched.release(0, -1, 0)
		if granted {
			g.complete(0, 0)
		}
		return stop
	}
	v := p.v
	if p.ver == l.shownVer || (l.everShown && v == l.shown) || (held && !v.Final) {
		l.sched.release(0, -1, 0)
		if granted {
			g.complete(0, 0)
		}
		if v.Final {
			return stop
		}
		return goOn
	}
	p.charged = g != nil && !l.draft(v)
	if granted && (!p.charged || p.u >= urgencyFirst) {
		g.complete(0, 0) // the grant is not needed, or not enough
		granted = false
	}
	if p.charged && !granted {
		if p.u >= urgencyFirst {
			// Wait for the budget, most urgent first across
			// destinations, holding the destination.
			l.pend = p
			g.enqueue(&l.bwaiter)
			if ctx.Err() != nil {
				l.abandon()
			}
			return waiting
		}
		// Growing text and status take only budget nobody waits for:
		// while the bot's budget is short they sleep (the newest view
		// comes a little later) until it wakes them, so that finals and
		// first appearances never queue behind them.
		if !g.try() {
			l.sched.release(0, -1, 0)
			l.mu.Lock()
			l.sleeping, l.dirty = true, true
			l.mu.Unlock()
			g.sleep(&l.sleeper)
			return goOn
		}
	}
	return l.send(p)
}

// send shows p's view with one request (or none) and gives the schedule
// back. A charged view holds a request of the bot's budget.
func (l *Live) send(p pending) outcome {
	ctx, v, u := l.ctx, p.v, p.u
	if l.notice {
		u = urgencyFinal // its reply's final view: it starts no interval
	}
	if n := p.ver - l.shownVer; n > 1 && l.e.observer.Coalesced != nil {
		l.e.observer.Coalesced(l.sched.id, int(n-1))
	}
	requests, err := l.reply.Show(ctx, v)
	if p.charged {
		l.sched.global.complete(max(requests, 1), 0)
	}
	var rl *RateLimitError
	if err == nil || errors.Is(err, ErrMore) {
		// All or (ErrMore) part of v is visible.
		l.mu.Lock()
		l.shownAny = true
		l.shownText = l.shownText || v.Content != "" || v.Reasoning != ""
		l.mu.Unlock()
		l.sched.release(requests, u, 0)
		l.failures = 0
		if !l.firstShown && !p.first.IsZero() && (v.Content != "" || v.Reasoning != "") {
			l.firstShown = true
			if l.e.observer.FirstVisible != nil {
				l.e.observer.FirstVisible(l.sched.id, time.Since(p.first))
			}
		}
		if l.e.observer.Shown != nil {
			l.e.observer.Shown(l.sched.id, requests, v.Final && err == nil)
		}
	}
	switch {
	case err == nil:
		l.shown, l.shownVer, l.everShown = v, p.ver, true
		if l.onShown != nil && !v.Final {
			l.onShown(v)
		}
		if v.Final {
			return stop
		}
	case errors.Is(err, ErrMore):
		// Come back for the rest, with the newest view, when the
		// schedule allows.
		l.mark()
	case errors.As(err, &rl):
		l.rateLimited(rl, requests, u, false)
		l.mark()
	case errors.Is(err, ErrReplyGone):
		l.sched.release(requests, u, 0)
		l.mu.Lock()
		l.gone = true
		f := l.goneFn
		l.mu.Unlock()
		close(l.goneCh)
		if f != nil {
			f()
		}
		return stop
	default:
		// The request failed for another reason (network, platform
		// error): charge it, and try again with the newest text. A
		// final view is tried a bounded number of times.
		l.sched.release(max(requests, 1), u, 0)
		l.failures++
		l.e.log.Warn("show reply", "destination", l.sched.id, "error", err, "attempt", l.failures)
		if ctx.Err() != nil {
			return stop
		}
		if l.failures >= finalAttempts {
			if v.Final {
				l.mu.Lock()
				l.failed = fmt.Errorf("%w (%d attempts): %w", ErrNotShown, l.failures, err)
				l.mu.Unlock()
				return stop
			}
			// Give up on intermediate views; wait for the next change.
			l.failures = 0
			return goOn
		}
		l.mark()
	}
	return goOn
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

// typingNow shows the typing indicator while the reply shows nothing and
// waits for nothing (once it waits for its destination, its first view
// is on its way).
func (l *Live) typingNow() {
	l.mu.Lock()
	due := !l.ended && !l.shownAny && !l.active
	l.mu.Unlock()
	if due {
		l.typingRequest()
	}
}

// typingTick shows the typing indicator typingGrace after the reply
// began, then renews it every typingEvery, until the reply shows
// something.
func (l *Live) typingTick() {
	l.typingNow()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ended && !l.shownAny {
		l.typing.Reset(typingEvery)
	}
}

// typingRequest shows the typing indicator when the destination shows none
// (one indicator covers every answer there). A request the platform
// charges is made only typingGrace after the reply began, and when the
// bot's global budget has one nobody waits for; otherwise it is dropped
// (a later tick tries again). A free sign of life (a Telegram draft) is
// shown whatever the budget. A platform that answers with a rate limit
// gets the same pause as for an update.
func (l *Live) typingRequest() {
	due, before := l.sched.typingDue()
	if !due {
		return // the destination shows one already
	}
	g := l.sched.global
	charged, refused := false, false
	err := l.typer.Typing(l.ctx, func() bool {
		charged = time.Since(l.started) >= typingGrace && (g == nil || g.try())
		refused = !charged
		return charged
	})
	if charged && g != nil {
		g.complete(1, 0)
	}
	if refused {
		l.sched.untyped(before) // nothing shows: the next tick may try
	}
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
	return l.urgencyLocked()
}

// urgencyLocked is urgency with l.mu held.
func (l *Live) urgencyLocked() int {
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
