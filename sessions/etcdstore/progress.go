package etcdstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/sessions"
)

// progressBuffer holds the progress records set but not written yet
// (SetProgress writes behind, as BoltStore does).
type progressBuffer struct {
	mu      sync.Mutex                 // guards pending, gen and closed
	pending map[string]pendingProgress // by etcd key
	gen     uint64
	closed  bool
	// listMu is held for reading by Progresses across its read of etcd
	// and of pending, and for writing while records written leave
	// pending: a record never vanishes from Progresses on its way.
	listMu sync.RWMutex
	kick   chan struct{} // a record became pending
}

// pendingProgress is a record not written yet; p nil clears it.
type pendingProgress struct {
	name string
	id   uint64
	p    *sessions.Progress
	gen  uint64
}

func (b *progressBuffer) init() {
	b.pending = make(map[string]pendingProgress)
	b.kick = make(chan struct{}, 1)
}

// generation is the generation of the newest record set.
func (b *progressBuffer) generation() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gen
}

// drop removes the records of conversation name (of turn *id only, when
// id is not nil) set at generation upTo or before: a write replaced them.
func (b *progressBuffer) drop(name string, id *uint64, upTo uint64) {
	b.listMu.Lock()
	defer b.listMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, pp := range b.pending {
		if pp.name == name && (id == nil || pp.id == *id) && pp.gen <= upTo {
			delete(b.pending, k)
		}
	}
}

// SetProgress records p (or with p nil clears the record) for turn id of
// the conversation. The record is kept in memory and written with the
// other pending ones within the ProgressFlush period, or on Close;
// Progresses sees it at once. A record of a conversation another process
// holds (see Claim) is not written.
func (s *Store) SetProgress(ctx context.Context, key sessions.Key, id uint64, p *sessions.Progress) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := keyName(key)
	if err != nil {
		return err
	}
	if p != nil {
		cp := *p
		cp.Key, cp.ID = key, id
		cp.Reply = bytes.Clone(p.Reply)
		p = &cp
	}
	b := &s.progress
	b.mu.Lock()
	if b.closed {
		// Close sets closed under mu before its last flush, so a record
		// accepted here is always written.
		b.mu.Unlock()
		return sessions.ErrStoreClosed
	}
	b.gen++
	b.pending[s.turnKey("progress", name, id)] = pendingProgress{name: name, id: id, p: p, gen: b.gen}
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return nil
}

// Progresses lists every progress record, pending or written, ordered by
// conversation and turn.
func (s *Store) Progresses(ctx context.Context) ([]sessions.Progress, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	b := &s.progress
	b.listMu.RLock()
	defer b.listMu.RUnlock()
	resp, err := s.cli.Get(ctx, s.p+"progress/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd store: read progress: %w", err)
	}
	byKey := make(map[string]sessions.Progress, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		key, id, ok := s.parseTurnKey("progress", string(kv.Key))
		if !ok {
			s.log.Warn("etcd store: skipping progress record with a malformed key", slog.String("key", string(kv.Key)))
			continue
		}
		var p sessions.Progress
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return nil, fmt.Errorf("etcd store: decode progress of %s: %w", key, err)
		}
		p.Key, p.ID = key, id
		byKey[string(kv.Key)] = p
	}
	// Pending records are newer than written ones.
	b.mu.Lock()
	for k, pp := range b.pending {
		if pp.p == nil {
			delete(byKey, k)
			continue
		}
		cp := *pp.p
		cp.Reply = bytes.Clone(pp.p.Reply)
		byKey[k] = cp
	}
	b.mu.Unlock()
	out := slices.Collect(maps.Values(byKey))
	sortTurns(out, func(p sessions.Progress) (sessions.Key, uint64) { return p.Key, p.ID })
	return out, nil
}

// flushLoop writes pending progress records within ProgressFlush of the
// first one becoming pending, until Close.
func (s *Store) flushLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(s.cfg.ProgressFlush)
	timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.progress.kick:
		}
		timer.Reset(s.cfg.ProgressFlush)
		select {
		case <-s.stop:
			timer.Stop()
			return
		case <-timer.C:
		}
		ctx, cancel := s.opCtx(context.Background())
		err := s.flush(ctx, false)
		cancel()
		if err != nil {
			s.log.Error("etcd store: write progress records", slog.Any("error", err))
			s.kickFlush() // try again after another period
		}
	}
}

func (s *Store) kickFlush() {
	select {
	case s.progress.kick <- struct{}{}:
	default:
	}
}

// flush writes the pending progress records, many per transaction: each
// record is a transaction within it, fenced by its conversation's claim,
// so that a record of a conversation this process lost is not written
// (and is dropped) while the others are; a cleared record is deleted
// unfenced. The records of a conversation
// being written by another method wait for the next flush.
//
// The records are taken from pending only once their conversations are
// locked: a Commit replaces a conversation's pending records under the
// same lock, so a record taken before it could be written over the
// record it committed.
//
// With wait (Close), it waits for those writes instead.
func (s *Store) flush(ctx context.Context, wait bool) error {
	b := &s.progress
	b.mu.Lock()
	names := make(map[string]bool)
	for _, pp := range b.pending {
		names[pp.name] = true
	}
	b.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	if s.hooks.flushLocking != nil {
		s.hooks.flushLocking()
	}
	skipped := false
	if wait {
		defer s.locks.lock(slices.Collect(maps.Keys(names))...)()
	} else {
		for name := range names {
			unlock, ok := s.locks.tryLock(name)
			if !ok {
				delete(names, name)
				skipped = true
				continue
			}
			defer unlock()
		}
	}
	snapshot := make(map[string]pendingProgress)
	var keys []string
	b.mu.Lock()
	for k, pp := range b.pending {
		if names[pp.name] {
			snapshot[k] = pp
			keys = append(keys, k)
		}
	}
	b.mu.Unlock()
	slices.Sort(keys)

	var errs []error
	var done []string // written, refused, or never writable
	perTxn := max(1, min(64, s.cfg.MaxTxnOps/2))
	for len(keys) > 0 {
		var ops []clientv3.Op
		var batch []string
		size := 0
		for len(keys) > 0 && len(ops) < perTxn {
			k := keys[0]
			pp := snapshot[k]
			op := clientv3.OpDelete(k)
			n := len(k)
			if pp.p != nil {
				v, err := json.Marshal(pp.p)
				if err != nil {
					errs = append(errs, fmt.Errorf("encode progress of %s: %w", pp.name, err))
					keys, done = keys[1:], append(done, k)
					continue
				}
				op, n = clientv3.OpPut(k, string(v)), n+len(v)
			}
			if n > s.cfg.MaxRequestBytes/2 {
				errs = append(errs, fmt.Errorf("progress of %s: %w: a %s record", pp.name, ErrTooLarge, sizeOf(n)))
				keys, done = keys[1:], append(done, k)
				continue
			}
			if len(ops) > 0 && size+n > s.cfg.MaxRequestBytes/2 {
				break
			}
			// A record is written under the conversation's claim; one
			// cleared (its final view shown) is deleted whoever holds
			// the conversation by then: the process that answers there
			// next may have claimed it before the flush.
			var fence []clientv3.Cmp
			if pp.p != nil {
				fence = []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.claimKey(pp.name)), "=", s.heldClaim(pp.name))}
			}
			ops = append(ops, clientv3.OpTxn(fence, []clientv3.Op{op}, nil))
			batch, keys, size = append(batch, k), keys[1:], size+n
		}
		if len(ops) == 0 {
			continue
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			errs = append(errs, s.txnError(err))
			continue
		}
		for i, r := range resp.Responses {
			if !r.GetResponseTxn().Succeeded {
				s.log.Debug("etcd store: progress record not written: the conversation is held by another process",
					slog.String("conversation", snapshot[batch[i]].name))
			}
		}
		done = append(done, batch...)
	}
	if len(done) > 0 {
		b.listMu.Lock()
		b.mu.Lock()
		for _, k := range done {
			if cur, ok := b.pending[k]; ok && cur.gen == snapshot[k].gen {
				delete(b.pending, k)
			}
		}
		b.mu.Unlock()
		b.listMu.Unlock()
	}
	if skipped {
		s.kickFlush()
	}
	return errors.Join(errs...)
}
