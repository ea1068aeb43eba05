package etcdstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/sessions"
)

// claim is a conversation this process holds: rev is the claim key's
// CreateRevision, which every write of the conversation compares. found
// is the note the process that released it before passed on (Found),
// leave the one its release passes on (Leave).
type claim struct {
	rev   int64
	found []byte
	leave []byte
}

// MaxNote bounds a note passed from one claim to the next (Leave): a
// longer one is not passed on.
const MaxNote = 4 << 10

// note is the value of handoff/<conv>: what a process releasing the
// conversation passed on to the next that claims it.
type note struct {
	From string `json:"from"` // the member that released it
	Note []byte `json:"note"`
}

// Leave sets what the release of this process's claim of key passes on
// to the next process that claims it (sessions.Handoff): its replies'
// recent requests to the conversation's destination. It is written with
// the release, under this process's lease, and taken (deleted) by the
// next claim; a note over MaxNote, or for a key this process does not
// hold, is dropped.
func (s *Store) Leave(key sessions.Key, n []byte) {
	name, err := keyName(key)
	if err != nil || len(n) > MaxNote {
		return
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if c, ok := s.claims[name]; ok {
		c.leave = bytes.Clone(n)
		s.claims[name] = c
	}
}

// Found returns, once, the note the release before this process's claim
// of key passed on (see Leave), or nil when there was none or it was
// this process's own.
func (s *Store) Found(key sessions.Key) []byte {
	name, err := keyName(key)
	if err != nil {
		return nil
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	c, ok := s.claims[name]
	if !ok {
		return nil
	}
	n := c.found
	c.found = nil
	s.claims[name] = c
	return n
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
	ck, hk := s.claimKey(name), s.handoffKey(name)
	var ss *session
	var resp *clientv3.TxnResponse
	for {
		if ss, err = s.session(ctx); err != nil {
			return nil, nil, 0, fmt.Errorf("etcd store: claim %s: %w", key, err)
		}
		tctx, cancel := s.opCtx(ctx)
		resp, err = s.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(ck), "=", 0)).
			Then(clientv3.OpPut(ck, s.cfg.Member, clientv3.WithLease(ss.lease())),
				clientv3.OpGet(hk), clientv3.OpDelete(hk)).
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
	c := claim{rev: rev}
	if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) == 1 {
		var n note
		if err := json.Unmarshal(kvs[0].Value, &n); err == nil && n.From != s.cfg.Member {
			c.found = n.Note
		}
	}
	s.sessMu.Lock()
	s.claims[name] = c
	s.sessMu.Unlock()
	var once sync.Once
	return ss.done(), func() { once.Do(func() { s.release(name, rev) }) }, rev, nil
}

// Notes passed on with a release (Leave) live on a lease of their own,
// not the process's session: a process that stops right after its last
// answers still passes their requests on. The lease lasts noteTTL and a
// new one is granted once the one in use is noteRenew old, so that a note
// lives noteTTL-noteRenew at least (more than a Telegram group's minute,
// the longest window it carries) and noteTTL at most.
const (
	noteTTL   = 90 * time.Second
	noteRenew = 25 * time.Second
)

// noteLease is the lease notes are written under (see noteTTL), granted
// when the one in use is too old; NoLease when none can be granted now
// (the note is then not passed on).
func (s *Store) noteLease() clientv3.LeaseID {
	s.noteMu.Lock()
	defer s.noteMu.Unlock()
	if s.noteID != clientv3.NoLease && time.Since(s.noteGranted) < noteRenew {
		return s.noteID
	}
	ctx, cancel := s.opCtx(context.Background())
	defer cancel()
	g, err := s.cli.Grant(ctx, int64(noteTTL/time.Second))
	if err != nil {
		s.log.Debug("etcd store: grant the lease of handoff notes", slog.Any("error", err))
		return clientv3.NoLease
	}
	s.noteID, s.noteGranted = g.ID, time.Now()
	return s.noteID
}

// release gives up the claim of revision rev on conversation name. The
// key is deleted only if it is still that claim's, in one transaction
// with the note it passes on (Leave, under noteLease); a failed
// delete is tried again in the background, without the note, as the key
// would otherwise stay as long as the session.
func (s *Store) release(name string, rev int64) {
	s.sessMu.Lock()
	var leave []byte
	if c, ok := s.claims[name]; ok && c.rev == rev {
		leave = c.leave
		delete(s.claims, name)
	}
	s.sessMu.Unlock()
	var lease clientv3.LeaseID
	if leave != nil {
		lease = s.noteLease()
	}
	ck := s.claimKey(name)
	ops := []clientv3.Op{clientv3.OpDelete(ck)}
	if leave != nil && lease != clientv3.NoLease {
		v, err := json.Marshal(note{From: s.cfg.Member, Note: leave})
		if err == nil {
			ops = append(ops, clientv3.OpPut(s.handoffKey(name), string(v), clientv3.WithLease(lease)))
		}
	}
	del := func() error {
		ctx, cancel := s.opCtx(context.Background())
		defer cancel()
		_, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(ck), "=", rev)).
			Then(ops...).
			Commit()
		ops = ops[:1] // tried again without the note (its lease may be gone)
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
