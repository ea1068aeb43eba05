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
	qs, err := c.QueuedMessages(t.Context())
	if err != nil || len(qs) != 2 || qs[0].Question.MsgID != "7" || string(qs[0].Reply) != "where" ||
		qs[1].Question.MsgID != "8" || string(qs[1].Reply) != "later" {
		t.Errorf("queued after a crash = %+v, %v; want both messages with where they are answered", qs, err)
	}
	// The next start answers for both: the history gets each question,
	// each reply a note.
	var restored []string
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, c, nil, nil, nil)
	if err := m.Recover(t.Context(), key.Platform, func(p sessions.Progress) (sessions.Reply, error) {
		restored = append(restored, string(p.Reply))
		return &reply{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(restored) != 2 {
		t.Errorf("recovery showed notes on %q, want both replies", restored)
	}
	h, _ := c.History(t.Context(), key, 0)
	if len(h) != 4 || h[0].Text != "now" && h[2].Text != "now" {
		t.Errorf("history after recovery = %+v, want both questions, each marked interrupted", h)
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

// sharedHandle sends text from author in a shared conversation.
func (r *rig) sharedHandle(author sessions.Author, text string, rep sessions.Reply) *sessions.Turn {
	r.t.Helper()
	turn, err := r.m.Handle(r.t.Context(), sessions.Message{Key: key, Author: author, Text: text, Shared: true}, rep)
	if err != nil {
		r.t.Fatalf("Handle(%q): %v", text, err)
	}
	return turn
}

func TestManager_Parallel(t *testing.T) {
	r := newRig(t, sessions.Config{Parallel: 3})
	release := make(chan struct{})
	var started atomic.Int32
	r.up.SetScriptFunc(func(req llmtest.Request) llmtest.Script {
		q := req.Messages[len(req.Messages)-1].Content
		return llmtest.Script{Content: []string{"re: ", q}, Sent: func(n, _ int) {
			if n == 0 {
				started.Add(1)
				<-release
			}
		}}
	})
	people := []sessions.Author{{ID: "1", Name: "Ann"}, {ID: "2", Name: "Bo"}, {ID: "3", Name: "Cy"}, {ID: "4", Name: "Di"}}
	var turns []*sessions.Turn
	reps := make([]*reply, 5)
	for i, who := range append(people, people[0]) {
		reps[i] = &reply{}
		turns = append(turns, r.sharedHandle(who, fmt.Sprintf("q%d", i), reps[i]))
	}
	// Three answers run side by side; Di waits, and so does Ann's second
	// question behind her first.
	waitUntil(t, func() bool { return started.Load() == 3 }, func() string { return fmt.Sprintf("%d answers started", started.Load()) })
	for _, i := range []int{3, 4} {
		waitUntil(t, func() bool { return strings.Contains(reps[i].last().Status, "Queued") },
			func() string { return fmt.Sprintf("reply %d shows %+v", i, reps[i].last()) })
	}
	// Di stops only her own (none running: nothing); Bo stops his.
	if r.m.Stop(key, "4") {
		t.Error("Stop by someone with no answer running stopped one")
	}
	if !r.m.Stop(key, "2") {
		t.Error("Stop by Bo stopped nothing")
	}
	close(release)
	for _, turn := range turns {
		wait(t, turn)
	}
	if _, status, _ := turns[1].Result(); status != "stopped" {
		t.Errorf("Bo's answer ended %q, want stopped", status)
	}
	for _, i := range []int{0, 2, 3, 4} {
		if answer, _, _ := turns[i].Result(); !strings.HasSuffix(answer, fmt.Sprintf("q%d", i)) {
			t.Errorf("answer %d = %q, want it to its own question", i, answer)
		}
	}
	// Each question enters the history with its answer, in pairs.
	h, _ := r.store.History(t.Context(), key, 0)
	if len(h) != 10 {
		t.Fatalf("history has %d entries, want 5 questions and 5 answers", len(h))
	}
	for i := 0; i < len(h); i += 2 {
		q, a := h[i], h[i+1]
		if q.Role != llm.RoleUser || a.Role != llm.RoleAssistant || !strings.HasSuffix(a.Text, q.Text) && a.Status == "" {
			t.Errorf("history %d: %q then %q, want a question and its answer", i, q.Text, a.Text)
		}
	}
	// Ann's questions are in order.
	var ann []string
	for _, e := range h {
		if e.AuthorID == "1" {
			ann = append(ann, e.Text)
		}
	}
	if strings.Join(ann, ",") != "q0,q4" {
		t.Errorf("Ann's questions in the history: %q, want in order", ann)
	}
	// Concurrent questions do not see each other: each prompt ends with its
	// own question after finished turns only.
	for _, req := range r.up.Requests() {
		if !strings.HasSuffix(req.Path, "/chat/completions") {
			continue
		}
		msgs := req.Request.Messages
		for _, m := range msgs[:len(msgs)-1] {
			if m.Role == llm.RoleUser && len(msgs) > 1 && m.Content == msgs[len(msgs)-1].Content {
				t.Errorf("a prompt holds its question twice: %+v", msgs)
			}
		}
	}
}

func TestManager_QueueBound(t *testing.T) {
	r := newRig(t, sessions.Config{Parallel: 1, Queue: 2})
	release := r.holdAt(0, "slow")
	var turns []*sessions.Turn
	for i := range 3 {
		turns = append(turns, r.sharedHandle(sessions.Author{ID: fmt.Sprint(i)}, fmt.Sprint("q", i), &reply{}))
	}
	_, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: sessions.Author{ID: "9"}, Text: "one too many", Shared: true}, &reply{})
	if !errors.Is(err, sessions.ErrBusy) || !strings.Contains(sessions.Explain(err), "2 questions are waiting") {
		t.Errorf("past the queue: %v (%q), want ErrBusy", err, sessions.Explain(err))
	}
	close(release)
	for _, turn := range turns {
		wait(t, turn)
	}
}

// paced is an in-memory reply at a destination with an interval.
type pacedReply struct {
	reply
	interval time.Duration
}

func (r *pacedReply) Destination() sessions.Destination {
	return sessions.Destination{ID: "paced", Interval: r.interval}
}

func TestManager_QueueFull_OneNoticeForMany(t *testing.T) {
	r := newRig(t, sessions.Config{Parallel: 1, Queue: 1})
	release := r.holdAt(0, "slow")
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	running := r.sharedHandle(sessions.Author{ID: "0", Name: "Ann"}, "q0", &pacedReply{interval: 200 * time.Millisecond})
	waiting := r.sharedHandle(sessions.Author{ID: "1", Name: "Bo"}, "q1", &pacedReply{interval: 200 * time.Millisecond})
	// The first refusal goes out at once; the next ones join the notice
	// waiting for the destination's next request.
	names := []string{"Cy", "Di", "Ed", "Flo"}
	reps := make([]*pacedReply, len(names))
	for i, n := range names {
		reps[i] = &pacedReply{interval: 200 * time.Millisecond}
		_, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: sessions.Author{ID: n, Name: n}, Text: "me too", Shared: true}, reps[i])
		if !errors.Is(err, sessions.ErrBusy) || !sessions.Silent(err) {
			t.Fatalf("%s: %v, want a refusal the Manager shows itself", n, err)
		}
	}
	// Every name is told, in fewer messages than names.
	shown := func() (notices int, all string) {
		for _, rep := range reps {
			if v := rep.all(); len(v) > 0 {
				notices += len(v)
				all += v[len(v)-1].Status
			}
		}
		return notices, all
	}
	waitUntil(t, func() bool {
		_, all := shown()
		return strings.Contains(all, "Cy") && strings.Contains(all, "Di") && strings.Contains(all, "Ed") && strings.Contains(all, "Flo")
	}, func() string { n, all := shown(); return fmt.Sprintf("%d notices: %q", n, all) })
	if n, all := shown(); n >= len(names) || !strings.Contains(all, "waiting here already") {
		t.Errorf("%d notices for %d people turned away (%q), want fewer", n, len(names), all)
	}
	once.Do(func() { close(release) })
	wait(t, running)
	wait(t, waiting)
}

// failingReply is a reply the platform refuses to show.
type failingReply struct{}

func (failingReply) Destination() sessions.Destination { return sessions.Destination{ID: "test"} }
func (failingReply) Show(context.Context, sessions.View) (int, error) {
	return 1, errors.New("platform unreachable")
}

// An interrupted answer whose final view cannot be shown (the platform
// refused, or the process died right after the commit) keeps a record of
// that view: the next Recover shows it, and the history gets the
// interrupted answer once.
func TestManager_Recover_ShowFails(t *testing.T) {
	r := newRig(t, sessions.Config{})
	q := sessions.Entry{Role: llm.RoleUser, MsgID: "5", Text: "q", Time: time.Now()}
	start := sessions.Progress{Destination: "test", Reply: []byte(`{"id":7}`), Shown: sessions.View{Content: "half"}}
	if err := r.store.Commit(t.Context(), key, sessions.Commit{Entries: []sessions.Entry{q}, ProgressID: 3, Progress: &start}); err != nil {
		t.Fatal(err)
	}
	r.restart()
	err := r.m.Recover(t.Context(), key.Platform, func(sessions.Progress) (sessions.Reply, error) { return failingReply{}, nil })
	if err == nil {
		t.Error("Recover with the view refused = nil, want the platform's error")
	}
	ps, _ := r.store.Progresses(t.Context())
	if len(ps) != 1 || !ps[0].Committed || !ps[0].Shown.Final || ps[0].Shown.Content != "half" || !strings.Contains(ps[0].Shown.Status, "Interrupted") {
		t.Fatalf("records after the refused view: %+v, want the interrupted final view still owed", ps)
	}
	shown := &reply{}
	if err := r.m.Recover(t.Context(), key.Platform, func(sessions.Progress) (sessions.Reply, error) { return shown, nil }); err != nil {
		t.Fatal(err)
	}
	if v := shown.last(); !v.Final || v.Content != "half" || !strings.Contains(v.Status, "Interrupted") {
		t.Errorf("shown on the next Recover: %+v, want the interrupted final view", v)
	}
	h, _ := r.store.History(t.Context(), key, 0)
	if len(h) != 2 || h[1].Status != "interrupted" || h[1].Text != "half" {
		t.Errorf("history %+v, want the question and one interrupted answer", h)
	}
	if ps, _ := r.store.Progresses(t.Context()); len(ps) != 0 {
		t.Errorf("records left: %+v", ps)
	}
}
