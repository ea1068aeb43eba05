package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore"
)

// etcdConfig is storage.etcd and cluster as the etcd store takes them.
func etcdConfig(cfg *Config, log *slog.Logger) (etcdstore.Config, error) {
	e := cfg.Storage.Etcd
	ec := etcdstore.Config{
		Endpoints: e.Endpoints, Prefix: e.Prefix,
		Username: e.Username, Password: e.Password,
		DialTimeout: e.DialTimeout,
		Member:      cfg.Cluster.Member, Advertise: cfg.Cluster.Advertise, Failover: cfg.Cluster.Failover,
		Retention: cfg.Storage.HistoryLimit,
		Log:       log,
	}
	t := e.TLS
	if t.CA == "" && t.Cert == "" && t.ServerName == "" {
		return ec, nil
	}
	tc := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return ec, fmt.Errorf("storage.etcd.tls.ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return ec, fmt.Errorf("storage.etcd.tls.ca: %s holds no PEM certificate", t.CA)
		}
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return ec, fmt.Errorf("storage.etcd.tls.cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	ec.TLS = tc
	return ec, nil
}

// etcdRetryMax bounds the wait between attempts to reach etcd at start.
const etcdRetryMax = 30 * time.Second

// openEtcd opens the etcd store, trying again with backoff while the
// cluster cannot be reached or this member's name is still registered by
// a predecessor (its lease expires within cluster.failover), until ctx
// ends. A store etcd answers but refuses (a newer schema, bad
// credentials) fails at once.
func openEtcd(ctx context.Context, cfg *Config, log *slog.Logger) (*etcdstore.Store, error) {
	ec, err := etcdConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	backoff := time.Second
	for {
		s, err := etcdstore.Open(ctx, ec)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil || errors.Is(err, etcdstore.ErrNewerSchema) || !etcdUnreachable(err) && !errors.Is(err, etcdstore.ErrMemberInUse) {
			return nil, fmt.Errorf("storage.etcd: %w", err)
		}
		// Unreachable, or this member's name still registered by a
		// predecessor (a restart within cluster.failover): wait.
		log.Warn("cannot open the etcd store yet; trying again", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("storage.etcd: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, etcdRetryMax)
	}
}

// etcdUnreachable reports whether err says the cluster did not answer
// (worth another try), as opposed to answering with a refusal.
func etcdUnreachable(err error) bool {
	return errors.Is(err, etcdstore.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded)
}

// printCluster reports, for palaver check, the etcd members reachable
// with cfg.
func printCluster(ctx context.Context, w io.Writer, cfg *Config) error {
	ec, err := etcdConfig(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	eps, err := etcdstore.Ping(ctx, ec)
	if err != nil {
		return fmt.Errorf("storage.etcd: %w", err)
	}
	down := 0
	for _, ep := range eps {
		if ep.Err != nil {
			down++
			fmt.Fprintf(w, "etcd member %s (%s): unreachable: %v\n", ep.Name, ep.URL, ep.Err)
			continue
		}
		lead := ""
		if ep.Leader {
			lead = ", raft leader"
		}
		fmt.Fprintf(w, "etcd member %s (%s): etcd %s, %d bytes%s\n", ep.Name, ep.URL, ep.Version, ep.DBSize, lead)
	}
	if down*2 >= len(eps) {
		return fmt.Errorf("storage.etcd: %d of %d etcd members unreachable: the cluster has no quorum", down, len(eps))
	}
	return nil
}

var _ sessions.Claimer = (*etcdstore.Store)(nil)

// setBudget gives the bot name its per-bot budget w; with several
// processes, the processes drawing on it share it (each keeps to an equal
// part: etcdstore.Store.ShareBudget) until the store closes: past ctx,
// while a stopping process finishes its answers beside the one that took
// over.
func (c *core) setBudget(ctx context.Context, name string, w sessions.Window) {
	c.engine.SetBudget(name, w)
	if c.cluster == nil {
		return
	}
	go c.cluster.ShareBudget(context.WithoutCancel(ctx), name, c.engine.BudgetDraws(name), func(n int) { c.engine.SetBudgetOthers(name, n) })
}
