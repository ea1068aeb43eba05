package sessions_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// goneReply is a reply whose message the user deletes after its first
// Show.
type goneReply struct {
	mu    sync.Mutex
	shows int
}

func (r *goneReply) Destination() sessions.Destination { return sessions.Destination{ID: "gone"} }

func (r *goneReply) Show(ctx context.Context, v sessions.View) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shows++
	if r.shows > 1 {
		return 1, fmt.Errorf("edit: %w", sessions.ErrReplyGone)
	}
	return 1, nil
}

func TestManager_DeletedReplyStopsAnswer(t *testing.T) {
	r := newRig(t, sessions.Config{})
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(strings.Repeat("word ", 500)), Interval: 20 * time.Millisecond})
	turn, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "long"}, &goneReply{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := r.up.WaitDisconnect(ctx); err != nil {
		t.Fatalf("upstream did not see the connection close: %v", err)
	}
	wait(t, turn)
	if _, status, _ := turn.Result(); status != "stopped" {
		t.Errorf("status = %q, want stopped", status)
	}
	h, err := r.store.History(t.Context(), key, 0)
	if err != nil || len(h) != 2 || h[1].Status != "stopped" {
		t.Fatalf("history = %+v, %v; want the question and the stopped answer", h, err)
	}
}

// TestManager_ThinkingClock shows that while the model reasons (hidden)
// and writes no content, the reply's status counts the seconds.
func TestManager_ThinkingClock(t *testing.T) {
	r := newRig(t, sessions.Config{Reasoning: sessions.ReasoningHidden})
	r.up.Enqueue(llmtest.Script{
		Reasoning: llmtest.Tokens(strings.Repeat("hmm ", 25)),
		Content:   []string{"done"},
		Interval:  100 * time.Millisecond,
	})
	rep, turn := r.ask(key, "think")
	if answer, _, _ := turn.Result(); answer != "done" {
		t.Fatalf("answer = %q, want done", answer)
	}
	thinking := false
	for _, v := range rep.all() {
		if strings.HasPrefix(v.Status, "💭 Thinking… ") && v.Status != "💭 Thinking… 0 s" {
			thinking = true
		}
		if v.Final && v.Status != "" {
			t.Errorf("final view has status %q, want none once the content came", v.Status)
		}
	}
	if !thinking {
		t.Errorf("no view counted the seconds of thinking: %+v", rep.all())
	}
}
