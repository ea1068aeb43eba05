package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// head is a conversation's history record: its entries are the keys
// hist/<ID>/<seq> for seq First to Last, none when First > Last.
type head struct {
	ID    string `json:"id"`
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// decodeHead decodes a head record; nil kv is a conversation without
// history.
func decodeHead(kv *mvccpb.KeyValue) (*head, error) {
	if kv == nil {
		return nil, nil
	}
	var h head
	if err := json.Unmarshal(kv.Value, &h); err != nil || h.ID == "" {
		return nil, fmt.Errorf("malformed history record %s: %q", kv.Key, kv.Value)
	}
	return &h, nil
}

// Settings returns the conversation's settings, the zero value when none
// were saved.
func (s *Store) Settings(ctx context.Context, key sessions.Key) (sessions.Settings, error) {
	var st sessions.Settings
	ctx, cancel, name, err := s.beginConv(ctx, key)
	if err != nil {
		return st, err
	}
	defer cancel()
	resp, err := s.cli.Get(ctx, s.settingsKey(name))
	if err == nil && len(resp.Kvs) > 0 {
		err = json.Unmarshal(resp.Kvs[0].Value, &st)
	}
	if err != nil {
		return sessions.Settings{}, fmt.Errorf("etcd store: read settings of %s: %w", key, err)
	}
	return st, nil
}

// SaveSettings replaces the conversation's settings.
func (s *Store) SaveSettings(ctx context.Context, key sessions.Key, st sessions.Settings) error {
	ctx, cancel, name, err := s.beginConv(ctx, key)
	if err != nil {
		return err
	}
	defer cancel()
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("etcd store: encode settings of %s: %w", key, err)
	}
	defer s.locks.lock(name)()
	_, err = s.update(ctx, []string{name}, func(ctx context.Context, t *txn) error {
		t.put(s.settingsKey(name), v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("etcd store: save settings of %s: %w", key, err)
	}
	return nil
}

// History returns up to limit of the conversation's newest entries,
// oldest first, as of one revision. limit <= 0 returns every retained
// entry.
func (s *Store) History(ctx context.Context, key sessions.Key, limit int) ([]sessions.Entry, error) {
	ctx, cancel, name, err := s.beginConv(ctx, key)
	if err != nil {
		return nil, err
	}
	defer cancel()
	entries, err := s.history(ctx, name, limit)
	if err != nil {
		return nil, fmt.Errorf("etcd store: read history of %s: %w", key, err)
	}
	return entries, nil
}

func (s *Store) history(ctx context.Context, name string, limit int) ([]sessions.Entry, error) {
	resp, err := s.cli.Get(ctx, s.headKey(name))
	if err != nil {
		return nil, err
	}
	var kv *mvccpb.KeyValue
	if len(resp.Kvs) > 0 {
		kv = resp.Kvs[0]
	}
	h, err := decodeHead(kv)
	if err != nil || h == nil || h.First > h.Last {
		return nil, err
	}
	opts := []clientv3.OpOption{
		clientv3.WithRange(s.histKey(h.ID, h.Last+1)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend),
		clientv3.WithRev(resp.Header.Revision),
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	r, err := s.cli.Get(ctx, s.histKey(h.ID, h.First), opts...)
	if err != nil {
		return nil, err
	}
	entries := make([]sessions.Entry, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		e, err := s.decodeEntry(h.ID, kv)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	slices.Reverse(entries)
	return entries, nil
}

// decodeEntry decodes a history record of history id.
func (s *Store) decodeEntry(id string, kv *mvccpb.KeyValue) (sessions.Entry, error) {
	var e sessions.Entry
	seq, ok := parseSeqHex(string(kv.Key[len(s.histPrefix(id)):]))
	if !ok {
		return e, fmt.Errorf("malformed history key %q", kv.Key)
	}
	if err := json.Unmarshal(kv.Value, &e); err != nil {
		return e, fmt.Errorf("decode entry %d: %w", seq, err)
	}
	e.Seq = seq
	return e, nil
}

// Append adds entries in one transaction, assigning each its Seq (the
// caller's entries are not modified), prunes the oldest entries beyond the
// retention and, when done is true, clears the conversation's progress
// records, written and pending.
func (s *Store) Append(ctx context.Context, key sessions.Key, done bool, entries ...sessions.Entry) error {
	if err := s.write(ctx, key, change{Commit: sessions.Commit{Entries: entries}, dropAll: done}); err != nil {
		return fmt.Errorf("etcd store: append to %s: %w", key, err)
	}
	return nil
}

// Commit makes c one transaction, durable when it returns (see
// sessions.Commit and sessions.BoltStore.Commit, whose semantics it
// shares): a refused user entry (sessions.ErrDuplicate) and a lost claim
// (sessions.ErrNotOwner) write nothing.
func (s *Store) Commit(ctx context.Context, key sessions.Key, c sessions.Commit) error {
	if err := s.write(ctx, key, change{Commit: c, dedupe: true}); err != nil {
		return fmt.Errorf("etcd store: commit to %s: %w", key, err)
	}
	return nil
}

// SaveProgress records p as turn id's progress record durably, replacing
// any record pending write-behind.
func (s *Store) SaveProgress(ctx context.Context, key sessions.Key, id uint64, p sessions.Progress) error {
	return s.Commit(ctx, key, sessions.Commit{ProgressID: id, Progress: &p})
}

// change is a write of a conversation: a Commit, or an Append.
type change struct {
	sessions.Commit
	dedupe  bool // refuse user entries accepted before (Commit)
	dropAll bool // clear every progress record (Append with done)
}

// write makes ch one transaction.
func (s *Store) write(ctx context.Context, key sessions.Key, ch change) error {
	ctx, cancel, name, err := s.beginConv(ctx, key)
	if err != nil {
		return err
	}
	defer cancel()
	values, err := encodeEntries(ch.Entries)
	if err != nil {
		return fmt.Errorf("encode entry: %w", err)
	}
	replaced, err := encodeEntries(ch.Replace)
	if err != nil {
		return fmt.Errorf("encode entry: %w", err)
	}
	var progress []byte
	if ch.Progress != nil {
		if progress, err = json.Marshal(ch.Progress); err != nil {
			return fmt.Errorf("encode progress: %w", err)
		}
	}
	for _, e := range slices.Concat(ch.Entries, ch.Replace) {
		if err := checkImages(e.Images); err != nil {
			return err
		}
	}
	if ch.Usage != nil {
		if err := checkRecord(ch.Usage); err != nil {
			return err
		}
		s.usageMu.Lock()
		defer s.usageMu.Unlock()
	}
	defer s.locks.lock(name)()
	st := &stager{s: s}
	defer st.done()
	gen := s.progress.generation()
	var release string
	_, err = s.update(ctx, []string{name}, func(ctx context.Context, t *txn) error {
		release = ""
		keys := []string{s.headKey(name)}
		if ch.dedupe {
			keys = append(keys, s.lastKey(name), s.recentKey(name))
		}
		usageKeys := s.usageKeys(ch.Usage)
		keys = append(keys, usageKeys...)
		kvs, err := s.read(ctx, keys...)
		if err != nil {
			return err
		}
		if ch.dedupe && ch.QueuedID == 0 {
			var users []sessions.Entry
			for _, e := range ch.Entries {
				if e.Role == llm.RoleUser {
					users = append(users, e)
				}
			}
			if err := s.accept(t, name, kvs, users...); err != nil {
				return err
			}
		}
		hc := histChange{replace: ch.Replace, replaced: replaced, entries: ch.Entries, values: values}
		rel, err := s.changeHistory(ctx, t, st, name, kvs[s.headKey(name)], hc)
		if err != nil {
			return err
		}
		release = s.releaseOp(t, rel)
		if ch.QueuedID != 0 {
			t.del(s.turnKey("queued", name, ch.QueuedID))
		}
		if ch.Usage != nil {
			if err := s.addUsage(t, *ch.Usage, kvs); err != nil {
				return err
			}
		}
		pk := s.turnKey("progress", name, ch.ProgressID)
		switch {
		case ch.dropAll:
			t.del(s.turnPrefix("progress", name), clientv3.WithPrefix())
		case progress != nil:
			t.put(pk, progress)
		case ch.DropProgress:
			t.del(pk)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Records pending write-behind are older than what was written: the
	// conversation's lock keeps the flush from writing them meanwhile.
	switch {
	case ch.dropAll:
		s.progress.drop(name, nil, gen)
	case progress != nil || ch.DropProgress:
		s.progress.drop(name, &ch.ProgressID, gen)
	}
	s.drainAfter(ctx, release)
	return nil
}

// histChange is what a write does to a history: replace entries, then
// append.
type histChange struct {
	replace  []sessions.Entry
	replaced [][]byte
	entries  []sessions.Entry
	values   [][]byte
}

// changeHistory adds hc to t: the replaced and appended entries, their
// images held, the entries beyond the retention pruned, and the head. It
// returns the references to release (see releaseOp).
func (s *Store) changeHistory(ctx context.Context, t *txn, st *stager, name string, hkv *mvccpb.KeyValue, hc histChange) (map[string]int, error) {
	if len(hc.entries) == 0 && len(hc.replace) == 0 {
		return nil, nil
	}
	h, err := decodeHead(hkv)
	if err != nil {
		return nil, err
	}
	if h == nil {
		if len(hc.entries) == 0 {
			return nil, nil // nothing to replace
		}
		h = &head{ID: newID(), First: 1}
	}
	last := h.Last + uint64(len(hc.entries))
	var cutoff uint64 // entries up to cutoff are pruned
	if ret := uint64(s.cfg.Retention); last > ret {
		cutoff = last - ret
	}
	// The entries this change deletes or replaces, for their images.
	var old map[uint64][]byte
	var replaceSeqs []uint64
	for _, e := range hc.replace {
		if e.Seq != 0 && e.Seq >= h.First && e.Seq <= h.Last && e.Seq > cutoff {
			replaceSeqs = append(replaceSeqs, e.Seq)
		}
	}
	pruneTo := min(cutoff, h.Last)
	if old, err = s.readEntries(ctx, h, pruneTo, replaceSeqs); err != nil {
		return nil, err
	}
	var hs holds
	rel := make(map[string]int)
	changed := false
	for i, e := range hc.replace {
		v, ok := old[e.Seq]
		if !ok || !slices.Contains(replaceSeqs, e.Seq) {
			continue // gone, or pruned by this change
		}
		hs.add(e.Images)
		releaseImages(rel, v)
		t.put(s.histKey(h.ID, e.Seq), hc.replaced[i])
		changed = true
	}
	for i, e := range hc.entries {
		seq := h.Last + 1 + uint64(i)
		if seq <= cutoff {
			continue // pruned at once
		}
		hs.add(e.Images)
		t.put(s.histKey(h.ID, seq), hc.values[i])
		changed = true
	}
	if cutoff >= h.First {
		if h.First <= pruneTo {
			t.del(s.histKey(h.ID, h.First), clientv3.WithRange(s.histKey(h.ID, pruneTo+1)))
			for seq, v := range old {
				if seq <= pruneTo {
					releaseImages(rel, v)
				}
			}
		}
		h.First = cutoff + 1
		changed = true
	}
	if last != h.Last {
		h.Last = last
		changed = true
	}
	if !changed {
		return nil, nil
	}
	if err := s.holdOps(ctx, t, st, hs); err != nil {
		return nil, err
	}
	if err := s.putHead(t, name, hkv, *h); err != nil {
		return nil, err
	}
	return rel, nil
}

// putHead adds to t the write of conversation name's head h, compared
// with the head hkv read when t was prepared (nil: none).
func (s *Store) putHead(t *txn, name string, hkv *mvccpb.KeyValue, h head) error {
	v, err := json.Marshal(h)
	if err != nil {
		return err
	}
	t.unchanged(s.headKey(name), modRev(hkv))
	t.put(s.headKey(name), v)
	return nil
}

// readEntries returns the values of h's entries up to pruneTo and of
// seqs, by Seq.
func (s *Store) readEntries(ctx context.Context, h *head, pruneTo uint64, seqs []uint64) (map[uint64][]byte, error) {
	var ops []clientv3.Op
	if pruneTo >= h.First {
		ops = append(ops, clientv3.OpGet(s.histKey(h.ID, h.First), clientv3.WithRange(s.histKey(h.ID, pruneTo+1))))
	}
	for _, seq := range seqs {
		ops = append(ops, clientv3.OpGet(s.histKey(h.ID, seq)))
	}
	out := make(map[uint64][]byte)
	for len(ops) > 0 {
		n := min(len(ops), s.cfg.MaxTxnOps)
		resp, err := s.cli.Txn(ctx).Then(ops[:n]...).Commit()
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				if seq, ok := parseSeqHex(string(kv.Key[len(s.histPrefix(h.ID)):])); ok {
					out[seq] = kv.Value
				}
			}
		}
		ops = ops[n:]
	}
	return out, nil
}

// readHistory returns the values of every entry of h.
func (s *Store) readHistory(ctx context.Context, h *head) ([][]byte, error) {
	resp, err := s.cli.Get(ctx, s.histPrefix(h.ID), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = kv.Value
	}
	return out, nil
}

// DeleteLast removes the newest entries while pred holds and returns them,
// newest first. pred may run more than once for an entry (when another
// writer changed the history meanwhile); it must not call the store.
func (s *Store) DeleteLast(ctx context.Context, key sessions.Key, pred func(sessions.Entry) bool) ([]sessions.Entry, error) {
	ctx, cancel, name, err := s.beginConv(ctx, key)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer s.locks.lock(name)()
	var removed []sessions.Entry
	var release string
	_, err = s.update(ctx, []string{name}, func(ctx context.Context, t *txn) error {
		removed, release = nil, ""
		kvs, err := s.read(ctx, s.headKey(name))
		if err != nil {
			return err
		}
		hkv := kvs[s.headKey(name)]
		h, err := decodeHead(hkv)
		if err != nil || h == nil {
			return err
		}
		rel := make(map[string]int)
		end := h.Last + 1 // entries below end are still to look at
	pages:
		for end > h.First {
			resp, err := s.cli.Get(ctx, s.histKey(h.ID, h.First), clientv3.WithRange(s.histKey(h.ID, end)),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(16))
			if err != nil {
				return err
			}
			if len(resp.Kvs) == 0 {
				break
			}
			for _, kv := range resp.Kvs {
				e, err := s.decodeEntry(h.ID, kv)
				if err != nil {
					return err
				}
				if !pred(e) {
					break pages
				}
				removed = append(removed, e)
				releaseImages(rel, kv.Value)
				end = e.Seq
			}
		}
		if len(removed) == 0 {
			return nil
		}
		oldest := removed[len(removed)-1].Seq
		t.del(s.histKey(h.ID, oldest), clientv3.WithRange(s.histKey(h.ID, h.Last+1)))
		// Keep sequences contiguous: the next Append reuses the freed Seqs.
		h.Last = oldest - 1
		if err := s.putHead(t, name, hkv, *h); err != nil {
			return err
		}
		release = s.releaseOp(t, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("etcd store: delete last entries of %s: %w", key, err)
	}
	s.drainAfter(ctx, release)
	return removed, nil
}

// Reset deletes the conversation's history and keeps its settings.
// Sequences start again at 1.
func (s *Store) Reset(ctx context.Context, key sessions.Key) error {
	ctx, cancel, name, err := s.beginConv(ctx, key)
	if err != nil {
		return err
	}
	defer cancel()
	defer s.locks.lock(name)()
	var release string
	_, err = s.update(ctx, []string{name}, func(ctx context.Context, t *txn) error {
		release = ""
		kvs, err := s.read(ctx, s.headKey(name))
		if err != nil {
			return err
		}
		hkv := kvs[s.headKey(name)]
		h, err := decodeHead(hkv)
		if err != nil || h == nil {
			return err
		}
		rel, err := s.dropHistory(ctx, t, h)
		if err != nil {
			return err
		}
		if err := s.putHead(t, name, hkv, head{ID: h.ID, First: 1}); err != nil {
			return err
		}
		release = s.releaseOp(t, rel)
		return nil
	})
	if err != nil {
		return fmt.Errorf("etcd store: reset %s: %w", key, err)
	}
	s.drainAfter(ctx, release)
	return nil
}

// dropHistory adds to t the deletion of h's entries (one range, whatever
// their number) and returns the references of their images to release.
func (s *Store) dropHistory(ctx context.Context, t *txn, h *head) (map[string]int, error) {
	values, err := s.readHistory(ctx, h)
	if err != nil {
		return nil, err
	}
	rel := make(map[string]int)
	for _, v := range values {
		releaseImages(rel, v)
	}
	t.del(s.histPrefix(h.ID), clientv3.WithPrefix())
	return rel, nil
}

// Move renames a conversation (settings and history), as when a Telegram
// group becomes a supergroup with a new id. A conversation already at to
// is replaced; the mark of the last ordered message accepted stays with
// the chat it was made in, and the record of recent unordered ones moves
// (as BoltStore's). Moving a conversation that does not exist does nothing.
// Both conversations are fenced (see Claim).
func (s *Store) Move(ctx context.Context, from, to sessions.Key) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	src, err := keyName(from)
	if err != nil {
		return err
	}
	dst, err := keyName(to)
	if err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	defer s.locks.lock(src, dst)()
	var release string
	_, err = s.update(ctx, []string{src, dst}, func(ctx context.Context, t *txn) error {
		release = ""
		srcKeys := []string{s.settingsKey(src), s.headKey(src), s.recentKey(src), s.lastKey(src)}
		dstKeys := []string{s.settingsKey(dst), s.headKey(dst), s.recentKey(dst)}
		kvs, err := s.read(ctx, append(srcKeys, dstKeys...)...)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(srcKeys, func(k string) bool { return kvs[k] != nil }) {
			return nil // no such conversation
		}
		for _, k := range append(srcKeys, dstKeys...) {
			t.unchanged(k, modRev(kvs[k]))
		}
		if old, err := decodeHead(kvs[s.headKey(dst)]); err != nil {
			return err
		} else if old != nil {
			rel, err := s.dropHistory(ctx, t, old)
			if err != nil {
				return err
			}
			release = s.releaseOp(t, rel)
		}
		// Settings, history and the record of recent unordered messages
		// (as BoltStore copies the conversation's bucket) move; a missing
		// one is missing at to too.
		for i := range dstKeys {
			if kv := kvs[srcKeys[i]]; kv != nil {
				t.put(dstKeys[i], kv.Value)
			} else if kvs[dstKeys[i]] != nil {
				t.del(dstKeys[i])
			}
		}
		for _, k := range srcKeys {
			if kvs[k] != nil {
				t.del(k)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("etcd store: move %s to %s: %w", from, to, err)
	}
	s.drainAfter(ctx, release)
	return nil
}

// SetQueued records q durably: it returns once the record is committed. A
// new record whose question has a MsgID not above the conversation's last
// accepted message is refused with sessions.ErrDuplicate; updating a
// record keeps it.
func (s *Store) SetQueued(ctx context.Context, q sessions.Queued) error {
	ctx, cancel, name, err := s.beginConv(ctx, q.Key)
	if err != nil {
		return err
	}
	defer cancel()
	q.Owner = s.owner()
	v, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("etcd store: encode queued message of %s: %w", q.Key, err)
	}
	defer s.locks.lock(name)()
	// Not fenced by the conversation's claim (see sessions.Claimer): the
	// message is accepted once whichever process records it, by the
	// compare on the conversation's accepted ids.
	_, err = s.update(ctx, nil, func(ctx context.Context, t *txn) error {
		qk := s.turnKey("queued", name, q.ID)
		kvs, err := s.read(ctx, qk, s.lastKey(name), s.recentKey(name))
		if err != nil {
			return err
		}
		if kvs[qk] == nil {
			if err := s.accept(t, name, kvs, q.Question); err != nil {
				return err
			}
		}
		t.unchanged(qk, modRev(kvs[qk]))
		t.put(qk, v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("etcd store: record queued message of %s: %w", q.Key, err)
	}
	return nil
}

// QueuedMessages lists every recorded queued message, by key and id.
func (s *Store) QueuedMessages(ctx context.Context) ([]sessions.Queued, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := s.cli.Get(ctx, s.p+"queued/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd store: list queued messages: %w", err)
	}
	out := make([]sessions.Queued, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		key, id, ok := s.parseTurnKey("queued", string(kv.Key))
		if !ok {
			return nil, fmt.Errorf("etcd store: list queued messages: malformed key %q", kv.Key)
		}
		var q sessions.Queued
		if err := json.Unmarshal(kv.Value, &q); err != nil {
			return nil, fmt.Errorf("etcd store: decode queued message of %s: %w", key, err)
		}
		q.Key, q.ID = key, id
		out = append(out, q)
	}
	sortTurns(out, func(q sessions.Queued) (sessions.Key, uint64) { return q.Key, q.ID })
	return out, nil
}

// sortTurns sorts records by conversation name and turn id, the order of
// BoltStore's keys.
func sortTurns[T any](ts []T, of func(T) (sessions.Key, uint64)) {
	slices.SortStableFunc(ts, func(a, b T) int {
		ka, ia := of(a)
		kb, ib := of(b)
		if ka.String() != kb.String() {
			if ka.String() < kb.String() {
				return -1
			}
			return 1
		}
		switch {
		case ia < ib:
			return -1
		case ia > ib:
			return 1
		}
		return 0
	})
}

// accept adds to t the acceptance of the messages of entries by
// conversation name, as sessions.BoltStore accepts them: an ordered id
// must come after the last one accepted (conv/<conv>/last_message), an
// unordered one must not be among the last sessions.RecentMessages
// (conv/<conv>/recent_messages, sessions.RememberMessage); a message
// accepted before is refused with sessions.ErrDuplicate. kvs holds both
// keys as read; t requires them unchanged, so that two processes
// accepting one message at once commit it once (the other prepares
// again, and finds it).
func (s *Store) accept(t *txn, name string, kvs map[string]*mvccpb.KeyValue, entries ...sessions.Entry) error {
	lk, rk := s.lastKey(name), s.recentKey(name)
	var last string
	var recent []byte
	if kv := kvs[lk]; kv != nil {
		last = string(kv.Value)
	}
	if kv := kvs[rk]; kv != nil {
		recent = kv.Value
	}
	lastChanged, recentChanged := false, false
	for _, e := range entries {
		switch {
		case e.MsgID == "":
		case e.Unordered:
			r, err := sessions.RememberMessage(recent, e.MsgID)
			if err != nil {
				return err
			}
			recent, recentChanged = r, true
		case last != "" && !messageAfter(e.MsgID, last):
			return fmt.Errorf("%w: message %s (last accepted %s)", sessions.ErrDuplicate, e.MsgID, last)
		default:
			last, lastChanged = e.MsgID, true
		}
	}
	if lastChanged {
		t.unchanged(lk, modRev(kvs[lk]))
		t.put(lk, []byte(last))
	}
	if recentChanged {
		t.unchanged(rk, modRev(kvs[rk]))
		t.put(rk, recent)
	}
	return nil
}

// messageAfter reports whether message id a comes after b: numbers
// compare as numbers; ids that are not numbers only differ.
func messageAfter(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a != b
	}
	return x > y
}

// encodeEntries encodes history entries (Seq and image data are not in
// the JSON).
func encodeEntries(entries []sessions.Entry) ([][]byte, error) {
	values := make([][]byte, len(entries))
	for i, e := range entries {
		v, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		values[i] = v
	}
	return values, nil
}
