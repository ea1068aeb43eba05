package etcdstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// MaxShards bounds the shard count Watch accepts.
const MaxShards = 4096

// IdentifySpacing is how long an identify bucket stays closed after an
// identify began (Discord's rule: max_concurrency identifies per 5 s).
const IdentifySpacing = 5 * time.Second

// leaveDropWait bounds how long a process leaving the shard assignment
// waits, after its last hand-over, for the receiver of Watch to close and
// Drop the shards (discordgo takes a second to close a connection).
const leaveDropWait = 5 * time.Second

// shardWatch is the state of a running Watch.
type shardWatch struct {
	total   int
	drops   chan shardRequest
	readies chan shardRequest
	leave   chan struct{} // closed by Close: hand the shards over and end
	left    sync.Once
	ended   chan struct{} // closed when the watch returns

	mu        sync.Mutex
	reported  []int        // the set last sent
	got       map[int]bool // shards of sets the receiver took, not dropped since
	receiving []int        // the shards of reported another process holds
}

// shardRequest is a call of Drop or Ready, answered on done.
type shardRequest struct {
	shard int
	done  chan error
}

func (w *shardWatch) held() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.reported)
}

func (w *shardWatch) incoming() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.receiving)
}

// shardPrefix holds the assignment of the shards of total (see Watch):
//
//	members/<member>       a process running the shards
//	held/<n>               the member holding shard n
//	ready/<n>/<member>     member's connection of shard n is READY
//
// each under the session lease of the member it names. One watch of the
// prefix sees their changes in the order they were made.
func (s *Store) shardPrefix(total int) string { return fmt.Sprintf("%sshards/%d/", s.p, total) }

// shardKey is a key of the assignment (shardPrefix), parsed: kind
// "members", "held" or "ready", with its shard and member.
type shardKey struct {
	kind   string
	shard  int
	member string
}

// parseShardKey parses a key under prefix; ok is false for another.
func parseShardKey(k, prefix string) (key shardKey, ok bool) {
	rest, ok := strings.CutPrefix(k, prefix)
	if !ok {
		return shardKey{}, false
	}
	kind, rest, _ := strings.Cut(rest, "/")
	if kind == "members" {
		return shardKey{kind: kind, member: rest}, rest != ""
	}
	shard, member, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(shard)
	switch {
	case err != nil || n < 0:
	case kind == "held" && member == "":
		return shardKey{kind: kind, shard: n}, true
	case kind == "ready" && member != "":
		return shardKey{kind: kind, shard: n, member: member}, true
	}
	return shardKey{}, false
}

func (s *Store) memberOfShards(total int, member string) string {
	return s.shardPrefix(total) + "members/" + member
}

func (s *Store) heldKey(total, n int) string {
	return fmt.Sprintf("%sheld/%d", s.shardPrefix(total), n)
}

func (s *Store) readyKey(total, n int, member string) string {
	return fmt.Sprintf("%sready/%d/%s", s.shardPrefix(total), n, member)
}

// Watch sends the ids of the shards (of total) this process is to run now
// and whenever that set changes. The channel keeps only the newest set: a
// receiver that was slow gets the current one.
//
// Shards are spread over the processes that watch them (each registers
// shards/<total>/members/<member> while Watch runs), evenly, by
// rendezvous hashing (AssignShards): a member joining or leaving moves
// mostly its own share. A process holds
// a shard it runs with a key (shards/<total>/held/<n>), so that no two
// hold one. Both keys are under the process's session lease.
//
// Shards move make-before-break. A shard another process holds and this
// one wants is sent at once: the receiver of the channel opens it and
// calls Ready when Discord answered READY, which marks that connection
// ready (shards/<total>/ready/<n>/<member>, under the session lease,
// deleted before the connection closes). The holder keeps the shard in
// its set until the member that wants it is ready, so that Discord
// delivers the shard's events to both connections for a moment, and
// never to none; then the shard leaves the holder's set, the holder's
// receiver closes the connection and calls Drop, and the key is released
// and taken by the new holder. The holder waits Config.HandoverTimeout at
// most, and lets a shard go at once when no other process watches the
// shards. A process killed hands nothing over: its keys go with its
// lease, and the others take its shards then.
//
// When ctx ends (or Close is called), the process leaves: it unregisters,
// hands every shard it runs over in the same way, and closes the channel
// once it holds none, or HandoverTimeout and 5 s (for the Drops) after it
// began to leave. When the session lease is lost, the set becomes empty
// at once: the other processes take the shards once the lease expired.
func (s *Store) Watch(ctx context.Context, total int) (<-chan []int, error) {
	if total < 1 || total > MaxShards {
		return nil, fmt.Errorf("etcd store: watch shards: total %d, want 1 to %d", total, MaxShards)
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	w := &shardWatch{total: total, drops: make(chan shardRequest), readies: make(chan shardRequest),
		leave: make(chan struct{}), ended: make(chan struct{}), got: make(map[int]bool)}
	s.sessMu.Lock()
	if s.shards != nil {
		s.sessMu.Unlock()
		return nil, errors.New("etcd store: watch shards: this process watches them already")
	}
	s.shards = w
	s.sessMu.Unlock()
	out := make(chan []int, 1)
	go func() {
		defer func() {
			s.sessMu.Lock()
			s.shards = nil
			s.sessMu.Unlock()
			close(w.ended)
			close(out)
		}()
		s.runShards(ctx, w, out)
	}()
	return out, nil
}

// Drop releases shard, which the receiver of Watch closed after it left
// the set. A shard this process does not hold is no error.
func (s *Store) Drop(ctx context.Context, shard int) error {
	s.sessMu.Lock()
	if w := s.shards; w != nil {
		w.dropped(shard)
	}
	s.sessMu.Unlock()
	return s.shardCall(ctx, func(w *shardWatch) chan shardRequest { return w.drops }, shard)
}

// Ready marks this process's connection of shard ready: Discord answered
// READY, and a process handing the shard over to this one may close its
// own (see Watch). A shard not in the set sent last, or not watched, is
// ignored.
func (s *Store) Ready(ctx context.Context, shard int) error {
	return s.shardCall(ctx, func(w *shardWatch) chan shardRequest { return w.readies }, shard)
}

// shardCall hands a request for shard to the running Watch on the
// channel of it that ch returns, and waits for its answer.
func (s *Store) shardCall(ctx context.Context, ch func(*shardWatch) chan shardRequest, shard int) error {
	s.sessMu.Lock()
	w := s.shards
	s.sessMu.Unlock()
	if w == nil {
		return nil
	}
	req := shardRequest{shard: shard, done: make(chan error, 1)}
	select {
	case ch(w) <- req:
	case <-w.ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handOverShards makes a running Watch leave (see Watch) and waits until
// it ended, or for at most the time leaving may take.
func (s *Store) handOverShards() {
	s.sessMu.Lock()
	w := s.shards
	s.sessMu.Unlock()
	if w == nil {
		return
	}
	w.left.Do(func() { close(w.leave) })
	t := time.NewTimer(s.cfg.HandoverTimeout + 2*leaveDropWait)
	defer t.Stop()
	select {
	case <-w.ended:
	case <-t.C:
		s.log.Warn("etcd store: the Discord shards were not handed over in time", slog.String("member", s.cfg.Member))
	}
}

// report sends set as the shards held, replacing a set not received yet.
func (w *shardWatch) report(out chan []int, set []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if slices.Equal(w.reported, set) && w.reported != nil {
		return
	}
	select {
	case <-out: // never received
	default:
		for _, n := range w.reported {
			w.got[n] = true
		}
	}
	w.reported = slices.Clone(set)
	out <- slices.Clone(set)
}

// received reports whether the receiver may run shard n: it was in the
// last set sent, or in one the receiver took (the channel drops a set not
// received when a newer one comes) and the receiver did not drop it since.
func (w *shardWatch) received(n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.got[n] || slices.Contains(w.reported, n)
}

// dropped records that the receiver no longer runs shard n.
func (w *shardWatch) dropped(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.got, n)
}

// leaving reports whether the process leaves the shard assignment: ctx
// ended or Close was called.
func (w *shardWatch) leaving(ctx context.Context) bool {
	select {
	case <-w.leave:
		return true
	default:
		return ctx.Err() != nil
	}
}

// runShards runs the shard assignment, one epoch per session, until the
// process left it (or ctx ended between epochs), or the store closes.
func (s *Store) runShards(ctx context.Context, w *shardWatch, out chan []int) {
	w.report(out, []int{})
	for {
		if w.leaving(ctx) {
			return
		}
		ss, err := s.session(ctx)
		if err != nil {
			return
		}
		err = s.shardEpoch(ctx, w, ss, out)
		// Whatever the epoch held went with its lease, or was released.
		w.report(out, []int{})
		w.mu.Lock()
		w.receiving = nil
		w.mu.Unlock()
		if w.leaving(ctx) || s.closed.Load() {
			return
		}
		if err != nil {
			s.log.Warn("etcd store: shard assignment restarts", slog.String("member", s.cfg.Member), slog.Any("error", err))
		}
		select { // a short pause, taking drops of shards no longer held
		case <-ctx.Done():
			return
		case <-w.leave:
			return
		case <-s.stop:
			return
		case req := <-w.drops:
			req.done <- nil
		case req := <-w.readies:
			req.done <- nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// shardState is what an epoch knows: the members running the shards,
// who holds each shard and whose connections of it are ready, and what
// this process runs, hands over and reported.
type shardState struct {
	me       string
	members  map[string]bool         // the processes running the shards
	owners   map[int]string          // the holder of each shard taken
	known    map[int]int64           // revision of the last change of the shard's key seen
	ready    map[int]map[string]bool // shard → members whose connection of it is READY
	held     map[int]int64           // shards this process holds: key CreateRevision
	incoming map[int]bool            // shards reported while another holds them
	readyPut map[int]bool            // shards this process marked ready
	handing  map[int]handoff         // reported, no longer wanted: their receiver is opening
	draining map[int]bool            // left the set, not dropped yet
	leaving  bool                    // the process leaves: it wants no shard
	left     bool                    // its members/ key is deleted
	reported []int
}

// handoff is a shard being handed over: to the member that receives it,
// at the latest by.
type handoff struct {
	to string
	by time.Time
}

// seen records that shard n's key was created or changed by owner (""
// when deleted) at revision rev. A change older than one seen is ignored:
// the watch delivers changes after this process's own writes of them.
func (st *shardState) seen(n int, owner string, rev int64) {
	if rev <= st.known[n] {
		return
	}
	st.known[n] = rev
	if owner != "" {
		st.owners[n] = owner
		return
	}
	delete(st.owners, n)
	delete(st.held, n)
}

// markReady records whether member's connection of shard n is READY.
func (st *shardState) markReady(n int, member string, ready bool) {
	if !ready {
		delete(st.ready[n], member)
		return
	}
	if st.ready[n] == nil {
		st.ready[n] = make(map[string]bool)
	}
	st.ready[n][member] = true
}

// receivers are the members that run the shards of total among the
// members other than this one when it leaves: nil when there is none.
func (st *shardState) receivers(total int) []string {
	ids := slices.Sorted(maps.Keys(st.members))
	if st.leaving {
		ids = slices.DeleteFunc(ids, func(id string) bool { return id == st.me })
	}
	if len(ids) == 0 {
		return nil
	}
	return AssignShards(ids, total)
}

// shardEpoch runs the assignment under session ss until the process left
// it (nil), the session is lost, the store closes or the watch fails.
func (s *Store) shardEpoch(ctx context.Context, w *shardWatch, ss *session, out chan []int) error {
	// Not ctx's: the epoch goes on, handing the shards over, after it ends.
	ectx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(ss.cs.Ctx(), cancel)
	defer stop()
	me, prefix := s.cfg.Member, s.shardPrefix(w.total)
	// The watch starts first, from the present, and the state is read
	// after (events it includes are skipped): a watch started at a past
	// revision gets its first events only when etcd catches it up (every
	// 100 ms), and this process would meanwhile take itself for the only
	// one and open every shard.
	wch := s.cli.Watch(ectx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	select {
	case wr, ok := <-wch:
		if !ok || wr.Err() != nil || !wr.Created {
			return fmt.Errorf("watch %s: %v", prefix, wr.Err())
		}
	case <-ectx.Done():
		return errors.New("session lease lost")
	}
	resp, err := s.cli.Txn(ectx).Then(
		clientv3.OpPut(s.memberOfShards(w.total, me), "", clientv3.WithLease(ss.lease())),
		clientv3.OpGet(prefix, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return err
	}
	st := &shardState{me: me, members: map[string]bool{me: true}, owners: make(map[int]string), known: make(map[int]int64),
		ready: make(map[int]map[string]bool), held: make(map[int]int64), incoming: make(map[int]bool), readyPut: make(map[int]bool),
		handing: make(map[int]handoff), draining: make(map[int]bool)}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		k, ok := parseShardKey(string(kv.Key), prefix)
		switch {
		case !ok:
		case k.kind == "members":
			st.members[k.member] = true
		case k.kind == "held":
			st.seen(k.shard, string(kv.Value), kv.ModRevision)
			if clientv3.LeaseID(kv.Lease) == ss.lease() {
				st.held[k.shard] = kv.CreateRevision // from an epoch of this session that failed
			}
		case k.kind == "ready" && k.member == me:
			// From an epoch of this session that failed: its end closed
			// the connections.
			if _, err := s.cli.Delete(ectx, string(kv.Key)); err != nil {
				return err
			}
		case k.kind == "ready":
			st.markReady(k.shard, k.member, true)
		}
	}
	rev := resp.Header.Revision
	var leaveBy time.Time // once leaving: when to give up what is still held
	leave, quit := w.leave, ctx.Done()
	for {
		if err := s.reconcile(ectx, w, ss, st, out); err != nil && ectx.Err() == nil {
			return err
		}
		if st.leaving && len(st.held) == 0 && len(st.incoming) == 0 && len(st.draining) == 0 {
			return nil
		}
		var wake <-chan time.Time
		if next := st.nextDeadline(leaveBy); !next.IsZero() {
			wake = time.After(time.Until(next))
		}
		select {
		case <-quit:
			quit, leave = nil, nil
			st.leaving, leaveBy = true, time.Now().Add(s.cfg.HandoverTimeout+leaveDropWait)
			s.log.Debug("etcd store: leaving the shard assignment", slog.String("member", me))
		case <-leave:
			quit, leave = nil, nil
			st.leaving, leaveBy = true, time.Now().Add(s.cfg.HandoverTimeout+leaveDropWait)
			s.log.Debug("etcd store: leaving the shard assignment", slog.String("member", me))
		case <-wake:
			if st.leaving && !time.Now().Before(leaveBy) {
				s.log.Warn("etcd store: shards not handed over in time; releasing them", slog.Any("shards", slices.Sorted(maps.Keys(st.held))), slog.String("member", me))
				rctx, rcancel := s.opCtx(context.Background())
				for n, crev := range st.held {
					_ = s.releaseShard(rctx, w.total, st, n, crev)
				}
				rcancel()
				return nil
			}
		case <-ectx.Done():
			if st.leaving {
				return nil // what was held went with the lease
			}
			return errors.New("session lease lost")
		case <-s.stop:
			return errClosed
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				return fmt.Errorf("watch %s: %v", prefix, wr.Err())
			}
			for _, ev := range wr.Events {
				k, ok := parseShardKey(string(ev.Kv.Key), prefix)
				if !ok || ev.Kv.ModRevision <= rev {
					continue
				}
				put := ev.Type == mvccpb.PUT
				switch k.kind {
				case "members":
					if put {
						st.members[k.member] = true
					} else {
						delete(st.members, k.member)
					}
				case "held":
					owner := ""
					if put {
						owner = string(ev.Kv.Value)
					}
					st.seen(k.shard, owner, ev.Kv.ModRevision)
				case "ready":
					if k.member != me {
						st.markReady(k.shard, k.member, put)
					}
				}
			}
		case req := <-w.drops:
			n := req.shard
			delete(st.draining, n)
			err := s.unmarkReady(ectx, w.total, st, n)
			if crev, ok := st.held[n]; ok && err == nil {
				err = s.releaseShard(ectx, w.total, st, n, crev)
			}
			s.log.Debug("etcd store: drop", slog.Int("shard", n), slog.String("member", me), slog.Any("error", err))
			if ectx.Err() != nil {
				err = nil // the lease is gone, and what it held with it
			}
			req.done <- err
		case req := <-w.readies:
			var err error
			n := req.shard
			if slices.Contains(st.reported, n) && !st.readyPut[n] {
				if _, err = s.cli.Put(ectx, s.readyKey(w.total, n, me), "", clientv3.WithLease(ss.lease())); err == nil {
					st.readyPut[n] = true
					st.markReady(n, me, true)
				}
				s.log.Debug("etcd store: shard ready", slog.Int("shard", n), slog.String("member", me), slog.Any("error", err))
			}
			if ectx.Err() != nil {
				err = nil // the lease is gone: the set is emptied
			}
			req.done <- err
		}
	}
}

// unmarkReady deletes this process's mark that its connection of shard n
// (of total) is ready, if it made one.
func (s *Store) unmarkReady(ctx context.Context, total int, st *shardState, n int) error {
	if !st.readyPut[n] {
		return nil
	}
	if _, err := s.cli.Delete(ctx, s.readyKey(total, n, st.me)); err != nil {
		return fmt.Errorf("unmark shard %d ready: %w", n, err)
	}
	delete(st.readyPut, n)
	st.markReady(n, st.me, false)
	return nil
}

// stillReady confirms, reading it from the cluster, that member to's
// connection of shard n (of total) is ready, as st has it: the mark is
// deleted before a connection closes, but the watch may not have brought
// that yet. A mark found gone is forgotten; an error is taken for a no.
func (s *Store) stillReady(ctx context.Context, total int, st *shardState, n int, to string) bool {
	resp, err := s.cli.Get(ctx, s.readyKey(total, n, to), clientv3.WithKeysOnly())
	if err != nil {
		return false
	}
	if len(resp.Kvs) == 0 {
		st.markReady(n, to, false)
		return false
	}
	return true
}

// nextDeadline is the earliest of the hand-overs' deadlines and leaveBy
// (zero for none); zero when there is none.
func (st *shardState) nextDeadline(leaveBy time.Time) time.Time {
	next := leaveBy
	for _, h := range st.handing {
		if next.IsZero() || h.by.Before(next) {
			next = h.by
		}
	}
	return next
}

// reconcile moves st towards the shards this process wants. A shard it
// runs (holds, or receives from another) and no longer wants stays in the
// reported set while its receiver connects, then leaves it: when the
// receiver of Watch drops it, its key (if held) is released. A received
// shard whose connection is not ready yet leaves at once, a held shard
// never reported is released at once. A wanted shard is taken when free,
// and reported while another holds it (it is being handed over).
func (s *Store) reconcile(ctx context.Context, w *shardWatch, ss *session, st *shardState, out chan []int) error {
	var errs []error
	if st.leaving && !st.left {
		if _, err := s.cli.Delete(ctx, s.memberOfShards(w.total, st.me)); err != nil {
			errs = append(errs, fmt.Errorf("leave the shard assignment: %w", err))
		} else {
			st.left = true
			delete(st.members, st.me)
		}
	}
	wanted := map[int]bool{}
	if !st.leaving {
		wanted = wantedShards(st.members, st.me, w.total)
	}
	now := time.Now()
	var receivers []string // computed once a shard is to be handed over
	for n, crev := range st.held {
		if !wanted[n] && !st.draining[n] && !slices.Contains(st.reported, n) {
			if err := s.releaseShard(ctx, w.total, st, n, crev); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, n := range st.reported {
		if wanted[n] {
			delete(st.handing, n)
			continue
		}
		if _, held := st.held[n]; held || st.readyPut[n] {
			if receivers == nil {
				receivers = st.receivers(w.total)
			}
			to := ""
			if n < len(receivers) {
				to = receivers[n]
			}
			h, handing := st.handing[n]
			switch {
			case to == "":
				s.log.Debug("etcd store: no member to hand the shard over to", slog.Int("shard", n), slog.String("member", st.me))
			case st.ready[n][to] && s.stillReady(ctx, w.total, st, n, to):
				s.log.Debug("etcd store: shard handed over", slog.Int("shard", n), slog.String("to", to), slog.String("member", st.me))
			case !handing || h.to != to:
				st.handing[n] = handoff{to: to, by: now.Add(s.cfg.HandoverTimeout)}
				s.log.Debug("etcd store: handing the shard over", slog.Int("shard", n), slog.String("to", to), slog.String("member", st.me))
				continue
			case now.Before(h.by):
				continue
			default:
				s.log.Warn("etcd store: the shard's receiver did not connect in time; closing it all the same",
					slog.Int("shard", n), slog.String("to", to), slog.Duration("timeout", s.cfg.HandoverTimeout), slog.String("member", st.me))
			}
		}
		// Unmarked before the receiver of Watch closes the connection,
		// so that no member takes it for ready.
		if err := s.unmarkReady(ctx, w.total, st, n); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(st.handing, n)
		delete(st.incoming, n)
		st.draining[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(wanted)) {
		if _, ok := st.held[n]; ok || st.draining[n] {
			continue
		}
		if owner := st.owners[n]; owner != "" {
			if owner != st.me {
				st.incoming[n] = true
			}
			continue
		}
		k := s.heldKey(w.total, n)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, st.me, clientv3.WithLease(ss.lease()))).
			Commit()
		if err != nil {
			errs = append(errs, fmt.Errorf("take shard %d: %w", n, err))
			continue
		}
		if resp.Succeeded {
			st.held[n] = resp.Header.Revision
			st.seen(n, st.me, resp.Header.Revision)
			delete(st.incoming, n)
			s.log.Debug("etcd store: shard taken", slog.Int("shard", n), slog.String("member", st.me))
		}
	}
	var set []int
	for n := range st.held {
		if !st.draining[n] {
			set = append(set, n)
		}
	}
	for n := range st.incoming {
		if !st.draining[n] {
			set = append(set, n)
		}
	}
	slices.Sort(set)
	if !slices.Equal(set, st.reported) || st.reported == nil {
		st.reported = set
		w.report(out, set)
	}
	w.mu.Lock()
	w.receiving = slices.Sorted(maps.Keys(st.incoming))
	w.mu.Unlock()
	// A shard whose set the receiver never took is not Dropped: it is
	// dropped now.
	for n := range st.draining {
		if w.received(n) {
			continue
		}
		delete(st.draining, n)
		if err := s.unmarkReady(ctx, w.total, st, n); err != nil {
			errs = append(errs, err)
		}
		if crev, ok := st.held[n]; ok {
			if err := s.releaseShard(ctx, w.total, st, n, crev); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// releaseShard deletes shard n's key (of total) if it is still the one
// this process created (CreateRevision crev), and records in st that it
// is no longer held.
func (s *Store) releaseShard(ctx context.Context, total int, st *shardState, n int, crev int64) error {
	k := s.heldKey(total, n)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", crev)).
		Then(clientv3.OpDelete(k)).
		Commit()
	if err != nil {
		return fmt.Errorf("release shard %d: %w", n, err)
	}
	delete(st.held, n)
	if resp.Succeeded {
		st.seen(n, "", resp.Header.Revision)
	}
	s.log.Debug("etcd store: shard released", slog.Int("shard", n), slog.String("member", st.me))
	return nil
}

// wantedShards are the shards of total that member wants among members
// (see AssignShards).
func wantedShards(members map[string]bool, member string, total int) map[int]bool {
	wanted := make(map[int]bool)
	if !members[member] {
		return wanted
	}
	for n, id := range AssignShards(slices.Sorted(maps.Keys(members)), total) {
		if id == member {
			wanted[n] = true
		}
	}
	return wanted
}

// AgreeShards settles the deployment's Discord shard count for
// discord.shards auto: the first process to ask stores recommended (Discord's
// recommendation as it saw it) under shards/auto, and every process gets
// the stored count, so that all run the same. The count stays until the
// key is deleted (or the processes are given a number).
func (s *Store) AgreeShards(ctx context.Context, recommended int) (int, error) {
	if recommended < 1 || recommended > MaxShards {
		return 0, fmt.Errorf("etcd store: agree on the shard count: %d, want 1 to %d", recommended, MaxShards)
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	k := s.p + "shards/auto"
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, strconv.Itoa(recommended))).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("etcd store: agree on the shard count: %w", s.txnError(err))
	}
	if resp.Succeeded {
		return recommended, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) != 1 {
		return 0, errors.New("etcd store: agree on the shard count: shards/auto vanished")
	}
	n, err := strconv.Atoi(string(kvs[0].Value))
	if err != nil || n < 1 || n > MaxShards {
		return 0, fmt.Errorf("etcd store: agree on the shard count: shards/auto holds %q, want 1 to %d", kvs[0].Value, MaxShards)
	}
	return n, nil
}

// AssignShards gives each shard of total the member among ids (not
// empty) that runs it, as Watch assigns them: by rendezvous hashing with
// quotas. Each member runs total/len(ids) shards, and the total%len(ids)
// members ranking highest for the extra one more; shard by shard, in
// order, each goes to the member that ranks it highest (a hash of member
// and shard) among those with quota left.
// Every process computes the same from the same members; when a member
// joins or leaves, mostly the shards it takes or leaves move, where a
// modulo over the sorted members moves most of the others too (each move
// a new IDENTIFY).
func AssignShards(ids []string, total int) []string {
	quota := make(map[string]int, len(ids))
	ranked := slices.Clone(ids)
	byRank := func(n int) {
		slices.SortFunc(ranked, func(a, b string) int { return cmp.Compare(shardRank(b, n), shardRank(a, n)) })
	}
	byRank(-1) // who runs an extra shard
	for i, id := range ranked {
		quota[id] = total / len(ids)
		if i < total%len(ids) {
			quota[id]++
		}
	}
	owner := make([]string, total)
	for n := range owner {
		byRank(n)
		for _, id := range ranked {
			if quota[id] > 0 {
				owner[n] = id
				quota[id]--
				break
			}
		}
	}
	return owner
}

// shardRank is member's rank for shard n (FNV-1a of both).
func shardRank(member string, n int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", member, n)
	return h.Sum64()
}

// Identify waits for shard's turn to IDENTIFY with Discord: at most
// maxConcurrency identifies per IdentifySpacing across all processes, one
// per bucket (shard % maxConcurrency). It holds the bucket's etcd lock
// (identify/<bucket>) until release is called, once the gateway answered
// READY (or failed), and marks the identify with a key under a lease of
// IdentifySpacing (identify-last/<bucket>): the next identify of the
// bucket waits for that lease to expire, so the bucket stays closed
// IdentifySpacing after the identify began.
func (s *Store) Identify(ctx context.Context, shard, maxConcurrency int) (release func(), err error) {
	if maxConcurrency < 1 || shard < 0 {
		return nil, fmt.Errorf("etcd store: identify: shard %d, max concurrency %d: want a shard >= 0 and a concurrency >= 1", shard, maxConcurrency)
	}
	bucket := shard % maxConcurrency
	// etcd's mutex is re-entrant for one session: the shards of this
	// process take their turns here first.
	unlockLocal := s.locks.lock(fmt.Sprintf("\x00identify/%d", bucket))
	var m *concurrency.Mutex
	for {
		ss, err := s.session(ctx)
		if err != nil {
			return nil, fmt.Errorf("etcd store: identify: %w", err)
		}
		m = concurrency.NewMutex(ss.cs, fmt.Sprintf("%sidentify/%d", s.p, bucket))
		err = m.Lock(ctx)
		if err == nil {
			break
		}
		if !ss.leaseLost(ctx, err) {
			unlockLocal()
			return nil, fmt.Errorf("etcd store: identify: lock bucket %d: %w", bucket, err)
		}
	}
	unlock := func() {
		defer unlockLocal()
		ctx, cancel := s.opCtx(context.Background())
		defer cancel()
		if err := m.Unlock(ctx); err != nil {
			s.log.Warn("etcd store: unlock an identify bucket (it ends with the session)", slog.Int("bucket", bucket), slog.Any("error", err))
		}
	}
	if err := s.identifyTurn(ctx, bucket); err != nil {
		unlock()
		return nil, fmt.Errorf("etcd store: identify: bucket %d: %w", bucket, err)
	}
	var once sync.Once
	return func() { once.Do(unlock) }, nil
}

// identifyTurn waits until bucket's last identify mark has expired, then
// marks this one.
func (s *Store) identifyTurn(ctx context.Context, bucket int) error {
	marker := fmt.Sprintf("%sidentify-last/%d", s.p, bucket)
	for {
		resp, err := s.cli.Get(ctx, marker)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			break
		}
		if err := s.waitDeleted(ctx, marker, resp.Header.Revision, nil); err != nil {
			return err
		}
	}
	lease, err := s.cli.Grant(ctx, int64(IdentifySpacing/time.Second))
	if err != nil {
		return err
	}
	// Marked only if nobody marked it meanwhile (the lock's holder is
	// alone, but a lock lost with its session must not let two in).
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(marker), "=", 0)).
		Then(clientv3.OpPut(marker, s.cfg.Member, clientv3.WithLease(lease.ID))).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		s.cli.Revoke(ctx, lease.ID)
		return s.identifyTurn(ctx, bucket)
	}
	return nil
}
