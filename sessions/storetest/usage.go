package storetest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// RunUsage runs the contract of sessions.UsageStore, and of Commit.Usage,
// against the stores open makes, which must implement it.
func RunUsage(t *testing.T, open Open) {
	usage := func(t *testing.T) (sessions.Store, sessions.UsageStore) {
		s := open(t, defaultRetention)
		u, ok := s.(sessions.UsageStore)
		if !ok {
			t.Fatalf("%T does not implement sessions.UsageStore", s)
		}
		return s, u
	}
	t.Run("AddUsage", func(t *testing.T) {
		_, u := usage(t)
		testAddUsage(t, u)
	})
	t.Run("AddUsage/ErrBadDay", func(t *testing.T) {
		_, u := usage(t)
		if err := u.AddUsage(t.Context(), sessions.UsageRecord{Day: "yesterday", Model: "p/m"}); err == nil {
			t.Error("AddUsage with a bad day succeeded")
		}
		if _, _, err := u.PruneUsage(t.Context(), "2026-13-01", nil, 10); err == nil {
			t.Error("PruneUsage with a bad day succeeded")
		}
		if _, _, err := u.PruneUsage(t.Context(), "2026-01-01", nil, 0); err == nil {
			t.Error("PruneUsage with no bound succeeded")
		}
	})
	t.Run("Commit", func(t *testing.T) {
		s, u := usage(t)
		testCommitUsage(t, s, u)
	})
}

var one = sessions.Tally{Requests: 1, PromptTokens: 10, CompletionTokens: 5, CostNanoUSD: 100, MaxTokens: 15, MaxCostNanoUSD: 100}

func times(n int) sessions.Tally {
	var t sessions.Tally
	for range n {
		t.Add(one)
	}
	return t
}

func testAddUsage(t *testing.T, u sessions.UsageStore) {
	ctx := t.Context()
	add := func(day, user, name, model string) {
		t.Helper()
		r := sessions.UsageRecord{Day: day, Platform: "telegram", User: user, UserName: name, Group: "-100",
			Conversation: "telegram:-100", Shared: true, Model: model, Tally: one}
		if err := u.AddUsage(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	add("2026-03-31", "1", "Al", "p/a")
	add("2026-04-01", "1", "Alice", "p/a")
	add("2026-04-01", "1", "Alice", "p/b")
	add("2026-04-02", "2", "Bob", "p/a")
	if err := u.AddUsage(ctx, sessions.UsageRecord{Day: "2026-04-02", Platform: sessions.EndpointPlatform, Key: "key#1", Model: "p/a", Tally: one}); err != nil {
		t.Fatal(err)
	}

	got, err := u.UsageCounters(ctx, []sessions.UsageKey{
		{Period: "2026-04-01", Kind: "user", ID: "telegram:1"},
		{Period: "2026-04", Kind: "user", ID: "telegram:1"},
		{Period: "2026-04", Kind: "group", ID: "telegram:-100"},
		{Period: "2026-04", Kind: "model", ID: "p/a"},
		{Period: "2026-03", Kind: "conversation", ID: "telegram:-100"},
		{Period: "2026-04-03", Kind: "user", ID: "telegram:1"},
		{Period: "2026-04", Kind: "user", ID: "telegram:1", Sub: "p/b"},
		{Period: "2026-04-01", Kind: "user", ID: "telegram:1", Sub: "p/b"}, // parts are counted by month only
		{Period: "2026-04-02", Kind: "key", ID: "key#1"},
		{Period: "2026-04", Kind: "group", ID: "telegram:-100", Sub: "telegram:1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []sessions.Tally{times(2), times(2), times(3), times(3), times(1), {}, times(1), {}, times(1), times(2)}; !reflect.DeepEqual(got, want) {
		t.Errorf("UsageCounters = %+v\nwant %+v", got, want)
	}

	members, err := u.UsageList(ctx, "2026-04", "group", "telegram:-100")
	if err != nil {
		t.Fatal(err)
	}
	want := []sessions.UsageCounter{
		{UsageKey: sessions.UsageKey{Period: "2026-04", Kind: "group", ID: "telegram:-100", Sub: "telegram:1"}, Name: "Alice", Tally: times(2)},
		{UsageKey: sessions.UsageKey{Period: "2026-04", Kind: "group", ID: "telegram:-100", Sub: "telegram:2"}, Name: "Bob", Tally: times(1)},
	}
	if !reflect.DeepEqual(members, want) {
		t.Errorf("UsageList(group) = %+v\nwant %+v", members, want)
	}
	models, err := u.UsageList(ctx, "2026-04", "user", "telegram:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 2 || models[0].Sub != "p/a" || models[1].Sub != "p/b" || models[0].Tally != times(1) || models[0].Name != "" {
		t.Errorf("UsageList(user) = %+v, want p/a and p/b once each", models)
	}

	// Pruning before 2026-04-02 keeps April's month counters and the
	// days from then on, a batch at a time.
	var next []byte
	for i := 0; ; i++ {
		n, done, err := u.PruneUsage(ctx, "2026-04-02", next, 3)
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
	got, err = u.UsageCounters(ctx, []sessions.UsageKey{
		{Period: "2026-04-01", Kind: "user", ID: "telegram:1"},
		{Period: "2026-04", Kind: "user", ID: "telegram:1"},
		{Period: "2026-03", Kind: "user", ID: "telegram:1"},
		{Period: "2026-04-02", Kind: "user", ID: "telegram:2"},
		{Period: "2026-03", Kind: "user", ID: "telegram:1", Sub: "p/a"},
		{Period: "2026-04-02", Kind: "key", ID: "key#1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []sessions.Tally{{}, times(2), {}, times(1), {}, times(1)}; !reflect.DeepEqual(got, want) {
		t.Errorf("after pruning: %+v\nwant %+v", got, want)
	}
}

func testCommitUsage(t *testing.T, s sessions.Store, u sessions.UsageStore) {
	ctx := t.Context()
	k := sessions.Key{Platform: "telegram", Chat: "5"}
	r := sessions.UsageRecord{Day: "2026-04-15", Platform: "telegram", User: "5", UserName: "Eve", Conversation: k.String(), Model: "p/m", Tally: one}
	c := sessions.Commit{Entries: []sessions.Entry{user("1", "q"), entry(llm.RoleAssistant, "a")}, Usage: &r}
	mustCommit(t, s, k, c)
	if err := s.Commit(ctx, k, c); !errors.Is(err, sessions.ErrDuplicate) {
		t.Fatalf("second Commit = %v, want ErrDuplicate", err)
	}
	bad := r
	bad.Day = "15/04/2026"
	c2 := sessions.Commit{Entries: []sessions.Entry{user("2", "q2")}, Usage: &bad}
	if err := s.Commit(ctx, k, c2); err == nil {
		t.Fatal("Commit with a usage record of a bad day succeeded")
	}
	if h := history(t, s, k, 0); len(h) != 2 {
		t.Errorf("history = %v, want the first commit's two entries", texts(h))
	}
	got, err := u.UsageCounters(ctx, []sessions.UsageKey{
		{Period: "2026-04-15", Kind: "user", ID: "telegram:5"},
		{Period: "2026-04", Kind: "model", ID: "p/m"},
		{Period: "2026-04", Kind: "conversation", ID: k.String()}, // not shared: not counted
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []sessions.Tally{one, one, {}}; !reflect.DeepEqual(got, want) {
		t.Errorf("UsageCounters = %+v, want %+v (the refused commits add nothing)", got, want)
	}
}
