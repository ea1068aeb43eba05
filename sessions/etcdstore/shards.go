package etcdstore

import (
	"context"
	"errors"
	"fmt"
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

// shardWatch is the state of a running Watch.
type shardWatch struct {
	total int
	drops chan dropRequest
	ended chan struct{} // closed when the watch returns

	mu       sync.Mutex
	reported []int
}

type dropRequest struct {
	shard int
	done  chan error
}

func (w *shardWatch) held() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.reported)
}

func (s *Store) shardPrefix(total int) string { return fmt.Sprintf("%sshards/%d/", s.p, total) }

// Watch sends the ids of the shards (of total) this process holds now and
// whenever that set changes, until ctx ends (then it releases them and
// closes the channel). The channel keeps only the newest set: a receiver
// that was slow gets the current one.
//
// Shards are spread over the live members (those with a member record):
// sorted by id, member i wants the shards n with n % len(members) == i.
// A shard is sent only once this process holds its key (shards/<total>/<n>,
// under the session lease); a shard no longer wanted leaves the set first,
// and its key is released when the receiver calls Drop (after closing the
// shard's gateway connection), so that no two processes run one shard.
// When the session lease is lost, the set becomes empty at once: the
// other processes take the shards once the lease has expired.
func (s *Store) Watch(ctx context.Context, total int) (<-chan []int, error) {
	if total < 1 || total > MaxShards {
		return nil, fmt.Errorf("etcd store: watch shards: total %d, want 1 to %d", total, MaxShards)
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	w := &shardWatch{total: total, drops: make(chan dropRequest), ended: make(chan struct{})}
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

// Drop releases shard, which the receiver of Watch no longer runs. A
// shard this process does not hold is no error.
func (s *Store) Drop(ctx context.Context, shard int) error {
	s.sessMu.Lock()
	w := s.shards
	s.sessMu.Unlock()
	if w == nil {
		return nil
	}
	req := dropRequest{shard: shard, done: make(chan error, 1)}
	select {
	case w.drops <- req:
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

// report sends set as the shards held, replacing a set not received yet.
func (w *shardWatch) report(out chan []int, set []int) {
	w.mu.Lock()
	same := slices.Equal(w.reported, set) && w.reported != nil
	w.reported = slices.Clone(set)
	w.mu.Unlock()
	if same {
		return
	}
	select {
	case <-out:
	default:
	}
	out <- slices.Clone(set)
}

// runShards runs the shard assignment, one epoch per session, until ctx
// ends or the store closes.
func (s *Store) runShards(ctx context.Context, w *shardWatch, out chan []int) {
	w.report(out, []int{})
	for {
		ss, err := s.session(ctx)
		if err != nil {
			return
		}
		err = s.shardEpoch(ctx, w, ss, out)
		// Whatever the epoch held went with its lease, or was released.
		w.report(out, []int{})
		if ctx.Err() != nil || s.closed.Load() {
			return
		}
		if err != nil {
			s.log.Warn("etcd store: shard assignment restarts", slog.String("member", s.cfg.Member), slog.Any("error", err))
		}
		select { // a short pause, taking drops of shards no longer held
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case req := <-w.drops:
			req.done <- nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// shardState is what an epoch knows: the live members, which shards are
// taken, and what this process holds and reported.
type shardState struct {
	members  map[string]bool
	taken    map[int]bool  // the shard's key exists
	known    map[int]int64 // revision of the last change of the shard's key seen
	held     map[int]int64 // shards this process holds: key CreateRevision
	draining map[int]bool  // held, taken from the receiver, not dropped yet
	reported []int
}

// seen records that shard n's key was created or changed (taken) or
// deleted at revision rev. A change older than one seen is ignored: the
// watch delivers changes after this process's own writes of them.
func (st *shardState) seen(n int, taken bool, rev int64) {
	if rev <= st.known[n] {
		return
	}
	st.known[n] = rev
	if taken {
		st.taken[n] = true
		return
	}
	delete(st.taken, n)
	delete(st.held, n)
	delete(st.draining, n)
}

// shardEpoch runs the assignment under session ss until ctx ends (it
// releases the shards), the session is lost, or a watch fails.
func (s *Store) shardEpoch(ctx context.Context, w *shardWatch, ss *session, out chan []int) error {
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ss.cs.Ctx(), cancel)
	defer stop()
	mp, sp := s.p+"members/", s.shardPrefix(w.total)
	resp, err := s.cli.Txn(ectx).Then(
		clientv3.OpGet(mp, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(sp, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return err
	}
	st := &shardState{members: make(map[string]bool), taken: make(map[int]bool), known: make(map[int]int64),
		held: make(map[int]int64), draining: make(map[int]bool)}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		st.members[strings.TrimPrefix(string(kv.Key), mp)] = true
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		if n, ok := shardOf(string(kv.Key), sp); ok {
			st.seen(n, true, kv.ModRevision)
			if clientv3.LeaseID(kv.Lease) == ss.lease() {
				st.held[n] = kv.CreateRevision // from an epoch of this session that failed
			}
		}
	}
	rev := resp.Header.Revision
	mch := s.cli.Watch(ectx, mp, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithKeysOnly())
	sch := s.cli.Watch(ectx, sp, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		if err := s.reconcile(ectx, w, ss, st, out); err != nil && ectx.Err() == nil {
			return err
		}
		select {
		case <-ectx.Done():
			if ctx.Err() != nil {
				// The receiver is gone: give the shards up now.
				rctx, rcancel := s.opCtx(context.Background())
				for n, crev := range st.held {
					_ = s.releaseShard(rctx, st, sp, n, crev)
				}
				rcancel()
				return ctx.Err()
			}
			return errors.New("session lease lost")
		case <-s.stop:
			return errClosed
		case wr, ok := <-mch:
			if !ok || wr.Err() != nil {
				return fmt.Errorf("watch members: %v", wr.Err())
			}
			for _, ev := range wr.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), mp)
				if ev.Type == mvccpb.PUT {
					st.members[id] = true
				} else {
					delete(st.members, id)
				}
			}
		case wr, ok := <-sch:
			if !ok || wr.Err() != nil {
				return fmt.Errorf("watch shards: %v", wr.Err())
			}
			for _, ev := range wr.Events {
				n, ok := shardOf(string(ev.Kv.Key), sp)
				if !ok {
					continue
				}
				st.seen(n, ev.Type == mvccpb.PUT, ev.Kv.ModRevision)
			}
		case req := <-w.drops:
			var err error
			if crev, ok := st.held[req.shard]; ok {
				err = s.releaseShard(ectx, st, sp, req.shard, crev)
			}
			s.log.Debug("etcd store: drop", slog.Int("shard", req.shard), slog.String("member", s.cfg.Member), slog.Any("error", err))
			req.done <- err
		}
	}
}

// reconcile moves st towards the shards this process wants: shards no
// longer wanted leave the reported set (the receiver drops them), held
// shards never reported are released, wanted shards that are free are
// taken, and the reported set becomes the held wanted ones.
func (s *Store) reconcile(ctx context.Context, w *shardWatch, ss *session, st *shardState, out chan []int) error {
	sp := s.shardPrefix(w.total)
	wanted := wantedShards(st.members, s.cfg.Member, w.total)
	kept := st.reported[:0:0]
	for _, n := range st.reported {
		if wanted[n] {
			kept = append(kept, n)
		} else {
			st.draining[n] = true
		}
	}
	if len(kept) != len(st.reported) {
		s.log.Debug("etcd store: shards no longer wanted", slog.Any("kept", kept), slog.Any("draining", slices.Sorted(maps.Keys(st.draining))), slog.String("member", s.cfg.Member))
		st.reported = kept
		w.report(out, kept)
	}
	var errs []error
	for n, crev := range st.held {
		if !wanted[n] && !st.draining[n] {
			if err := s.releaseShard(ctx, st, sp, n, crev); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(wanted)) {
		if _, ok := st.held[n]; ok || st.taken[n] {
			continue
		}
		k := sp + strconv.Itoa(n)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, s.cfg.Member, clientv3.WithLease(ss.lease()))).
			Commit()
		if err != nil {
			errs = append(errs, fmt.Errorf("take shard %d: %w", n, err))
			continue
		}
		if resp.Succeeded {
			st.held[n] = resp.Header.Revision
			st.seen(n, true, resp.Header.Revision)
			s.log.Debug("etcd store: shard taken", slog.Int("shard", n), slog.String("member", s.cfg.Member))
		}
	}
	var now []int
	for n := range st.held {
		if wanted[n] && !st.draining[n] {
			now = append(now, n)
		}
	}
	slices.Sort(now)
	if !slices.Equal(now, st.reported) {
		st.reported = now
		w.report(out, now)
	}
	return errors.Join(errs...)
}

// releaseShard deletes shard n's key if it is still the one this process
// created (CreateRevision crev), and records in st that it is no longer
// held.
func (s *Store) releaseShard(ctx context.Context, st *shardState, prefix string, n int, crev int64) error {
	k := prefix + strconv.Itoa(n)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", crev)).
		Then(clientv3.OpDelete(k)).
		Commit()
	if err != nil {
		return fmt.Errorf("release shard %d: %w", n, err)
	}
	delete(st.held, n)
	delete(st.draining, n)
	if resp.Succeeded {
		st.seen(n, false, resp.Header.Revision)
	}
	s.log.Debug("etcd store: shard released", slog.Int("shard", n), slog.String("member", s.cfg.Member))
	return nil
}

// wantedShards are the shards of total that member wants among members:
// sorted by id, member i wants the shards n with n % len(members) == i.
func wantedShards(members map[string]bool, member string, total int) map[int]bool {
	ids := slices.Sorted(maps.Keys(members))
	i := slices.Index(ids, member)
	wanted := make(map[int]bool)
	if i < 0 {
		return wanted
	}
	for n := i; n < total; n += len(ids) {
		wanted[n] = true
	}
	return wanted
}

// shardOf parses a shard key under prefix.
func shardOf(k, prefix string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(k, prefix))
	return n, err == nil && strings.HasPrefix(k, prefix) && n >= 0
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
			return nil, fmt.Errorf("etcd store: identify: lock bucket %d: %w", bucket, err)
		}
	}
	unlock := func() {
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
	_, err = s.cli.Put(ctx, marker, s.cfg.Member, clientv3.WithLease(lease.ID))
	return err
}
