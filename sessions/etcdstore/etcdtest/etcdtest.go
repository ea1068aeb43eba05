// Package etcdtest runs an embedded etcd cluster of one or three members
// on loopback, for the tests of the etcd store and of the packages and
// harnesses that use it. It is test-only: nothing in palaver's binary
// imports it.
//
// Every member listens on 127.0.0.1 ports picked free at start, keeps its
// data in a directory of its own and logs nothing. The cluster uses
// etcd's default limits (128 operations per transaction, 1.5 MiB per
// request), so that tests meet the limits a production cluster has.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startTimeout bounds how long a cluster takes to elect a leader.
const startTimeout = 30 * time.Second

// Options configure New. The zero value is a cluster fit for tests.
type Options struct {
	// Fsync makes every member sync its log to disk as production etcd
	// does (for benchmarks); tests leave it off, which is much faster.
	Fsync bool
}

// Cluster is a running embedded etcd cluster.
type Cluster struct {
	dir      string
	members  []*member
	mu       sync.Mutex
	closed   bool
	prefixes int
}

type member struct {
	name    string
	client  string // client URL
	peer    string // peer URL
	etcd    *embed.Etcd
	stopped bool
}

// Start starts a cluster of n members (1 or 3) in t.TempDir() and stops it
// at the end of t.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c, err := New(t.TempDir(), n, Options{})
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// New starts a cluster of n members (1 or 3) whose data lives in dir, and
// returns once it has a leader. Close stops it.
func New(dir string, n int, opts Options) (*Cluster, error) {
	if n != 1 && n != 3 {
		return nil, fmt.Errorf("start cluster: %d members, want 1 or 3", n)
	}
	// Ports are picked free and then released for etcd to take: another
	// process may take one in between, so a failed start tries again.
	var lastErr error
	for range 3 {
		c, err := start(dir, n, opts)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(dir string, n int, opts Options) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	var initial []string
	for i := range n {
		m := &member{
			name:   fmt.Sprintf("m%d", i),
			client: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peer:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	token := fmt.Sprintf("etcdtest-%d", time.Now().UnixNano())
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range c.members {
		cfg, err := c.config(m, strings.Join(initial, ","), token, opts)
		if err != nil {
			return nil, err
		}
		// Members of a new cluster wait for each other: start them together.
		wg.Go(func() {
			m.etcd, errs[i] = embed.StartEtcd(cfg)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	timeout := time.After(startTimeout)
	for _, m := range c.members {
		select {
		case <-m.etcd.Server.ReadyNotify():
		case err := <-m.etcd.Err():
			c.Close()
			return nil, fmt.Errorf("start cluster: member %s: %w", m.name, err)
		case <-timeout:
			c.Close()
			return nil, fmt.Errorf("start cluster: no leader after %v", startTimeout)
		}
	}
	return c, nil
}

// config is the embed configuration of member m.
func (c *Cluster) config(m *member, initial, token string, opts Options) (*embed.Config, error) {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = filepath.Join(c.dir, m.name)
	cu, err := url.Parse(m.client)
	if err != nil {
		return nil, err
	}
	pu, err := url.Parse(m.peer)
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = initial
	cfg.InitialClusterToken = token
	cfg.ClusterState = embed.ClusterStateFlagNew
	// Elections take a quarter of etcd's defaults: loopback is fast,
	// but the machine running the tests may be busy.
	cfg.TickMs, cfg.ElectionMs = 25, 250
	cfg.UnsafeNoFsync = !opts.Fsync
	cfg.EnableGRPCGateway = false
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	return cfg, nil
}

// freePorts returns n loopback ports free when it looked.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Endpoints are the client URLs of the members, running or not.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.client
	}
	return out
}

// Client returns a client of the cluster, closed at the end of t.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Prefix returns a key prefix no other caller of this cluster gets, made
// from t's name: tests share a cluster and keep apart by prefix.
func (c *Cluster) Prefix(t testing.TB) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prefixes++
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("/test/%s-%d/", name, c.prefixes)
}

// Stop stops member i, as a crash of its machine would: the others go on
// while they keep a quorum. Stopping a stopped member does nothing.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[i]
	if m.stopped || m.etcd == nil {
		return
	}
	m.stopped = true
	m.etcd.Close()
}

// Close stops every member. It may be called more than once.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for _, m := range c.members {
		if m.etcd != nil && !m.stopped {
			m.stopped = true
			m.etcd.Close()
		}
	}
}
