package etcdstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// Two processes handed one Discord message at once (two connections of a
// shard while it moves between them) accept it once: the transactions
// compare the conversation's record of recent messages, and the one that
// lost prepares again and finds the message in it. A process holding the
// conversation's claim keeps its history: the other's commits are refused
// (ErrNotOwner), but either may record the message as queued (its turn
// then waits for the claim), once.
func TestStore_Duplicate_TwoProcesses(t *testing.T) {
	cfg := testConfig(t)
	a := member(t, cfg, "a")
	b := member(t, cfg, "b")
	ctx := t.Context()
	question := func(id int) sessions.Entry {
		return sessions.Entry{Role: llm.RoleUser, MsgID: fmt.Sprint(1_300_000_000_000_000_000 + id), Unordered: true, Text: "hi"}
	}
	tests := []struct {
		name    string
		claimed bool // a holds the conversation
	}{{"Free", false}, {"Claimed", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := sessions.Key{Platform: "discord", Chat: tt.name}
			if tt.claimed {
				_, release, err := a.Claim(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(release)
			}
			for msg := range 5 {
				const writers = 6
				errs := make([]error, writers)
				var wg sync.WaitGroup
				for i := range writers {
					s := []*Store{a, b}[i%2]
					wg.Go(func() {
						if i < 2 {
							errs[i] = s.SetQueued(ctx, sessions.Queued{Key: key, ID: uint64(100*msg + i + 1), Question: question(msg)})
						} else {
							errs[i] = s.Commit(ctx, key, sessions.Commit{Entries: []sessions.Entry{question(msg)}})
						}
					})
				}
				wg.Wait()
				accepted := 0
				for i, err := range errs {
					switch {
					case err == nil:
						accepted++
						if tt.claimed && i%2 == 1 && i >= 2 {
							t.Errorf("message %d: B committed it while A holds the conversation", msg)
						}
					case errors.Is(err, sessions.ErrDuplicate), tt.claimed && errors.Is(err, sessions.ErrNotOwner):
					default:
						t.Errorf("message %d, writer %d: %v", msg, i, err)
					}
				}
				if accepted != 1 {
					t.Errorf("message %d accepted %d times (%v), want once", msg, accepted, errs)
				}
			}
		})
	}
}
