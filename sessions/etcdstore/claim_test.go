package etcdstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// revoke revokes s's session lease on the cluster, as its expiry would
// (a process cut off for longer than Failover).
func revoke(t *testing.T, s *Store) {
	t.Helper()
	s.sessMu.Lock()
	ss := s.sess
	s.sessMu.Unlock()
	if ss == nil {
		t.Fatal("no session to revoke")
	}
	if _, err := cluster.Client(t).Revoke(t.Context(), ss.lease()); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
}

// waitClosed waits for ch to be closed, failing t after a generous bound
// (a bound on a hang, not a measure).
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: never happened", what)
	}
}

func TestStore_Claim_Fencing(t *testing.T) {
	a, b := openPair(t)
	ctx := t.Context()
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	turn := sessions.Commit{Entries: []sessions.Entry{{Role: llm.RoleUser, Text: "q"}, {Role: llm.RoleAssistant, Text: "a"}}}

	lost, release, err := a.Claim(ctx, key)
	if err != nil {
		t.Fatalf("A: Claim: %v", err)
	}
	defer release()
	if err := a.Commit(ctx, key, turn); err != nil {
		t.Fatalf("A: Commit under its claim: %v", err)
	}
	// B holds no claim: its write of a conversation A holds is refused.
	if err := b.Commit(ctx, key, turn); !errors.Is(err, sessions.ErrNotOwner) {
		t.Errorf("B: Commit of A's conversation = %v, want ErrNotOwner", err)
	}
	if _, ok, err := tryClaim(t, b, key); ok || err != nil {
		t.Errorf("B: TryClaim of A's conversation = %v, %v; want false, nil", ok, err)
	}

	revoke(t, a)
	waitClosed(t, lost, "A: lost closed")
	for name, write := range map[string]func() error{
		"Commit":       func() error { return a.Commit(ctx, key, turn) },
		"Append":       func() error { return a.Append(ctx, key, true, turn.Entries...) },
		"SaveSettings": func() error { return a.SaveSettings(ctx, key, sessions.Settings{Model: "p/m"}) },
		"Reset":        func() error { return a.Reset(ctx, key) },
		"SaveProgress": func() error { return a.SaveProgress(ctx, key, 1, sessions.Progress{Destination: "d"}) },
	} {
		if err := write(); !errors.Is(err, sessions.ErrNotOwner) {
			t.Errorf("A: %s after losing its claim = %v, want ErrNotOwner", name, err)
		}
	}
	// A user's message is recorded whichever process receives it, once:
	// its turn waits for the claim.
	q := sessions.Queued{Key: key, ID: 1, Question: sessions.Entry{Role: llm.RoleUser, MsgID: "5", Unordered: true, Text: "q"}}
	if err := a.SetQueued(ctx, q); err != nil {
		t.Errorf("A: SetQueued after losing its claim = %v, want it recorded", err)
	}
	q.ID = 2
	if err := b.SetQueued(ctx, q); !errors.Is(err, sessions.ErrDuplicate) {
		t.Errorf("B: SetQueued of the same message = %v, want ErrDuplicate", err)
	}
	if h, _ := b.History(ctx, key, 0); len(h) != 2 {
		t.Errorf("history = %d entries, want the 2 of A's first commit only", len(h))
	}

	// B can claim it now, and write; A still cannot.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, releaseB, err := b.Claim(cctx, key)
	if err != nil {
		t.Fatalf("B: Claim after A's lease was revoked: %v", err)
	}
	defer releaseB()
	if err := b.Commit(ctx, key, turn); err != nil {
		t.Errorf("B: Commit under its claim: %v", err)
	}
	if err := a.Commit(ctx, key, turn); !errors.Is(err, sessions.ErrNotOwner) {
		t.Errorf("A: Commit after B claimed = %v, want ErrNotOwner", err)
	}
	// A's write-behind progress of the conversation is not written either.
	if err := a.SetProgress(ctx, key, 7, &sessions.Progress{Destination: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := a.flush(ctx, true); err != nil {
		t.Fatal(err)
	}
	if ps, _ := b.Progresses(ctx); len(ps) != 0 {
		t.Errorf("B sees progress %+v, written by A without its claim", ps)
	}
	// Once A releases its lost claim, it writes as a process without one:
	// refused while B holds the conversation.
	release()
	if err := a.Commit(ctx, key, turn); !errors.Is(err, sessions.ErrNotOwner) {
		t.Errorf("A: Commit after releasing = %v, want ErrNotOwner", err)
	}
	releaseB()
	if err := a.Commit(ctx, key, turn); err != nil {
		t.Errorf("A: Commit of a conversation nobody holds = %v", err)
	}
}

func tryClaim(t *testing.T, s *Store, key sessions.Key) (func(), bool, error) {
	_, release, ok, err := s.TryClaim(t.Context(), key)
	return release, ok, err
}

func TestStore_Claim_Waits(t *testing.T) {
	a, b := openPair(t)
	ctx := t.Context()
	key := sessions.Key{Platform: "discord", Chat: "5", Thread: "6"}

	_, releaseA, err := a.Claim(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	got := make(chan bool, 1) // whether A had released when B's Claim returned
	go func() {
		_, releaseB, err := b.Claim(ctx, key)
		if err != nil {
			t.Errorf("B: Claim: %v", err)
			got <- false
			return
		}
		defer releaseB()
		select {
		case <-released:
			got <- true
		default:
			got <- false
		}
	}()
	// A second claim of this process waits too (the Manager claims once
	// per conversation; a second Claim is one more holder in line).
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := a.Claim(cctx, key); !errors.Is(err, context.Canceled) {
		t.Errorf("A: second Claim with a canceled context = %v, want context.Canceled", err)
	}
	close(released)
	releaseA()
	releaseA() // a second call does nothing
	select {
	case ok := <-got:
		if !ok {
			t.Error("B's Claim returned before A released")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("B's Claim never returned")
	}
}

func TestStore_Claim_InvalidKey(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	if _, _, err := s.Claim(t.Context(), sessions.Key{Platform: "telegram"}); err == nil {
		t.Error("Claim of an invalid key succeeded")
	}
}

// A write prepared while this process's own claim changed (a turn of the
// conversation began or ended in between, in this process) is prepared
// again under the claim it has now, not refused: no other process holds
// the conversation. One prepared while another process claimed it is
// refused.
func TestStore_Update_ClaimChangedMeanwhile(t *testing.T) {
	a, b := openPair(t)
	ctx := t.Context()
	key := sessions.Key{Platform: "discord", Chat: "1"}
	name := key.String()
	write := func(meanwhile func()) error {
		attempt := 0
		_, err := a.update(ctx, []string{name}, func(ctx context.Context, t *txn) error {
			if attempt++; attempt == 1 {
				meanwhile()
			}
			t.put(a.valueKey("x"), []byte("y"))
			return nil
		})
		return err
	}
	var release func()
	tests := []struct {
		name      string
		meanwhile func()
		err       error
	}{
		{"OK/Claimed", func() {
			var err error
			if _, release, err = a.Claim(ctx, key); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"OK/Released", func() { release() }, nil},
		{"ErrNotOwner/ClaimedByAnother", func() {
			if _, _, err := b.Claim(ctx, key); err != nil {
				t.Fatal(err)
			}
		}, sessions.ErrNotOwner},
	}
	for _, tt := range tests {
		if err := write(tt.meanwhile); !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
}

// A release passes its note (Leave) to the next claim of another process
// (Found, once), which deletes it; a note over MaxNote, or one found by
// the process that left it, is not passed on.
func TestStore_Claim_Handoff(t *testing.T) {
	a, b := openPair(t)
	ctx := t.Context()
	key := sessions.Key{Platform: "discord", Chat: "5"}
	pass := func(from, to *Store, note []byte) []byte {
		t.Helper()
		_, release, err := from.Claim(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		from.Leave(key, note)
		release()
		_, release, err = to.Claim(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		got := to.Found(key)
		if again := to.Found(key); again != nil {
			t.Errorf("Found a second time = %q, want nil", again)
		}
		return got
	}
	if got := pass(a, b, []byte("[5,900]")); string(got) != "[5,900]" {
		t.Errorf("note passed from m1 to m2 = %q, want [5,900]", got)
	}
	name, _ := keyName(key)
	if resp, err := a.cli.Get(ctx, a.handoffKey(name)); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("handoff key after the claim that took it: %v, %v; want it deleted", resp, err)
	}
	if got := pass(a, a, []byte("[1]")); got != nil {
		t.Errorf("own note found = %q, want nil", got)
	}
	if got := pass(a, b, make([]byte, MaxNote+1)); got != nil {
		t.Errorf("a note over MaxNote passed on (%d bytes)", len(got))
	}
}

// A note outlives the process that left it: one that stops right after
// its last answer still passes their requests on.
func TestStore_Claim_HandoffAfterClose(t *testing.T) {
	cfg := testConfig(t)
	a, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Member = "m2"
	b := mustOpen(t, cfg)
	ctx := t.Context()
	key := sessions.Key{Platform: "discord", Chat: "6"}
	_, release, err := a.Claim(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	a.Leave(key, []byte("[40]"))
	release()
	if err := a.Close(); err != nil { // its session lease revoked
		t.Fatal(err)
	}
	_, release, err = b.Claim(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := b.Found(key); string(got) != "[40]" {
		t.Errorf("note after its process stopped = %q, want [40]", got)
	}
}
