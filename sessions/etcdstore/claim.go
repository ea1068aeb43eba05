package etcdstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/sessions"
)

// claim is a conversation this process holds: rev is the claim key's
// CreateRevision, which every write of the conversation compares.
type claim struct {
	rev int64
}

// heldClaim is the revision of this process's claim on conversation
// name, 0 when it holds none. A claim whose lease was lost stays until it
// is released, so that writes fail with sessions.ErrNotOwner rather than
// pass as writes of a conversation nobody holds.
func (s *Store) heldClaim(name string) int64 {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	return s.claims[name].rev
}

// Claim holds key for this process (see sessions.Claimer): it creates the
// claim key under the session lease, waiting while another process (or
// another Claim of this one) holds it. lost is closed when the session
// lease is gone; from then on the conversation's writes fail with
// sessions.ErrNotOwner until release.
func (s *Store) Claim(ctx context.Context, key sessions.Key) (lost <-chan struct{}, release func(), err error) {
	for {
		lost, release, rev, err := s.tryClaim(ctx, key)
		if err != nil || release != nil {
			return lost, release, err
		}
		if err := s.waitDeleted(ctx, s.claimKey(key.String()), rev, lost); err != nil {
			return nil, nil, fmt.Errorf("etcd store: claim %s: %w", key, err)
		}
	}
}

// TryClaim is Claim without the wait: ok is false (and err nil) when
// another live process, or another Claim of this one, holds key.
func (s *Store) TryClaim(ctx context.Context, key sessions.Key) (lost <-chan struct{}, release func(), ok bool, err error) {
	lost, release, _, err = s.tryClaim(ctx, key)
	return lost, release, release != nil, err
}

// tryClaim creates key's claim key if it is absent. When another holds
// it, release is nil, lost is the session's and rev the revision it was
// found at.
func (s *Store) tryClaim(ctx context.Context, key sessions.Key) (lost <-chan struct{}, release func(), rev int64, err error) {
	if s.closed.Load() {
		return nil, nil, 0, sessions.ErrStoreClosed
	}
	name, err := keyName(key)
	if err != nil {
		return nil, nil, 0, err
	}
	ck := s.claimKey(name)
	var ss *session
	var resp *clientv3.TxnResponse
	for {
		if ss, err = s.session(ctx); err != nil {
			return nil, nil, 0, fmt.Errorf("etcd store: claim %s: %w", key, err)
		}
		tctx, cancel := s.opCtx(ctx)
		resp, err = s.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(ck), "=", 0)).
			Then(clientv3.OpPut(ck, s.cfg.Member, clientv3.WithLease(ss.lease()))).
			Commit()
		cancel()
		if err == nil {
			break
		}
		if !ss.leaseLost(ctx, err) {
			return nil, nil, 0, fmt.Errorf("etcd store: claim %s: %w", key, err)
		}
	}
	rev = resp.Header.Revision
	if !resp.Succeeded {
		return ss.done(), nil, rev, nil
	}
	s.sessMu.Lock()
	s.claims[name] = claim{rev: rev}
	s.sessMu.Unlock()
	var once sync.Once
	return ss.done(), func() { once.Do(func() { s.release(name, rev) }) }, rev, nil
}

// release gives up the claim of revision rev on conversation name. The
// key is deleted only if it is still that claim's; a failed delete is
// tried again in the background, as the key would otherwise stay as long
// as the session.
func (s *Store) release(name string, rev int64) {
	s.sessMu.Lock()
	if c, ok := s.claims[name]; ok && c.rev == rev {
		delete(s.claims, name)
	}
	s.sessMu.Unlock()
	ck := s.claimKey(name)
	del := func() error {
		ctx, cancel := s.opCtx(context.Background())
		defer cancel()
		_, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(ck), "=", rev)).
			Then(clientv3.OpDelete(ck)).
			Commit()
		return err
	}
	if s.closed.Load() || del() == nil {
		return
	}
	go func() {
		wait := 100 * time.Millisecond
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(wait):
			}
			err := del()
			if err == nil {
				return
			}
			s.log.Warn("etcd store: release a conversation", slog.String("conversation", name), slog.Any("error", err))
			wait = min(2*wait, s.cfg.Failover)
		}
	}()
}
