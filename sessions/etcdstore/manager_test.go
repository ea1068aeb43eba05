package etcdstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// viewReply records the views a Manager shows.
type viewReply struct {
	dest  sessions.Destination // {ID: "test"} when zero
	mu    sync.Mutex
	views []sessions.View
}

func (r *viewReply) Destination() sessions.Destination {
	if r.dest.ID == "" {
		return sessions.Destination{ID: "test"}
	}
	return r.dest
}

func (r *viewReply) shown() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.views)
}

func (r *viewReply) Show(ctx context.Context, v sessions.View) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.views = append(r.views, v)
	return 1, nil
}

func (r *viewReply) last() sessions.View {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.views) == 0 {
		return sessions.View{}
	}
	return r.views[len(r.views)-1]
}

// fakeRouter routes every model to up, the fake model, as provider
// "fake".
func fakeRouter(t *testing.T, up *llmtest.Server) *llm.Router {
	t.Helper()
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{})}, "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// A process that loses its lease in the middle of an answer stops the
// answer and commits nothing of it afterwards; the process that takes the
// conversation over finalises the answer as interrupted (Recover) and
// answers the conversation's next message.
func TestManager_LeaseLostMidAnswer(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	words := make([]string, 400)
	for i := range words {
		words[i] = "word "
	}
	up.SetScript(llmtest.Script{Content: words, Interval: 10 * time.Millisecond})
	router := fakeRouter(t, up)
	a, b := openPair(t)
	ctx := t.Context()
	mcfg := sessions.Config{DefaultModel: "fake/echo"}
	ma := sessions.NewManager(mcfg, a, router, nil, quiet)
	t.Cleanup(func() { ma.Close(context.Background()) })

	key := sessions.Key{Platform: "telegram", Chat: "42"}
	alice := sessions.Author{ID: "7", Name: "Alice"}
	rep := &viewReply{}
	turn, err := ma.Handle(ctx, sessions.Message{Key: key, ID: "1", Author: alice, Text: "tell me a long story"}, rep)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	for rep.last().Content == "" {
		select {
		case <-turn.Done():
			t.Fatal("the answer ended before the lease was revoked")
		case <-time.After(5 * time.Millisecond):
		}
	}
	revoke(t, a)
	waitClosed(t, turn.Done(), "the turn ending once its claim was lost")
	if _, _, err := turn.Result(); !errors.Is(err, sessions.ErrNotOwner) {
		t.Errorf("turn result: %v, want ErrNotOwner", err)
	}
	if v := rep.last(); !v.Final || !strings.Contains(v.Status, "Another Palaver process") {
		t.Errorf("last view %+v, want a final view saying another process took over", v)
	}
	hist, err := b.History(ctx, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 0 {
		t.Errorf("history after the lost claim: %+v, want nothing committed by the process that lost it", hist)
	}

	// The survivor finalises what the record says was shown, as after a
	// crash, and the conversation goes on there.
	mb := sessions.NewManager(mcfg, b, router, nil, quiet)
	t.Cleanup(func() { mb.Close(context.Background()) })
	shown := &viewReply{}
	if err := mb.Recover(ctx, "telegram", func(sessions.Progress) (sessions.Reply, error) { return shown, nil }); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if v := shown.last(); !v.Final || !strings.Contains(v.Status, "Interrupted") {
		t.Errorf("recovered view %+v, want the interrupted note", v)
	}
	hist, err = b.History(ctx, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Text != "tell me a long story" || hist[1].Status != "interrupted" {
		t.Errorf("history after recovery: %+v, want the question and the interrupted answer", hist)
	}
	up.SetScript(llmtest.Script{Content: []string{"short"}})
	next, err := mb.Handle(ctx, sessions.Message{Key: key, ID: "2", Author: alice, Text: "again"}, &viewReply{})
	if err != nil {
		t.Fatalf("Handle on the survivor: %v", err)
	}
	waitClosed(t, next.Done(), "the survivor's answer")
	if answer, status, err := next.Result(); err != nil || answer != "short" {
		t.Errorf("survivor's answer %q (%s, %v), want short", answer, status, err)
	}
}

// The requests one process's replies made to a conversation's destination
// pass, with the conversation's claim, to the process that answers it
// next: its schedule counts them in the platform's window, so that the
// two together never send more than the window allows.
func TestManager_HandoffWindows(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.SetScript(llmtest.Script{Content: []string{"one ", "two ", "three"}, Interval: 5 * time.Millisecond})
	router := fakeRouter(t, up)
	cfg := testConfig(t)
	a := mustOpen(t, cfg)
	cfg.Member = "m2"
	b := mustOpen(t, cfg)
	ctx := t.Context()
	mcfg := sessions.Config{DefaultModel: "fake/echo"}
	ea, eb := sessions.NewEngine(quiet, sessions.Observer{}), sessions.NewEngine(quiet, sessions.Observer{})
	ma := sessions.NewManager(mcfg, a, router, ea, quiet)
	t.Cleanup(func() { ma.Close(context.Background()) })
	mb := sessions.NewManager(mcfg, b, router, eb, quiet)
	t.Cleanup(func() { mb.Close(context.Background()) })

	// A window no test run outlasts: every request stays counted.
	dest := sessions.Destination{ID: "discord:9", Interval: time.Millisecond, Windows: []sessions.Window{{Requests: 100, Per: time.Hour}}}
	key := sessions.Key{Platform: "discord", Chat: "9"}
	alice := sessions.Author{ID: "7", Name: "Alice"}
	answer := func(m *sessions.Manager, id string) *viewReply {
		t.Helper()
		rep := &viewReply{dest: dest}
		turn, err := m.Handle(ctx, sessions.Message{Key: key, ID: id, Author: alice, Text: "hello " + id}, rep)
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		waitClosed(t, turn.Done(), "the answer")
		if _, _, err := turn.Result(); err != nil {
			t.Fatalf("answer: %v", err)
		}
		return rep
	}
	first := answer(ma, "1")
	if n := len(ea.Recent(dest.ID)); n != first.shown() || n == 0 {
		t.Fatalf("the first process counts %d requests, its reply made %d", n, first.shown())
	}
	second := answer(mb, "2")
	if got, want := len(eb.Recent(dest.ID)), first.shown()+second.shown(); got != want {
		t.Errorf("the second process counts %d requests in the window, want %d (%d passed on, %d its own)", got, want, first.shown(), second.shown())
	}
	// Back to the first process: the second's note carries the requests
	// it counted, the first's own included, which the first then counts
	// twice until they age out (stricter, never looser).
	third := answer(ma, "3")
	if got, want := len(ea.Recent(dest.ID)), 2*first.shown()+second.shown()+third.shown(); got != want {
		t.Errorf("the first process again counts %d requests, want %d", got, want)
	}

	// Recover finalising a record there is passed the same: a third
	// process counts the first's requests before it shows the view.
	cfg.Member = "m3"
	c := mustOpen(t, cfg)
	ec := sessions.NewEngine(quiet, sessions.Observer{})
	mc := sessions.NewManager(mcfg, c, router, ec, quiet)
	t.Cleanup(func() { mc.Close(context.Background()) })
	if err := c.SaveProgress(ctx, key, 99, sessions.Progress{Destination: dest.ID, Shown: sessions.View{Content: "half"}}); err != nil {
		t.Fatal(err)
	}
	shown := &viewReply{dest: dest}
	if err := mc.Recover(ctx, "discord", func(sessions.Progress) (sessions.Reply, error) { return shown, nil }); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	passed := len(ea.Recent(dest.ID)) // the first process's note, its own and what it was passed
	if n := shown.shown(); n != 1 {
		t.Errorf("Recover showed %d views, want the interrupted answer's alone (the answers before cleared their records)", n)
	}
	if got, want := len(ec.Recent(dest.ID)), passed+shown.shown(); got != want {
		t.Errorf("Recover's process counts %d requests, want %d (%d passed on, %d its own)", got, want, passed, shown.shown())
	}
}

// A message another live process recorded, and has not claimed the
// conversation for yet (the moment between recording it and its turn),
// is that process's to answer: Recover elsewhere leaves it alone. Once
// that process is gone (its lease revoked: a restart under the same name
// runs on a new one), Recover finalises it.
func TestManager_RecoverLeavesLiveQueued(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	router := fakeRouter(t, up)
	a, b := openPair(t)
	ctx := t.Context()
	mb := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, b, router, nil, quiet)
	t.Cleanup(func() { mb.Close(context.Background()) })

	key := sessions.Key{Platform: "discord", Chat: "3"}
	q := sessions.Queued{Key: key, ID: 7, Destination: "discord:3",
		Question: sessions.Entry{Role: llm.RoleUser, MsgID: "70", Text: "still mine", Time: time.Now()}}
	if err := a.SetQueued(ctx, q); err != nil {
		t.Fatal(err)
	}
	// And one the recovering process recorded itself, whose turn is about
	// to claim its conversation.
	own := sessions.Queued{Key: sessions.Key{Platform: "discord", Chat: "4"}, ID: 8, Destination: "discord:4",
		Question: sessions.Entry{Role: llm.RoleUser, MsgID: "80", Text: "about to answer", Time: time.Now()}}
	if err := b.SetQueued(ctx, own); err != nil {
		t.Fatal(err)
	}
	shown := &viewReply{}
	restore := func(sessions.Progress) (sessions.Reply, error) { return shown, nil }
	if err := mb.Recover(ctx, "discord", restore); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if n := shown.shown(); n != 0 {
		t.Errorf("Recover showed %d views for a live process's message, want none", n)
	}
	if qs, err := b.QueuedMessages(ctx); err != nil || len(qs) != 2 {
		t.Fatalf("queued after Recover: %+v, %v; want both messages still waiting", qs, err)
	}

	revoke(t, a)
	if err := mb.Recover(ctx, "discord", restore); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if v := shown.last(); !v.Final || !strings.Contains(v.Status, "restarted before answering") {
		t.Errorf("view after its process was gone: %+v, want the restarted note", v)
	}
	hist, err := b.History(ctx, key, 10)
	if err != nil || len(hist) != 2 || hist[0].Text != "still mine" || hist[1].Status != "interrupted" {
		t.Errorf("history: %+v, %v; want the question and an interrupted answer", hist, err)
	}
}
