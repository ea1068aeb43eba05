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
