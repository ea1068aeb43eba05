package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore/etcdtest"
	"github.com/palaver-bot/palaver/sessions/storetest"
)

// cluster is the one-member etcd cluster the package's tests share, each
// under a prefix of its own.
var cluster *etcdtest.Cluster

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etcdstore")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cluster, err = etcdtest.New(dir, 1, etcdtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cluster.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig is a Config of the shared cluster under a new prefix.
func testConfig(t testing.TB) Config {
	return Config{
		Endpoints: cluster.Endpoints(),
		Prefix:    cluster.Prefix(t),
		Member:    "m1",
		Failover:  2 * time.Second,
		Log:       quiet,
	}
}

// openPair opens two processes' stores on one etcd prefix (testConfig's,
// members "m1" and "m2"), closed at the end of t.
func openPair(t testing.TB) (a, b *Store) {
	t.Helper()
	cfg := testConfig(t)
	a = mustOpen(t, cfg)
	cfg.Member = "m2"
	return a, mustOpen(t, cfg)
}

// mustOpen opens a store of cfg, closed at the end of t.
func mustOpen(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func openForContract(t *testing.T, retention int) sessions.Store {
	cfg := testConfig(t)
	cfg.Retention = retention
	return mustOpen(t, cfg)
}

func TestStore_Contract(t *testing.T) {
	storetest.Run(t, openForContract)
}

func TestStore_UsageContract(t *testing.T) {
	storetest.RunUsage(t, openForContract)
}

func TestOpen_BadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"NoEndpoints", Config{}, "no endpoints"},
		{"EmptyEndpoint", Config{Endpoints: []string{" "}}, "empty endpoint"},
		{"ShortFailover", Config{Endpoints: []string{"http://127.0.0.1:1"}, Failover: time.Second}, "below the minimum"},
		{"MemberWithSlash", Config{Endpoints: []string{"http://127.0.0.1:1"}, Member: "a/b"}, "may not contain"},
		{"SmallRequests", Config{Endpoints: []string{"http://127.0.0.1:1"}, MaxRequestBytes: 1 << 20}, "--max-request-bytes must be at least"},
		{"FewOps", Config{Endpoints: []string{"http://127.0.0.1:1"}, MaxTxnOps: 32}, "raise etcd's --max-txn-ops"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestOpen_Unreachable(t *testing.T) {
	ep := "http://127.0.0.1:9" // discard: nothing answers etcd there
	s, err := Open(t.Context(), Config{Endpoints: []string{ep}, DialTimeout: 300 * time.Millisecond, Log: quiet})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, ep) || !strings.Contains(msg, "no answer from etcd") {
		t.Errorf("err = %q, want it to name the endpoint", msg)
	}
}

func TestOpen_Schema(t *testing.T) {
	cli := cluster.Client(t)
	for _, tt := range []struct {
		name   string
		schema string
		err    error
		want   string
	}{
		{"Newer", "2", ErrNewerSchema, "upgrade palaver"},
		{"NotANumber", "v1", nil, "not a palaver schema version"},
		{"Older", "0", nil, "no upgrade"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			if _, err := cli.Put(t.Context(), cfg.Prefix+"schema", tt.schema); err != nil {
				t.Fatal(err)
			}
			s, err := Open(t.Context(), cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tt.err != nil && !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %v saying %q", err, tt.err, tt.want)
			}
			resp, err := cli.Get(t.Context(), cfg.Prefix, clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != tt.schema {
				t.Errorf("keyspace after a refused Open = %v, want the schema key alone", resp.Kvs)
			}
		})
	}
	t.Run("New", func(t *testing.T) {
		cfg := testConfig(t)
		mustOpen(t, cfg)
		resp, err := cli.Get(t.Context(), cfg.Prefix+"schema")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "1" {
			t.Errorf("schema key = %v, %v; want \"1\"", resp, err)
		}
	})
}

func TestOpen_MemberInUse(t *testing.T) {
	cfg := testConfig(t)
	mustOpen(t, cfg)
	s, err := Open(t.Context(), cfg)
	if err == nil {
		s.Close()
		t.Fatal("second Open with the same member succeeded")
	}
	if !strings.Contains(err.Error(), `member "m1" is registered by another live process`) {
		t.Errorf("err = %v", err)
	}
	// Another member id joins.
	cfg.Member = "m2"
	mustOpen(t, cfg)
}

// TestStore_Reopen checks that what one process wrote, progress records
// written behind included, is what the next one reads.
func TestStore_Reopen(t *testing.T) {
	cfg := testConfig(t)
	cfg.ProgressFlush = time.Hour // only Close writes them
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	key := sessions.Key{Platform: "telegram", Chat: "42"}
	ctx := t.Context()
	if err := s.Append(ctx, key, false, sessions.Entry{Role: llm.RoleUser, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgress(ctx, key, 3, &sessions.Progress{Destination: "telegram:42", Shown: sessions.View{Content: "partial"}}); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, cfg.Prefix+"progress/"); n != 0 {
		t.Errorf("%d progress records written before the flush", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgress(ctx, key, 3, nil); !errors.Is(err, sessions.ErrStoreClosed) {
		t.Errorf("SetProgress after Close = %v, want ErrStoreClosed", err)
	}
	if _, err := s.History(ctx, key, 0); !errors.Is(err, sessions.ErrStoreClosed) {
		t.Errorf("History after Close = %v, want ErrStoreClosed", err)
	}
	s = mustOpen(t, cfg)
	ps, err := s.Progresses(ctx)
	if err != nil || len(ps) != 1 || ps[0].ID != 3 || ps[0].Shown.Content != "partial" {
		t.Errorf("Progresses after reopening = %+v, %v", ps, err)
	}
	if h, err := s.History(ctx, key, 0); err != nil || len(h) != 1 {
		t.Errorf("History after reopening = %+v, %v", h, err)
	}
}

// countKeys counts the keys under prefix.
func countKeys(t testing.TB, prefix string) int64 {
	t.Helper()
	cli := cluster.Client(t)
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}
