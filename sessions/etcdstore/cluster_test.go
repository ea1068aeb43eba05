package etcdstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// member opens a store of cfg as member id.
func member(t *testing.T, cfg Config, id string) *Store {
	t.Helper()
	cfg.Member = id
	return mustOpen(t, cfg)
}

// leadResult is what a Lead call returned.
type leadResult struct {
	ctx context.Context
	err error
}

func lead(ctx context.Context, s *Store, name, addr string) <-chan leadResult {
	ch := make(chan leadResult, 1)
	go func() {
		lctx, err := s.Lead(ctx, name, addr)
		ch <- leadResult{lctx, err}
	}()
	return ch
}

func waitLead(t *testing.T, ch <-chan leadResult, who string) context.Context {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: Lead: %v", who, r.err)
		}
		return r.ctx
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: never led", who)
	}
	return nil
}

func leaderAddr(t *testing.T, s *Store) string {
	t.Helper()
	addr, err := s.LeaderAddr(t.Context(), "telegram")
	if err != nil {
		t.Fatalf("LeaderAddr: %v", err)
	}
	return addr
}

func TestStore_Lead_Failover(t *testing.T) {
	cfg := testConfig(t)
	a := member(t, cfg, "a")
	b := member(t, cfg, "b")
	ctx := t.Context()
	if got := leaderAddr(t, b); got != "" {
		t.Errorf("LeaderAddr before any leader = %q, want \"\"", got)
	}

	actx := waitLead(t, lead(ctx, a, "telegram", "http://a"), "A")
	if got := leaderAddr(t, b); got != "http://a" {
		t.Errorf("LeaderAddr = %q, want http://a", got)
	}
	if r := a.Role(); !slices.Equal(r.Leading, []string{"telegram"}) || r.Member != "a" || r.Lease == "" {
		t.Errorf("A's role = %+v, want leading telegram", r)
	}
	if _, err := a.Lead(ctx, "telegram", "again"); err == nil {
		t.Error("A: a second Lead of the same name succeeded")
	}
	bch := lead(ctx, b, "telegram", "http://b")
	if got := b.Role(); len(got.Leading) != 0 {
		t.Errorf("B's role while campaigning = %+v, want leading nothing", got)
	}

	// A's lease goes (a crash, or a partition longer than Failover): B
	// leads, and A's leadership context ends.
	revoke(t, a)
	waitClosed(t, actx.Done(), "A's leadership ended")
	bctx := waitLead(t, bch, "B")
	if got := leaderAddr(t, a); got != "http://b" {
		t.Errorf("LeaderAddr after the failover = %q, want http://b", got)
	}

	// A campaigns again on its new session; B closes (a redeploy): A leads.
	ach := lead(ctx, a, "telegram", "http://a2")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, bctx.Done(), "B's leadership ended")
	waitLead(t, ach, "A")
	if got := leaderAddr(t, a); got != "http://a2" {
		t.Errorf("LeaderAddr = %q, want http://a2", got)
	}

	// Ending the context resigns.
	c := member(t, cfg, "c")
	cch := lead(ctx, c, "telegram", "http://c")
	lctx, cancel := context.WithCancel(ctx)
	a2 := member(t, cfg, "d")
	dctx := waitLead(t, lead(lctx, a2, "other", "http://d"), "D")
	cancel()
	waitClosed(t, dctx.Done(), "D's leadership ended with its context")
	select {
	case r := <-cch:
		t.Fatalf("C led telegram while A leads: %+v", r)
	default:
	}
}

// shardTracker checks the invariant of Watch across members: no shard is
// reported by two members at once.
type shardTracker struct {
	t       *testing.T
	total   int
	mu      sync.Mutex
	sets    map[string][]int
	stopped map[string]bool
	change  chan struct{}
}

func newShardTracker(t *testing.T, total int) *shardTracker {
	return &shardTracker{t: t, total: total, sets: make(map[string][]int), stopped: make(map[string]bool), change: make(chan struct{}, 1)}
}

// run receives s's sets until the channel closes, acting as a gateway
// manager: a shard that left the set is closed, then dropped.
func (tr *shardTracker) run(ctx context.Context, s *Store, id string) {
	ch, err := s.Watch(ctx, tr.total)
	if err != nil {
		tr.t.Errorf("%s: Watch: %v", id, err)
		return
	}
	go func() {
		for set := range ch {
			tr.mu.Lock()
			if tr.stopped[id] {
				tr.mu.Unlock()
				continue
			}
			old := tr.sets[id]
			tr.sets[id] = set
			for other, os := range tr.sets {
				for _, n := range set {
					if other != id && slices.Contains(os, n) {
						tr.t.Errorf("shard %d reported by %s and %s at once", n, id, other)
					}
				}
			}
			tr.mu.Unlock()
			for _, n := range old {
				if !slices.Contains(set, n) {
					if err := s.Drop(ctx, n); err != nil && ctx.Err() == nil {
						tr.t.Errorf("%s: Drop(%d): %v", id, n, err)
					}
				}
			}
			select {
			case tr.change <- struct{}{}:
			default:
			}
		}
	}()
}

// stop forgets id's set: the process stopped its gateways.
func (tr *shardTracker) stop(id string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	delete(tr.sets, id)
	tr.stopped[id] = true
}

// waitFor waits until the members report exactly want.
func (tr *shardTracker) waitFor(want map[string][]int) {
	tr.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		tr.mu.Lock()
		got := maps.Clone(tr.sets)
		tr.mu.Unlock()
		if maps.EqualFunc(got, want, slices.Equal[[]int]) {
			return
		}
		select {
		case <-tr.change:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			tr.t.Fatalf("shards = %v, want %v", got, want)
		}
	}
}

func TestStore_Shards_Rebalance(t *testing.T) {
	const total = 6
	cfg := testConfig(t)
	ctx := t.Context()
	tr := newShardTracker(t, total)

	a := member(t, cfg, "a")
	tr.run(ctx, a, "a")
	tr.waitFor(map[string][]int{"a": {0, 1, 2, 3, 4, 5}})
	if r := a.Role(); r.ShardTotal != total || len(r.Shards) != total {
		t.Errorf("A's role = %+v, want all %d shards", r, total)
	}

	b := member(t, cfg, "b")
	tr.run(ctx, b, "b")
	tr.waitFor(map[string][]int{"a": {0, 2, 4}, "b": {1, 3, 5}})

	c := member(t, cfg, "c")
	tr.run(ctx, c, "c")
	tr.waitFor(map[string][]int{"a": {0, 3}, "b": {1, 4}, "c": {2, 5}})

	// B stops (its gateways with it): its shards go to the others.
	tr.stop("b")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tr.waitFor(map[string][]int{"a": {0, 2, 4}, "c": {1, 3, 5}})

	if _, err := a.Watch(ctx, total); err == nil {
		t.Error("a second Watch succeeded")
	}
	if _, err := a.Watch(ctx, 0); err == nil {
		t.Error("Watch of 0 shards succeeded")
	}
}

// TestStore_Shards_LeaseLost checks that a member that gives its lease up
// (as its watchdog does when keep-alives stop getting through) reports no
// shard at once, that no other member runs its shards before that lease
// expires, and that it takes its share again on a new lease.
func TestStore_Shards_LeaseLost(t *testing.T) {
	const total = 4
	cfg := testConfig(t)
	ctx := t.Context()
	tr := newShardTracker(t, total)
	a := member(t, cfg, "a")
	b := member(t, cfg, "b")
	tr.run(ctx, a, "a")
	tr.run(ctx, b, "b")
	tr.waitFor(map[string][]int{"a": {0, 2}, "b": {1, 3}})
	old := a.Role().Lease
	a.sessMu.Lock()
	ss := a.sess
	a.sessMu.Unlock()
	ss.cs.Orphan() // no more keep-alives: the lease expires after Failover
	// A is away until its new session; then the split is as before.
	waitFor(t, "A has a new lease", func() bool { l := a.Role().Lease; return l != "" && l != old })
	tr.waitFor(map[string][]int{"a": {0, 2}, "b": {1, 3}})
	if err := a.Drop(ctx, 99); err != nil {
		t.Errorf("Drop of a shard not held = %v", err)
	}
}

func TestStore_Identify(t *testing.T) {
	cfg := testConfig(t)
	a := member(t, cfg, "a")
	b := member(t, cfg, "b")
	cli := cluster.Client(t)
	ctx := t.Context()
	marker := cfg.Prefix + "identify-last/0"

	release, err := a.Identify(ctx, 4, 2) // bucket 0
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, marker)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("marker after an identify = %v, %v", resp, err)
	}
	first := clientv3.LeaseID(resp.Kvs[0].Lease)
	if ttl, err := cli.TimeToLive(ctx, first); err != nil || ttl.GrantedTTL != int64(IdentifySpacing/time.Second) {
		t.Errorf("marker lease = %+v, %v; want a TTL of %v", ttl, err, IdentifySpacing)
	}
	release()

	// Another bucket does not wait.
	rel1, err := b.Identify(ctx, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	rel1()

	// The same bucket waits for the mark to go: B holds the bucket's lock
	// and waits; it identifies once the mark's lease is gone.
	type result struct {
		release func()
		err     error
		revoked bool
	}
	var revoked sync.Mutex
	gone := false
	done := make(chan result, 1)
	go func() {
		rel, err := b.Identify(ctx, 2, 2)
		revoked.Lock()
		defer revoked.Unlock()
		done <- result{rel, err, gone}
	}()
	waitFor(t, "B holds bucket 0's lock", func() bool {
		resp, err := cli.Get(ctx, cfg.Prefix+"identify/0/", clientv3.WithFirstCreate()...)
		return err == nil && len(resp.Kvs) == 1 && fmt.Sprintf("%x", resp.Kvs[0].Lease) == b.Role().Lease
	})
	select {
	case r := <-done:
		t.Fatalf("B identified while the mark is there: %+v", r)
	default:
	}
	revoked.Lock()
	gone = true
	revoked.Unlock()
	if _, err := cli.Revoke(ctx, first); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || !r.revoked {
			t.Fatalf("B's Identify = %+v; want it to return after the mark expired", r)
		}
		r.release()
	case <-time.After(30 * time.Second):
		t.Fatal("B never identified")
	}
	resp, err = cli.Get(ctx, marker)
	if err != nil || len(resp.Kvs) != 1 || clientv3.LeaseID(resp.Kvs[0].Lease) == first {
		t.Errorf("marker after B's identify = %v, %v; want B's", resp, err)
	}
	if _, err := a.Identify(ctx, 0, 0); err == nil {
		t.Error("Identify with a concurrency of 0 succeeded")
	}
}

// waitFor polls cond until it holds, failing t after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("%s: never", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestStore_Members(t *testing.T) {
	cfg := testConfig(t)
	cfg.Advertise = "http://10.0.0.1:8080"
	a := member(t, cfg, "a")
	cfg.Advertise = ""
	member(t, cfg, "b")
	ms, err := a.Members(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, fmt.Sprintf("%s %s %v", m.ID, m.Addr, m.Self))
		if m.Started.IsZero() {
			t.Errorf("member %s has no start time", m.ID)
		}
	}
	if want := []string{"a http://10.0.0.1:8080 true", "b  false"}; !slices.Equal(got, want) {
		t.Errorf("Members = %q, want %q", got, want)
	}
}

func TestPing(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	for name, ping := range map[string]func(context.Context) ([]Endpoint, error){
		"Store":   s.Ping,
		"Package": func(ctx context.Context) ([]Endpoint, error) { return Ping(ctx, testConfig(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			eps, err := ping(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(eps) != 1 || eps[0].URL != cluster.Endpoints()[0] || eps[0].Err != nil || !eps[0].Leader || eps[0].Version == "" || eps[0].DBSize == 0 {
				t.Errorf("Ping = %+v, want the one member, leading", eps)
			}
		})
	}
	if _, err := Ping(t.Context(), Config{Endpoints: []string{"http://127.0.0.1:9"}, DialTimeout: 300 * time.Millisecond}); err == nil {
		t.Error("Ping of nothing succeeded")
	}
}
