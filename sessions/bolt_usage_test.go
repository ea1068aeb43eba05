package sessions

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/palaver-bot/palaver/llm"
)

func TestTally_Encoding(t *testing.T) {
	full := Tally{Requests: 3, PromptTokens: 1 << 40, CompletionTokens: 70, ReasoningTokens: 20, EstimatedTokens: 5,
		CostNanoUSD: 123456789, UnpricedTokens: 9, MaxTokens: 60, MaxCostNanoUSD: 1000}
	tests := []struct {
		name string
		in   []byte
		want Tally
	}{
		{"OK", AppendTally(nil, full), full},
		{"Empty", nil, Tally{}},
		// An older palaver wrote fewer counters: the rest are zero.
		{"Older", AppendTally(nil, full)[:7], Tally{Requests: 3, PromptTokens: 1 << 40}},
		// A newer one wrote more: they are ignored.
		{"Newer", append(AppendTally(nil, full), 7, 8), full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTally(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("DecodeTally = %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("ErrMalformed", func(t *testing.T) {
		if _, err := DecodeTally([]byte{0x80}); !errors.Is(err, errBadTally) {
			t.Errorf("DecodeTally(cut varint) = %v, want errBadTally", err)
		}
	})
}

func TestTallyOf(t *testing.T) {
	u := llm.Usage{PromptTokens: 1000, CompletionTokens: 500, CompletionDetails: llm.CompletionDetails{ReasoningTokens: 200}}
	tests := []struct {
		name      string
		price     *llm.Pricing
		estimated bool
		want      Tally
	}{
		{"Priced", &llm.Pricing{InputTokens: 0.5, OutputTokens: 2}, false,
			// 1000 × $0.5/M + 500 × $2/M = $0.0015
			Tally{Requests: 1, PromptTokens: 1000, CompletionTokens: 500, ReasoningTokens: 200, CostNanoUSD: 1_500_000, MaxTokens: 1500, MaxCostNanoUSD: 1_500_000}},
		{"Unpriced", nil, false,
			Tally{Requests: 1, PromptTokens: 1000, CompletionTokens: 500, ReasoningTokens: 200, UnpricedTokens: 1500, MaxTokens: 1500}},
		{"Estimated", nil, true,
			Tally{Requests: 1, PromptTokens: 1000, CompletionTokens: 500, ReasoningTokens: 200, EstimatedTokens: 1500, UnpricedTokens: 1500, MaxTokens: 1500}},
		{"Free", &llm.Pricing{}, false,
			Tally{Requests: 1, PromptTokens: 1000, CompletionTokens: 500, ReasoningTokens: 200, MaxTokens: 1500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tallyOf(u, tt.price, tt.estimated); got != tt.want {
				t.Errorf("tallyOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEstimateUsage(t *testing.T) {
	prompt := []llm.Message{{Role: llm.RoleSystem, Content: "be brief"}, {Role: llm.RoleUser, Content: "hello there", Name: "Al"}}
	if got := estimateUsage(prompt, "", ""); !got.IsZero() {
		t.Errorf("nothing received: estimate %+v, want none", got)
	}
	got := estimateUsage(prompt, "an answer", "some thought")
	want := llm.Usage{
		PromptTokens:      estimateTokens("be brief") + estimateTokens("hello there") + estimateTokens("Al"),
		CompletionTokens:  estimateTokens("an answer") + estimateTokens("some thought"),
		CompletionDetails: llm.CompletionDetails{ReasoningTokens: estimateTokens("some thought")},
	}
	want.TotalTokens = want.PromptTokens + want.CompletionTokens
	if got != want {
		t.Errorf("estimateUsage = %+v, want %+v", got, want)
	}
}

func mustOpen(t *testing.T) *BoltStore {
	t.Helper()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBoltStore_AddUsage(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	one := Tally{Requests: 1, PromptTokens: 10, CompletionTokens: 5, CostNanoUSD: 100, MaxTokens: 15, MaxCostNanoUSD: 100}
	add := func(day, user, name, model string) {
		t.Helper()
		r := UsageRecord{Day: day, Platform: "telegram", User: user, UserName: name, Group: "-100", Conversation: "telegram:-100", Shared: true, Model: model, Tally: one}
		if err := s.AddUsage(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	add("2026-03-31", "1", "Al", "p/a")
	add("2026-04-01", "1", "Alice", "p/a")
	add("2026-04-01", "1", "Alice", "p/b")
	add("2026-04-02", "2", "Bob", "p/a")

	got, err := s.UsageCounters(ctx, []UsageKey{
		{"2026-04-01", scopeUser, "telegram:1", ""},
		{"2026-04", scopeUser, "telegram:1", ""},
		{"2026-04", scopeGroup, "telegram:-100", ""},
		{"2026-04", scopeModel, "p/a", ""},
		{"2026-03", scopeConversation, "telegram:-100", ""},
		{"2026-04-03", scopeUser, "telegram:1", ""},
		{"2026-04", scopeUser, "telegram:1", "p/b"},
		{"2026-04-01", scopeUser, "telegram:1", "p/b"}, // parts are counted by month only
	})
	if err != nil {
		t.Fatal(err)
	}
	two := one
	two.Add(one)
	three := two
	three.Add(one)
	if want := []Tally{two, two, three, two, one, {}, one, {}}; !reflect.DeepEqual(got, want) {
		t.Errorf("UsageCounters = %+v\nwant %+v", got, want)
	}

	members, err := s.UsageList(ctx, "2026-04", scopeGroup, "telegram:-100")
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || members[0].Name != "Alice" || members[0].Tally != two || members[1].Name != "Bob" || members[1].Tally != one {
		t.Errorf("UsageList(member) = %+v", members)
	}

	recs, err := s.UsageRecords(ctx, "2026-04-01", "2026-04-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Model != "p/a" || recs[1].Model != "p/b" || recs[0].UserName != "Alice" || recs[0].Tally != one {
		t.Errorf("UsageRecords = %+v", recs)
	}

	// Pruning before 2026-04-02 keeps April's month counters and the
	// days from then on, a batch at a time.
	var next []byte
	for i := 0; ; i++ {
		n, done, err := s.PruneUsage(ctx, "2026-04-02", next, 3)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		if next = n; i > 100 {
			t.Fatal("PruneUsage never done")
		}
	}
	got, err = s.UsageCounters(ctx, []UsageKey{
		{"2026-04-01", scopeUser, "telegram:1", ""},
		{"2026-04", scopeUser, "telegram:1", ""},
		{"2026-03", scopeUser, "telegram:1", ""},
		{"2026-04-02", scopeUser, "telegram:2", ""},
		{"2026-03", scopeUser, "telegram:1", "p/a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Tally{{}, two, {}, one, {}}; !reflect.DeepEqual(got, want) {
		t.Errorf("after pruning: %+v\nwant %+v", got, want)
	}
	if recs, _ := s.UsageRecords(ctx, "2026-01-01", "2026-12-31"); len(recs) != 1 || recs[0].User != "2" {
		t.Errorf("records after pruning: %+v", recs)
	}
	if r, err := CheckBolt(s.Path()+".none", 0); err == nil {
		t.Errorf("CheckBolt of a missing file = %+v", r)
	}
}

func TestBoltStore_AddUsage_ErrBadDay(t *testing.T) {
	s := mustOpen(t)
	if err := s.AddUsage(context.Background(), UsageRecord{Day: "yesterday", Model: "p/m"}); err == nil {
		t.Error("AddUsage with a bad day succeeded")
	}
}

// TestCheckBolt_Usage checks that store check reads the usage counters
// and names a malformed one.
func TestCheckBolt_Usage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "palaver.db")
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := UsageRecord{Day: "2026-04-01", Platform: "console", User: "me", UserName: "Me", Conversation: "console:me", Model: "p/m", Tally: Tally{Requests: 1, PromptTokens: 3}}
	if err := s.AddUsage(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckBolt(path, DefaultLockTimeout); err != nil {
		t.Fatalf("CheckBolt of a store with usage: %v", err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsageCounters).Put([]byte("user\x00console:me\x002026-04-01"), []byte{0xff})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := CheckBolt(path, DefaultLockTimeout)
	if !errors.Is(err, ErrDamaged) || rep == nil || rep.ProblemCount != 1 {
		t.Fatalf("CheckBolt of a malformed counter = %+v, %v", rep, err)
	}
	// Adding to a malformed counter starts it again rather than failing
	// the commit of an answer.
	s, err = OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddUsage(context.Background(), r); err != nil {
		t.Fatalf("AddUsage over a malformed counter: %v", err)
	}
	got, err := s.UsageCounters(context.Background(), []UsageKey{{"2026-04-01", scopeUser, "console:me", ""}})
	if err != nil || got[0] != r.Tally {
		t.Errorf("counter = %+v, %v; want %+v", got, err, r.Tally)
	}
}

// BenchmarkBoltStore_Commit_Usage measures what recording an answer's
// usage adds to its commit: the same commit of a question and its answer,
// into 1,000 conversations of 1,000 users, with and without Usage.
func BenchmarkBoltStore_Commit_Usage(b *testing.B) {
	for _, withUsage := range []bool{false, true} {
		name := "Without"
		if withUsage {
			name = "With"
		}
		b.Run(name, func(b *testing.B) {
			s, err := OpenBolt(filepath.Join(b.TempDir(), "palaver.db"), BoltOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				key := Key{Platform: "telegram", Chat: fmt.Sprint(i % 1000)}
				c := Commit{Entries: []Entry{
					{Role: llm.RoleUser, AuthorID: fmt.Sprint(i % 1000), Text: "a question of some length"},
					{Role: llm.RoleAssistant, Text: strings.Repeat("word ", 500), Usage: llm.Usage{PromptTokens: 30, CompletionTokens: 500}},
				}}
				if withUsage {
					r := UsageRecord{Day: "2026-04-15", Platform: "telegram", User: fmt.Sprint(i % 1000), UserName: "Name",
						Conversation: key.String(), Model: "p/m", Tally: tallyOf(c.Entries[1].Usage, &llm.Pricing{InputTokens: 1, OutputTokens: 2}, false)}
					c.Usage = &r
				}
				if err := s.Commit(ctx, key, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
