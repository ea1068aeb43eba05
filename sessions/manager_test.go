package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// reply is an in-memory sessions.Reply with no rate limit.
type reply struct {
	mu    sync.Mutex
	views []sessions.View
}

func (r *reply) Destination() sessions.Destination { return sessions.Destination{ID: "test"} }

func (r *reply) Show(ctx context.Context, v sessions.View) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.views = append(r.views, v)
	return 1, nil
}

func (r *reply) last() sessions.View {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.views) == 0 {
		return sessions.View{}
	}
	return r.views[len(r.views)-1]
}

func (r *reply) all() []sessions.View {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sessions.View(nil), r.views...)
}

// rig is a Manager on a real bbolt file and an llmtest upstream.
type rig struct {
	t     *testing.T
	up    *llmtest.Server
	path  string
	store *sessions.BoltStore
	m     *sessions.Manager
	cfg   sessions.Config
}

func newRig(t *testing.T, cfg sessions.Config) *rig {
	t.Helper()
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	if cfg.DefaultModel == "" {
		cfg.DefaultModel = "fake/echo"
	}
	r := &rig{t: t, up: up, path: filepath.Join(t.TempDir(), "palaver.db"), cfg: cfg}
	r.open()
	t.Cleanup(r.close)
	return r
}

func (r *rig) open() {
	r.t.Helper()
	store, err := sessions.OpenBolt(r.path, sessions.BoltOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	client := llm.NewClient(r.up.Provider("fake"), llm.Options{})
	router, err := llm.NewRouter([]*llm.Client{client}, "fake", map[string]string{"r1": "fake/deepseek-ai/DeepSeek-R1-0528-Turbo"})
	if err != nil {
		r.t.Fatal(err)
	}
	r.store = store
	r.m = sessions.NewManager(r.cfg, store, router, nil, nil)
}

func (r *rig) close() {
	if r.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.m.Close(ctx)
	r.store.Close()
	r.m = nil
}

func (r *rig) restart() {
	r.close()
	r.open()
}

var alice = sessions.Author{ID: "1", Name: "Alice"}

// ask sends text and waits for the answer.
func (r *rig) ask(key sessions.Key, text string) (*reply, *sessions.Turn) {
	r.t.Helper()
	rep := &reply{}
	turn, err := r.m.Handle(r.t.Context(), sessions.Message{Key: key, Author: alice, Text: text}, rep)
	if err != nil {
		r.t.Fatalf("Handle(%q): %v", text, err)
	}
	wait(r.t, turn)
	return rep, turn
}

func wait(t *testing.T, turn *sessions.Turn) {
	t.Helper()
	select {
	case <-turn.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("turn did not finish")
	}
}

func (r *rig) lastRequest() llmtest.Request {
	reqs := r.up.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if strings.HasSuffix(reqs[i].Path, "/chat/completions") {
			return reqs[i].Request
		}
	}
	r.t.Fatal("no chat request")
	return llmtest.Request{}
}

var key = sessions.Key{Platform: "test", Chat: "42"}

func TestManager_HistorySentOnSecondTurn(t *testing.T) {
	r := newRig(t, sessions.Config{SystemPrompt: "You are {model} on {platform}."})
	rep, _ := r.ask(key, "hello")
	if got := rep.last(); got.Content != "echo: hello" || !got.Final {
		t.Fatalf("first answer = %+v", got)
	}
	r.ask(key, "again")
	req := r.lastRequest()
	var roles, texts []string
	for _, m := range req.Messages {
		roles = append(roles, m.Role)
		texts = append(texts, m.Content)
	}
	if got, want := strings.Join(roles, ","), "system,user,assistant,user"; got != want {
		t.Fatalf("roles = %s, want %s", got, want)
	}
	if texts[0] != "You are fake/echo on test." {
		t.Errorf("system prompt = %q, placeholders not filled", texts[0])
	}
	if texts[2] != "echo: hello" || texts[3] != "again" {
		t.Errorf("history = %q", texts)
	}
}

func TestManager_ModelSwitchSurvivesRestart(t *testing.T) {
	r := newRig(t, sessions.Config{})
	got, err := r.m.SetModel(t.Context(), key, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "fake/deepseek-ai/DeepSeek-R1-0528-Turbo"; got != want {
		t.Fatalf("SetModel(r1) = %q, want %q", got, want)
	}
	r.ask(key, "one")
	if m := r.lastRequest().Model; m != "deepseek-ai/DeepSeek-R1-0528-Turbo" {
		t.Fatalf("upstream model = %q", m)
	}
	r.restart()
	r.ask(key, "two")
	req := r.lastRequest()
	if req.Model != "deepseek-ai/DeepSeek-R1-0528-Turbo" {
		t.Errorf("after restart upstream model = %q", req.Model)
	}
	if n := len(req.Messages); n != 3 { // one + answer + two
		t.Errorf("after restart %d messages sent, want 3 (history kept)", n)
	}
}

func TestManager_SetModel_Errors(t *testing.T) {
	r := newRig(t, sessions.Config{Allowed: []string{"fake/echo", "fake/deepseek-ai/DeepSeek-V3-0324-Turbo"}})
	tests := []struct {
		name, input, want string
	}{
		{"NotAllowed", "fake/deepseek-ai/DeepSeek-R1-0528-Turbo", "not available"},
		{"CloseMatch", "fake/ech", "fake/echo"},
		{"Empty", " ", "Name a model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.m.SetModel(t.Context(), key, tt.input)
			if tt.name == "CloseMatch" {
				// A fragment that matches one model is taken.
				if err != nil {
					t.Fatalf("SetModel(%q): %v", tt.input, err)
				}
				return
			}
			if !errors.Is(err, sessions.ErrUnknownModel) || !strings.Contains(sessions.Explain(err), tt.want) {
				t.Fatalf("SetModel(%q) = %v, want ErrUnknownModel mentioning %q", tt.input, err, tt.want)
			}
		})
	}
	_, err := r.m.SetModel(t.Context(), key, "deepseek-v4")
	if msg := sessions.Explain(err); !strings.Contains(msg, "Did you mean") {
		t.Errorf("suggestion message = %q, want close matches", msg)
	}
}

func TestManager_BadInput(t *testing.T) {
	r := newRig(t, sessions.Config{MaxMessage: 100, MaxSystemPrompt: 10})
	tests := []struct {
		name string
		text string
		want error
	}{
		{"Empty", "", sessions.ErrEmpty},
		{"Whitespace", " \n\t ", sessions.ErrEmpty},
		{"TooLong", strings.Repeat("x", 101), sessions.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: tt.text}, &reply{})
			if !errors.Is(err, tt.want) || sessions.Explain(err) == "" {
				t.Fatalf("Handle = %v, want %v with an explanation", err, tt.want)
			}
		})
	}
	t.Run("InvalidUTF8", func(t *testing.T) {
		rep, _ := r.ask(key, "bad \xff byte")
		if got := rep.last().Content; got != "echo: bad \uFFFD byte" {
			t.Fatalf("answer = %q", got)
		}
	})
	t.Run("SystemPromptTooLong", func(t *testing.T) {
		err := r.m.SetSystemPrompt(t.Context(), key, "far too long a prompt")
		if !errors.Is(err, sessions.ErrPromptTooLong) {
			t.Fatalf("SetSystemPrompt = %v", err)
		}
	})
	t.Run("OverContext", func(t *testing.T) {
		r := newRig(t, sessions.Config{ContextLength: 200, MaxTokens: 100})
		rep, turn := r.ask(key, strings.Repeat("word ", 200))
		if _, _, err := turn.Result(); !errors.Is(err, sessions.ErrTooLong) {
			t.Fatalf("turn error = %v, want ErrTooLong", err)
		}
		if got := rep.last(); !got.Final || !strings.Contains(got.Status, "too long") {
			t.Fatalf("final view = %+v", got)
		}
		if n := len(r.up.Requests()); n != 0 {
			for _, q := range r.up.Requests() {
				if strings.HasSuffix(q.Path, "/chat/completions") {
					t.Fatal("an over-long message was sent upstream")
				}
			}
		}
	})
}

func TestManager_QueueAndBusy(t *testing.T) {
	r := newRig(t, sessions.Config{Queue: 1})
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("slow answer here"), Interval: 100 * time.Millisecond})
	first := &reply{}
	t1, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "one"}, first)
	if err != nil {
		t.Fatal(err)
	}
	second := &reply{}
	t2, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "two"}, second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "three"}, &reply{})
	if !errors.Is(err, sessions.ErrBusy) {
		t.Fatalf("third message: err = %v, want ErrBusy", err)
	}
	wait(t, t1)
	wait(t, t2)
	if got := first.last().Content; got != "slow answer here" {
		t.Errorf("first answer = %q", got)
	}
	views := second.all()
	if !strings.Contains(views[0].Status, "Queued") {
		t.Errorf("second reply first view = %+v, want a queued note", views[0])
	}
	if got := second.last().Content; got != "echo: two" {
		t.Errorf("second answer = %q", got)
	}
}

func TestManager_StopClosesUpstream(t *testing.T) {
	r := newRig(t, sessions.Config{})
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(strings.Repeat("word ", 500)), Interval: 20 * time.Millisecond})
	rep := &reply{}
	turn, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "long"}, rep)
	if err != nil {
		t.Fatal(err)
	}
	for rep.last().Content == "" {
		time.Sleep(5 * time.Millisecond)
	}
	if !r.m.Stop(key, "") {
		t.Fatal("Stop found no answer")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := r.up.WaitDisconnect(ctx); err != nil {
		t.Fatalf("upstream did not see the connection close: %v", err)
	}
	wait(t, turn)
	got := rep.last()
	if got.Status != "(stopped)" || got.Content == "" || !got.Final {
		t.Fatalf("final view = %+v, want partial text and (stopped)", got)
	}
	if _, status, _ := turn.Result(); status != "stopped" {
		t.Errorf("status = %q", status)
	}
}

func TestManager_UpstreamFailureKeepsPartial(t *testing.T) {
	tests := []struct {
		name   string
		script llmtest.Script
		want   string
	}{
		{"MidStreamError", llmtest.Script{Content: []string{"partial ", "answer"}, Fail: llmtest.FailErrorChunk, FailAfter: 2, FailMessage: "model overloaded"}, "model overloaded"},
		{"Dropped", llmtest.Script{Content: []string{"partial ", "answer"}, Fail: llmtest.FailDrop, FailAfter: 2}, "broke off"},
		{"Refused", llmtest.Script{Status: 401, Body: `{"error":{"message":"Invalid API key"}}`}, "refused the API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, sessions.Config{})
			r.up.Enqueue(tt.script)
			rep, turn := r.ask(key, "hi")
			got := rep.last()
			if !got.Final || !strings.Contains(got.Status, tt.want) {
				t.Fatalf("final view = %+v, want a note containing %q", got, tt.want)
			}
			if tt.script.Status == 0 && got.Content != "partial answer" {
				t.Errorf("partial answer lost: %q", got.Content)
			}
			if _, status, _ := turn.Result(); status != "failed" {
				t.Errorf("status = %q, want failed", status)
			}
		})
	}
}

func TestManager_ReasoningNotSentBack(t *testing.T) {
	r := newRig(t, sessions.Config{Reasoning: sessions.ReasoningFull})
	r.up.Enqueue(llmtest.Script{Reasoning: llmtest.Tokens("let me think"), Content: llmtest.Tokens("answer")})
	rep, _ := r.ask(key, "q")
	if got := rep.last(); got.Reasoning != "let me think" || got.Content != "answer" {
		t.Fatalf("final view = %+v", got)
	}
	r.ask(key, "q2")
	for _, m := range r.lastRequest().Messages {
		if strings.Contains(m.Content, "let me think") {
			t.Fatal("reasoning was sent upstream")
		}
	}
}

func TestManager_SharedNames(t *testing.T) {
	r := newRig(t, sessions.Config{})
	rep := &reply{}
	turn, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "hi", Shared: true}, rep)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, turn)
	msgs := r.lastRequest().Messages
	if got := msgs[len(msgs)-1].Content; got != "Alice: hi" {
		t.Fatalf("shared message sent as %q, want the author's name", got)
	}
}

func TestManager_Retry(t *testing.T) {
	r := newRig(t, sessions.Config{})
	r.up.Enqueue(llmtest.Script{Content: []string{"first"}})
	r.ask(key, "question")
	r.up.Enqueue(llmtest.Script{Content: []string{"second"}})
	rep := &reply{}
	turn, err := r.m.Retry(t.Context(), key, rep)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, turn)
	if got := rep.last().Content; got != "second" {
		t.Fatalf("retry answer = %q", got)
	}
	msgs := r.lastRequest().Messages
	if last := msgs[len(msgs)-1]; last.Role != llm.RoleUser || last.Content != "question" {
		t.Fatalf("retry sent %+v last, want the question", last)
	}
	for _, m := range msgs {
		if m.Content == "first" {
			t.Fatal("the replaced answer was sent again")
		}
	}
	h, _ := r.store.History(t.Context(), key, 0)
	if len(h) != 2 || h[1].Text != "second" {
		t.Fatalf("history after retry = %+v", h)
	}
}

func TestManager_ResetAndSettings(t *testing.T) {
	r := newRig(t, sessions.Config{SystemPrompt: "default"})
	r.ask(key, "hello")
	if err := r.m.SetSystemPrompt(t.Context(), key, "be terse"); err != nil {
		t.Fatal(err)
	}
	if err := r.m.Reset(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	s, err := r.m.Settings(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if s.Messages != 0 || s.SystemPrompt != "be terse" || !s.CustomPrompt {
		t.Fatalf("after reset: %+v", s)
	}
	if !strings.Contains(s.Markdown(), "be terse") {
		t.Errorf("summary lacks the prompt: %s", s.Markdown())
	}
	r.ask(key, "again")
	msgs := r.lastRequest().Messages
	if len(msgs) != 2 || msgs[0].Content != "be terse" {
		t.Fatalf("after reset sent %+v", msgs)
	}
}

func TestManager_RecoverInterrupted(t *testing.T) {
	r := newRig(t, sessions.Config{})
	// A crash leaves a recorded answer in progress and the user's message.
	if err := r.store.Append(t.Context(), key, false, sessions.Entry{Role: llm.RoleUser, Text: "q", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := r.store.SetProgress(t.Context(), key, 0, &sessions.Progress{Destination: "test", Reply: []byte(`{"id":7}`), Shown: sessions.View{Content: "half an ans"}}); err != nil {
		t.Fatal(err)
	}
	r.restart()
	var got []sessions.Progress
	shown := &reply{}
	err := r.m.Recover(t.Context(), key.Platform, func(p sessions.Progress) (sessions.Reply, error) {
		got = append(got, p)
		return shown, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Reply) != `{"id":7}` || !got[0].Shown.Final || !strings.Contains(got[0].Shown.Status, "Interrupted") {
		t.Fatalf("recovered %+v", got)
	}
	if v := shown.last(); !v.Final || v.Content != "half an ans" || !strings.Contains(v.Status, "Interrupted") {
		t.Fatalf("recovered view shown = %+v", v)
	}
	if ps, _ := r.store.Progresses(t.Context()); len(ps) != 0 {
		t.Errorf("progress not cleared: %+v", ps)
	}
	h, _ := r.store.History(t.Context(), key, 0)
	if len(h) != 2 || h[1].Status != "interrupted" || h[1].Text != "half an ans" {
		t.Fatalf("history = %+v", h)
	}
	// And /retry answers the question again.
	rep := &reply{}
	turn, err := r.m.Retry(t.Context(), key, rep)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, turn)
	if got := rep.last().Content; got != "echo: q" {
		t.Fatalf("retry after recovery = %q", got)
	}
}

func TestManager_UserRate(t *testing.T) {
	r := newRig(t, sessions.Config{UserRate: 2, Queue: 5})
	for i := range 2 {
		if _, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "hi"}, &reply{}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	_, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "hi"}, &reply{})
	if !errors.Is(err, sessions.ErrRateLimited) || sessions.Silent(err) {
		t.Fatalf("third message: %v (silent %v), want ErrRateLimited, told", err, sessions.Silent(err))
	}
	// Told once: the next refusals need no sentence.
	for i := range 5 {
		_, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "hi"}, &reply{})
		if !errors.Is(err, sessions.ErrRateLimited) || !sessions.Silent(err) {
			t.Fatalf("refusal %d: %v (silent %v), want a silent ErrRateLimited", i+2, err, sessions.Silent(err))
		}
	}
}

// snapReply is a reply with a Snapshot naming it.
type snapReply struct {
	reply
	name string
}

func (r *snapReply) Snapshot() []byte { return []byte(r.name) }

// handle hands text to the Manager, to be shown on rep.
func (r *rig) handle(text string, rep sessions.Reply) *sessions.Turn {
	r.t.Helper()
	turn, err := r.m.Handle(r.t.Context(), sessions.Message{Key: key, Author: alice, Text: text}, rep)
	if err != nil {
		r.t.Fatalf("Handle(%q): %v", text, err)
	}
	return turn
}

// holdAt makes the next answer stream its tokens up to token i and then
// wait until the returned channel is closed.
func (r *rig) holdAt(i int, tokens ...string) chan struct{} {
	release := make(chan struct{})
	r.up.Enqueue(llmtest.Script{Content: tokens, Sent: func(n, _ int) {
		if n == i {
			<-release
		}
	}})
	return release
}

// waitUntil polls cond until it holds, failing after 10 s with what.
func waitUntil(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestManager_ProgressIsTheRunningTurns(t *testing.T) {
	r := newRig(t, sessions.Config{})
	release := r.holdAt(2, "first", " half", " second half")
	running := &snapReply{name: "running"}
	t1 := r.handle("one", running)
	queued := &snapReply{name: "queued"}
	t2 := r.handle("two", queued)
	waitUntil(t, func() bool { return running.last().Content != "" && queued.last().Status != "" },
		func() string { return fmt.Sprintf("running shows %+v, queued %+v", running.last(), queued.last()) })
	// A message queued while the answer streams shows its status after
	// the answer's last record.
	later := &snapReply{name: "queued later"}
	t3 := r.handle("three", later)
	waitUntil(t, func() bool { return later.last().Status != "" },
		func() string { return fmt.Sprintf("the third message shows %+v", later.last()) })
	ps, err := r.store.Progresses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || string(ps[0].Reply) != "running" {
		t.Errorf("progress records %+v, want the running turn's only", ps)
	}
	close(release)
	wait(t, t1)
	wait(t, t2)
	wait(t, t3)
}

func TestManager_QueuedMessageSurvivesRestart(t *testing.T) {
	r := newRig(t, sessions.Config{})
	release := r.holdAt(1, "slow", " answer")
	t1 := r.handle("one", &snapReply{name: "running"})
	t2 := r.handle("two", &snapReply{name: "queued"})
	// Recorded before Handle returned: each question waits in its record
	// until it enters the history with its answer.
	qs, err := r.store.QueuedMessages(t.Context())
	if err != nil || len(qs) != 2 || qs[0].Question.Text != "one" || qs[1].Question.Text != "two" || qs[1].Key != key {
		close(release)
		t.Fatalf("queued records %+v, %v; want both messages", qs, err)
	}
	close(release)
	wait(t, t1)
	wait(t, t2)
	if qs, _ := r.store.QueuedMessages(t.Context()); len(qs) != 0 {
		t.Errorf("queued records left after its turn: %+v", qs)
	}
	h, _ := r.store.History(t.Context(), key, 0)
	var texts []string
	for _, e := range h {
		texts = append(texts, e.Text)
	}
	if got := strings.Join(texts, "|"); got != "one|slow answer|two|echo: alice: two" && got != "one|slow answer|two|echo: two" {
		t.Errorf("history %q, want each question before its answer", got)
	}

	// A crash leaves a queued message: the next start puts it in the
	// history, tells its reply, and /retry answers it.
	if err := r.store.SetQueued(t.Context(), sessions.Queued{Key: key, ID: 9, Destination: "test", Reply: []byte("placeholder"),
		Question: sessions.Entry{Role: llm.RoleUser, Text: "three", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	r.restart()
	shown := &reply{}
	var restored []sessions.Progress
	if err := r.m.Recover(t.Context(), key.Platform, func(p sessions.Progress) (sessions.Reply, error) {
		restored = append(restored, p)
		return shown, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(restored) != 1 || string(restored[0].Reply) != "placeholder" {
		t.Fatalf("restored %+v, want the queued message's reply", restored)
	}
	if v := shown.last(); !v.Final || !strings.Contains(v.Status, "/retry") {
		t.Errorf("recovered reply shows %+v", v)
	}
	if qs, _ := r.store.QueuedMessages(t.Context()); len(qs) != 0 {
		t.Errorf("queued records left after recovery: %+v", qs)
	}
	rep := &reply{}
	turn, err := r.m.Retry(t.Context(), key, rep)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, turn)
	if got := rep.last().Content; !strings.HasSuffix(got, "three") {
		t.Errorf("retry after recovery answered %q, want the queued question", got)
	}
}
