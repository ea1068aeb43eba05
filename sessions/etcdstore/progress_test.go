package etcdstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// TestStore_FlushRacesCommit checks that a progress record set to be
// written behind never comes back over the record a Commit wrote after
// it: here the answer is committed (its record saying so) just as the
// flush is about to lock the conversation. A restart would otherwise find
// the stale record and show the complete answer as interrupted.
func TestStore_FlushRacesCommit(t *testing.T) {
	cfg := testConfig(t)
	cfg.ProgressFlush = time.Hour // only the test flushes
	s := mustOpen(t, cfg)
	ctx := t.Context()
	key := sessions.Key{Platform: "discord", Chat: "7"}
	if err := s.SaveProgress(ctx, key, 1, sessions.Progress{Destination: "discord:7"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgress(ctx, key, 1, &sessions.Progress{Destination: "discord:7", Shown: sessions.View{Content: "A1"}}); err != nil {
		t.Fatal(err)
	}
	final := sessions.Progress{Destination: "discord:7", Committed: true, Shown: sessions.View{Content: "A1 complete", Final: true}}
	committed := false
	s.hooks.flushLocking = func() {
		s.hooks.flushLocking = nil
		c := sessions.Commit{Entries: []sessions.Entry{{Role: llm.RoleAssistant, Text: "A1 complete"}}, ProgressID: 1, Progress: &final}
		if err := s.Commit(ctx, key, c); err != nil {
			t.Errorf("Commit: %v", err)
		}
		committed = true
	}
	if err := s.flush(ctx, false); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if !committed {
		t.Fatal("the flush had nothing pending: the race was not run")
	}
	// What another process (or a restart) reads: etcd itself.
	name, err := keyName(key)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.cli.Get(ctx, s.turnKey("progress", name, 1))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("progress record in etcd: %v, %v", resp, err)
	}
	var got sessions.Progress
	if err := json.Unmarshal(resp.Kvs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Committed || got.Shown != final.Shown {
		t.Errorf("progress record in etcd = %+v, want the committed one %+v", got, final)
	}
}

// A record cleared after its final view was shown (SetProgress nil,
// written behind) is deleted even when another process claimed the
// conversation before the flush: it answers the next question there, and
// the record would otherwise stay, its view shown again by a Recover.
func TestStore_FlushClearsAfterRelease(t *testing.T) {
	cfg := testConfig(t)
	cfg.ProgressFlush = time.Hour // only the test flushes
	a := mustOpen(t, cfg)
	cfg.Member = "m2"
	b := mustOpen(t, cfg)
	ctx := t.Context()
	key := sessions.Key{Platform: "discord", Chat: "8"}
	_, release, err := a.Claim(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	final := sessions.Progress{Destination: "discord:8", Committed: true, Shown: sessions.View{Content: "done", Final: true}}
	if err := a.SaveProgress(ctx, key, 1, final); err != nil {
		t.Fatal(err)
	}
	if err := a.SetProgress(ctx, key, 1, nil); err != nil {
		t.Fatal(err)
	}
	release()
	_, releaseB, err := b.Claim(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseB()
	if err := a.flush(ctx, false); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if ps, err := b.Progresses(ctx); err != nil || len(ps) != 0 {
		t.Errorf("records after the flush: %+v, %v; want the cleared one deleted", ps, err)
	}
}
