package sessions

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store file identity, kept in the meta bucket.
const (
	boltSchema = "2"
	boltApp    = "palaver"
)

// Default BoltOptions values.
const (
	DefaultRetention     = 1000
	DefaultLockTimeout   = time.Second
	DefaultProgressFlush = 250 * time.Millisecond
)

// Bucket and key names of the layout documented on BoltStore.
var (
	bucketMeta          = []byte("meta")
	bucketConversations = []byte("conversations")
	bucketProgress      = []byte("progress")
	bucketQueued        = []byte("queued")
	bucketValues        = []byte("values")
	bucketHistory       = []byte("history")
	keySchema           = []byte("schema")
	keyApp              = []byte("app")
	keySettings         = []byte("settings")
)

// ErrLocked reports that the store file is held by another process (most
// likely another palaver using the same storage.path).
var ErrLocked = errors.New("store file is locked")

// ErrNotStore reports that an existing file is not a palaver store this
// version can open: not a bbolt database, a bbolt database of another
// application, or a palaver store of another schema version. The file is
// left untouched.
var ErrNotStore = errors.New("not a palaver store")

// ErrStoreClosed is returned by BoltStore methods called after Close.
var ErrStoreClosed = errors.New("sessions: store is closed")

// errRollback, returned by an update function, discards the transaction
// without error: nothing needed to change.
var errRollback = errors.New("rollback")

// BoltOptions configure OpenBolt. Zero values take the defaults noted.
type BoltOptions struct {
	// Retention is the most history entries kept per conversation; older
	// ones are deleted on Append. Default DefaultRetention (1000).
	Retention int
	// LockTimeout is how long OpenBolt waits for another process to release
	// the file before failing with ErrLocked. Default DefaultLockTimeout (1s).
	LockTimeout time.Duration
	// ProgressFlush is the write-behind period of SetProgress: pending
	// progress records are written together at most this long after they
	// were set. Default DefaultProgressFlush (250ms).
	ProgressFlush time.Duration
	// Logger receives flush errors and skipped records; nil is slog.Default().
	Logger *slog.Logger
	// OnCommit, if set, is called with the duration of every committed
	// write transaction (for a metrics histogram). It must be fast and safe
	// for concurrent use.
	OnCommit func(time.Duration)
}

// BoltStore is the Store kept in one bbolt file. It is safe for concurrent
// use; one process at a time may have the file open.
//
// File layout, schema version 2 (keys are bytes, values JSON unless noted):
//
//	meta/
//	    schema = "2"                 layout version; OpenBolt upgrades "1"
//	                                 and refuses others
//	    app    = "palaver"           OpenBolt refuses files of other applications
//	conversations/
//	    <Key.String()>/              one bucket per conversation
//	        settings = Settings
//	        last_message = id        platform id of the last message accepted
//	                                 (decimal text); redeliveries are refused
//	        recent_messages = ids    the last RecentMessages unordered
//	                                 (Discord) ids accepted, 8 bytes each
//	                                 (RememberMessage); repeats are refused
//	        history/                 bucket sequence = Seq of the newest entry
//	            <Seq: 8-byte big-endian uint64> = Entry (Seq not in the JSON)
//	progress/
//	    <Key.String()> 0x00 <turn id: 8-byte big-endian uint64> = Progress
//	                                 answers being shown (Key, ID not in the
//	                                 JSON); a key without the id is a record
//	                                 written before turns had ids (ID 0)
//	queued/                          made when first needed
//	    <Key.String()> 0x00 <turn id: 8-byte big-endian uint64> = Queued
//	                                 messages not yet in the history: a
//	                                 question enters it with its answer
//
// The additions since the first release (last_message, turn ids in
// progress keys, Progress.Committed) are read by older code as unknown
// keys and fields, and older records read here as turn 0: the schema
// version stayed 1 for them.
//
//	values/
//	    <name> = raw bytes           adapter state (a Telegram update offset)
//	blobs/                           schema 2: images of history entries
//	    <hex SHA-256> = raw bytes    the encoded image (Entry.Images)
//	blob_refs/
//	    <hex SHA-256> = 8-byte big-endian uint64
//	                                 how many history entries refer to it
//
// Schema 2 added the blobs and the entry fields attachments, images and
// inline (see Entry). An image is stored once, whatever the number of
// entries that show it, in the transaction that adds the first of them,
// and deleted in the one that deletes the last (pruning, DeleteLast,
// Reset, Move over a conversation, a /retry's Replace): entries keep a
// reference count rather than a sweep finding orphans, so the work of a
// commit is bounded by the entries it adds and deletes. An older palaver
// would drop the images with the entries' unknown fields, so the version
// went up: OpenBolt upgrades a schema-1 file (it creates the two buckets;
// schema-1 entries have no images) and an older palaver refuses a
// schema-2 file.
//
// Usage counters (Tally values, see below), all made on first use:
//
//	usage_counters/
//	    <kind> 0x00 <scope id> 0x00 <period> [0x00 <part>] = Tally
//	                                 period: a day "2006-01-02" or a month
//	                                 "2006-01"; kinds and ids: user
//	                                 "platform:user id" (parts: its models,
//	                                 by month), conversation Key.String()
//	                                 (shared ones only), group "platform:
//	                                 group id" (parts: its users'
//	                                 "platform:user id", by month), model
//	                                 "provider/model", key the endpoint's
//	                                 key name ("key#1")
//	usage_records/
//	    <day> 0x00 <platform> 0x00 <user id> 0x00 <group id> 0x00
//	    <conversation> 0x00 <key name> 0x00 <model> = Tally
//	                                 one per combination used that day, for
//	                                 palaver usage
//	usage_names/
//	    "platform:user id" = name    the name a user had when last recorded
//
// A Tally is its counters (requests, prompt, completion, reasoning,
// estimated and unpriced tokens, cost in billionths of a USD, and the
// largest request's tokens and cost), in that order, each an unsigned
// varint; counters added later go at the end, where an older palaver
// ignores them and reads zeros when they are missing. An answer adds to
// its counters in the transaction that commits it (Commit.Usage), the
// endpoint in one transaction per request: a handful of small values,
// whatever the history holds. Counters lie by scope, so that the current
// day's and month's counters of a scope, and of its parts, share a page:
// a record dirties about a page per scope (user, model, the record's
// day, and a shared conversation's and a group's). Counters do not live
// in the history, so history retention leaves them alone; the Ledger
// deletes counters older than its own retention
// (UsageConfig.RetentionDays, 400 days by default), a bounded number per
// transaction (PruneUsage). A palaver of schema 2 without usage leaves
// these buckets alone: they are an addition within the schema, as is
// Entry.group (the group of a user's message, so that /retry counts
// against its limits).
//
// History sequences are contiguous: Append assigns the bucket's next
// sequence, pruning deletes from the oldest, and DeleteLast moves the bucket
// sequence back to the newest remaining entry, so a conversation holds
// entries first..last with no gaps. Reset deletes the history bucket, and
// sequences start again at 1.
type BoltStore struct {
	db            *bolt.DB
	path          string
	retention     int
	progressFlush time.Duration
	log           *slog.Logger
	onCommit      func(time.Duration)
	commits       commitRing

	mu      sync.Mutex                 // guards pending and gen
	pending map[string]pendingProgress // write-behind progress by Key.String()
	gen     uint64

	kick      chan struct{} // a progress became pending
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the flusher has returned
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// pendingProgress is a progress record not yet written; p nil clears it.
type pendingProgress struct {
	p   *Progress
	gen uint64
}

var _ Store = (*BoltStore)(nil)

// OpenBolt opens the store at path, creating the file and its parent
// directories if needed. An existing file is first checked in read-only mode
// and refused with an error wrapping ErrNotStore, unmodified, when it is not a
// palaver store of schema version 2, or 1, which it upgrades to 2 (see
// BoltStore); an existing empty file (or an empty bbolt
// database) becomes a new store. When another process holds the file, OpenBolt
// fails after opts.LockTimeout with an error wrapping ErrLocked.
func OpenBolt(path string, opts BoltOptions) (*BoltStore, error) {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.ProgressFlush <= 0 {
		opts.ProgressFlush = DefaultProgressFlush
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if path == "" {
		return nil, errors.New("sessions: open store: empty path")
	}

	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("sessions: open store: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("sessions: open store: %w", err)
	case info.IsDir():
		return nil, fmt.Errorf("sessions: open store %s: is a directory", path)
	case info.Size() > 0:
		if err := checkBoltFile(path, opts.LockTimeout); err != nil {
			return nil, err
		}
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, openError(path, err)
	}
	s := &BoltStore{
		db:            db,
		path:          path,
		retention:     opts.Retention,
		progressFlush: opts.ProgressFlush,
		log:           opts.Logger,
		onCommit:      opts.OnCommit,
		pending:       make(map[string]pendingProgress),
		kick:          make(chan struct{}, 1),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	var from string
	err = s.update(func(tx *bolt.Tx) (err error) {
		from, err = initLayout(tx)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sessions: open store %s: %w", path, err)
	}
	if from != "" {
		s.log.Info("sessions: store upgraded", slog.String("path", path), slog.String("from_schema", from), slog.String("to_schema", boltSchema))
	}
	go s.flushLoop()
	return s, nil
}

// initLayout creates the buckets and meta of a new store, checks the meta
// of an existing one, and upgrades a store of an older schema, returning
// that schema ("" when it did not upgrade).
func initLayout(tx *bolt.Tx) (from string, err error) {
	if err := checkMeta(tx, tx.DB().Path()); err != nil {
		return "", err
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return "", err
	}
	switch schema := string(meta.Get(keySchema)); schema {
	case boltSchema:
		return "", errRollback
	case "":
		if err := meta.Put(keyApp, []byte(boltApp)); err != nil {
			return "", err
		}
	default:
		from = schema // checkMeta let only an older schema through
	}
	if err := meta.Put(keySchema, []byte(boltSchema)); err != nil {
		return "", err
	}
	for _, name := range [][]byte{bucketConversations, bucketProgress, bucketValues, bucketBlobs, bucketBlobRefs} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return "", err
		}
	}
	return from, nil
}

// Path is the store file's path.
func (s *BoltStore) Path() string { return s.path }

// Close writes pending progress records and closes the file. Later calls
// return the first call's result.
func (s *BoltStore) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		s.mu.Unlock()
		close(s.stop)
		<-s.done
		flushErr := s.flush()
		s.closeErr = errors.Join(flushErr, s.db.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sessions: close store %s: %w", s.path, s.closeErr)
		}
	})
	return s.closeErr
}

// begin checks ctx and that the store is open.
func (s *BoltStore) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrStoreClosed
	}
	return nil
}

// update runs fn in a write transaction and commits it, recording the
// commit's duration. fn returning errRollback discards the transaction and
// update returns nil. A panic in fn rolls back and propagates.
func (s *BoltStore) update(fn func(*bolt.Tx) error) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		if errors.Is(err, errRollback) {
			return nil
		}
		return err
	}
	start := time.Now()
	committed = true
	if err := tx.Commit(); err != nil {
		return err
	}
	d := time.Since(start)
	s.commits.record(d)
	if s.onCommit != nil {
		s.onCommit(d)
	}
	return nil
}

// keyName validates key and returns its store name.
func keyName(key Key) ([]byte, error) {
	if key.Platform == "" || key.Chat == "" {
		return nil, fmt.Errorf("sessions: invalid conversation key %q", key.String())
	}
	return []byte(key.String()), nil
}

// Settings returns the conversation's settings, the zero value when none
// were saved.
func (s *BoltStore) Settings(ctx context.Context, key Key) (Settings, error) {
	var st Settings
	if err := s.begin(ctx); err != nil {
		return st, err
	}
	name, err := keyName(key)
	if err != nil {
		return st, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		conv := tx.Bucket(bucketConversations).Bucket(name)
		if conv == nil {
			return nil
		}
		v := conv.Get(keySettings)
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &st)
	})
	if err != nil {
		return Settings{}, fmt.Errorf("sessions: read settings of %s: %w", key, err)
	}
	return st, nil
}

// SaveSettings replaces the conversation's settings.
func (s *BoltStore) SaveSettings(ctx context.Context, key Key, st Settings) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	name, err := keyName(key)
	if err != nil {
		return err
	}
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("sessions: encode settings of %s: %w", key, err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		conv, err := tx.Bucket(bucketConversations).CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		return conv.Put(keySettings, v)
	})
	if err != nil {
		return fmt.Errorf("sessions: save settings of %s: %w", key, err)
	}
	return nil
}

// History returns up to limit of the conversation's newest entries, oldest
// first, reading only those entries. limit <= 0 returns every retained entry.
func (s *BoltStore) History(ctx context.Context, key Key, limit int) ([]Entry, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	name, err := keyName(key)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	err = s.db.View(func(tx *bolt.Tx) error {
		hist := historyBucket(tx, name)
		if hist == nil {
			return nil
		}
		c := hist.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(entries) < limit); k, v = c.Prev() {
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			entries = append(entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: read history of %s: %w", key, err)
	}
	slices.Reverse(entries)
	return entries, nil
}

// Append adds entries in one transaction, assigning each its Seq (the
// caller's entries are not modified), prunes the oldest entries beyond the
// retention and, when done is true, clears the conversation's progress
// record, both on disk and pending.
func (s *BoltStore) Append(ctx context.Context, key Key, done bool, entries ...Entry) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	name, err := keyName(key)
	if err != nil {
		return err
	}
	values, err := encodeEntries(entries)
	if err != nil {
		return fmt.Errorf("sessions: encode entry of %s: %w", key, err)
	}
	var dropped map[string]pendingProgress
	err = s.update(func(tx *bolt.Tx) error {
		if err := s.appendHistory(tx, name, entries, values); err != nil {
			return err
		}
		if done {
			// Dropping the pending records inside the write transaction
			// orders it against flush, which reads pending inside its own
			// write transaction: a late flush cannot bring them back.
			dropped = s.dropPending(name)
			if err := deleteProgress(tx, name); err != nil {
				return err
			}
		}
		if len(values) == 0 && !done {
			return errRollback
		}
		return nil
	})
	if err != nil {
		s.restorePending(dropped)
		return fmt.Errorf("sessions: append to %s: %w", key, err)
	}
	return nil
}

// appendHistory adds entries, encoded as values, to conversation name's
// history, assigning the next sequences and storing their images, and
// prunes it to the retention.
func (s *BoltStore) appendHistory(tx *bolt.Tx, name []byte, entries []Entry, values [][]byte) error {
	if len(values) == 0 {
		return nil
	}
	conv, err := tx.Bucket(bucketConversations).CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	hist, err := conv.CreateBucketIfNotExists(bucketHistory)
	if err != nil {
		return err
	}
	for i, v := range values {
		seq, err := hist.NextSequence()
		if err != nil {
			return err
		}
		if err := holdImages(tx, entries[i].Images); err != nil {
			return err
		}
		if err := hist.Put(seqKey(seq), v); err != nil {
			return err
		}
	}
	return prune(tx, hist, s.retention)
}

// prune deletes the oldest entries of hist so that at most retention
// remain, and the images no remaining entry refers to. It relies on
// sequences being contiguous (see BoltStore).
func prune(tx *bolt.Tx, hist *bolt.Bucket, retention int) error {
	last := hist.Sequence()
	if last <= uint64(retention) {
		return nil
	}
	cutoff := last - uint64(retention)
	c := hist.Cursor()
	for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= cutoff; k, v = c.First() {
		if err := releaseEncoded(tx, v); err != nil {
			return err
		}
		if err := hist.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteLast removes the newest entries while pred holds and returns them,
// newest first. pred runs inside the store's write transaction: it must not
// call the store.
func (s *BoltStore) DeleteLast(ctx context.Context, key Key, pred func(Entry) bool) ([]Entry, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	name, err := keyName(key)
	if err != nil {
		return nil, err
	}
	var removed []Entry
	err = s.update(func(tx *bolt.Tx) error {
		removed = removed[:0]
		hist := historyBucket(tx, name)
		if hist == nil {
			return errRollback
		}
		c := hist.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Last() {
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			if !pred(e) {
				break
			}
			removed = append(removed, e)
			if err := releaseImages(tx, e.Images); err != nil {
				return err
			}
			if err := hist.Delete(k); err != nil {
				return err
			}
		}
		if len(removed) == 0 {
			return errRollback
		}
		// Keep sequences contiguous: the next Append reuses the freed Seqs.
		return hist.SetSequence(removed[len(removed)-1].Seq - 1)
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: delete last entries of %s: %w", key, err)
	}
	return removed, nil
}

// Reset deletes the conversation's history and keeps its settings.
func (s *BoltStore) Reset(ctx context.Context, key Key) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	name, err := keyName(key)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		conv := tx.Bucket(bucketConversations).Bucket(name)
		if conv == nil || conv.Bucket(bucketHistory) == nil {
			return errRollback
		}
		if err := releaseHistory(tx, conv.Bucket(bucketHistory)); err != nil {
			return err
		}
		return conv.DeleteBucket(bucketHistory)
	})
	if err != nil {
		return fmt.Errorf("sessions: reset %s: %w", key, err)
	}
	return nil
}

// SetProgress records p (or with p nil clears the record) for the
// conversation. The record is kept in memory and written with every other
// pending one in one transaction within the ProgressFlush period, or on
// Close. Progresses sees it at once.
func (s *BoltStore) SetProgress(ctx context.Context, key Key, id uint64, p *Progress) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	name, err := keyName(key)
	if err != nil {
		return err
	}
	name = progressKey(name, id)
	if p != nil {
		cp := *p
		cp.Key, cp.ID = key, id
		cp.Reply = bytes.Clone(p.Reply)
		p = &cp
	}
	s.mu.Lock()
	if s.closed.Load() {
		// Close sets closed under mu before its final flush, so a record
		// accepted here is always written.
		s.mu.Unlock()
		return ErrStoreClosed
	}
	s.gen++
	s.pending[string(name)] = pendingProgress{p: p, gen: s.gen}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// Progresses lists every progress record, pending or written, ordered by
// conversation key.
func (s *BoltStore) Progresses(ctx context.Context) ([]Progress, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	byKey := make(map[string]Progress)
	// Holding mu across the read makes disk and pending agree: flush drops a
	// record from pending, under mu, only once it is committed. The read
	// transaction never waits for a writer, so this cannot deadlock with
	// writers that take mu inside their transactions.
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProgress).ForEach(func(k, v []byte) error {
			key, id, ok := parseProgressKey(k)
			if !ok {
				s.log.Warn("sessions: skipping progress record with a malformed key", slog.String("key", string(k)))
				return nil
			}
			var p Progress
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode progress of %s: %w", key, err)
			}
			p.Key, p.ID = key, id
			byKey[string(k)] = p
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: read progress: %w", err)
	}
	// Pending records are newer than written ones.
	for k, pp := range s.pending {
		if pp.p == nil {
			delete(byKey, k)
			continue
		}
		cp := *pp.p
		cp.Reply = bytes.Clone(pp.p.Reply)
		byKey[k] = cp
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Progress, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out, nil
}

// flushLoop writes pending progress records within progressFlush of the
// first one becoming pending, until Close.
func (s *BoltStore) flushLoop() {
	defer close(s.done)
	timer := time.NewTimer(s.progressFlush)
	timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		timer.Reset(s.progressFlush)
		select {
		case <-s.stop:
			timer.Stop()
			return
		case <-timer.C:
		}
		if err := s.flush(); err != nil {
			s.log.Error("sessions: write progress records", slog.String("path", s.path), slog.Any("error", err))
			// Try again after another period.
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
}

// flush writes every pending progress record in one transaction. A record
// set again while the transaction runs stays pending.
func (s *BoltStore) flush() error {
	var written map[string]pendingProgress
	err := s.update(func(tx *bolt.Tx) error {
		s.mu.Lock()
		written = make(map[string]pendingProgress, len(s.pending))
		for k, pp := range s.pending {
			written[k] = pp
		}
		s.mu.Unlock()
		if len(written) == 0 {
			return errRollback
		}
		b := tx.Bucket(bucketProgress)
		for k, pp := range written {
			if pp.p == nil {
				if err := b.Delete([]byte(k)); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(pp.p)
			if err != nil {
				return fmt.Errorf("encode progress of %s: %w", k, err)
			}
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for k, pp := range written {
		if cur, ok := s.pending[k]; ok && cur.gen == pp.gen {
			delete(s.pending, k)
		}
	}
	s.mu.Unlock()
	return nil
}

// Value returns the named value, nil when it was never set.
func (s *BoltStore) Value(ctx context.Context, name string) ([]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucketValues).Get([]byte(name)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: read value %q: %w", name, err)
	}
	return v, nil
}

// SetValue stores v under name; a nil v deletes the value.
func (s *BoltStore) SetValue(ctx context.Context, name string, v []byte) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if name == "" {
		return errors.New("sessions: set value: empty name")
	}
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketValues)
		if v == nil {
			return b.Delete([]byte(name))
		}
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return fmt.Errorf("sessions: set value %q: %w", name, err)
	}
	return nil
}

// CommitStats reports how many write transactions the store has committed,
// and the median and 99th percentile of the commit durations (data write and
// fsync) over the most recent ones (up to 1024).
func (s *BoltStore) CommitStats() (count int, p50, p99 time.Duration) {
	return s.commits.stats()
}

// historyBucket returns the conversation's history bucket, or nil.
func historyBucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	conv := tx.Bucket(bucketConversations).Bucket(name)
	if conv == nil {
		return nil
	}
	return conv.Bucket(bucketHistory)
}

// seqKey encodes a history sequence as its bucket key.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

// decodeEntry decodes a history record.
func decodeEntry(k, v []byte) (Entry, error) {
	var e Entry
	if len(k) != 8 {
		return e, fmt.Errorf("history key %x is not an 8-byte sequence", k)
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("decode entry %d: %w", binary.BigEndian.Uint64(k), err)
	}
	e.Seq = binary.BigEndian.Uint64(k)
	return e, nil
}

// commitRingSize is how many recent commit durations CommitStats summarises.
const commitRingSize = 1024

// commitRing keeps the most recent commit durations without locking:
// writers claim a slot with an atomic counter.
type commitRing struct {
	n     atomic.Uint64
	slots [commitRingSize]atomic.Int64
}

func (r *commitRing) record(d time.Duration) {
	i := r.n.Add(1) - 1
	r.slots[i%commitRingSize].Store(int64(d))
}

func (r *commitRing) stats() (count int, p50, p99 time.Duration) {
	n := r.n.Load()
	if n == 0 {
		return 0, 0, 0
	}
	m := min(n, commitRingSize)
	ds := make([]time.Duration, m)
	for i := range ds {
		ds[i] = time.Duration(r.slots[i].Load())
	}
	slices.Sort(ds)
	return int(n), ds[percentileIndex(len(ds), 50)], ds[percentileIndex(len(ds), 99)]
}

// percentileIndex is the nearest-rank index of percentile p in n sorted values.
func percentileIndex(n, p int) int {
	i := (n*p+99)/100 - 1
	return max(0, min(i, n-1))
}

// Move renames a conversation (settings and history), as when a Telegram
// group becomes a supergroup with a new id. A conversation already at to is
// replaced. Moving a conversation that does not exist does nothing.
func (s *BoltStore) Move(ctx context.Context, from, to Key) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	src, err := keyName(from)
	if err != nil {
		return err
	}
	dst, err := keyName(to)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		convs := tx.Bucket(bucketConversations)
		old := convs.Bucket(src)
		if old == nil || bytes.Equal(src, dst) {
			return errRollback
		}
		// Message ids are the chat's: the mark of the last message
		// accepted stays with the chat it was made in.
		var mark []byte
		if b := convs.Bucket(dst); b != nil {
			mark = bytes.Clone(b.Get(keyLastMessage))
			if err := releaseHistory(tx, b.Bucket(bucketHistory)); err != nil {
				return err
			}
			if err := convs.DeleteBucket(dst); err != nil {
				return err
			}
		}
		nb, err := convs.CreateBucket(dst)
		if err != nil {
			return err
		}
		if err := copyBucket(old, nb); err != nil {
			return err
		}
		if err := nb.Delete(keyLastMessage); err != nil {
			return err
		}
		if mark != nil {
			if err := nb.Put(keyLastMessage, mark); err != nil {
				return err
			}
		}
		return convs.DeleteBucket(src)
	})
	if err != nil {
		return fmt.Errorf("sessions: move %s to %s: %w", from, to, err)
	}
	return nil
}

// copyBucket copies src's keys, nested buckets and sequence into dst.
func copyBucket(src, dst *bolt.Bucket) error {
	if err := dst.SetSequence(src.Sequence()); err != nil {
		return err
	}
	return src.ForEach(func(k, v []byte) error {
		if v != nil {
			return dst.Put(k, v)
		}
		child, err := dst.CreateBucket(k)
		if err != nil {
			return err
		}
		return copyBucket(src.Bucket(k), child)
	})
}

// queuedKey is the queued bucket's key of key's message id.
