package sessions

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotOwner reports a write refused because another process holds the
// conversation (see Claimer), or because this process's claim was lost:
// its lease expired while the store could not be reached. Nothing was
// written.
var ErrNotOwner = errors.New("the conversation is held by another process")

// Claimer is a Store shared by several processes (the etcd store) that
// hands each conversation to one process at a time. The Manager claims a
// conversation before a turn runs and releases it when no turn of the
// conversation runs; a store used by one process (BoltStore) does not
// implement it.
//
// While this process holds key, every write for key is fenced: the
// store's transaction checks the claim it took and refuses with
// ErrNotOwner once the claim is gone, so a process that lost its claim
// never commits afterwards. A write for a key nobody holds is allowed;
// one for a key another process holds is refused with ErrNotOwner, except
// SetQueued: a user's message is recorded whichever process receives it
// (two connections on one Discord shard while it is handed over), and
// accepted once by the store's duplicate check; its turn then waits for
// the claim.
type Claimer interface {
	// Claim holds key for this process. It waits while another live
	// process holds it (until that one releases it, or its lease
	// expires), or until ctx ends. lost is closed when the claim can no
	// longer be trusted (the lease expired or was revoked); release gives
	// the claim up and may be called more than once.
	Claim(ctx context.Context, key Key) (lost <-chan struct{}, release func(), err error)
	// TryClaim is Claim without the wait: ok is false (and err nil) when
	// another live process holds key.
	TryClaim(ctx context.Context, key Key) (lost <-chan struct{}, release func(), ok bool, err error)
}

// claimHold is this process's claim on one conversation, shared by its
// running turns.
type claimHold struct {
	ready   chan struct{} // closed once the claim was taken, or failed (err)
	err     error
	lost    <-chan struct{}
	release func()
	users   int // turns holding it; guarded by Manager.claimMu
}

// claim holds t's conversation for this process while its turn runs,
// when the store is shared by several processes (Claimer); done gives it
// up once no turn of the conversation runs. lost is closed when the claim
// is lost (nil for a store of one process).
func (m *Manager) claim(ctx context.Context, key Key) (lost <-chan struct{}, done func(), err error) {
	c, ok := m.store.(Claimer)
	if !ok {
		return nil, func() {}, nil
	}
	m.claimMu.Lock()
	h := m.claims[key]
	if h != nil && h.stale() {
		h = nil // lost: the next turn claims again
	}
	first := h == nil
	if first {
		h = &claimHold{ready: make(chan struct{})}
		if m.claims == nil {
			m.claims = make(map[Key]*claimHold)
		}
		m.claims[key] = h
	}
	h.users++
	m.claimMu.Unlock()
	if first {
		h.lost, h.release, h.err = c.Claim(ctx, key)
		close(h.ready)
	} else {
		select {
		case <-h.ready:
		case <-ctx.Done():
			m.unclaim(key, h)
			return nil, nil, ctx.Err()
		}
	}
	if h.err != nil {
		m.unclaim(key, h)
		return nil, nil, h.err
	}
	return h.lost, func() { m.unclaim(key, h) }, nil
}

// stale reports whether h was taken and lost since.
func (h *claimHold) stale() bool {
	select {
	case <-h.ready:
	default:
		return false
	}
	if h.err != nil {
		return true
	}
	select {
	case <-h.lost:
		return true
	default:
		return false
	}
}

// unclaim drops a turn's use of h, releasing the claim with the last one.
func (m *Manager) unclaim(key Key, h *claimHold) {
	m.claimMu.Lock()
	h.users--
	last := h.users == 0
	if last && m.claims[key] == h {
		delete(m.claims, key)
	}
	m.claimMu.Unlock()
	if last && h.release != nil {
		h.release()
	}
}

// watchClaim cancels a turn with ErrNotOwner when lost is closed: its
// claim is gone, so nothing it would write could be committed.
func watchClaim(ctx context.Context, lost <-chan struct{}, cancel context.CancelCauseFunc) {
	if lost == nil {
		return
	}
	go func() {
		select {
		case <-lost:
			cancel(ErrNotOwner)
		case <-ctx.Done():
		}
	}()
}

// holdForRecovery claims, on a store shared by several processes, the
// conversations of platform that have records to finalise (ps, qs) and
// that no live process holds: held reports which; release gives them up.
// A conversation this process has a turn of, running or queued, is not
// held. On a store of one process every conversation is held.
func (m *Manager) holdForRecovery(ctx context.Context, platform string, ps []Progress, qs []Queued) (held func(Key) bool, release func(), err error) {
	c, ok := m.store.(Claimer)
	if !ok {
		return func(Key) bool { return true }, func() {}, nil
	}
	keys := make(map[Key]bool)
	for _, p := range ps {
		if p.Key.Platform == platform {
			keys[p.Key] = false
		}
	}
	for _, q := range qs {
		if q.Key.Platform == platform {
			keys[q.Key] = false
		}
	}
	var releases []func()
	release = func() {
		for _, r := range releases {
			r()
		}
	}
	for k := range keys {
		// A conversation with a turn of this process, running or queued
		// (a message it took since it started, whose turn has not claimed
		// the conversation yet), is this process's own to finish.
		m.claimMu.Lock()
		_, running := m.claims[k]
		m.claimMu.Unlock()
		m.mu.Lock()
		_, mine := m.convs[k]
		m.mu.Unlock()
		if running || mine {
			continue
		}
		_, r, ok, err := c.TryClaim(ctx, k)
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("hold %s: %w", k, err)
		}
		if ok {
			keys[k] = true
			releases = append(releases, r)
		}
	}
	return func(k Key) bool { return keys[k] }, release, nil
}
