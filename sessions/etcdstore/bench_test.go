package etcdstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore/etcdtest"
)

// turnCommit is the commit that ends a turn: the question (with its
// platform id) and the answer, the usage, and the progress record
// dropped, into one of 100 conversations of 100 users.
func turnCommit(i int) (sessions.Key, sessions.Commit) {
	key := sessions.Key{Platform: "telegram", Chat: fmt.Sprint(i % 100)}
	u := llm.Usage{PromptTokens: 300, CompletionTokens: 400}
	r := sessions.UsageRecord{Day: "2026-04-15", Platform: "telegram", User: fmt.Sprint(i % 100), UserName: "Name",
		Conversation: key.String(), Model: "p/m", Tally: sessions.Tally{Requests: 1, PromptTokens: 300, CompletionTokens: 400}}
	return key, sessions.Commit{
		Entries: []sessions.Entry{
			{Role: llm.RoleUser, MsgID: fmt.Sprint(i + 1), AuthorID: fmt.Sprint(i % 100), Text: strings.Repeat("q", 200), Time: time.Now()},
			{Role: llm.RoleAssistant, Text: strings.Repeat("word ", 300), Model: "p/m", Usage: u, Time: time.Now()},
		},
		ProgressID: uint64(i + 1), DropProgress: true,
		Usage: &r,
	}
}

// BenchmarkCommit measures the latency of a turn's commit (one at a
// time) on a one-member etcd on loopback that syncs its log to disk as
// production etcd does, under the conversation's claim, next to
// BoltStore's on the same disk.
func BenchmarkCommit(b *testing.B) {
	b.Run("Bolt", func(b *testing.B) {
		s, err := sessions.OpenBolt(filepath.Join(b.TempDir(), "palaver.db"), sessions.BoltOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchCommits(b, s)
	})
	b.Run("Etcd", func(b *testing.B) {
		c, err := etcdtest.New(b.TempDir(), 1, etcdtest.Options{Fsync: true})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		s, err := Open(b.Context(), Config{Endpoints: c.Endpoints(), Member: "bench", Log: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for i := range 100 {
			key, _ := turnCommit(i)
			_, release, err := s.Claim(b.Context(), key)
			if err != nil {
				b.Fatal(err)
			}
			defer release()
		}
		benchCommits(b, s)
	})
}

func benchCommits(b *testing.B, s sessions.Store) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key, c := turnCommit(i)
		if err := s.Commit(b.Context(), key, c); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkKeyspace writes conversations of a realistic history and
// reports the bytes they take in the keyspace (keys and values, as etcd's
// quota counts them before history and fragmentation), per conversation
// and per history entry. Run it once: -bench Keyspace -benchtime 1x.
// The sizing in the package documentation comes from it.
func BenchmarkKeyspace(b *testing.B) {
	const (
		conversations = 200
		turns         = 20 // 40 entries each
	)
	for b.Loop() {
		measureKeyspace(b, conversations, turns)
	}
}

func measureKeyspace(b *testing.B, conversations, turns int) {
	cfg := testConfig(b)
	s := mustOpen(b, cfg)
	ctx := context.Background()
	msg := 0
	for c := range conversations {
		key := sessions.Key{Platform: "telegram", Chat: fmt.Sprint(-1001234567890 - c)}
		if err := s.SaveSettings(ctx, key, sessions.Settings{Model: "deepinfra/deepseek-ai/DeepSeek-V3"}); err != nil {
			b.Fatal(err)
		}
		for t := range turns {
			msg++
			q := sessions.Entry{Role: llm.RoleUser, MsgID: fmt.Sprint(msg), AuthorID: "123456789", AuthorName: "Some User",
				Text: strings.Repeat("a question ", 12), Time: time.Now(), Group: "-1001234567890"}
			a := sessions.Entry{Role: llm.RoleAssistant, Text: strings.Repeat("an answer of some length ", 40),
				Model: "deepinfra/deepseek-ai/DeepSeek-V3", Usage: llm.Usage{PromptTokens: 900 + 40*t, CompletionTokens: 250, TotalTokens: 1150 + 40*t},
				Time: time.Now()}
			r := sessions.UsageRecord{Day: "2026-04-15", Platform: "telegram", User: "123456789", UserName: "Some User",
				Group: "-1001234567890", Conversation: key.String(), Shared: true, Model: a.Model, Tally: sessions.Tally{Requests: 1, PromptTokens: 900, CompletionTokens: 250}}
			if err := s.Commit(ctx, key, sessions.Commit{Entries: []sessions.Entry{q, a}, Usage: &r}); err != nil {
				b.Fatal(err)
			}
		}
	}
	cli := cluster.Client(b)
	var hist, usage, total int
	resp, err := cli.Get(ctx, cfg.Prefix, clientv3.WithPrefix())
	if err != nil {
		b.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		n := len(kv.Key) + len(kv.Value)
		total += n
		switch k := string(kv.Key[len(cfg.Prefix):]); {
		case strings.HasPrefix(k, "hist/"):
			hist += n
		case strings.HasPrefix(k, "usage/"):
			usage += n
		}
	}
	n := float64(conversations)
	b.ReportMetric(float64(total)/n, "bytes/conversation")
	b.ReportMetric(float64(hist)/(n*float64(turns)*2), "bytes/entry")
	b.ReportMetric(float64(total-hist-usage)/n, "other-bytes/conversation")
	b.ReportMetric(float64(usage)/n, "usage-bytes/conversation")
}
