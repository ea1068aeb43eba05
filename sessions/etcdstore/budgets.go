package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func (s *Store) budgetPrefix(name string) string { return s.p + "budgets/" + escape(name) + "/" }

// ShareBudget shares the bot budget name (a platform's per-bot request
// limit, which every process sending as that bot draws on) among the
// processes that draw on it, until ctx ends or the store closes.
//
// drawing says, whenever it changes, whether this process draws on the
// budget now (sessions.Engine.BudgetDraws); while it does, the process
// registers budgets/<name>/<member> under its session lease. others is
// called with how many other live processes are registered, at once and
// whenever that number changes (sessions.Engine.SetBudgetOthers). A
// process that dies is counted until its lease expires; while a lost
// session is replaced, the last count stands.
func (s *Store) ShareBudget(ctx context.Context, name string, drawing <-chan bool, others func(int)) {
	st := &budgetShare{s: s, prefix: s.budgetPrefix(name), key: s.budgetPrefix(name) + escape(s.cfg.Member), others: others, last: -1}
	wait := 100 * time.Millisecond
	for {
		ss, err := s.session(ctx)
		if err != nil {
			return // ctx ended, or the store closed
		}
		err = st.epoch(ctx, ss, drawing)
		if err == nil || ctx.Err() != nil || s.closed.Load() {
			return
		}
		s.log.Warn("etcd store: share the bot's budget", slog.String("budget", name), slog.Any("error", err))
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-ss.done():
		case <-time.After(wait):
		}
		wait = min(2*wait, s.cfg.Failover)
	}
}

// budgetShare is ShareBudget's state.
type budgetShare struct {
	s      *Store
	prefix string
	key    string // this process's registration
	others func(int)
	on     bool // this process draws
	last   int  // others last reported, -1 before the first
}

// report calls others when n changed.
func (st *budgetShare) report(n int) {
	if n != st.last {
		st.last = n
		st.others(n)
	}
}

// register writes (or deletes) this process's key as st.on says.
func (st *budgetShare) register(ctx context.Context, ss *session) error {
	ctx, cancel := st.s.opCtx(ctx)
	defer cancel()
	var err error
	if st.on {
		_, err = st.s.cli.Put(ctx, st.key, "", clientv3.WithLease(ss.lease()))
	} else {
		_, err = st.s.cli.Delete(ctx, st.key)
	}
	return err
}

// epoch registers and counts under session ss until ss is lost (an
// error), ctx ends or the store closes (nil).
func (st *budgetShare) epoch(ctx context.Context, ss *session, drawing <-chan bool) error {
	// Registered first: a process that counted the others before they
	// saw it could take a share they still use.
	if err := st.register(ctx, ss); err != nil {
		return err
	}
	gctx, cancel := st.s.opCtx(ctx)
	resp, err := st.s.cli.Get(gctx, st.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	cancel()
	if err != nil {
		return err
	}
	members := make(map[string]bool)
	for _, kv := range resp.Kvs {
		if k := string(kv.Key); k != st.key {
			members[k] = true
		}
	}
	st.report(len(members))
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	wch := st.s.cli.Watch(wctx, st.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-st.s.stop:
			return nil
		case <-ss.done():
			// The count stands until the new session counts again.
			return errors.New("the session lease was lost")
		case on, ok := <-drawing:
			if !ok {
				return nil
			}
			if on != st.on {
				st.on = on
				if err := st.register(ctx, ss); err != nil {
					return fmt.Errorf("register: %w", err)
				}
			}
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				return fmt.Errorf("watch %s: %v", st.prefix, wr.Err())
			}
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				if k == st.key || !strings.HasPrefix(k, st.prefix) {
					continue
				}
				if ev.Type == clientv3.EventTypeDelete {
					delete(members, k)
				} else {
					members[k] = true
				}
			}
			st.report(len(members))
		}
	}
}
