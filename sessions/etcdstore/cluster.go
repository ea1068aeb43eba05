package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

func (s *Store) electionPrefix(name string) string { return s.p + "leaders/" + escape(name) }

// Lead blocks until this process leads name (or ctx ends), then returns a
// context that ends when leadership is lost (the session lease is gone,
// or the leader key was deleted) or ctx ends; leadership is then given
// up. addr is advertised to the other processes while leading (see
// LeaderAddr). A process campaigns for a name once at a time. The
// election is etcd's (concurrency.Election on the session lease), so a
// leader that dies is followed within Failover.
func (s *Store) Lead(ctx context.Context, name, addr string) (context.Context, error) {
	if name == "" {
		return nil, errors.New("etcd store: lead: empty name")
	}
	s.sessMu.Lock()
	if s.leading[name] {
		s.sessMu.Unlock()
		return nil, fmt.Errorf("etcd store: lead %q: this process campaigns for it already", name)
	}
	s.leading[name] = false
	s.sessMu.Unlock()
	forget := func() {
		s.sessMu.Lock()
		delete(s.leading, name)
		s.sessMu.Unlock()
	}
	for {
		ss, err := s.session(ctx)
		if err != nil {
			forget()
			return nil, fmt.Errorf("etcd store: lead %q: %w", name, err)
		}
		e := concurrency.NewElection(ss.cs, s.electionPrefix(name))
		cctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(ss.cs.Ctx(), cancel) // a lost session ends the campaign
		err = e.Campaign(cctx, addr)
		stop()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				forget()
				return nil, ctx.Err()
			}
			if ss.leaseLost(ctx, err) {
				continue // campaign again on the next session
			}
			select {
			case <-ss.done():
				continue
			default:
			}
			forget()
			return nil, fmt.Errorf("etcd store: lead %q: %w", name, err)
		}
		// Campaign may return for a key its lease lost meanwhile: look.
		resp, err := s.cli.Get(ctx, e.Key())
		if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != e.Rev() {
			if ctx.Err() != nil {
				forget()
				return nil, ctx.Err()
			}
			continue
		}
		lctx, lcancel := context.WithCancel(ctx)
		s.sessMu.Lock()
		s.leading[name] = true
		s.sessMu.Unlock()
		go s.holdLeadership(lctx, lcancel, e, ss, resp.Header.Revision, forget)
		return lctx, nil
	}
}

// holdLeadership ends lctx when the leadership of e is lost, and resigns
// when lctx ends.
func (s *Store) holdLeadership(lctx context.Context, lcancel context.CancelFunc, e *concurrency.Election, ss *session, rev int64, forget func()) {
	defer lcancel()
	defer forget() // before lctx ends: the caller may campaign again at once
	wch := s.cli.Watch(lctx, e.Key(), clientv3.WithRev(rev+1), clientv3.WithFilterPut())
	for {
		select {
		case <-lctx.Done():
			ctx, cancel := s.opCtx(context.Background())
			if err := e.Resign(ctx); err != nil {
				s.log.Warn("etcd store: resign leadership (it ends with the session)", slog.Any("error", err))
			}
			cancel()
			return
		case <-ss.done():
			return
		case <-s.stop:
			return
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil || len(wr.Events) > 0 {
				// Deleted, or no longer watched: not sure to lead.
				ctx, cancel := s.opCtx(context.Background())
				_ = e.Resign(ctx)
				cancel()
				return
			}
		}
	}
}

// LeaderAddr returns the address the current leader of name advertised
// ("" when there is no leader).
func (s *Store) LeaderAddr(ctx context.Context, name string) (string, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return "", err
	}
	defer cancel()
	resp, err := s.cli.Get(ctx, s.electionPrefix(name)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("etcd store: leader of %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Member is a live palaver process of the deployment.
type Member struct {
	ID      string
	Started time.Time
	// Addr is the internal URL the process advertises (Config.Advertise).
	Addr string
	// Self marks this process.
	Self bool
}

// Members lists the live processes (those whose session lease is
// alive), by id.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := s.cli.Get(ctx, s.p+"members/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd store: list members: %w", err)
	}
	out := make([]Member, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r memberRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("etcd store: list members: decode %s: %w", kv.Key, err)
		}
		id := strings.TrimPrefix(string(kv.Key), s.p+"members/")
		out = append(out, Member{ID: id, Started: r.Started, Addr: r.Addr, Self: id == s.cfg.Member})
	}
	return out, nil
}

// owner names this process as it runs now, on its session lease
// (Queued.Owner): "<member>/<lease hex>", "" while a lost session is
// replaced.
func (s *Store) owner() string {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if s.sess == nil {
		return ""
	}
	return fmt.Sprintf("%s/%x", s.cfg.Member, s.sess.lease())
}

// Alive reports whether owner (a Queued.Owner) is a process that runs now
// (sessions.Owners), this one included: its member record is there, on
// the same session lease. A process that restarted under the same member
// name, or took a new lease, runs on another: what it recorded before is
// no longer its.
func (s *Store) Alive(ctx context.Context, owner string) (bool, error) {
	member, lease, ok := strings.Cut(owner, "/")
	if !ok {
		return false, nil
	}
	if owner == s.owner() {
		return true, nil
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	resp, err := s.cli.Get(ctx, s.memberKey(member))
	if err != nil {
		return false, fmt.Errorf("etcd store: read member %s: %w", member, err)
	}
	if len(resp.Kvs) == 0 {
		return false, nil
	}
	var r memberRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return false, fmt.Errorf("etcd store: decode member %s: %w", member, err)
	}
	return r.Lease == lease, nil
}

// Role summarises what this process does in the deployment, for health
// reports.
type Role struct {
	Member string `json:"member"`
	// Lease is the session lease (as etcdctl shows it, hex), "" while a
	// lost one is replaced.
	Lease string `json:"lease"`
	// Leading are the names this process leads (Lead).
	Leading []string `json:"leading"`
	// Shards are the shards this process runs now (Watch), of
	// ShardTotal; Receiving those of them another process still holds,
	// while they are handed over to this one.
	Shards     []int `json:"shards,omitempty"`
	Receiving  []int `json:"receiving,omitempty"`
	ShardTotal int   `json:"shard_total,omitempty"`
}

// Role reports what this process does now.
func (s *Store) Role() Role {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	r := Role{Member: s.cfg.Member}
	if s.sess != nil {
		r.Lease = fmt.Sprintf("%x", s.sess.lease())
	}
	for name, leads := range s.leading {
		if leads {
			r.Leading = append(r.Leading, name)
		}
	}
	slices.Sort(r.Leading)
	if w := s.shards; w != nil {
		r.Shards, r.Receiving, r.ShardTotal = w.held(), w.incoming(), w.total
	}
	return r
}

// Endpoint is an etcd member as Ping found it.
type Endpoint struct {
	Name string
	URL  string
	// Version, DBSize (bytes of its database file) and Leader are what it
	// answered; Err is set instead when it did not.
	Version string
	DBSize  int64
	Leader  bool
	Err     error
}

// Ping asks the cluster for its members and each member (at each of its
// client URLs) for its status, within DialTimeout. It fails when the
// cluster does not answer at all; a member that does not answer has Err
// set.
func (s *Store) Ping(ctx context.Context) ([]Endpoint, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return ping(ctx, s.cli, s.cfg.DialTimeout)
}

// Ping connects to the cluster of cfg without opening a store (no session,
// no member record: for palaver check) and reports its members as
// (*Store).Ping does.
func Ping(ctx context.Context, cfg Config) ([]Endpoint, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout,
		Username: cfg.Username, Password: cfg.Password, TLS: cfg.TLS, Logger: zap.NewNop(), Context: ctx})
	if err != nil {
		return nil, unreachable(cfg, err)
	}
	defer cli.Close()
	eps, err := ping(ctx, cli, cfg.DialTimeout)
	if err != nil {
		return nil, unreachable(cfg, err)
	}
	return eps, nil
}

func ping(ctx context.Context, cli *clientv3.Client, timeout time.Duration) ([]Endpoint, error) {
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd store: list the cluster's members: %w", err)
	}
	var out []Endpoint
	for _, m := range ml.Members {
		for _, u := range m.ClientURLs {
			out = append(out, Endpoint{Name: m.Name, URL: u})
		}
	}
	// Members answer side by side, each within timeout.
	var wg sync.WaitGroup
	for i := range out {
		ep := &out[i]
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := cli.Status(sctx, ep.URL)
			if err != nil {
				ep.Err = err
				return
			}
			ep.Version, ep.DBSize, ep.Leader = st.Version, st.DbSize, st.Leader == st.Header.MemberId
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.URL, b.URL) })
	return out, nil
}
