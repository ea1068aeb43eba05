package sessions_test

import (
	"errors"
	"testing"

	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// A Retry button regenerates the latest answer for its asker or an admin,
// and refuses a button under an older answer or someone else's press.
func TestManager_Regenerate(t *testing.T) {
	r := newRig(t, sessions.Config{})
	ask := func(id, author, text string) {
		t.Helper()
		rep := &reply{}
		turn, err := r.m.Handle(t.Context(), sessions.Message{Key: key, ID: id, Author: sessions.Author{ID: author, Name: author}, Text: text, Shared: true}, rep)
		if err != nil {
			t.Fatal(err)
		}
		wait(t, turn)
	}
	r.up.Enqueue(llmtest.Script{Content: []string{"one"}})
	ask("10", "alice", "first question")
	r.up.Enqueue(llmtest.Script{Content: []string{"two"}})
	ask("11", "alice", "second question")

	tests := []struct {
		name     string
		question string
		by       string
		admin    bool
		want     error
	}{
		{"OlderAnswer", "10", "alice", false, sessions.ErrNothingToRedo},
		{"SomeoneElse", "11", "bob", false, sessions.ErrNotYours},
		{"Admin", "11", "bob", true, nil},
		{"Asker", "11", "alice", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				r.up.Enqueue(llmtest.Script{Content: []string{"again " + tt.name}})
			}
			rep := &reply{}
			turn, err := r.m.Regenerate(t.Context(), key, tt.question, sessions.Author{ID: tt.by}, tt.admin, rep)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Regenerate = %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			wait(t, turn)
			h, _ := r.store.History(t.Context(), key, 0)
			if len(h) != 4 || h[2].Text != "second question" || h[3].Text != "again "+tt.name {
				t.Fatalf("history after regenerating = %+v", h)
			}
		})
	}
}
