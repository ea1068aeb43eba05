package etcdstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
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

// shardTracker runs members' Watch as the Discord bot does (a shard that
// joins the set is opened and reported Ready, one that leaves it is
// closed, then Dropped) and checks the invariants across them: no shard is
// run by more than two members at once (one handing it over, one
// receiving it), and none is left to nobody while members move, which it
// counts (gaps).
type shardTracker struct {
	t       *testing.T
	total   int
	mu      sync.Mutex
	sets    map[string][]int
	running map[int]bool // shards some member ran since the start
	gaps    []string     // shards no member ran, by when
	change  chan struct{}
}

func newShardTracker(t *testing.T, total int) *shardTracker {
	return &shardTracker{t: t, total: total, sets: make(map[string][]int), running: make(map[int]bool), change: make(chan struct{}, 1)}
}

// run receives s's sets until the channel closes. A member made with
// noReady never reports a shard Ready, as a bot whose connections do not
// come up.
func (tr *shardTracker) run(ctx context.Context, s *Store, id string, noReady bool) {
	ch, err := s.Watch(ctx, tr.total)
	if err != nil {
		tr.t.Errorf("%s: Watch: %v", id, err)
		return
	}
	go func() {
		for set := range ch {
			tr.update(s, id, set, noReady)
		}
		tr.update(s, id, nil, true)
	}()
}

func (tr *shardTracker) update(s *Store, id string, set []int, noReady bool) {
	// Drop and Ready are detached from the test's context, as the bot's
	// are from Run's, so that the members can leave at the end of the
	// test.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr.mu.Lock()
	old := tr.sets[id]
	if set == nil {
		delete(tr.sets, id)
	} else {
		tr.sets[id] = set
	}
	for n := range tr.total {
		runners := 0
		for _, ns := range tr.sets {
			if slices.Contains(ns, n) {
				runners++
			}
		}
		switch {
		case runners > 2:
			tr.t.Errorf("shard %d run by %d members at once: %v", n, runners, tr.sets)
		case runners > 0:
			tr.running[n] = true
		case tr.running[n] && slices.Contains(old, n):
			tr.gaps = append(tr.gaps, fmt.Sprintf("shard %d after %s let it go", n, id))
		}
	}
	tr.mu.Unlock()
	for _, n := range old {
		if !slices.Contains(set, n) {
			if err := s.Drop(ctx, n); err != nil {
				tr.t.Errorf("%s: Drop(%d): %v", id, n, err)
			}
		}
	}
	if !noReady {
		for _, n := range set {
			if !slices.Contains(old, n) {
				if err := s.Ready(ctx, n); err != nil {
					tr.t.Errorf("%s: Ready(%d): %v", id, n, err)
				}
			}
		}
	}
	select {
	case tr.change <- struct{}{}:
	default:
	}
}

// takeGaps returns the gaps counted so far and forgets them.
func (tr *shardTracker) takeGaps() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	g := tr.gaps
	tr.gaps = nil
	return g
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

// shardKeys returns the holder of each shard key of total.
func shardKeys(t *testing.T, cfg Config, total int) map[int]string {
	t.Helper()
	resp, err := cluster.Client(t).Get(t.Context(), fmt.Sprintf("%sshards/%d/held/", cfg.Prefix, total), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, kv := range resp.Kvs {
		n, _ := strconv.Atoi(string(kv.Key[strings.LastIndexByte(string(kv.Key), '/')+1:]))
		out[n] = string(kv.Value)
	}
	return out
}

// Members joining and leaving (Close) move shards make-before-break: the
// receiver runs a shard before its holder lets it go, so that no shard is
// ever left to nobody, and in the end each is held by the member that
// runs it.
// split is the shards of total each of ids runs (AssignShards), members
// with none left out.
func split(total int, ids ...string) map[string][]int {
	out := make(map[string][]int)
	for n, id := range AssignShards(slices.Sorted(slices.Values(ids)), total) {
		out[id] = append(out[id], n)
	}
	return out
}

// owners is an assignment as shardKeys reads it.
func owners(assigned []string) map[int]string {
	out := make(map[int]string, len(assigned))
	for n, id := range assigned {
		out[n] = id
	}
	return out
}

// TestAssignShards checks that shards are spread evenly, the same in every
// process, and that a member leaving moves few of the others' shards:
// fewer than a modulo over the sorted members would.
func TestAssignShards(t *testing.T) {
	for _, tc := range []struct{ total, members int }{{1, 1}, {2, 3}, {4, 3}, {6, 3}, {16, 3}, {16, 5}, {64, 3}, {64, 4}} {
		t.Run(fmt.Sprintf("%d/%d", tc.total, tc.members), func(t *testing.T) {
			var ids []string
			for i := range tc.members {
				ids = append(ids, fmt.Sprintf("palaver-%d", i+1))
			}
			got := AssignShards(ids, tc.total)
			reversed := slices.Clone(ids)
			slices.Reverse(reversed)
			if other := AssignShards(reversed, tc.total); !slices.Equal(got, other) {
				t.Errorf("assignment depends on the members' order: %v and %v", got, other)
			}
			load := make(map[string]int)
			for _, id := range got {
				load[id]++
			}
			lo, hi := tc.total, 0
			for _, id := range ids {
				lo, hi = min(lo, load[id]), max(hi, load[id])
			}
			if hi-lo > 1 {
				t.Errorf("loads %v: want each member within one shard of the others", load)
			}
			moved, modMoved := 0, 0
			for leave := range ids {
				rest := slices.Delete(slices.Clone(ids), leave, leave+1)
				if len(rest) == 0 {
					continue
				}
				after := AssignShards(rest, tc.total)
				for n := range got {
					if got[n] != ids[leave] && after[n] != got[n] {
						moved++
					}
					if ids[n%len(ids)] != ids[leave] && rest[n%len(rest)] != ids[n%len(ids)] {
						modMoved++
					}
				}
			}
			if moved > modMoved {
				t.Errorf("a member leaving moves %d shards of the others (over every member), a modulo %d", moved, modMoved)
			}
			t.Logf("shards of live members moved when one leaves: %d, modulo: %d", moved, modMoved)
		})
	}
}

func TestStore_Shards_Rebalance(t *testing.T) {
	const total = 6
	cfg := testConfig(t)
	ctx := t.Context()
	tr := newShardTracker(t, total)

	a := member(t, cfg, "a")
	tr.run(ctx, a, "a", false)
	tr.waitFor(map[string][]int{"a": {0, 1, 2, 3, 4, 5}})
	if r := a.Role(); r.ShardTotal != total || len(r.Shards) != total {
		t.Errorf("A's role = %+v, want all %d shards", r, total)
	}

	b := member(t, cfg, "b")
	tr.run(ctx, b, "b", false)
	tr.waitFor(split(total, "a", "b"))

	c := member(t, cfg, "c")
	tr.run(ctx, c, "c", false)
	tr.waitFor(split(total, "a", "b", "c"))

	// B stops: it hands its shards to the others before it closes.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tr.waitFor(split(total, "a", "c"))
	if gaps := tr.takeGaps(); len(gaps) != 0 {
		t.Errorf("shards run by nobody while members joined and left: %v", gaps)
	}
	waitFor(t, "the shard keys held as run", func() bool {
		return maps.Equal(shardKeys(t, cfg, total), owners(AssignShards([]string{"a", "c"}, total)))
	})

	if _, err := a.Watch(ctx, total); err == nil {
		t.Error("a second Watch succeeded")
	}
	if _, err := a.Watch(ctx, 0); err == nil {
		t.Error("Watch of 0 shards succeeded")
	}
}

// A member whose Watch's context ends hands its shards over and then
// closes the channel; the last member lets its shards go at once.
func TestStore_Shards_Leave(t *testing.T) {
	const total = 4
	cfg := testConfig(t)
	tr := newShardTracker(t, total)
	a := member(t, cfg, "a")
	b := member(t, cfg, "b")
	actx, aleave := context.WithCancel(t.Context())
	bctx, bleave := context.WithCancel(t.Context())
	tr.run(actx, a, "a", false)
	tr.run(bctx, b, "b", false)
	tr.waitFor(split(total, "a", "b"))
	aleave()
	tr.waitFor(map[string][]int{"b": {0, 1, 2, 3}})
	if gaps := tr.takeGaps(); len(gaps) != 0 {
		t.Errorf("shards run by nobody while A left: %v", gaps)
	}
	bleave()
	tr.waitFor(map[string][]int{})
	waitFor(t, "no shard key left", func() bool { return len(shardKeys(t, cfg, total)) == 0 })
}

// A receiver that never reports a shard Ready gets it all the same once
// HandoverTimeout passed: the holder closes it and lets it go.
func TestStore_Shards_HandoverTimeout(t *testing.T) {
	const total = 2
	cfg := testConfig(t)
	cfg.HandoverTimeout = 300 * time.Millisecond
	tr := newShardTracker(t, total)
	ctx := t.Context()
	a := member(t, cfg, "a")
	tr.run(ctx, a, "a", false)
	tr.waitFor(map[string][]int{"a": {0, 1}})
	b := member(t, cfg, "b")
	tr.run(ctx, b, "b", true)
	want := split(total, "a", "b")
	tr.waitFor(want)
	waitFor(t, "B holds its shard", func() bool { return shardKeys(t, cfg, total)[want["b"][0]] == "b" })
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
	tr.run(ctx, a, "a", false)
	tr.run(ctx, b, "b", false)
	tr.waitFor(split(total, "a", "b"))
	old := a.Role().Lease
	a.sessMu.Lock()
	ss := a.sess
	a.sessMu.Unlock()
	ss.cs.Orphan() // no more keep-alives: the lease expires after Failover
	// A is away until its new session; then the split is as before.
	waitFor(t, "A has a new lease", func() bool { l := a.Role().Lease; return l != "" && l != old })
	tr.waitFor(split(total, "a", "b"))
	if gaps := tr.takeGaps(); len(gaps) == 0 {
		t.Error("no shard was left to nobody while A's lease expired")
	}
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

// The first process to ask settles the shard count for discord.shards
// auto; the others get it, whatever Discord recommended to them.
func TestStore_AgreeShards(t *testing.T) {
	cfg := testConfig(t)
	a := member(t, cfg, "a")
	b := member(t, cfg, "b")
	ctx := t.Context()
	if n, err := a.AgreeShards(ctx, 4); err != nil || n != 4 {
		t.Fatalf("first AgreeShards = %d, %v; want 4", n, err)
	}
	if n, err := b.AgreeShards(ctx, 6); err != nil || n != 4 {
		t.Errorf("second AgreeShards = %d, %v; want the 4 settled", n, err)
	}
	if _, err := a.AgreeShards(ctx, 0); err == nil {
		t.Error("AgreeShards(0) succeeded")
	}
}
