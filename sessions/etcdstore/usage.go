package etcdstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/sessions"
)

// The usage counters have the meaning, scopes and encoding of BoltStore's
// (see sessions.BoltStore): which counters a record adds to
// (UsageRecord.Counts), a counter's value (sessions.AppendTally), the
// names kept (sessions.ClipUserName, sessions.UsageUserID) come from
// package sessions, and the contract tests (storetest.RunUsage) hold both
// stores to it. Only the keys are this store's.

// scopeGroup is the kind of a group's counters (sessions.UsageCount).
const scopeGroup = "group"

// Period formats.
const (
	dayLayout   = "2006-01-02"
	monthLayout = "2006-01"
)

// keyPart keeps ids as BoltStore's keys have them: 0x00 becomes U+FFFD.
func keyPart(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// recordFields are a record's fields in its key's order.
func recordFields(r *sessions.UsageRecord) [7]*string {
	return [7]*string{&r.Day, &r.Platform, &r.User, &r.Group, &r.Conversation, &r.Key, &r.Model}
}

func isDay(s string) bool {
	_, err := time.Parse(dayLayout, s)
	return err == nil
}

func isMonth(s string) bool {
	_, err := time.Parse(monthLayout, s)
	return err == nil
}

func checkRecord(r *sessions.UsageRecord) error {
	if !isDay(r.Day) {
		return fmt.Errorf("usage record of day %q: want a day as 2006-01-02", r.Day)
	}
	return nil
}

// Keys of the usage layout.

func (s *Store) counterKey(period string, c sessions.UsageCount) string {
	k := s.p + "usage/counters/" + c.Kind + "/" + escape(c.ID) + "/" + period
	if c.Sub != "" {
		k += "/" + escape(c.Sub)
	}
	return k
}

func (s *Store) recordKey(r *sessions.UsageRecord) string {
	parts := make([]string, 0, 7)
	for _, f := range recordFields(r) {
		parts = append(parts, escape(keyPart(*f)))
	}
	return s.p + "usage/records/" + strings.Join(parts, "/")
}

func (s *Store) nameKey(user string) string { return s.p + "usage/names/" + escape(user) }

// usageKeys are the keys r adds to (none for nil r): its counters, its
// record and its user's name.
func (s *Store) usageKeys(r *sessions.UsageRecord) []string {
	if r == nil {
		return nil
	}
	var keys []string
	month := r.Day[:len(monthLayout)]
	for _, c := range r.Counts() {
		if c.Daily {
			keys = append(keys, s.counterKey(r.Day, c))
		}
		keys = append(keys, s.counterKey(month, c))
	}
	keys = append(keys, s.recordKey(r))
	if r.User != "" && r.UserName != "" {
		keys = append(keys, s.nameKey(sessions.UsageUserID(r.Platform, r.User)))
	}
	return keys
}

// addUsage adds r to t: the counters of usageKeys, read in kvs, go up by
// r.Tally, and the user's name is recorded. A counter that cannot be
// decoded starts again from r.Tally rather than keep an answer from being
// committed.
func (s *Store) addUsage(t *txn, r sessions.UsageRecord, kvs map[string]*mvccpb.KeyValue) error {
	if err := checkRecord(&r); err != nil {
		return err
	}
	keys := s.usageKeys(&r)
	if r.User != "" && r.UserName != "" {
		nk := keys[len(keys)-1]
		keys = keys[:len(keys)-1]
		name := sessions.ClipUserName(r.UserName)
		if kv := kvs[nk]; kv == nil || string(kv.Value) != name {
			t.unchanged(nk, modRev(kv))
			t.put(nk, []byte(name))
		}
	}
	for _, k := range keys {
		sum := r.Tally
		kv := kvs[k]
		if kv != nil {
			if old, err := sessions.DecodeTally(kv.Value); err == nil {
				sum.Add(old)
			}
		}
		t.unchanged(k, modRev(kv))
		t.put(k, sessions.AppendTally(nil, sum))
	}
	return nil
}

// AddUsage adds r to its counters in one transaction (see
// sessions.UsageStore).
func (s *Store) AddUsage(ctx context.Context, r sessions.UsageRecord) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := checkRecord(&r); err != nil {
		return fmt.Errorf("etcd store: record usage: %w", err)
	}
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	_, err = s.update(ctx, nil, func(ctx context.Context, t *txn) error {
		kvs, err := s.read(ctx, s.usageKeys(&r)...)
		if err != nil {
			return err
		}
		return s.addUsage(t, r, kvs)
	})
	if err != nil {
		return fmt.Errorf("etcd store: record usage: %w", err)
	}
	return nil
}

// UsageCounters returns the counter of each key (see sessions.UsageStore).
func (s *Store) UsageCounters(ctx context.Context, keys []sessions.UsageKey) ([]sessions.Tally, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = s.counterKey(k.Period, sessions.UsageCount{Kind: k.Kind, ID: k.ID, Sub: k.Sub})
	}
	kvs, err := s.read(ctx, ks...)
	if err != nil {
		return nil, fmt.Errorf("etcd store: read usage: %w", err)
	}
	out := make([]sessions.Tally, len(keys))
	for i, k := range ks {
		if kv := kvs[k]; kv != nil {
			t, err := sessions.DecodeTally(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("etcd store: read usage: counter %+v: %w", keys[i], err)
			}
			out[i] = t
		}
	}
	return out, nil
}

// UsageList returns the counters of the parts of a scope in a period, by
// part, with the name last recorded for the parts that are users (see
// sessions.UsageStore).
func (s *Store) UsageList(ctx context.Context, period, kind, id string) ([]sessions.UsageCounter, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	prefix := s.counterKey(period, sessions.UsageCount{Kind: kind, ID: id}) + "/"
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd store: read usage: %w", err)
	}
	var out []sessions.UsageCounter
	var names []string
	for _, kv := range resp.Kvs {
		sub := unescape(string(kv.Key[len(prefix):]))
		if sub == "" || strings.Contains(string(kv.Key[len(prefix):]), "/") {
			continue
		}
		t, err := sessions.DecodeTally(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("etcd store: read usage: counter %q: %w", kv.Key, err)
		}
		out = append(out, sessions.UsageCounter{UsageKey: sessions.UsageKey{Period: period, Kind: kind, ID: id, Sub: sub}, Tally: t})
		if kind == scopeGroup {
			names = append(names, s.nameKey(sub))
		}
	}
	if len(names) > 0 {
		kvs, err := s.read(ctx, names...)
		if err != nil {
			return nil, fmt.Errorf("etcd store: read usage: %w", err)
		}
		for i := range out {
			if kv := kvs[s.nameKey(out[i].Sub)]; kv != nil {
				out[i].Name = string(kv.Value)
			}
		}
	}
	slices.SortFunc(out, func(a, b sessions.UsageCounter) int { return strings.Compare(a.Sub, b.Sub) })
	return out, nil
}

// PruneUsage deletes counters and records past the retention (see
// sessions.UsageStore): first the records of days before day, at most max
// of them; then, once none is left, the counters of earlier periods among
// at most max counters from the key after. It deletes in transactions of
// at most MaxTxnOps keys each.
func (s *Store) PruneUsage(ctx context.Context, day string, after []byte, max int) (next []byte, done bool, err error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, false, err
	}
	defer cancel()
	if !isDay(day) || max < 1 {
		return nil, false, fmt.Errorf("etcd store: prune usage: want a day as 2006-01-02 and a positive bound, got %q and %d", day, max)
	}
	next, done, err = s.pruneUsage(ctx, day, after, max)
	if err != nil {
		return nil, false, fmt.Errorf("etcd store: prune usage: %w", err)
	}
	return next, done, nil
}

func (s *Store) pruneUsage(ctx context.Context, day string, after []byte, limit int) ([]byte, bool, error) {
	records := s.p + "usage/records/"
	resp, err := s.cli.Get(ctx, records, clientv3.WithRange(records+day), clientv3.WithKeysOnly(), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, false, err
	}
	if n := len(resp.Kvs); n > 0 {
		end := records + day
		if resp.More {
			end = string(resp.Kvs[n-1].Key) + "\x00"
		}
		if _, err := s.cli.Delete(ctx, records, clientv3.WithRange(end)); err != nil {
			return nil, false, err
		}
		if resp.More {
			return after, false, nil // records first; the counters' walk waits
		}
	}

	counters := s.p + "usage/counters/"
	start := counters
	if after != nil {
		start = string(after) + "\x00"
	}
	resp, err = s.cli.Get(ctx, start, clientv3.WithRange(clientv3.GetPrefixRangeEnd(counters)), clientv3.WithKeysOnly(), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, false, err
	}
	month := day[:len(monthLayout)]
	var old []string
	var last []byte
	for _, kv := range resp.Kvs {
		parts := strings.Split(string(kv.Key[len(counters):]), "/")
		if len(parts) >= 3 {
			period := parts[2]
			if len(period) == len(dayLayout) && period < day || len(period) == len(monthLayout) && period < month {
				old = append(old, string(kv.Key))
			}
		}
		last = kv.Key
	}
	for len(old) > 0 {
		n := min(len(old), s.cfg.MaxTxnOps)
		ops := make([]clientv3.Op, n)
		for i, k := range old[:n] {
			ops[i] = clientv3.OpDelete(k)
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return nil, false, s.txnError(err)
		}
		old = old[n:]
	}
	if !resp.More {
		return nil, true, nil
	}
	return bytes.Clone(last), false, nil
}

// UsageRecords returns the usage records of the days from to to
// (inclusive, "2006-01-02"), in BoltStore's order, each with the name
// last recorded for its user (see sessions.BoltStore.UsageRecords).
func (s *Store) UsageRecords(ctx context.Context, from, to string) ([]sessions.UsageRecord, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if !isDay(from) || !isDay(to) {
		return nil, fmt.Errorf("etcd store: read usage: want days as 2006-01-02, got %q and %q", from, to)
	}
	records := s.p + "usage/records/"
	// Days have one length: "/" (0x2f) sorts right before "0" (0x30).
	resp, err := s.cli.Get(ctx, records+from+"/", clientv3.WithRange(records+to+"0"))
	if err != nil {
		return nil, fmt.Errorf("etcd store: read usage: %w", err)
	}
	var out []sessions.UsageRecord
	names := make(map[string]bool)
	for _, kv := range resp.Kvs {
		parts := strings.Split(string(kv.Key[len(records):]), "/")
		var r sessions.UsageRecord
		fields := recordFields(&r)
		if len(parts) != len(fields) {
			return nil, fmt.Errorf("etcd store: read usage: malformed record key %q", kv.Key)
		}
		for i, p := range parts {
			*fields[i] = unescape(p)
		}
		t, err := sessions.DecodeTally(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("etcd store: read usage: record %q: %w", kv.Key, err)
		}
		r.Tally = t
		if r.User != "" {
			names[s.nameKey(sessions.UsageUserID(r.Platform, r.User))] = true
		}
		out = append(out, r)
	}
	kvs, err := s.read(ctx, slices.Sorted(maps.Keys(names))...)
	if err != nil {
		return nil, fmt.Errorf("etcd store: read usage: %w", err)
	}
	for i := range out {
		if out[i].User != "" {
			if kv := kvs[s.nameKey(sessions.UsageUserID(out[i].Platform, out[i].User))]; kv != nil {
				out[i].UserName = string(kv.Value)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b sessions.UsageRecord) int {
		fa, fb := recordFields(&a), recordFields(&b)
		for i := range fa {
			if c := strings.Compare(*fa[i], *fb[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	return out, nil
}
