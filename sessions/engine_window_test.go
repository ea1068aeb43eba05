package sessions

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// sendLog records every request made to destinations, in order.
type sendLog struct {
	mu    sync.Mutex
	sends []send
}

type send struct {
	at    time.Time
	dest  string
	reply string
	final bool
	text  string
}

func (l *sendLog) all() []send {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]send(nil), l.sends...)
}

// logReply is a Reply that records its Shows in a shared sendLog.
type logReply struct {
	name string
	dest Destination
	log  *sendLog
	// fail, when set, may refuse a Show.
	fail func(v View) error
}

func (r *logReply) Destination() Destination { return r.dest }

func (r *logReply) Show(ctx context.Context, v View) (int, error) {
	if r.fail != nil {
		if err := r.fail(v); err != nil {
			return 1, err
		}
	}
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	r.log.sends = append(r.log.sends, send{at: time.Now(), dest: r.dest.ID, reply: r.name, final: v.Final, text: v.Content + v.Status})
	return 1, nil
}

// checkWindow fails when more than w.Requests requests to dest fall in any
// span of w.Per.
func checkWindow(t *testing.T, sends []send, dest string, w Window) {
	t.Helper()
	var times []time.Time
	for _, s := range sends {
		if s.dest == dest {
			times = append(times, s.at)
		}
	}
	for i := w.Requests; i < len(times); i++ {
		if d := times[i].Sub(times[i-w.Requests]); d <= w.Per {
			t.Fatalf("%s: requests %d..%d fall within %v, want at most %d per %v", dest, i-w.Requests, i, d, w.Requests, w.Per)
		}
	}
}

var discordChannel = Destination{ID: "discord:1", Interval: time.Second, Windows: []Window{Window{Requests: 5, Per: 5 * time.Second}}}

func TestEngine_Window_FinalAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &sendLog{}
		// Two answers grow side by side in one channel; each ends at a
		// different moment, and its final view must not wait.
		var wg sync.WaitGroup
		ended := make([]time.Time, 2)
		for i, d := range []time.Duration{7300 * time.Millisecond, 11900 * time.Millisecond} {
			l := e.Start(t.Context(), &logReply{name: fmt.Sprint(i), dest: discordChannel, log: log}, nil)
			wg.Go(func() {
				text := ""
				for start := time.Now(); time.Since(start) < d; {
					time.Sleep(50 * time.Millisecond)
					text += "x"
					l.Update(View{Content: text})
				}
				ended[i] = time.Now()
				l.Finish(t.Context(), View{Content: text + "!"})
			})
		}
		wg.Wait()
		sends := log.all()
		checkWindow(t, sends, discordChannel.ID, discordChannel.Windows[0])
		texts := 0
		for _, s := range sends {
			if !s.final {
				texts++
				continue
			}
			i := s.reply[0] - '0'
			if wait := s.at.Sub(ended[i]); wait != 0 {
				t.Errorf("reply %s: final shown %v after the answer ended, want at once", s.reply, wait)
			}
		}
		// Growing text uses the window less the kept slot: 4 per 5 s.
		if min := 4 * 11 / 5; texts < min {
			t.Errorf("%d updates of growing text in 12 s, want ≥ %d (4 per 5 s)", texts, min)
		}
	})
}

func TestEngine_Window_MixedSendsFinalsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &sendLog{}
		group := Destination{ID: "telegram:-100", Interval: 3 * time.Second, Windows: []Window{Window{Requests: 20, Per: time.Minute}}}
		// 100 sends at once: answers that finish, notices (command
		// replies, refusals) and answers still growing.
		// The window is nearly used up: everything below has to wait.
		for range 19 {
			e.Notify(t.Context(), &logReply{name: "earlier", dest: group, log: log}, View{Content: "earlier"})
		}
		synctest.Wait()
		var lives []*Live
		for i := range 100 {
			r := &logReply{name: fmt.Sprint(i), dest: group, log: log}
			switch i % 4 {
			case 0:
				lives = append(lives, e.Notify(t.Context(), r, View{Content: "notice"}))
			case 1:
				l := e.Start(t.Context(), r, nil)
				l.Update(View{Content: "done", Final: true})
				lives = append(lives, l)
			default:
				l := e.Start(t.Context(), r, nil)
				l.Update(View{Content: "growing"})
				lives = append(lives, l)
				defer l.Finish(t.Context(), View{Content: "growing, done"})
			}
		}
		time.Sleep(10 * time.Minute)
		sends := log.all()
		checkWindow(t, sends, group.ID, group.Windows[0])
		// The 25 finals went before anything else.
		for i, s := range sends[19:44] {
			if s.text != "done" {
				t.Fatalf("send %d is %q; want the 25 finished answers first", i, s.text)
			}
		}
		if n := len(sends); n < 100 {
			t.Errorf("%d sends in 10 minutes, want every reply shown", n)
		}
	})
}

func TestEngine_Budget_GlobalAcrossDestinations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 10, Per: time.Second})
		log := &sendLog{}
		start := time.Now()
		var lives []*Live
		for i := range 50 {
			d := Destination{ID: fmt.Sprint("chat", i), Interval: time.Second, Windows: []Window{Window{Requests: 3, Per: 3 * time.Second}}, Budget: "bot"}
			l := e.Start(t.Context(), &logReply{name: fmt.Sprint(i), dest: d, log: log}, nil)
			l.Update(View{Content: "first"})
			lives = append(lives, l)
		}
		// Half the answers end at once: their finals pass the others'
		// first appearances still waiting for the budget.
		for _, l := range lives[:25] {
			l.Finish(t.Context(), View{Content: "final"})
		}
		for _, l := range lives[25:] {
			l.Finish(t.Context(), View{Content: "final"})
		}
		sends := log.all()
		for i, s := range sends {
			// 10 in any second.
			if allowed := 10 * (1 + int(s.at.Sub(start)/time.Second)); i+1 > allowed {
				t.Fatalf("send %d at %v: more than the budget's %d", i, s.at.Sub(start), allowed)
			}
		}
		if peak := e.BudgetPeak("bot"); peak > 10 {
			t.Errorf("budget peak %d a second, want ≤ 10", peak)
		}
		if len(sends) < 50 {
			t.Fatalf("%d sends", len(sends))
		}
	})
}

func TestEngine_Budget_GlobalRateLimitPausesAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 50, Per: time.Second})
		log := &sendLog{}
		var once sync.Once
		var pausedAt time.Time
		refuse := func(v View) error {
			var err error
			once.Do(func() {
				pausedAt = time.Now()
				err = &RateLimitError{RetryAfter: 2 * time.Second, Global: true}
			})
			return err
		}
		var wg sync.WaitGroup
		for i := range 5 {
			d := Destination{ID: fmt.Sprint("chan", i), Interval: time.Second, Budget: "bot"}
			l := e.Start(t.Context(), &logReply{name: fmt.Sprint(i), dest: d, log: log, fail: refuse}, nil)
			wg.Go(func() { produce(t.Context(), l, 60, 50*time.Millisecond, "t") })
		}
		wg.Wait()
		for _, s := range log.all() {
			if d := s.at.Sub(pausedAt); d > 0 && d < 2*time.Second {
				t.Fatalf("%s sent %v after a global 429, want none for 2 s", s.dest, d)
			}
		}
	})
}

// typerReply counts typing indicators.
type typerReply struct {
	logReply
	mu     sync.Mutex
	typing int
}

func (r *typerReply) Typing(ctx context.Context, charge func() bool) error {
	if !charge() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.typing++
	return nil
}

// draftTyper shows its sign of life as a draft the platform does not
// charge (Telegram's placeholder): it never asks for the budget.
type draftTyper struct {
	logReply
	drafts atomic.Int32
}

func (r *draftTyper) Typing(context.Context, func() bool) error {
	r.drafts.Add(1)
	return nil
}

// A free sign of life takes nothing from the bot's budget: a wave of
// answers starting does not make their first texts wait.
func TestEngine_Budget_FreeTypingNotCharged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 5, Per: time.Hour})
		log := &sendLog{}
		var rs []*draftTyper
		for i := range 5 {
			r := &draftTyper{logReply: logReply{name: fmt.Sprint(i), dest: Destination{ID: fmt.Sprint(i), Interval: time.Second, Budget: "bot"}, log: log}}
			rs = append(rs, r)
			e.Start(t.Context(), r, nil)
		}
		synctest.Wait()
		for _, r := range rs {
			if n := r.drafts.Load(); n != 1 {
				t.Fatalf("reply %s showed %d signs of life, want 1", r.name, n)
			}
		}
		// The whole budget is left for the five answers' first texts.
		start := time.Now()
		for i := range 5 {
			l := e.Start(t.Context(), &logReply{name: fmt.Sprint("a", i), dest: Destination{ID: fmt.Sprint(i), Interval: time.Second, Budget: "bot"}, log: log}, nil)
			l.Update(View{Content: "first words"})
		}
		synctest.Wait()
		sends := log.all()
		if len(sends) != 5 {
			t.Fatalf("%d first texts shown, want 5", len(sends))
		}
		for _, s := range sends {
			if s.at != start {
				t.Errorf("%s shown %v after its first text, want at once", s.reply, s.at.Sub(start))
			}
		}
	})
}

// "typing…" costs a request of the bot's budget: it goes out only when
// the first text is slow, typingGrace after the reply began.
func TestEngine_TypingAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &sendLog{}
		dest := func(id string) Destination { return Destination{ID: id, Interval: time.Second} }
		quick := &typerReply{logReply: logReply{name: "quick", dest: dest("q"), log: log}}
		slow := &typerReply{logReply: logReply{name: "slow", dest: dest("s"), log: log}}
		lq := e.Start(t.Context(), quick, nil)
		e.Start(t.Context(), slow, nil)
		time.Sleep(typingGrace / 2)
		lq.Update(View{Content: "first words"})
		time.Sleep(typingGrace)
		synctest.Wait()
		for _, tt := range []struct {
			r    *typerReply
			want int
		}{{quick, 0}, {slow, 1}} {
			tt.r.mu.Lock()
			if tt.r.typing != tt.want {
				t.Errorf("%s answer: %d typing indicators, want %d", tt.r.name, tt.r.typing, tt.want)
			}
			tt.r.mu.Unlock()
		}
	})
}

func TestEngine_Budget_TypingDroppedFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 5, Per: time.Hour})
		log := &sendLog{}
		var rs []*typerReply
		for i := range 10 {
			r := &typerReply{logReply: logReply{name: fmt.Sprint(i), dest: Destination{ID: fmt.Sprint(i), Interval: time.Second, Budget: "bot"}, log: log}}
			rs = append(rs, r)
			e.Start(t.Context(), r, nil)
		}
		time.Sleep(typingGrace)
		synctest.Wait()
		typed := 0
		for _, r := range rs {
			r.mu.Lock()
			typed += r.typing
			r.mu.Unlock()
		}
		// Typing takes the budget less the fifth kept for finals and
		// first appearances; the rest is dropped.
		if typed != 4 {
			t.Errorf("%d typing indicators with a budget of 5, want 4 (one kept, the rest dropped)", typed)
		}
		// The kept request still serves a final view.
		l := e.Start(t.Context(), &logReply{name: "final", dest: Destination{ID: "f", Interval: time.Second, Budget: "bot"}, log: log}, nil)
		l.Update(View{Content: "done", Final: true})
		synctest.Wait()
		if n := len(log.all()); n != 1 {
			t.Errorf("%d views shown, want the final one", n)
		}
	})
}

func TestEngine_Window_SeveralWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &sendLog{}
		chat := Window{Requests: 3, Per: 3 * time.Second}
		group := Window{Requests: 20, Per: time.Minute}
		d := Destination{ID: "telegram:-100", Interval: 3 * time.Second, Windows: []Window{chat, group}}
		// A crowd: 30 notices and 30 answers that finish at once.
		for i := range 30 {
			e.Notify(t.Context(), &logReply{name: fmt.Sprint("n", i), dest: d, log: log}, View{Content: "notice"})
			l := e.Start(t.Context(), &logReply{name: fmt.Sprint("a", i), dest: d, log: log}, nil)
			l.Update(View{Content: "answer", Final: true})
		}
		time.Sleep(10 * time.Minute)
		sends := log.all()
		if len(sends) != 60 {
			t.Fatalf("%d sends, want 60", len(sends))
		}
		checkWindow(t, sends, d.ID, chat)
		checkWindow(t, sends, d.ID, group)
	})
}

func TestEngine_Spend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		if err := e.Spend(t.Context(), "none"); err != nil {
			t.Fatalf("Spend on no budget: %v", err)
		}
		e.SetBudget("bot", Window{Requests: 5, Per: time.Second})
		start := time.Now()
		for i := range 12 {
			if err := e.Spend(t.Context(), "bot"); err != nil {
				t.Fatal(err)
			}
			if allowed := 5 * (1 + int(time.Since(start)/time.Second)); i+1 > allowed {
				t.Fatalf("request %d at %v: over the budget", i, time.Since(start))
			}
		}
		if peak := e.BudgetPeak("bot"); peak != 5 {
			t.Errorf("peak %d, want 5", peak)
		}
	})
}

// latentReply is a Reply whose requests reach the platform a while after
// they were sent and come back a while after that, recording when the
// platform counted them.
type latentReply struct {
	dest   Destination
	arrive time.Duration // from sending to the platform counting it
	back   time.Duration // from then to the answer coming back
	log    *sendLog
}

func (r *latentReply) Destination() Destination { return r.dest }

func (r *latentReply) Show(ctx context.Context, v View) (int, error) {
	time.Sleep(r.arrive)
	r.log.mu.Lock()
	r.log.sends = append(r.log.sends, send{at: time.Now(), dest: r.dest.ID, final: v.Final, text: v.Content})
	r.log.mu.Unlock()
	time.Sleep(r.back)
	return 1, nil
}

// TestEngine_Budget_CountsUntilTheAnswer shows that the bot's budget holds
// where the platform counts, however late requests arrive: a request
// counts until its answer came back.
func TestEngine_Budget_CountsUntilTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		budget := Window{Requests: 5, Per: time.Second}
		e.SetBudget("bot", budget)
		log := &sendLog{}
		var lives []*Live
		// The first five arrive late (a busy machine, a slow network), the
		// next ones at once.
		for i := range 20 {
			arrive := time.Duration(0)
			if i < 5 {
				arrive = 900 * time.Millisecond
			}
			d := Destination{ID: fmt.Sprint("chat", i), Interval: time.Second, Budget: "bot"}
			l := e.Start(t.Context(), &latentReply{dest: d, arrive: arrive, back: 50 * time.Millisecond, log: log}, nil)
			l.Update(View{Content: "first words", Final: true})
			lives = append(lives, l)
			synctest.Wait()
		}
		for _, l := range lives {
			<-l.Done()
		}
		sends := log.all()
		if len(sends) != 20 {
			t.Fatalf("%d sends, want 20", len(sends))
		}
		slices.SortFunc(sends, func(a, b send) int { return a.at.Compare(b.at) })
		for i := budget.Requests; i < len(sends); i++ {
			if d := sends[i].at.Sub(sends[i-budget.Requests].at); d <= budget.Per {
				t.Fatalf("the platform counted requests %d..%d within %v, want at most %d per %v", i-budget.Requests, i, d, budget.Requests, budget.Per)
			}
		}
	})
}

// TestEngine_Budget_TextUsesThePool shows that growing text that waits for
// the bot's budget takes every request of the budget's text pool (the
// budget less the fifth kept for finals and first appearances) as soon as
// it is free.
func TestEngine_Budget_TextUsesThePool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 10, Per: time.Second})
		log := &sendLog{}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for i := range 40 {
			d := Destination{ID: fmt.Sprint("chat", i), Interval: time.Second, Windows: []Window{{Requests: 3, Per: 3 * time.Second}}, Budget: "bot"}
			l := e.Start(ctx, &logReply{name: fmt.Sprint(i), dest: d, log: log}, nil)
			wg.Go(func() {
				text := "t"
				for ctx.Err() == nil {
					l.Update(View{Content: text})
					text += " t"
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
		// Every answer's first text has been shown after 5 s (4 a second
		// at most, after the pool's 8 first ones); from then on only text.
		time.Sleep(5 * time.Second)
		from := time.Now()
		time.Sleep(20 * time.Second)
		cancel()
		wg.Wait()
		n := 0
		for _, s := range log.all() {
			if s.at.After(from) && !s.at.After(from.Add(20*time.Second)) {
				n++
			}
		}
		// 8 a second, less the margin each request's span keeps.
		if want := 20 * 8 * 9 / 10; n < want {
			t.Errorf("%d updates of growing text in 20 s, want ≥ %d (90%% of the pool of 8 a second)", n, want)
		}
	})
}

// TestEngine_WaitingLivesHaveNoGoroutines shows that replies waiting for
// their destination, or for the bot's budget, hold no goroutine, and
// that ending their context ends them.
func TestEngine_WaitingLivesHaveNoGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 5, Per: time.Hour})
		log := &sendLog{}
		ctx, cancel := context.WithCancel(t.Context())
		before := runtime.NumGoroutine()
		var lives []*Live
		for i := range 200 {
			d := Destination{ID: fmt.Sprint("chat", i%50), Interval: time.Minute, Budget: "bot"}
			l := e.Start(ctx, &logReply{name: fmt.Sprint(i), dest: d, log: log}, nil)
			l.Update(View{Content: "first"})
			l.Update(View{Content: "first words"})
			lives = append(lives, l)
		}
		synctest.Wait()
		// The count is the process's: another test's timer may start a
		// goroutine meanwhile, so a few are let pass (a goroutine per
		// reply would be 200).
		if n := runtime.NumGoroutine() - before; n >= 10 {
			t.Errorf("%d goroutines for 200 waiting replies, want none", n)
		}
		cancel()
		for _, l := range lives {
			<-l.Done()
		}
	})
}

// Requests another process made to a destination (Honour) count in its
// window as if this engine had made them; Recent reports them with its
// own.
func TestEngine_Window_Honour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		start := time.Now()
		// Four requests elsewhere, 1 s ago: with the slot kept for a
		// final, growing text has none left until they age out.
		e.Honour(discordChannel, []time.Duration{time.Second, time.Second, time.Second, time.Second})
		if got := e.Recent(discordChannel.ID); len(got) != 4 {
			t.Fatalf("Recent after Honour = %v, want the 4 requests", got)
		}
		log := &sendLog{}
		l := e.Start(t.Context(), &logReply{name: "0", dest: discordChannel, log: log}, nil)
		for range 40 {
			l.Update(View{Content: "text " + time.Since(start).String()})
			time.Sleep(100 * time.Millisecond)
		}
		l.Finish(t.Context(), View{Content: "done"})
		sends := log.all()
		if len(sends) == 0 {
			t.Fatal("nothing shown")
		}
		if first := sends[0].at.Sub(start); first < 4*time.Second {
			t.Errorf("first growing text %v after the other process's requests, want once they left the window (≥ 4 s)", first)
		}
		elsewhere := make([]send, 4)
		for i := range elsewhere {
			elsewhere[i] = send{at: start.Add(-time.Second), dest: discordChannel.ID}
		}
		checkWindow(t, append(elsewhere, sends...), discordChannel.ID, discordChannel.Windows[0])
		if got := e.Recent(discordChannel.ID); len(got) == 0 || got[0] != 0 {
			t.Errorf("Recent = %v, want the final just now first", got)
		}
	})
}

// With other processes drawing on the bot's budget, this one keeps to its
// share; it says when it draws, and one that starts drawing while others
// do first waits out a window of their larger shares.
func TestEngine_Budget_Shared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 10, Per: time.Second})
		draws := e.BudgetDraws("bot")
		e.SetBudgetOthers("bot", 1) // another process draws: 5 a second here
		log := &sendLog{}
		start := time.Now()
		var lives []*Live
		for i := range 20 {
			d := Destination{ID: fmt.Sprint("chat", i), Interval: time.Second, Windows: []Window{Window{Requests: 3, Per: 3 * time.Second}}, Budget: "bot"}
			l := e.Start(t.Context(), &logReply{name: fmt.Sprint(i), dest: d, log: log}, nil)
			l.Update(View{Content: "first"})
			lives = append(lives, l)
		}
		if on := <-draws; !on {
			t.Fatal("drawing = false once replies drew on the budget")
		}
		for _, l := range lives {
			l.Finish(t.Context(), View{Content: "final"})
		}
		sends := log.all()
		if len(sends) < 20 {
			t.Fatalf("%d sends, want every final", len(sends))
		}
		if first := sends[0].at.Sub(start); first < time.Second {
			t.Errorf("first request %v after this process began drawing, want ≥ 1 s (the others' window)", first)
		}
		for i, s := range sends {
			if allowed := 5 * int(s.at.Sub(start)/time.Second); i+1 > allowed {
				t.Fatalf("send %d at %v: more than the share's %d", i, s.at.Sub(start), allowed)
			}
		}
		time.Sleep(drawLinger + time.Second)
		select {
		case on := <-draws:
			if on {
				t.Error("drawing = true after the replies ended")
			}
		default:
			t.Errorf("drawing not ended %v after the last reply", drawLinger+time.Second)
		}
	})
}

// Until the other processes are counted (the first SetBudgetOthers), a
// process sharing the bot's budget keeps to half of it and waits a window
// before it first draws, as if another drew on it; once told it draws
// alone, it has all of it.
func TestEngine_Budget_SharedUntilCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 10, Per: time.Second})
		e.BudgetDraws("bot")
		log := &sendLog{}
		start := time.Now()
		send := func(n int) {
			for i := range n {
				d := Destination{ID: fmt.Sprint("chat", i), Interval: time.Second, Windows: []Window{{Requests: 3, Per: 3 * time.Second}}, Budget: "bot"}
				e.Start(t.Context(), &logReply{name: fmt.Sprint(i), dest: d, log: log}, nil).Finish(t.Context(), View{Content: "final"})
			}
		}
		go send(10)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		sends := log.all()
		if len(sends) == 0 || sends[0].at.Sub(start) < time.Second {
			t.Fatalf("sends %v, want the first a window after drawing began", sends)
		}
		if n := len(sends); n > 5 {
			t.Errorf("%d requests in the first 1.5 s, want at most half the budget (5)", n)
		}
		e.SetBudgetOthers("bot", 0)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := len(log.all()); n != 10 {
			t.Errorf("%d finals shown, want all 10", n)
		}
	})
}

// When another process stops drawing on the bot's budget, this one takes
// its larger share only a window later: what the other sent still counts
// at the platform until then.
func TestEngine_Budget_ShareGrowsAWindowLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		e.SetBudget("bot", Window{Requests: 10, Per: time.Second})
		e.BudgetDraws("bot")
		e.SetBudgetOthers("bot", 1)
		time.Sleep(2 * time.Second) // past the wait of a process starting to draw
		log := &sendLog{}
		for i := range 20 {
			d := Destination{ID: fmt.Sprint("chat", i), Interval: time.Second, Windows: []Window{{Requests: 3, Per: 3 * time.Second}}, Budget: "bot"}
			l := e.Start(t.Context(), &logReply{name: fmt.Sprint(i), dest: d, log: log}, nil)
			go l.Finish(t.Context(), View{Content: "final"})
		}
		time.Sleep(1200 * time.Millisecond)
		synctest.Wait()
		e.SetBudgetOthers("bot", 0) // the other stopped
		changed := time.Now()
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		var within int
		for _, s := range log.all() {
			if !s.at.Before(changed.Add(-time.Second)) {
				within++
			}
		}
		if within > 5 {
			t.Errorf("%d requests in the window the other process's last ones still fill, want at most the share of 5", within)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := len(log.all()); n != 20 {
			t.Errorf("%d finals shown, want all 20", n)
		}
	})
}

// A first appearance starts the interval: the answer's next few words do
// not take the window's request that the forum's next topic needs for
// its own first appearance.
func TestEngine_Window_TextWaitsAfterFirstAppearance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(nil, Observer{})
		log := &sendLog{}
		forum := Destination{ID: "telegram:-100", Interval: 3 * time.Second,
			Windows: []Window{{Requests: 3, Per: 3 * time.Second}, {Requests: 20, Per: time.Minute}}}
		grow := func(name string, after, d time.Duration) func() {
			return func() {
				time.Sleep(after)
				l := e.Start(t.Context(), &logReply{name: name, dest: forum, log: log}, nil)
				text := ""
				for start := time.Now(); time.Since(start) < d; {
					text += "x"
					l.Update(View{Content: text})
					time.Sleep(20 * time.Millisecond)
				}
				l.Finish(t.Context(), View{Content: text + "!"})
			}
		}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(grow("a", 0, 10*time.Second))
		wg.Go(grow("b", 333*time.Millisecond, 10*time.Second))
		wg.Wait()
		sends := log.all()
		checkWindow(t, sends, forum.ID, forum.Windows[0])
		var firstB time.Duration = -1
		var lastShown time.Time // a request that showed a reply, not a final
		for _, s := range sends {
			if s.reply == "b" && firstB < 0 {
				firstB = s.at.Sub(start)
			}
			if !s.final && !firstOf(sends, s) && s.at.Sub(lastShown) < forum.Interval {
				t.Errorf("%s's text at %v, %v after the request before it; want the interval (%v)", s.reply, s.at.Sub(start), s.at.Sub(lastShown), forum.Interval)
			}
			if !s.final {
				lastShown = s.at
			}
		}
		if want := 333 * time.Millisecond; firstB != want {
			t.Errorf("b first shown at %v, want %v (at once: a's next words wait)", firstB, want)
		}
	})
}

// firstOf reports whether s is its reply's first request in sends.
func firstOf(sends []send, s send) bool {
	for _, o := range sends {
		if o.reply == s.reply {
			return o == s
		}
	}
	return false
}
