package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore"
)

// commitProbe measures the latency of a turn's commit while the load
// runs: on the deployment's etcd cluster (under probePrefix, with a
// session and claims of its own, as a palaver process commits) and on a
// bbolt file on the same disk, one commit of each in turn every
// probeEvery.
type commitProbe struct {
	etcd *etcdstore.Store
	bolt *sessions.BoltStore
	stop chan struct{}
	done chan struct{}

	mu               sync.Mutex
	etcdLat, boltLat []time.Duration
	err              error
}

// probeEvery spaces the probe's commits: a light load beside palaver's.
const probeEvery = 100 * time.Millisecond

// probeConversations is how many conversations the probe commits to, in
// turn.
const probeConversations = 20

func startCommitProbe(ctx context.Context, w *world) (*commitProbe, error) {
	quiet := slog.New(slog.DiscardHandler)
	es, err := etcdstore.Open(ctx, etcdstore.Config{Endpoints: w.etcd.Endpoints(), Prefix: probePrefix, Member: "probe", Log: quiet})
	if err != nil {
		return nil, fmt.Errorf("commit probe: %w", err)
	}
	bs, err := sessions.OpenBolt(filepath.Join(w.dir, "probe.db"), sessions.BoltOptions{Logger: quiet})
	if err != nil {
		es.Close()
		return nil, fmt.Errorf("commit probe: %w", err)
	}
	p := &commitProbe{etcd: es, bolt: bs, stop: make(chan struct{}), done: make(chan struct{})}
	var releases []func()
	for i := range probeConversations {
		_, release, err := es.Claim(ctx, probeKey(i))
		if err != nil {
			p.closeStores()
			return nil, fmt.Errorf("commit probe: %w", err)
		}
		releases = append(releases, release)
	}
	go func() {
		defer close(p.done)
		defer func() {
			for _, r := range releases {
				r()
			}
		}()
		p.run(ctx)
	}()
	return p, nil
}

func probeKey(i int) sessions.Key {
	return sessions.Key{Platform: telegram, Chat: strconv.Itoa(900001 + i%probeConversations)}
}

// probeTurn is a turn's commit as palaver makes it: the question with
// its platform id, the answer, the usage, the progress record dropped.
func probeTurn(i int) (sessions.Key, sessions.Commit) {
	key := probeKey(i)
	u := llm.Usage{PromptTokens: 300, CompletionTokens: 400}
	r := sessions.UsageRecord{Day: time.Now().UTC().Format(time.DateOnly), Platform: telegram, User: key.Chat, UserName: "Probe",
		Conversation: key.String(), Model: "fake/echo", Tally: sessions.Tally{Requests: 1, PromptTokens: 300, CompletionTokens: 400}}
	return key, sessions.Commit{
		Entries: []sessions.Entry{
			{Role: llm.RoleUser, MsgID: strconv.Itoa(i + 1), AuthorID: key.Chat, Text: strings.Repeat("q", 200), Time: time.Now()},
			{Role: llm.RoleAssistant, Text: strings.Repeat("word ", 300), Model: "fake/echo", Usage: u, Time: time.Now()},
		},
		ProgressID: uint64(i + 1), DropProgress: true,
		Usage: &r,
	}
}

func (p *commitProbe) run(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		key, c := probeTurn(i)
		start := time.Now()
		err := p.etcd.Commit(ctx, key, c)
		mid := time.Now()
		if err == nil {
			err = p.bolt.Commit(ctx, key, c)
		}
		end := time.Now()
		p.mu.Lock()
		if err != nil {
			p.err = err
			p.mu.Unlock()
			return
		}
		p.etcdLat = append(p.etcdLat, mid.Sub(start))
		p.boltLat = append(p.boltLat, end.Sub(mid))
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *commitProbe) closeStores() {
	p.etcd.Close()
	p.bolt.Close()
}

// finish stops the probe and returns its figures.
func (p *commitProbe) finish() (commitReport, error) {
	close(p.stop)
	<-p.done
	p.closeStores()
	p.mu.Lock()
	defer p.mu.Unlock()
	r := commitReport{Commits: len(p.etcdLat)}
	r.EtcdP50, r.EtcdP99 = millis(quantile(p.etcdLat, 0.5)), millis(quantile(p.etcdLat, 0.99))
	r.BoltP50, r.BoltP99 = millis(quantile(p.boltLat, 0.5)), millis(quantile(p.boltLat, 0.99))
	if p.err != nil {
		return r, fmt.Errorf("commit probe: %w", p.err)
	}
	return r, nil
}

// quantile is the nearest-rank q-quantile of ds (0 for none): with few
// values, p99 is the largest.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
