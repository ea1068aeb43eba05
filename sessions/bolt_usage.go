package sessions

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Buckets of usage (see BoltStore), made on first use.
var (
	bucketUsageCounters = []byte("usage_counters")
	bucketUsageRecords  = []byte("usage_records")
	bucketUsageNames    = []byte("usage_names")
)

// UsageKey names one usage counter: a period (a day "2006-01-02" or a
// month "2006-01"), a scope's kind ("user", "conversation", "group",
// "model" or "key") and id ("platform:user id", Key.String(),
// "platform:group id", "provider/model", the endpoint's key name), and
// for a part of a scope counted on its own (a user's "provider/model", a
// group's "platform:user id"; only per month) the part, else "".
type UsageKey struct {
	Period, Kind, ID, Sub string
}

// UsageCounter is a stored counter, with the name last recorded for its
// user, for the counters of a user (a user's, or a group's user's).
type UsageCounter struct {
	UsageKey
	Name string
	Tally
}

// UsageStore keeps the usage counters the Ledger adds to and reads.
// BoltStore satisfies it (and adds the usage of a turn in the turn's own
// commit: Commit.Usage).
type UsageStore interface {
	// AddUsage adds r to its counters in one transaction, durable when it
	// returns.
	AddUsage(ctx context.Context, r UsageRecord) error
	// UsageCounters returns the counter of each key, zero for a counter
	// never added to.
	UsageCounters(ctx context.Context, keys []UsageKey) ([]Tally, error)
	// UsageList returns the counters of the parts of a scope (kind and
	// id) in a period, by part.
	UsageList(ctx context.Context, period, kind, id string) ([]UsageCounter, error)
	// PruneUsage deletes the counters of days before day ("2006-01-02")
	// and of months before its month, and the records of those days. It
	// looks at a bounded number of counters (max) from the key after
	// (nil: the first), and returns the key to go on from, with done once
	// nothing is left to delete.
	PruneUsage(ctx context.Context, day string, after []byte, max int) (next []byte, done bool, err error)
}

var _ UsageStore = (*BoltStore)(nil)

// addUsage adds r to its counters in tx: its month's and (for the scopes
// limits apply to) its day's counter of each scope, its record, and its
// user's name. A scope's counters of the current periods lie together,
// so that a record dirties a page or so per scope.
func addUsage(tx *bolt.Tx, r UsageRecord) error {
	if !isDay(r.Day) {
		return fmt.Errorf("usage record of day %q: want a day as 2006-01-02", r.Day)
	}
	counters, err := tx.CreateBucketIfNotExists(bucketUsageCounters)
	if err != nil {
		return err
	}
	records, err := tx.CreateBucketIfNotExists(bucketUsageRecords)
	if err != nil {
		return err
	}
	month := r.Day[:len(monthLayout)]
	for _, c := range r.scopes() {
		if c.daily {
			if err := addTally(counters, counterKey(r.Day, c.scope), r.Tally); err != nil {
				return err
			}
		}
		if err := addTally(counters, counterKey(month, c.scope), r.Tally); err != nil {
			return err
		}
	}
	if err := addTally(records, recordKey(&r), r.Tally); err != nil {
		return err
	}
	if r.User == "" || r.UserName == "" {
		return nil
	}
	names, err := tx.CreateBucketIfNotExists(bucketUsageNames)
	if err != nil {
		return err
	}
	k, name := []byte(UsageUserID(r.Platform, r.User)), []byte(ClipUserName(r.UserName))
	if bytes.Equal(names.Get(k), name) {
		return nil
	}
	return names.Put(k, name)
}

// addTally adds t to the counter at k. A counter that cannot be decoded
// (which CheckBolt reports) starts again from t rather than keep the
// transaction, which commits an answer, from being committed.
func addTally(b *bolt.Bucket, k []byte, t Tally) error {
	if v := b.Get(k); v != nil {
		if old, err := DecodeTally(v); err == nil {
			t.Add(old)
		}
	}
	return b.Put(k, AppendTally(nil, t))
}

// AddUsage adds r to its counters (see UsageStore).
func (s *BoltStore) AddUsage(ctx context.Context, r UsageRecord) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if err := s.update(func(tx *bolt.Tx) error { return addUsage(tx, r) }); err != nil {
		return fmt.Errorf("sessions: record usage: %w", err)
	}
	return nil
}

// UsageCounters returns the counter of each key (see UsageStore).
func (s *BoltStore) UsageCounters(ctx context.Context, keys []UsageKey) ([]Tally, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	out := make([]Tally, len(keys))
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsageCounters)
		if b == nil {
			return nil
		}
		for i, k := range keys {
			v := b.Get(counterKey(k.Period, scope{k.Kind, k.ID, k.Sub}))
			if v == nil {
				continue
			}
			t, err := DecodeTally(v)
			if err != nil {
				return fmt.Errorf("usage counter %+v: %w", k, err)
			}
			out[i] = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: read usage: %w", err)
	}
	return out, nil
}

// UsageList returns the counters of the parts of a scope in a period (see
// UsageStore), with the name last recorded for the parts that are users.
func (s *BoltStore) UsageList(ctx context.Context, period, kind, id string) ([]UsageCounter, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var out []UsageCounter
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsageCounters)
		if b == nil {
			return nil
		}
		names := tx.Bucket(bucketUsageNames)
		prefix := append(counterKey(period, scope{kind, id, ""}), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			_, sc, ok := parseCounterKey(k)
			if !ok {
				continue
			}
			t, err := DecodeTally(v)
			if err != nil {
				return fmt.Errorf("usage counter %q: %w", k, err)
			}
			uc := UsageCounter{UsageKey: UsageKey{period, sc.kind, sc.id, sc.sub}, Tally: t}
			if sc.kind == scopeGroup && names != nil {
				uc.Name = string(names.Get([]byte(sc.sub)))
			}
			out = append(out, uc)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: read usage: %w", err)
	}
	return out, nil
}

// PruneUsage deletes counters and records past the retention (see
// UsageStore): the records of days before day, the start of their
// bucket, at most max of them; then, once none is left, the counters of
// earlier periods among at most max counters from the key after. Counters
// lie by scope, each scope's oldest first, so finding them takes a walk
// over every counter: max bounds each transaction's share of it.
func (s *BoltStore) PruneUsage(ctx context.Context, day string, after []byte, max int) (next []byte, done bool, err error) {
	if err := s.begin(ctx); err != nil {
		return nil, false, err
	}
	if !isDay(day) || max < 1 {
		return nil, false, fmt.Errorf("sessions: prune usage: want a day as 2006-01-02 and a positive bound, got %q and %d", day, max)
	}
	month := day[:len(monthLayout)]
	err = s.update(func(tx *bolt.Tx) error {
		next, done = nil, false
		deleted := 0
		if b := tx.Bucket(bucketUsageRecords); b != nil {
			c := b.Cursor()
			for k, _ := c.First(); k != nil && string(periodOf(k)) < day; k, _ = c.First() {
				if deleted == max {
					next = after // records first; the counters' walk waits
					return nil
				}
				if err := c.Delete(); err != nil {
					return err
				}
				deleted++
			}
		}
		b := tx.Bucket(bucketUsageCounters)
		if b == nil {
			done = true
			return rollbackUnless(deleted > 0)
		}
		var old [][]byte
		var last []byte
		c := b.Cursor()
		k, _ := c.First()
		if after != nil {
			if k, _ = c.Seek(after); bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		}
		for n := 0; k != nil && n < max; k, _ = c.Next() {
			n++
			period, _, ok := parseCounterKey(k)
			if ok && (len(period) == len(dayLayout) && period < day || len(period) == len(monthLayout) && period < month) {
				old = append(old, bytes.Clone(k))
			}
			last = k
		}
		next, done = bytes.Clone(last), k == nil
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return rollbackUnless(deleted+len(old) > 0)
	})
	if err != nil {
		return nil, false, fmt.Errorf("sessions: prune usage: %w", err)
	}
	if done {
		next = nil
	}
	return next, done, nil
}

// rollbackUnless is errRollback when a transaction changed nothing.
func rollbackUnless(changed bool) error {
	if changed {
		return nil
	}
	return errRollback
}

// periodOf is the day a usage record's key starts with.
func periodOf(k []byte) []byte {
	if i := bytes.IndexByte(k, 0); i >= 0 {
		return k[:i]
	}
	return k
}

// UsageRecords returns the usage records of the days from to to
// (inclusive, "2006-01-02"), in key order, each with the name last
// recorded for its user.
func (s *BoltStore) UsageRecords(ctx context.Context, from, to string) ([]UsageRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var out []UsageRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		out, err = readRecords(tx, from, to)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: read usage: %w", err)
	}
	return out, nil
}

// ReadUsageFile returns the usage records of the days from to to
// (inclusive) of the store file at path, opened read-only: it fails with
// ErrLocked (after timeout) while a palaver has the file open, and with
// ErrNotStore for a file that is not a palaver store.
func ReadUsageFile(path string, timeout time.Duration, from, to string) ([]UsageRecord, error) {
	if info, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sessions: read usage: %w", err)
	} else if info.Size() == 0 {
		return nil, nil // a new store, made on first use
	}
	var out []UsageRecord
	err := viewStore(path, timeout, func(tx *bolt.Tx) error {
		var err error
		if out, err = readRecords(tx, from, to); err != nil {
			return fmt.Errorf("sessions: read usage of %s: %w", path, err)
		}
		return nil
	})
	return out, err
}

// readRecords reads the usage records of the days from to to.
func readRecords(tx *bolt.Tx, from, to string) ([]UsageRecord, error) {
	if !isDay(from) || !isDay(to) {
		return nil, fmt.Errorf("want days as 2006-01-02, got %q and %q", from, to)
	}
	b := tx.Bucket(bucketUsageRecords)
	if b == nil {
		return nil, nil
	}
	names := tx.Bucket(bucketUsageNames)
	var out []UsageRecord
	c := b.Cursor()
	for k, v := c.Seek([]byte(from)); k != nil && string(periodOf(k)) <= to; k, v = c.Next() {
		r, ok := parseRecordKey(k)
		if !ok {
			return nil, fmt.Errorf("malformed usage record key %q", k)
		}
		t, err := DecodeTally(v)
		if err != nil {
			return nil, fmt.Errorf("usage record %q: %w", k, err)
		}
		r.Tally = t
		if r.User != "" && names != nil {
			r.UserName = string(names.Get([]byte(UsageUserID(r.Platform, r.User))))
		}
		out = append(out, r)
	}
	return out, nil
}

// checkUsage is CheckBolt's check of a usage bucket: keys of the layout
// and counters that decode.
func (c *checker) checkUsage(name []byte, b *bolt.Bucket) {
	_ = b.ForEach(func(k, v []byte) error {
		if v == nil {
			c.problemf("%s: %q is a bucket, not a counter", name, k)
			return nil
		}
		switch string(name) {
		case string(bucketUsageNames):
			return nil
		case string(bucketUsageRecords):
			if _, ok := parseRecordKey(k); !ok {
				c.problemf("%s: malformed key %q", name, k)
			}
		default:
			if _, s, ok := parseCounterKey(k); !ok || !slices.Contains(usageKinds, s.kind) {
				c.problemf("%s: malformed key %q", name, k)
			}
		}
		if _, err := DecodeTally(v); err != nil {
			c.problemf("%s: counter %q: %v", name, k, err)
		}
		return nil
	})
}

// usageKinds are the scope kinds a counter may have.
var usageKinds = []string{scopeUser, scopeConversation, scopeGroup, scopeModel, scopeKey}
