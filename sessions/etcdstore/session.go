package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/palaver-bot/palaver/sessions"
)

// session is the process's session lease and what is attached to it:
// its member record, its claims, its leadership, its shards.
type session struct {
	cs      *concurrency.Session
	started time.Time
	stop    context.CancelFunc // ends the watchdog
}

func (ss *session) lease() clientv3.LeaseID { return ss.cs.Lease() }

// done is closed when the lease is gone: expired, revoked, or no longer
// kept alive.
func (ss *session) done() <-chan struct{} { return ss.cs.Done() }

// close revokes the lease, giving up everything attached to it.
func (ss *session) close(ctx context.Context) error {
	ss.stop()
	ss.cs.Orphan()
	_, err := ss.cs.Client().Revoke(ctx, ss.cs.Lease())
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return nil // gone already
	}
	return err
}

// leaseLost reports whether err says that ss's lease is gone, and if so
// waits until the store noticed (ss is done) or ctx ends: the caller
// tries again on the next session.
func (ss *session) leaseLost(ctx context.Context, err error) bool {
	if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false
	}
	select {
	case <-ss.done():
	case <-ctx.Done():
	}
	return true
}

// watchdog gives the session up (its done channel closes) when the lease
// was not renewed for three quarters of its TTL: before the cluster lets
// it expire and hands what it held to others, so that this process stops
// its answers, shards and leadership first. kch are the lease's
// keep-alive answers.
func (ss *session) watchdog(kch <-chan *clientv3.LeaseKeepAliveResponse, ttl time.Duration) {
	defer ss.stop()
	margin := ttl / 4
	timer := time.NewTimer(ttl - margin)
	defer timer.Stop()
	for {
		select {
		case resp, ok := <-kch:
			if !ok {
				ss.cs.Orphan()
				return
			}
			timer.Reset(time.Duration(resp.TTL)*time.Second - margin)
		case <-timer.C:
			ss.cs.Orphan()
			return
		case <-ss.cs.Done():
			return
		}
	}
}

// memberRecord is the value of members/<member>.
type memberRecord struct {
	Member  string    `json:"member"`
	Started time.Time `json:"started"`
	Addr    string    `json:"addr,omitempty"`
	Lease   string    `json:"lease"` // hex, as etcdctl shows leases
}

func (s *Store) memberKey(member string) string { return s.p + "members/" + member }

// newSession takes a new session lease and registers the member record
// under it. prev is the lease of the session it replaces (0 at Open): a
// record still held by prev is taken over; one held by another lease
// belongs to another live process, and is an error.
func (s *Store) newSession(ctx context.Context, prev clientv3.LeaseID) (*session, error) {
	ttl := int64((s.cfg.Failover + time.Second - 1) / time.Second)
	grant, err := s.cli.Grant(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("etcd store: take the session lease: %w", err)
	}
	cs, err := concurrency.NewSession(s.cli, concurrency.WithLease(grant.ID), concurrency.WithTTL(int(ttl)))
	if err != nil {
		return nil, fmt.Errorf("etcd store: keep the session lease alive: %w", err)
	}
	wctx, stop := context.WithCancel(context.Background())
	kch, err := s.cli.KeepAlive(wctx, grant.ID)
	if err != nil {
		stop()
		cs.Orphan()
		return nil, fmt.Errorf("etcd store: keep the session lease alive: %w", err)
	}
	ss := &session{cs: cs, started: time.Now().UTC(), stop: stop}
	go ss.watchdog(kch, time.Duration(ttl)*time.Second)
	rec, err := json.Marshal(memberRecord{Member: s.cfg.Member, Started: ss.started, Addr: s.cfg.Advertise, Lease: fmt.Sprintf("%x", grant.ID)})
	if err != nil {
		return nil, err
	}
	mk := s.memberKey(s.cfg.Member)
	put := clientv3.OpPut(mk, string(rec), clientv3.WithLease(grant.ID))
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(mk), "=", 0)).
		Then(put).
		Else(clientv3.OpGet(mk)).
		Commit()
	if err == nil && !resp.Succeeded {
		kv := resp.Responses[0].GetResponseRange().Kvs[0]
		if prev == 0 || clientv3.LeaseID(kv.Lease) != prev {
			err = fmt.Errorf("etcd store: %w: member %q is registered by another live process (lease %x): give each process its own cluster.member, or wait up to %v for a stopped one's lease to expire",
				ErrMemberInUse, s.cfg.Member, kv.Lease, s.cfg.Failover)
		} else {
			_, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(mk), "=", kv.ModRevision)).Then(put).Commit()
		}
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DialTimeout)
		_ = ss.close(rctx)
		cancel()
		return nil, err
	}
	return ss, nil
}

// errNoSession reports an operation that needs the session while it is
// being replaced.
var errNoSession = errors.New("etcd store: the session lease was lost and is not replaced yet")

// session returns the current session, waiting while a lost one is
// replaced, until ctx ends.
func (s *Store) session(ctx context.Context) (*session, error) {
	for {
		s.sessMu.Lock()
		ss, changed := s.sess, s.sessChanged
		s.sessMu.Unlock()
		if s.closed.Load() {
			return nil, errClosed
		}
		if ss != nil {
			return ss, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", errNoSession, ctx.Err())
		case <-changed:
		case <-s.stop:
		}
	}
}

// errClosed is the error of the coordination methods after Close.
var errClosed = sessions.ErrStoreClosed

// setSession makes ss (nil while replacing) the current session.
func (s *Store) setSession(ss *session) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	s.sess = ss
	close(s.sessChanged)
	s.sessChanged = make(chan struct{})
}

// keepSession replaces the session when its lease is lost (not renewed
// for most of Failover, or revoked): the process gives up what the old
// one held, which goes to others when the old lease expires, takes a new
// lease and registers again, trying until Close.
func (s *Store) keepSession() {
	defer s.wg.Done()
	for {
		s.sessMu.Lock()
		ss := s.sess
		s.sessMu.Unlock()
		select {
		case <-s.stop:
			return
		case <-ss.done():
		}
		s.log.Error("etcd store: session lease lost: this process's conversations, leadership and shards are given up",
			slog.String("member", s.cfg.Member), slog.String("lease", fmt.Sprintf("%x", ss.lease())))
		s.setSession(nil)
		wait := 100 * time.Millisecond
		for {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
			next, err := s.newSession(ctx, ss.lease())
			cancel()
			if err == nil {
				s.setSession(next)
				s.log.Info("etcd store: new session lease", slog.String("member", s.cfg.Member), slog.String("lease", fmt.Sprintf("%x", next.lease())))
				break
			}
			s.log.Warn("etcd store: take a new session lease", slog.Any("error", err))
			select {
			case <-s.stop:
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, s.cfg.Failover)
		}
	}
}

// waitDeleted waits until key, as of revision rev, is deleted (nil), ctx
// ends (its error), or done is closed (nil: the caller looks again).
func (s *Store) waitDeleted(ctx context.Context, key string, rev int64, done <-chan struct{}) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := s.cli.Watch(wctx, key, clientv3.WithRev(rev+1), clientv3.WithFilterPut())
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return nil
		case <-s.stop:
			return errClosed
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				return nil // compacted or cut off: the caller looks again
			}
			if len(wr.Events) > 0 {
				return nil
			}
		}
	}
}
