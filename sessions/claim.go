package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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

// Owners is a Claimer that tells whether the process that recorded a
// queued message (Queued.Owner) still runs: a live process's message is
// its own to answer, even while it does not hold the conversation yet
// (the moment between recording the message and claiming it for its
// turn), and Recover leaves it alone, this process's own included.
type Owners interface {
	// Alive reports whether owner is a process that runs now, this one
	// included.
	Alive(ctx context.Context, owner string) (bool, error)
}

// Handoff is a Claimer whose release passes a short note on to the next
// process that claims the conversation. The Manager passes on the
// requests its replies made to the conversation's destination that the
// platform's windows still count, so that the next process, whose own
// schedule never saw them, keeps to the same windows.
type Handoff interface {
	// Leave sets the note the release of this process's claim of key
	// passes on.
	Leave(key Key, note []byte)
	// Found returns, once, the note passed on to this process's claim of
	// key by another process's release, or nil.
	Found(key Key) []byte
}

// encodeAges is a Handoff note: the ages of requests, in whole
// milliseconds rounded down (a request taken for later than it was only
// makes the window stricter).
func encodeAges(ages []time.Duration) []byte {
	ms := make([]int64, len(ages))
	for i, a := range ages {
		ms[i] = a.Milliseconds()
	}
	b, _ := json.Marshal(ms) // a slice of numbers always encodes
	return b
}

// decodeAges reads a note of encodeAges; a note it cannot read is none.
func decodeAges(note []byte) []time.Duration {
	var ms []int64
	if len(note) == 0 || json.Unmarshal(note, &ms) != nil {
		return nil
	}
	ages := make([]time.Duration, 0, len(ms))
	for _, v := range ms {
		if v >= 0 {
			ages = append(ages, time.Duration(v)*time.Millisecond)
		}
	}
	return ages
}

// passOn leaves, for the release of this process's claim of key, the
// requests its replies made to destination dest that a window still
// counts (none for an empty dest).
func (m *Manager) passOn(hs Handoff, key Key, dest string) {
	if dest != "" {
		hs.Leave(key, encodeAges(m.engine.Recent(dest)))
	}
}

// claimHold is this process's claim on one conversation, shared by its
// running turns.
type claimHold struct {
	dest    string        // the destination its turns' replies go to
	ready   chan struct{} // closed once the claim was taken, or failed (err)
	err     error
	lost    <-chan struct{}
	release func()
	users   int // turns holding it; guarded by Manager.claimMu
}

// claim holds t's conversation for this process while its turn runs,
// when the store is shared by several processes (Claimer); done gives it
// up once no turn of the conversation runs. lost is closed when the claim
// is lost (nil for a store of one process). On a Handoff store, the
// destination dest of the turn's reply counts the requests the process
// that held the conversation before made there, and the release passes
// this process's on.
func (m *Manager) claim(ctx context.Context, key Key, dest Destination) (lost <-chan struct{}, done func(), err error) {
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
		h = &claimHold{ready: make(chan struct{}), dest: dest.ID}
		if m.claims == nil {
			m.claims = make(map[Key]*claimHold)
		}
		m.claims[key] = h
	}
	h.users++
	m.claimMu.Unlock()
	if first {
		h.lost, h.release, h.err = c.Claim(ctx, key)
		if hs, ok := c.(Handoff); ok && h.err == nil {
			m.engine.Honour(dest, decodeAges(hs.Found(key)))
		}
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
		if hs, ok := m.store.(Handoff); ok {
			m.passOn(hs, key, h.dest)
		}
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
// held. On a store of one process every conversation is held. On a
// Handoff store, found returns what the release before each claim passed
// on, and release passes on what this process's replies sent there.
func (m *Manager) holdForRecovery(ctx context.Context, platform string, ps []Progress, qs []Queued) (held func(Key) bool, found func(Key) []time.Duration, release func(), err error) {
	c, ok := m.store.(Claimer)
	if !ok {
		return func(Key) bool { return true }, func(Key) []time.Duration { return nil }, func() {}, nil
	}
	hs, _ := c.(Handoff)
	keys := make(map[Key]bool)
	qs, err = m.orphaned(ctx, qs, ps)
	if err != nil {
		return nil, nil, nil, err
	}
	dest := make(map[Key]string)
	for _, p := range ps {
		if p.Key.Platform == platform {
			keys[p.Key], dest[p.Key] = false, p.Destination
		}
	}
	for _, q := range qs {
		if q.Key.Platform == platform {
			keys[q.Key], dest[q.Key] = false, q.Destination
		}
	}
	notes := make(map[Key][]time.Duration)
	releases := make(map[Key]func())
	release = func() {
		for k, r := range releases {
			if hs != nil {
				m.passOn(hs, k, dest[k])
			}
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
			return nil, nil, nil, fmt.Errorf("hold %s: %w", k, err)
		}
		if ok {
			keys[k] = true
			releases[k] = r
			if hs != nil {
				notes[k] = decodeAges(hs.Found(k))
			}
		}
	}
	return func(k Key) bool { return keys[k] }, func(k Key) []time.Duration { return notes[k] }, release, nil
}

// orphaned are the queued messages of qs that no live process (this one
// included) recorded (see Owners), and those whose turn started (a progress record
// of ps): all of them on a store without Owners.
func (m *Manager) orphaned(ctx context.Context, qs []Queued, ps []Progress) ([]Queued, error) {
	o, ok := m.store.(Owners)
	if !ok {
		return qs, nil
	}
	type turn struct {
		key Key
		id  uint64
	}
	started := make(map[turn]bool, len(ps))
	for _, p := range ps {
		started[turn{p.Key, p.ID}] = true
	}
	alive := make(map[string]bool)
	var out []Queued
	for _, q := range qs {
		if q.Owner != "" && !started[turn{q.Key, q.ID}] {
			live, seen := alive[q.Owner]
			if !seen {
				var err error
				if live, err = o.Alive(ctx, q.Owner); err != nil {
					return nil, fmt.Errorf("is %s alive: %w", q.Owner, err)
				}
				alive[q.Owner] = live
			}
			if live {
				continue
			}
		}
		out = append(out, q)
	}
	return out, nil
}
