package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// crashCopy opens a copy of the rig's store file as a kill -9 would leave
// it now: what was committed, nothing written behind since.
func (r *rig) crashCopy() *sessions.BoltStore {
	r.t.Helper()
	b, err := os.ReadFile(r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	path := filepath.Join(r.t.TempDir(), "crash.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		r.t.Fatal(err)
	}
	s, err := sessions.OpenBolt(path, sessions.BoltOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { s.Close() })
	return s
}

func TestManager_Handle_DurableBeforeReturn(t *testing.T) {
	r := newRig(t, sessions.Config{})
	release := r.holdAt(0, "slow")
	t.Cleanup(func() { close(release) })
	turn, err := r.m.Handle(t.Context(), sessions.Message{Key: key, ID: "7", Author: alice, Text: "now"}, &snapReply{name: "where"})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := r.m.Handle(t.Context(), sessions.Message{Key: key, ID: "8", Author: alice, Text: "next"}, &snapReply{name: "later"})
	if err != nil {
		t.Fatal(err)
	}
	// The process dies now: both messages were confirmed to the platform.
	c := r.crashCopy()
	h, err := c.History(t.Context(), key, 0)
	if err != nil || len(h) != 1 || h[0].Text != "now" || h[0].MsgID != "7" {
		t.Errorf("history after a crash = %+v, %v; want the first message", h, err)
	}
	ps, err := c.Progresses(t.Context())
	if err != nil || len(ps) != 1 || string(ps[0].Reply) != "where" {
		t.Errorf("progress after a crash = %+v, %v; want where its answer goes", ps, err)
	}
	qs, err := c.QueuedMessages(t.Context())
	if err != nil || len(qs) != 1 || qs[0].Question.Text != "next" || qs[0].Question.MsgID != "8" {
		t.Errorf("queued after a crash = %+v, %v; want the second message", qs, err)
	}
	release <- struct{}{}
	wait(t, turn)
	wait(t, queued)
}

func TestManager_Handle_Duplicate(t *testing.T) {
	r := newRig(t, sessions.Config{})
	msg := sessions.Message{Key: key, ID: "41", Author: alice, Text: "once"}
	turn, err := r.m.Handle(t.Context(), msg, &reply{})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, turn)
	// The platform delivers it again after a restart.
	r.restart()
	rep := &reply{}
	if _, err := r.m.Handle(t.Context(), msg, rep); !errors.Is(err, sessions.ErrDuplicate) {
		t.Fatalf("second delivery: %v, want ErrDuplicate", err)
	}
	asked := 0
	for _, req := range r.up.Requests() {
		if strings.HasSuffix(req.Path, "/chat/completions") {
			asked++
		}
	}
	if asked != 1 {
		t.Errorf("upstream asked %d times, want once", asked)
	}
	if v := rep.all(); len(v) != 0 {
		t.Errorf("a second delivery showed %+v", v)
	}
	// A later message is answered.
	msg.ID, msg.Text = "42", "again"
	turn, err = r.m.Handle(t.Context(), msg, rep)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, turn)
}

// fullStore is a real BoltStore whose writes fail as on a full disk while
// full is set.
type fullStore struct {
	*sessions.BoltStore
	full atomic.Bool
}

var errNoSpace = &os.PathError{Op: "write", Path: "/var/lib/palaver/palaver.db", Err: syscall.ENOSPC}

func (s *fullStore) Commit(ctx context.Context, key sessions.Key, c sessions.Commit) error {
	if s.full.Load() {
		return fmt.Errorf("sessions: commit to %s: %w", key, errNoSpace)
	}
	return s.BoltStore.Commit(ctx, key, c)
}

func (s *fullStore) SetQueued(ctx context.Context, q sessions.Queued) error {
	if s.full.Load() {
		return fmt.Errorf("sessions: record queued message of %s: %w", q.Key, errNoSpace)
	}
	return s.BoltStore.SetQueued(ctx, q)
}

func TestManager_Handle_NotSaved(t *testing.T) {
	r := newRig(t, sessions.Config{})
	fs := &fullStore{BoltStore: r.store}
	var (
		mu       sync.Mutex
		failures []string
	)
	cfg := sessions.Config{DefaultModel: "fake/echo", Observer: sessions.TurnObserver{StoreFailed: func(op string) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, op)
	}}}
	client := llm.NewClient(r.up.Provider("fake"), llm.Options{})
	router, err := llm.NewRouter([]*llm.Client{client}, "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sessions.NewManager(cfg, fs, router, nil, nil)
	t.Cleanup(func() { m.Close(context.Background()) })

	fs.full.Store(true)
	rep := &reply{}
	_, err = m.Handle(t.Context(), sessions.Message{Key: key, ID: "1", Author: alice, Text: "lost?"}, rep)
	if !errors.Is(err, sessions.ErrNotSaved) {
		t.Fatalf("Handle on a full disk: %v, want ErrNotSaved", err)
	}
	if s := sessions.Explain(err); strings.Contains(s, "/") || strings.Contains(s, "space") || !strings.Contains(s, "answered when it can") {
		t.Errorf("the user reads %q", s)
	}
	mu.Lock()
	if len(failures) != 1 || failures[0] != "message" {
		t.Errorf("store failures reported: %q", failures)
	}
	mu.Unlock()

	// A queued message that cannot be saved leaves no trace in the queue.
	fs.full.Store(false)
	release := r.holdAt(0, "slow")
	running, err := m.Handle(t.Context(), sessions.Message{Key: key, ID: "2", Author: alice, Text: "first"}, &reply{})
	if err != nil {
		t.Fatal(err)
	}
	fs.full.Store(true)
	if _, err := m.Handle(t.Context(), sessions.Message{Key: key, ID: "3", Author: alice, Text: "second"}, &reply{}); !errors.Is(err, sessions.ErrNotSaved) {
		t.Fatalf("queued Handle on a full disk: %v, want ErrNotSaved", err)
	}
	fs.full.Store(false)
	// Delivered again once the disk has room: taken, one answer ahead.
	later := &reply{}
	queued, err := m.Handle(t.Context(), sessions.Message{Key: key, ID: "3", Author: alice, Text: "second"}, later)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return later.last().Status != "" }, func() string { return fmt.Sprintf("queued reply shows %+v", later.last()) })
	if got := later.last().Status; !strings.Contains(got, "one answer ahead") {
		t.Errorf("queued status %q, want one answer ahead", got)
	}
	release <- struct{}{}
	wait(t, running)
	wait(t, queued)
	if v := rep.all(); len(v) != 0 {
		t.Errorf("the unsaved message's reply showed %+v", v)
	}
	h, _ := r.store.History(t.Context(), key, 0)
	var texts []string
	for _, e := range h {
		texts = append(texts, e.Text)
	}
	if got := strings.Join(texts, "|"); got != "first|slow|second|echo: second" {
		t.Errorf("history %q", got)
	}
}

func TestManager_Recover_BeforeFirstShow(t *testing.T) {
	r := newRig(t, sessions.Config{})
	// A crash right after the message was accepted: nothing shown yet.
	q := sessions.Entry{Role: llm.RoleUser, MsgID: "5", Text: "q", Time: time.Now()}
	start := sessions.Progress{Destination: "test", Reply: []byte(`{"reply_to":5}`)}
	if err := r.store.Commit(t.Context(), key, sessions.Commit{Entries: []sessions.Entry{q}, Progress: &start}); err != nil {
		t.Fatal(err)
	}
	r.restart()
	shown := &reply{}
	if err := r.m.Recover(t.Context(), key.Platform, func(p sessions.Progress) (sessions.Reply, error) {
		if string(p.Reply) != `{"reply_to":5}` {
			t.Errorf("restored from %s", p.Reply)
		}
		return shown, nil
	}); err != nil {
		t.Fatal(err)
	}
	if v := shown.last(); !v.Final || v.Content != "" || !strings.Contains(v.Status, "Interrupted") {
		t.Errorf("recovered reply shows %+v", v)
	}
	h, _ := r.store.History(t.Context(), key, 0)
	if len(h) != 2 || h[1].Role != llm.RoleAssistant || h[1].Status != "interrupted" {
		t.Errorf("history %+v, want the question and an interrupted answer", h)
	}
}

func TestManager_Recover_Committed(t *testing.T) {
	r := newRig(t, sessions.Config{})
	// A crash after the answer was saved, before its final view was shown.
	final := sessions.View{Content: "the whole answer", Final: true}
	entries := []sessions.Entry{{Role: llm.RoleUser, Text: "q", Time: time.Now()}, {Role: llm.RoleAssistant, Text: final.Content, Time: time.Now()}}
	p := sessions.Progress{Destination: "test", Reply: []byte("r"), Shown: final, Committed: true}
	if err := r.store.Commit(t.Context(), key, sessions.Commit{Entries: entries, Progress: &p}); err != nil {
		t.Fatal(err)
	}
	r.restart()
	shown := &reply{}
	if err := r.m.Recover(t.Context(), key.Platform, func(sessions.Progress) (sessions.Reply, error) { return shown, nil }); err != nil {
		t.Fatal(err)
	}
	if v := shown.last(); v != final {
		t.Errorf("recovered reply shows %+v, want the final view %+v", v, final)
	}
	if h, _ := r.store.History(t.Context(), key, 0); len(h) != 2 {
		t.Errorf("history %+v, want it unchanged", h)
	}
	if ps, _ := r.store.Progresses(t.Context()); len(ps) != 0 {
		t.Errorf("progress left: %+v", ps)
	}
}

func TestManager_AnswerFinishedLeavesNoRecord(t *testing.T) {
	r := newRig(t, sessions.Config{})
	rep := &snapReply{name: "r"}
	wait(t, r.handle("hello", rep))
	if ps, _ := r.crashCopy().Progresses(t.Context()); len(ps) > 1 || len(ps) == 1 && !ps[0].Committed {
		t.Errorf("after the answer, a crash finds %+v; want nothing or the committed final view", ps)
	}
}

func TestManager_MaxAnswer(t *testing.T) {
	r := newRig(t, sessions.Config{MaxAnswer: 50})
	tokens := make([]string, 5000)
	for i := range tokens {
		tokens[i] = "runaway é "
	}
	// Slow enough that the server is still writing when Palaver hangs up.
	r.up.Enqueue(llmtest.Script{Content: tokens, Interval: time.Millisecond})
	rep, turn := r.ask(key, "go on forever")
	v := rep.last()
	if n := utf8.RuneCountInString(v.Content); n != 50 {
		t.Errorf("answer has %d characters, want the cap of 50", n)
	}
	if !strings.Contains(v.Status, "chat.max_answer_chars") {
		t.Errorf("status %q does not name the cap", v.Status)
	}
	if answer, status, _ := turn.Result(); status != "" || utf8.RuneCountInString(answer) != 50 {
		t.Errorf("result %q (%q)", answer, status)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := r.up.WaitDisconnect(ctx); err != nil {
		t.Errorf("the model's stream was not closed: %v", err)
	}
}
