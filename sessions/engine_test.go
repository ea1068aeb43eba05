package sessions

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// memReply is an in-memory Reply recording every Show with its time. Its
// log may be shared by several replies to one destination.
type memReply struct {
	dest Destination
	log  *showLog

	mu    sync.Mutex
	views []View
	// fail, when set, is consulted before each Show.
	fail func(n int, v View) (int, error)
	n    int
}

type showLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (l *showLog) add(t time.Time, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.times = append(l.times, t)
	}
}

func (l *showLog) all() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.times...)
}

func (r *memReply) Destination() Destination { return r.dest }

func (r *memReply) Show(ctx context.Context, v View) (int, error) {
	r.mu.Lock()
	r.n++
	n := r.n
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if req, err := fail(n, v); err != nil {
			r.log.add(time.Now(), req)
			return req, err
		}
	}
	r.mu.Lock()
	r.views = append(r.views, v)
	r.mu.Unlock()
	r.log.add(time.Now(), 1)
	return 1, nil
}

func (r *memReply) last() View {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.views) == 0 {
		return View{}
	}
	return r.views[len(r.views)-1]
}

func (r *memReply) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.views)
}

// produce streams tokens into l every gap and finishes with the whole text.
func produce(ctx context.Context, l *Live, tokens int, gap time.Duration, prefix string) string {
	var b strings.Builder
	for i := range tokens {
		time.Sleep(gap)
		fmt.Fprintf(&b, "%s%d ", prefix, i)
		l.Update(View{Content: b.String()})
	}
	l.Finish(ctx, View{Content: b.String()})
	return b.String()
}

// checkSpacing fails when two requests to one destination are closer than
// interval.
func checkSpacing(t *testing.T, times []time.Time, interval time.Duration) {
	t.Helper()
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d < interval {
			t.Fatalf("requests %d and %d are %v apart, want ≥ %v", i-1, i, d, interval)
		}
	}
}

func TestEngine_SingleReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &showLog{}
		r := &memReply{dest: Destination{ID: "d", Interval: time.Second}, log: log}
		l := e.Start(t.Context(), r, nil)
		want := produce(t.Context(), l, 200, 20*time.Millisecond, "t")
		<-l.Done()

		if got := r.last(); got.Content != want || !got.Final {
			t.Fatalf("final view = %q (final %v), want %q", got.Content, got.Final, want)
		}
		checkSpacing(t, log.all(), time.Second)
		// 200 tokens over 4 s at one update a second: 4-6 updates, not 200.
		if n := r.count(); n < 4 || n > 6 {
			t.Errorf("updates = %d, want 4..6", n)
		}
		// The first token was shown at once.
		if first := r.views[0].Content; first != "t0 " {
			t.Errorf("first view = %q, want the first token", first)
		}
	})
}

func TestEngine_SharedDestination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &showLog{}
		const replies = 20
		var wg sync.WaitGroup
		rs := make([]*memReply, replies)
		wants := make([]string, replies)
		for i := range replies {
			rs[i] = &memReply{dest: Destination{ID: "chan", Interval: time.Second}, log: log}
			l := e.Start(t.Context(), rs[i], nil)
			wg.Go(func() {
				wants[i] = produce(t.Context(), l, 100+i*7, time.Duration(10+i)*time.Millisecond, fmt.Sprintf("r%d-", i))
				<-l.Done()
			})
		}
		wg.Wait()
		checkSpacing(t, log.all(), time.Second)
		for i, r := range rs {
			if got := r.last(); got.Content != wants[i] || !got.Final {
				t.Errorf("reply %d: final = %.30q… final=%v, want %.30q…", i, got.Content, got.Final, wants[i])
			}
		}
	})
}

func TestEngine_RateLimitPausesDestination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &showLog{}
		limited := &memReply{dest: Destination{ID: "a", Interval: time.Second}, log: log}
		var pausedAt time.Time
		limited.fail = func(n int, v View) (int, error) {
			if n == 2 {
				pausedAt = time.Now()
				return 1, &RateLimitError{RetryAfter: 5 * time.Second}
			}
			return 0, nil
		}
		otherLog := &showLog{}
		other := &memReply{dest: Destination{ID: "b", Interval: time.Second}, log: otherLog}

		la := e.Start(t.Context(), limited, nil)
		lb := e.Start(t.Context(), other, nil)
		var wg sync.WaitGroup
		var wantA, wantB string
		wg.Go(func() { wantA = produce(t.Context(), la, 100, 50*time.Millisecond, "a") })
		wg.Go(func() { wantB = produce(t.Context(), lb, 100, 50*time.Millisecond, "b") })
		wg.Wait()

		times := log.all()
		for _, tm := range times {
			if tm.After(pausedAt) && tm.Sub(pausedAt) < 5*time.Second {
				t.Fatalf("request %v after the 429, want ≥ 5s", tm.Sub(pausedAt))
			}
		}
		if got := limited.last(); got.Content != wantA {
			t.Errorf("limited reply final = %.20q…, want full text", got.Content)
		}
		// The other destination kept its one-a-second pace during the pause.
		if got := other.last(); got.Content != wantB {
			t.Errorf("other reply final wrong")
		}
		if n := other.count(); n < 5 {
			t.Errorf("other destination got %d updates, want ≥ 5 (it must not pause)", n)
		}
	})
}

func TestEngine_SkipsUnchangedText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		r := &memReply{dest: Destination{ID: "d", Interval: time.Second}, log: &showLog{}}
		l := e.Start(t.Context(), r, nil)
		l.Update(View{Content: "same"})
		synctest.Wait()
		for range 5 {
			time.Sleep(2 * time.Second)
			l.Update(View{Content: "same"})
		}
		l.Finish(t.Context(), View{Content: "same"})
		// "same" once, then the final view (which differs by Final).
		if n := r.count(); n != 2 {
			t.Fatalf("shows = %d, want 2: %+v", n, r.views)
		}
	})
}

func TestEngine_ChargesEveryRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &showLog{}
		r := &memReply{dest: Destination{ID: "d", Interval: time.Second}, log: log}
		// Every show makes two requests (a split answer).
		r.fail = func(n int, v View) (int, error) { return 0, nil }
		r2 := &twoRequestReply{r}
		l := e.Start(t.Context(), r2, nil)
		produce(t.Context(), l, 50, 100*time.Millisecond, "x")
		<-l.Done()
		starts := log.all()
		for i := 1; i < len(starts); i++ {
			if d := starts[i].Sub(starts[i-1]); d < 2*time.Second {
				t.Fatalf("shows %v apart, want ≥ 2s for two requests each", d)
			}
		}
	})
}

type twoRequestReply struct{ *memReply }

func (r *twoRequestReply) Show(ctx context.Context, v View) (int, error) {
	_, err := r.memReply.Show(ctx, v)
	return 2, err
}

func TestEngine_ReplyGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		r := &memReply{dest: Destination{ID: "d", Interval: time.Second}, log: &showLog{}}
		r.fail = func(n int, v View) (int, error) {
			if n >= 2 {
				return 1, fmt.Errorf("edit: %w", ErrReplyGone)
			}
			return 0, nil
		}
		l := e.Start(t.Context(), r, nil)
		var wg sync.WaitGroup
		wg.Go(func() { produce(t.Context(), l, 100, 50*time.Millisecond, "g") })
		select {
		case <-l.Gone():
		case <-time.After(time.Minute):
			t.Fatal("Gone not closed")
		}
		<-l.Done()
		wg.Wait()
	})
}

func TestEngine_TransientErrorRetriesFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		r := &memReply{dest: Destination{ID: "d", Interval: time.Second}, log: &showLog{}}
		r.fail = func(n int, v View) (int, error) {
			if v.Final && n < 5 {
				return 1, fmt.Errorf("connection reset")
			}
			return 0, nil
		}
		l := e.Start(t.Context(), r, nil)
		want := produce(t.Context(), l, 10, 10*time.Millisecond, "f")
		<-l.Done()
		if got := r.last(); got.Content != want || !got.Final {
			t.Fatalf("final = %q final=%v, want %q", got.Content, got.Final, want)
		}
	})
}

// orderReply records, in a log shared by the replies of one destination,
// which reply showed what.
type orderReply struct {
	name string
	log  *[]string
	mu   *sync.Mutex
}

func (r orderReply) Destination() Destination { return Destination{ID: "chan", Interval: time.Second} }

func (r orderReply) Show(_ context.Context, v View) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, fmt.Sprintf("%s:%s%s final=%v", r.name, v.Content, v.Status, v.Final))
	return 1, nil
}

func TestEngine_MostUrgentFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu  sync.Mutex
			log []string
		)
		e := NewEngine(nil, Observer{})
		a := e.Start(t.Context(), orderReply{"a", &log, &mu}, nil)
		a.Update(View{Content: "a0"}) // shown at once; the next request may go at 1 s
		time.Sleep(100 * time.Millisecond)
		a.Update(View{Content: "a0 a1"}) // growing text, waiting since 0.1 s
		time.Sleep(100 * time.Millisecond)
		b := e.Start(t.Context(), orderReply{"b", &log, &mu}, nil)
		b.Update(View{Status: "queued"}) // b's first appearance goes first, at 1 s
		time.Sleep(1900 * time.Millisecond)
		// At 2.1 s a's text has been shown (at 2 s); b's status changes.
		b.Update(View{Status: "queued, next"})
		time.Sleep(100 * time.Millisecond)
		// a's final view, asked for later, goes before b's status change.
		if err := a.Finish(t.Context(), View{Content: "a0 a1 a2"}); err != nil {
			t.Fatal(err)
		}
		b.Finish(t.Context(), View{Content: "b0"})

		want := []string{
			"a:a0 final=false",
			"b:queued final=false",
			"a:a0 a1 final=false",
			"a:a0 a1 a2 final=true",
			"b:b0 final=true",
		}
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(log, "\n") != strings.Join(want, "\n") {
			t.Errorf("order of requests:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
		}
	})
}

// partsReply shows a view as parts of at most size bytes, one request per
// Show, returning ErrMore while parts differ.
type partsReply struct {
	size int
	log  *showLog

	mu    sync.Mutex
	parts []string
	final bool
}

func (r *partsReply) Destination() Destination {
	return Destination{ID: "parts", Interval: time.Second}
}

func (r *partsReply) Show(_ context.Context, v View) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var want []string
	for s := v.Content; s != ""; {
		n := min(r.size, len(s))
		want, s = append(want, s[:n]), s[n:]
	}
	for i, p := range want {
		if i < len(r.parts) && r.parts[i] == p {
			continue
		}
		if i < len(r.parts) {
			r.parts[i] = p
		} else {
			r.parts = append(r.parts, p)
		}
		r.log.add(time.Now(), 1)
		if i < len(want)-1 {
			return 1, ErrMore // the parts after i are new
		}
		r.final = v.Final
		return 1, nil
	}
	r.final = v.Final
	return 0, nil
}

func TestEngine_MoreRequestsOnePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &showLog{}
		r := &partsReply{size: 10, log: log}
		l := e.Start(t.Context(), r, nil)
		l.Update(View{Content: "0123456789"})
		time.Sleep(100 * time.Millisecond)
		// Three new parts at once: they go one per interval.
		if err := l.Finish(t.Context(), View{Content: "0123456789abcdefghijABCDEFGHIJ!"}); err != nil {
			t.Fatal(err)
		}
		checkSpacing(t, log.all(), time.Second)
		r.mu.Lock()
		defer r.mu.Unlock()
		if got := strings.Join(r.parts, ""); got != "0123456789abcdefghijABCDEFGHIJ!" || !r.final {
			t.Errorf("shown %q (final %v), want the whole text, final", got, r.final)
		}
		if n := len(log.all()); n != 4 {
			t.Errorf("%d requests, want 4 (the first part, then one per new part)", n)
		}
	})
}

func TestEngine_HoldKeepsTheSlotForTheFinalView(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &showLog{}
		r := &memReply{dest: Destination{ID: "d", Interval: time.Second}, log: log}
		l := e.Start(t.Context(), r, nil)
		l.Update(View{Content: "a"}) // shown at once
		synctest.Wait()
		l.Update(View{Content: "a b"}) // waits for 1 s
		time.Sleep(500 * time.Millisecond)
		l.Hold() // the answer is complete; saving it takes a while
		time.Sleep(700 * time.Millisecond)
		if err := l.Finish(t.Context(), View{Content: "a b c"}); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		var got []string
		for _, v := range r.views {
			got = append(got, fmt.Sprintf("%s final=%v", v.Content, v.Final))
		}
		if want := "a final=false|a b c final=true"; strings.Join(got, "|") != want {
			t.Errorf("shown %q, want %q", strings.Join(got, "|"), want)
		}
		// The final view went out when asked for (1.2 s), the slot being due.
		if times := log.all(); len(times) != 2 || times[1].Sub(times[0]) != 1200*time.Millisecond {
			t.Errorf("requests at %v, want the final 1.2 s after the first", times)
		}
	})
}

// typingReply is a memReply whose typing indicator is refused with a rate
// limit once.
type typingReply struct {
	*memReply
	refused bool
}

func (r *typingReply) Typing(_ context.Context, charge func() bool) error {
	if !charge() {
		return nil
	}
	if !r.refused {
		r.refused = true
		return &RateLimitError{RetryAfter: 3 * time.Second}
	}
	return nil
}

func TestEngine_TypingRateLimitPausesDestination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &showLog{}
		start := time.Now()
		r := &typingReply{memReply: &memReply{dest: Destination{ID: "d", Interval: time.Second}, log: log}}
		l := e.Start(t.Context(), r, nil)
		time.Sleep(typingGrace) // the first text is slow: "typing…" goes out
		synctest.Wait()
		l.Update(View{Content: "first words"})
		if err := l.Finish(t.Context(), View{Content: "first words, all"}); err != nil {
			t.Fatal(err)
		}
		times := log.all()
		if len(times) == 0 || times[0].Sub(start) < typingGrace+3*time.Second {
			t.Errorf("first request at %v, want after the 3 s the typing refusal asked for", times)
		}
	})
}
