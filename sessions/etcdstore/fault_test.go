package etcdstore

import (
	"errors"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore/etcdtest"
)

var turn = sessions.Commit{Entries: []sessions.Entry{{Role: llm.RoleUser, Text: "q"}, {Role: llm.RoleAssistant, Text: "a"}}}

// TestStore_ClusterDown checks that operations fail with errors, and
// nothing panics or hangs, once the cluster is gone.
func TestStore_ClusterDown(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cfg := Config{Endpoints: c.Endpoints(), Member: "m1", Failover: 2 * time.Second,
		DialTimeout: time.Second, RequestTimeout: 500 * time.Millisecond, Log: quiet}
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	lost, release, err := s.Claim(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := s.Commit(ctx, key, turn); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := s.Commit(ctx, key, turn); err == nil || errors.Is(err, sessions.ErrDuplicate) {
		t.Errorf("Commit with the cluster down = %v, want an error", err)
	}
	if _, err := s.History(ctx, key, 0); err == nil {
		t.Error("History with the cluster down succeeded")
	}
	if err := s.SetProgress(ctx, key, 1, &sessions.Progress{Destination: "d"}); err != nil {
		t.Errorf("SetProgress (written behind) = %v", err)
	}
	// The watchdog gives the lease up before the cluster could let it
	// expire: the claim is lost.
	waitClosed(t, lost, "the claim lost")
	if err := s.Close(); err == nil {
		t.Error("Close with the cluster down = nil, want the unwritten progress reported")
	}
}

// TestStore_ThreeMembers checks that the store goes on when one member
// of three stops.
func TestStore_ThreeMembers(t *testing.T) {
	c := etcdtest.Start(t, 3)
	s := mustOpen(t, Config{Endpoints: c.Endpoints(), Member: "m1", Failover: 2 * time.Second, DialTimeout: time.Second, Log: quiet})
	ctx := t.Context()
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	if err := s.Commit(ctx, key, turn); err != nil {
		t.Fatal(err)
	}
	eps, err := s.Ping(ctx)
	if err != nil || len(eps) != 3 {
		t.Fatalf("Ping = %+v, %v; want 3 members", eps, err)
	}
	c.Stop(0)
	if err := s.Commit(ctx, key, turn); err != nil {
		t.Fatalf("Commit with one member of three stopped: %v", err)
	}
	if h, err := s.History(ctx, key, 0); err != nil || len(h) != 4 {
		t.Errorf("History = %d entries, %v; want 4", len(h), err)
	}
	eps, err = s.Ping(ctx)
	if err != nil {
		t.Fatal(err)
	}
	down := 0
	for _, ep := range eps {
		if ep.Err != nil {
			down++
		}
	}
	if down != 1 {
		t.Errorf("Ping = %+v, want one member not answering", eps)
	}
}
