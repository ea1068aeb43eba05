package etcdstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/palaver-bot/palaver/sessions"
)

// Default Config values.
const (
	DefaultPrefix         = "/palaver/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultFailover       = 10 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultProgressFlush  = 250 * time.Millisecond
	// DefaultHandoverTimeout is long enough for a receiver's IDENTIFY to
	// wait its turn at a busy identify bucket (5 s per shard) twice.
	DefaultHandoverTimeout = 15 * time.Second
	// DefaultMaxTxnOps and DefaultMaxRequestBytes are etcd's own defaults
	// (--max-txn-ops, --max-request-bytes).
	DefaultMaxTxnOps       = 128
	DefaultMaxRequestBytes = 3 << 19 // 1.5 MiB
)

// minFailover is the shortest session lease: etcd lengthens shorter
// leases to its minimum TTL (1.5 election timeouts, 1.5 s by default).
const minFailover = 2 * time.Second

// Schema is the version of the key layout this package reads and writes
// (see the package documentation). Open refuses a keyspace of another
// version.
const Schema = 1

// ErrNewerSchema reports a keyspace written by a newer palaver: Open
// refuses it, leaving it as it is.
var ErrNewerSchema = errors.New("etcd store: the keyspace was written by a newer palaver")

// ErrTooLarge reports a write that does not fit in one etcd transaction:
// more operations than etcd's --max-txn-ops, or a request over its
// --max-request-bytes. Nothing was written.
var ErrTooLarge = errors.New("etcd store: transaction over etcd's limits")

// Config configures Open. Zero values take the defaults noted.
type Config struct {
	// Endpoints are the client URLs of the etcd members ("http://10.0.0.1:2379").
	Endpoints []string
	// Prefix is put before every key the store writes, so that several
	// palaver deployments (or other applications) can share a cluster.
	// Default DefaultPrefix ("/palaver/"); a "/" is added if missing.
	Prefix string
	// Username and Password authenticate to etcd when set.
	Username, Password string
	// TLS, when not nil, is used to reach the endpoints (https URLs).
	TLS *tls.Config
	// DialTimeout bounds how long Open waits for the cluster to answer.
	// Default DefaultDialTimeout (5 s).
	DialTimeout time.Duration
	// RequestTimeout bounds every store operation, so that an
	// unreachable cluster gives errors rather than hanging callers.
	// Default DefaultRequestTimeout (10 s).
	RequestTimeout time.Duration
	// Member names this process among the cluster's members; two live
	// processes may not share one. Default "hostname-pid".
	Member string
	// Advertise is this process's internal URL, published in its member
	// record for the others (forwarded webhooks). Optional.
	Advertise string
	// Failover is the TTL of the process's session lease: when the
	// process dies or is cut off, what it holds (conversation claims,
	// leadership, shards) goes to others this long after its last
	// keep-alive. Default DefaultFailover (10 s); at least 2 s.
	Failover time.Duration
	// Retention is the most history entries kept per conversation, as
	// sessions.BoltOptions.Retention. Default sessions.DefaultRetention.
	Retention int
	// ProgressFlush is the write-behind period of SetProgress. Default
	// DefaultProgressFlush (250 ms).
	ProgressFlush time.Duration
	// HandoverTimeout bounds how long a process handing a Discord shard
	// over keeps its own connection while the receiver's connects (see
	// Watch): past it the shard is closed and released all the same, and
	// its events are lost until the receiver is connected. Default
	// DefaultHandoverTimeout (15 s). Handing over k shards of one
	// identify bucket (shard % max_concurrency) takes k × 5 s at least.
	HandoverTimeout time.Duration
	// MaxTxnOps and MaxRequestBytes are the cluster's limits
	// (--max-txn-ops, --max-request-bytes): a write over them fails with
	// ErrTooLarge before it is sent. Defaults are etcd's: 128 and 1.5 MiB;
	// at least 64 and 1 MiB + 4 KiB (an image chunk).
	MaxTxnOps       int
	MaxRequestBytes int
	// Log receives the store's errors that have no caller to return to;
	// nil is slog.Default().
	Log *slog.Logger
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if len(c.Endpoints) == 0 {
		return c, errors.New("etcd store: no endpoints")
	}
	for _, ep := range c.Endpoints {
		if strings.TrimSpace(ep) == "" {
			return c, errors.New("etcd store: empty endpoint")
		}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Failover == 0 {
		c.Failover = DefaultFailover
	}
	if c.Failover < minFailover {
		return c, fmt.Errorf("etcd store: failover %v is below the minimum of %v (etcd's shortest lease)", c.Failover, minFailover)
	}
	if c.Retention <= 0 {
		c.Retention = sessions.DefaultRetention
	}
	if c.ProgressFlush <= 0 {
		c.ProgressFlush = DefaultProgressFlush
	}
	if c.HandoverTimeout <= 0 {
		c.HandoverTimeout = DefaultHandoverTimeout
	}
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxRequestBytes < blobChunk+4<<10 {
		return c, fmt.Errorf("etcd store: a request limit of %d bytes is below the %d an image chunk needs: etcd's --max-request-bytes must be at least 1.1 MiB", c.MaxRequestBytes, blobChunk+4<<10)
	}
	if c.MaxTxnOps < 64 {
		return c, fmt.Errorf("etcd store: a limit of %d operations per transaction is below the 64 a turn's commit may need: raise etcd's --max-txn-ops", c.MaxTxnOps)
	}
	if c.Member == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "palaver"
		}
		c.Member = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if strings.ContainsAny(c.Member, "/\x00") {
		return c, fmt.Errorf("etcd store: member %q: may not contain '/'", c.Member)
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c, nil
}

// Store is the sessions.Store, sessions.UsageStore and sessions.Claimer
// kept in an etcd cluster, shared by every palaver process of a
// deployment, and the coordination of those processes (see Lead, Watch,
// Identify). It is safe for concurrent use.
type Store struct {
	cli *clientv3.Client
	cfg Config
	p   string // key prefix, ending in "/"
	log *slog.Logger

	locks   keyLocks   // serialises this process's writes per conversation
	usageMu sync.Mutex // serialises this process's writes of usage counters

	sessMu      sync.Mutex
	sess        *session      // nil while a lost session is replaced
	sessChanged chan struct{} // closed when sess changes
	claims      map[string]claim
	leading     map[string]bool
	shards      *shardWatch

	progress progressBuffer
	hooks    testHooks

	noteMu      sync.Mutex
	noteID      clientv3.LeaseID // the lease of handoff notes (noteLease)
	noteGranted time.Time

	stop      chan struct{} // closed by Close
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// testHooks are called at points of the store's work where a test makes
// other work happen; all nil outside tests.
type testHooks struct {
	flushLocking func() // flush knows its conversations, before it locks them
}

var (
	_ sessions.Store      = (*Store)(nil)
	_ sessions.UsageStore = (*Store)(nil)
	_ sessions.Claimer    = (*Store)(nil)
	_ sessions.Handoff    = (*Store)(nil)
	_ sessions.Owners     = (*Store)(nil)
)

// Open connects to the etcd cluster of cfg.Endpoints, checks the schema
// of the keyspace under cfg.Prefix (creating it when empty, refusing one
// of a newer palaver with ErrNewerSchema), takes the process's session
// lease and registers its member record. A cluster that does not answer
// within cfg.DialTimeout is an error naming the endpoints; the caller
// may try again.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		TLS:         cfg.TLS,
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
		// Limits are checked before sending, against the configured ones.
		MaxCallSendMsgSize: cfg.MaxRequestBytes + 64<<10,
	})
	if err != nil {
		return nil, unreachable(cfg, err)
	}
	s := &Store{
		cli:         cli,
		cfg:         cfg,
		p:           cfg.Prefix,
		log:         cfg.Log,
		sessChanged: make(chan struct{}),
		claims:      make(map[string]claim),
		leading:     make(map[string]bool),
		stop:        make(chan struct{}),
	}
	s.progress.init()
	if err := s.open(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	s.wg.Add(3)
	go s.keepSession()
	go s.flushLoop()
	go s.sweepLoop()
	return s, nil
}

// unreachable is the error of a cluster that did not answer.
func unreachable(cfg Config, err error) error {
	return fmt.Errorf("etcd store: %w at %s within %v: %w", ErrUnreachable, strings.Join(cfg.Endpoints, ", "), cfg.DialTimeout, err)
}

// ErrMemberInUse reports a Config.Member another live process registered:
// a process restarted under the same name before its predecessor's lease
// expired, or two processes given one name.
var ErrMemberInUse = errors.New("member name in use")

// ErrUnreachable reports that the cluster did not answer at all (Open,
// Ping): worth trying again later, unlike a refusal.
var ErrUnreachable = errors.New("no answer from etcd")

// open checks the schema, takes the session and drains releases left by
// a process that stopped half-way.
func (s *Store) open(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	if err := s.checkSchema(dctx); err != nil {
		if ctx.Err() == nil && dctx.Err() != nil || isUnavailable(err) {
			return unreachable(s.cfg, err)
		}
		return err
	}
	sess, err := s.newSession(dctx, 0)
	if err != nil {
		if ctx.Err() == nil && dctx.Err() != nil || isUnavailable(err) {
			return unreachable(s.cfg, err)
		}
		return err
	}
	s.sess = sess
	rctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.drainAll(rctx); err != nil {
		s.log.Warn("etcd store: release images left by a stopped process", slog.Any("error", err))
	}
	return nil
}

// isUnavailable reports an error of a cluster that cannot be reached.
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	st, ok := status.FromError(err)
	return ok && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded)
}

// checkSchema creates the schema key of an empty keyspace and refuses
// one of another version.
func (s *Store) checkSchema(ctx context.Context) error {
	k := s.p + "schema"
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, strconv.Itoa(Schema))).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		return fmt.Errorf("etcd store: read schema: %w", err)
	}
	if resp.Succeeded {
		return nil
	}
	v := string(resp.Responses[0].GetResponseRange().Kvs[0].Value)
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return fmt.Errorf("etcd store: %sschema is %q, not a palaver schema version: is the prefix another application's?", s.p, v)
	case n > Schema:
		return fmt.Errorf("%w: schema version %d under %s, this palaver reads %d: upgrade palaver", ErrNewerSchema, n, s.p, Schema)
	case n < Schema:
		return fmt.Errorf("etcd store: schema version %d under %s is older than %d, and this palaver has no upgrade from it", n, s.p, Schema)
	}
	return nil
}

// Close hands the Discord shards this process runs over to the other
// processes (as when Watch's context ends, bounded: see Watch), writes
// pending progress records, gives up everything the process holds (its
// session lease: claims, leadership, shards, member record) and
// disconnects. Later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.handOverShards()
		s.closed.Store(true)
		s.progress.mu.Lock()
		s.progress.closed = true
		s.progress.mu.Unlock()
		close(s.stop)
		s.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		flushErr := s.flush(ctx, true)
		s.sessMu.Lock()
		sess := s.sess
		s.sess = nil
		s.sessMu.Unlock()
		var sessErr error
		if sess != nil {
			sessErr = sess.close(ctx)
		}
		s.closeErr = errors.Join(flushErr, sessErr, s.cli.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("etcd store: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// begin checks that the store is open and ctx alive, and bounds ctx by
// the request timeout.
func (s *Store) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if s.closed.Load() {
		return nil, nil, sessions.ErrStoreClosed
	}
	ctx, cancel := s.opCtx(ctx)
	return ctx, cancel, nil
}

// beginConv is begin for an operation on conversation key, with the
// conversation's name in the keys.
func (s *Store) beginConv(ctx context.Context, key sessions.Key) (context.Context, context.CancelFunc, string, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	name, err := keyName(key)
	if err != nil {
		cancel()
		return nil, nil, "", err
	}
	return ctx, cancel, name, nil
}

// opCtx bounds ctx by the request timeout.
func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// sweepPeriod is how often release records a write could not drain are
// looked for.
const sweepPeriod = time.Minute

// sweepLoop drains release records left behind, until Close.
func (s *Store) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(sweepPeriod)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := s.opCtx(context.Background())
		if err := s.drainAll(ctx); err != nil {
			s.log.Warn("etcd store: release images", slog.Any("error", err))
		}
		cancel()
	}
}

// maxAttempts bounds how often update prepares a transaction again after
// another writer changed what it read.
const maxAttempts = 50

// txn is one etcd transaction being prepared: compares and operations.
type txn struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
	size int // bytes of keys and values, for the request limit
}

// unchanged makes the transaction require that k is as read: modRev is
// the revision it was read at, 0 for a key that was absent.
func (t *txn) unchanged(k string, modRev int64) {
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(k), "=", modRev))
	t.size += len(k) + 16
}

// exists makes the transaction require that k exists.
func (t *txn) exists(k string) {
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.CreateRevision(k), ">", 0))
	t.size += len(k) + 16
}

func (t *txn) put(k string, v []byte, opts ...clientv3.OpOption) {
	t.ops = append(t.ops, clientv3.OpPut(k, string(v), opts...))
	t.size += len(k) + len(v) + 16
}

func (t *txn) del(k string, opts ...clientv3.OpOption) {
	t.ops = append(t.ops, clientv3.OpDelete(k, opts...))
	t.size += 2*len(k) + 16
}

// check refuses a transaction over the configured limits.
func (s *Store) check(t *txn) error {
	if n := max(len(t.ops), len(t.cmps)); n > s.cfg.MaxTxnOps {
		return fmt.Errorf("%w: %d operations in one transaction, over the limit of %d (etcd's --max-txn-ops)", ErrTooLarge, n, s.cfg.MaxTxnOps)
	}
	if t.size > s.cfg.MaxRequestBytes {
		return fmt.Errorf("%w: a %s request, over the limit of %s (etcd's --max-request-bytes)", ErrTooLarge, sizeOf(t.size), sizeOf(s.cfg.MaxRequestBytes))
	}
	return nil
}

// sizeOf formats a size in bytes as KiB or MiB.
func sizeOf(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}

// txnError turns etcd's refusals of a transaction's size into ErrTooLarge.
func (s *Store) txnError(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%w: %v (etcd's --max-txn-ops is below the configured %d)", ErrTooLarge, err, s.cfg.MaxTxnOps)
	case errors.Is(err, rpctypes.ErrRequestTooLarge), status.Code(err) == codes.ResourceExhausted:
		return fmt.Errorf("%w: %v (etcd's --max-request-bytes is below the configured %d)", ErrTooLarge, err, s.cfg.MaxRequestBytes)
	}
	return err
}

// update runs prepare, which reads what it needs and fills a transaction,
// and commits that transaction, fenced by this process's claims on convs
// (see Claim). When another writer changed what prepare read, it
// prepares again. A transaction without operations is not sent. It
// returns sessions.ErrNotOwner when a fence failed because another
// process holds a conversation, or this process lost its claim; a claim
// this process took or gave up meanwhile (a turn began or ended) only
// makes it prepare again.
func (s *Store) update(ctx context.Context, convs []string, prepare func(ctx context.Context, t *txn) error) (*clientv3.TxnResponse, error) {
	for attempt := 1; ; attempt++ {
		t := &txn{}
		fences := make([]clientv3.Op, len(convs))
		held := make([]int64, len(convs))
		for i, name := range convs {
			k := s.claimKey(name)
			held[i] = s.heldClaim(name)
			t.cmps = append(t.cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", held[i]))
			fences[i] = clientv3.OpGet(k, clientv3.WithKeysOnly())
		}
		if err := prepare(ctx, t); err != nil {
			return nil, err
		}
		if len(t.ops) == 0 {
			return nil, nil
		}
		if err := s.check(t); err != nil {
			return nil, err
		}
		resp, err := s.cli.Txn(ctx).If(t.cmps...).Then(t.ops...).Else(fences...).Commit()
		if err != nil {
			return nil, s.txnError(err)
		}
		if resp.Succeeded {
			return resp, nil
		}
		for i, name := range convs {
			var rev int64
			if kvs := resp.Responses[i].GetResponseRange().Kvs; len(kvs) > 0 {
				rev = kvs[0].CreateRevision
			}
			// A claim this process took or released meanwhile (a turn
			// of the conversation began or ended) is no other's: the
			// write is prepared again under the claim it has now.
			if rev != held[i] && s.heldClaim(name) == held[i] {
				return nil, sessions.ErrNotOwner
			}
		}
		if attempt == maxAttempts {
			return nil, fmt.Errorf("etcd store: gave up after %d attempts: other writers keep changing the same keys", attempt)
		}
		if attempt > 3 {
			// Let the other writer finish.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Millisecond):
			}
		}
	}
}

// read gets keys in one read-only transaction: the map holds those that
// exist.
func (s *Store) read(ctx context.Context, keys ...string) (map[string]*mvccpb.KeyValue, error) {
	out := make(map[string]*mvccpb.KeyValue, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), s.cfg.MaxTxnOps)
		ops := make([]clientv3.Op, n)
		for i, k := range keys[:n] {
			ops[i] = clientv3.OpGet(k)
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				out[string(kv.Key)] = kv
			}
		}
		keys = keys[n:]
	}
	return out, nil
}

// modRev is the revision kv was last changed at, 0 for an absent key.
func modRev(kv *mvccpb.KeyValue) int64 {
	if kv == nil {
		return 0
	}
	return kv.ModRevision
}

// newID returns a random id for keys that must not collide.
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// keyLocks are mutexes by name, made while in use.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks each of names (in order, so that two callers never wait for
// each other) and returns the function that unlocks them.
func (l *keyLocks) lock(names ...string) func() {
	names = sortedUnique(names)
	held := make([]*keyLock, len(names))
	for i, name := range names {
		held[i] = l.ref(name)
		held[i].mu.Lock()
	}
	return func() {
		for i, name := range names {
			held[i].mu.Unlock()
			l.unref(name)
		}
	}
}

// tryLock locks name if no one holds it.
func (l *keyLocks) tryLock(name string) (unlock func(), ok bool) {
	k := l.ref(name)
	if !k.mu.TryLock() {
		l.unref(name)
		return nil, false
	}
	return func() {
		k.mu.Unlock()
		l.unref(name)
	}, true
}

func (l *keyLocks) ref(name string) *keyLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = make(map[string]*keyLock)
	}
	k := l.locks[name]
	if k == nil {
		k = &keyLock{}
		l.locks[name] = k
	}
	k.refs++
	return k
}

func (l *keyLocks) unref(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := l.locks[name]; k != nil {
		if k.refs--; k.refs == 0 {
			delete(l.locks, name)
		}
	}
}

func sortedUnique(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
