package sessions_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// clock is a settable clock for UsageConfig.Now.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) set(t time.Time)       { c.t.Store(&t) }
func (c *clock) now() time.Time        { return *c.t.Load() }
func (c *clock) add(d time.Duration)   { c.set(c.now().Add(d)) }
func (c *clock) day() string           { return c.now().Format("2006-01-02") }
func (c *clock) month() string         { return c.now().Format("2006-01") }
func (c *clock) in(loc *time.Location) { c.set(c.now().In(loc)) }

// stream is a scripted stream: reasoning (if any), content, then the finish
// chunk carrying usage, a raw JSON value or "" for none.
func stream(content, reasoning, usage string) llmtest.Script {
	var b strings.Builder
	if reasoning != "" {
		fmt.Fprintf(&b, "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":%q}}]}\n\n", reasoning)
	}
	fmt.Fprintf(&b, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", content)
	if usage != "" {
		usage = `,"usage":` + usage
	}
	b.WriteString(`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]` + usage + "}\n\n")
	b.WriteString("data: [DONE]\n\n")
	return llmtest.Script{Raw: b.String(), RawType: "text/event-stream"}
}

// chats counts the chat requests upstream has had.
func (r *rig) chats() int {
	n := 0
	for _, rec := range r.up.Requests() {
		if strings.HasSuffix(rec.Path, "/chat/completions") {
			n++
		}
	}
	return n
}

// counter reads one usage counter; id "scope/part" names a part (a
// user's model, a group's user).
func (r *rig) counter(period, kind, id string) sessions.Tally {
	r.t.Helper()
	id, sub, _ := strings.Cut(id, "/")
	if kind == "model" {
		id, sub = id+"/"+sub, ""
	}
	got, err := r.store.UsageCounters(r.t.Context(), []sessions.UsageKey{{Period: period, Kind: kind, ID: id, Sub: sub}})
	if err != nil {
		r.t.Fatal(err)
	}
	return got[0]
}

// send hands msg to the Manager and waits for its answer, returning the
// reply and the turn's result.
func (r *rig) send(msg sessions.Message) (*reply, string, error) {
	r.t.Helper()
	rep := &reply{}
	turn, err := r.m.Handle(r.t.Context(), msg, rep)
	if err != nil {
		r.t.Fatalf("Handle(%q): %v", msg.Text, err)
	}
	wait(r.t, turn)
	_, status, err := turn.Result()
	return rep, status, err
}

var usageDay = time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)

const v3 = "fake/deepseek-ai/DeepSeek-V3-0324-Turbo"

func TestManager_Usage_Recorded(t *testing.T) {
	clk := newClock(usageDay)
	r := newRig(t, sessions.Config{Usage: sessions.UsageConfig{
		Now: clk.now,
		// Over the provider's price for it ($1/M in, $3/M out).
		Prices: map[string]llm.Pricing{v3: {InputTokens: 2, OutputTokens: 4}},
	}})
	group := sessions.Key{Platform: "telegram", Chat: "-100"}
	msg := func(user, text string) sessions.Message {
		return sessions.Message{Key: group, Group: "-100", Shared: true, Author: sessions.Author{ID: user, Name: "U" + user}, Text: text}
	}
	tests := []struct {
		name   string
		user   string
		model  string
		script llmtest.Script
		want   sessions.Tally
	}{
		{"ConfigPrice", "1", v3,
			stream("hi", "", `{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120}`),
			// 100 × $2/M + 20 × $4/M
			sessions.Tally{Requests: 1, PromptTokens: 100, CompletionTokens: 20, CostNanoUSD: 280_000, MaxTokens: 120, MaxCostNanoUSD: 280_000}},
		{"ProviderPrice", "2", "fake/deepseek-ai/DeepSeek-R1-0528-Turbo",
			stream("hi", "thinking", `{"prompt_tokens":1000,"completion_tokens":300,"total_tokens":1300,"completion_tokens_details":{"reasoning_tokens":200}}`),
			// llmtest lists R1 at $1/M in, $3/M out.
			sessions.Tally{Requests: 1, PromptTokens: 1000, CompletionTokens: 300, ReasoningTokens: 200, CostNanoUSD: 1_900_000, MaxTokens: 1300, MaxCostNanoUSD: 1_900_000}},
		{"UsageTwice", "3", v3,
			llmtest.Script{RawType: "text/event-stream", Raw: "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n" +
				"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1,\"total_tokens\":11}}\n\n" +
				"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1,\"total_tokens\":11}}\n\ndata: [DONE]\n\n"},
			sessions.Tally{Requests: 1, PromptTokens: 10, CompletionTokens: 1, CostNanoUSD: 24_000, MaxTokens: 11, MaxCostNanoUSD: 24_000}},
		// llmtest lists echo without a price.
		{"NoPrice", "4", "fake/echo",
			stream("hi", "", `{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}`),
			sessions.Tally{Requests: 1, PromptTokens: 7, CompletionTokens: 3, UnpricedTokens: 10, MaxTokens: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := tt.model
			if _, err := r.m.SetModel(t.Context(), group, model); err != nil {
				t.Fatal(err)
			}
			r.up.Enqueue(tt.script)
			if _, _, err := r.send(msg(tt.user, "hello")); err != nil {
				t.Fatal(err)
			}
			user := "telegram:" + tt.user
			for _, c := range []struct{ period, kind, id string }{
				{clk.day(), "user", user},
				{clk.month(), "user", user},
				{clk.month(), "user", user + "/" + model},
				{clk.month(), "group", "telegram:-100/" + user},
			} {
				if got := r.counter(c.period, c.kind, c.id); got != tt.want {
					t.Errorf("%s %s %q = %+v\nwant %+v", c.period, c.kind, c.id, got, tt.want)
				}
			}
		})
	}
	// The conversation, group and model counters add up every turn.
	var all sessions.Tally
	for _, tt := range tests {
		all.Add(tt.want)
	}
	for _, c := range []struct{ kind, id string }{{"conversation", "telegram:-100"}, {"group", "telegram:-100"}} {
		if got := r.counter(clk.day(), c.kind, c.id); got != all {
			t.Errorf("%s = %+v\nwant %+v", c.kind, got, all)
		}
	}
}

// TestManager_Usage_Estimated checks an answer whose provider sent no
// usage: estimated from its prompt and text, and marked so.
func TestManager_Usage_Estimated(t *testing.T) {
	clk := newClock(usageDay)
	r := newRig(t, sessions.Config{SystemPrompt: "Be brief.", Usage: sessions.UsageConfig{Now: clk.now}})
	r.up.Enqueue(stream("four words of answer", "", ""))
	if _, _, err := r.send(sessions.Message{Key: key, Author: alice, Text: "count"}); err != nil {
		t.Fatal(err)
	}
	got := r.counter(clk.day(), "user", "test:1")
	if got.Requests != 1 || got.PromptTokens == 0 || got.CompletionTokens == 0 || got.EstimatedTokens != got.Tokens() || got.UnpricedTokens != got.Tokens() {
		t.Errorf("estimated counter = %+v", got)
	}
	// A request the provider refused used nothing.
	r.up.Enqueue(llmtest.Script{Status: 400})
	if _, status, _ := r.send(sessions.Message{Key: key, Author: alice, Text: "again"}); status != "failed" {
		t.Fatalf("status = %q, want failed", status)
	}
	if after := r.counter(clk.day(), "user", "test:1"); after != got {
		t.Errorf("a refused request counted: %+v, want %+v", after, got)
	}
}

// TestManager_Usage_Concurrent runs 100 turns at once, in 20
// conversations of 5 people, with limits far off (so every answer takes a
// reservation), and checks that the counters add up exactly the usage of
// the 100 answers in the history.
func TestManager_Usage_Concurrent(t *testing.T) {
	clk := newClock(usageDay)
	far := sessions.Limit{DailyTokens: 1 << 40, MonthlyUSD: 1e6}
	r := newRig(t, sessions.Config{Parallel: 5, Usage: sessions.UsageConfig{Now: clk.now,
		User: far, Conversation: far, Group: far, Models: map[string]sessions.Limit{"fake/echo": far},
		Prices: map[string]llm.Pricing{"fake/echo": {InputTokens: 0.3, OutputTokens: 0.7}}}})
	const convs, people = 20, 5
	var wg sync.WaitGroup
	turns := make(chan *sessions.Turn, convs*people)
	for c := range convs {
		k := sessions.Key{Platform: "telegram", Chat: fmt.Sprint(-c - 1)}
		for p := range people {
			msg := sessions.Message{Key: k, Group: "g", Shared: true, Author: sessions.Author{ID: fmt.Sprint(p)},
				Text: strings.Repeat("word ", c+p+1)}
			wg.Go(func() {
				turn, err := r.m.Handle(context.Background(), msg, &reply{})
				if err != nil {
					t.Error(err)
					return
				}
				turns <- turn
			})
		}
	}
	wg.Wait()
	close(turns)
	for turn := range turns {
		wait(t, turn)
		if _, status, err := turn.Result(); status != "" || err != nil {
			t.Fatalf("turn: %q %v", status, err)
		}
	}
	var want sessions.Tally
	perUser := map[string]int64{}
	for c := range convs {
		h, err := r.store.History(t.Context(), sessions.Key{Platform: "telegram", Chat: fmt.Sprint(-c - 1)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range h {
			if e.Role != llm.RoleAssistant {
				continue
			}
			u := e.Usage
			cost := int64(float64(u.PromptTokens)*300 + float64(u.CompletionTokens)*700)
			want.Add(sessions.Tally{Requests: 1, PromptTokens: int64(u.PromptTokens), CompletionTokens: int64(u.CompletionTokens),
				CostNanoUSD: cost, MaxTokens: int64(u.TotalTokens), MaxCostNanoUSD: cost})
			perUser[h[i-1].AuthorID] += int64(u.TotalTokens)
		}
	}
	if want.Requests != convs*people {
		t.Fatalf("%d answers in the history, want %d", want.Requests, convs*people)
	}
	for _, c := range []struct{ kind, id string }{{"group", "telegram:g"}, {"model", "fake/echo"}} {
		got := r.counter(clk.month(), c.kind, c.id)
		// Costs are rounded per answer: allow a nano-dollar each.
		if d := got.CostNanoUSD - want.CostNanoUSD; d < -convs*people || d > convs*people {
			t.Errorf("%s cost = %d, want %d", c.kind, got.CostNanoUSD, want.CostNanoUSD)
		}
		got.CostNanoUSD, got.MaxCostNanoUSD = want.CostNanoUSD, want.MaxCostNanoUSD
		if got != want {
			t.Errorf("%s = %+v\nwant %+v", c.kind, got, want)
		}
	}
	for p := range people {
		if got := r.counter(clk.day(), "user", fmt.Sprint("telegram:", p)).Tokens(); got != perUser[fmt.Sprint(p)] {
			t.Errorf("user %d: %d tokens, want %d", p, got, perUser[fmt.Sprint(p)])
		}
	}
}

// TestManager_Budget_Race sends 100 messages of one user at once, in 100
// conversations, when one answer more reaches their daily limit: exactly
// one is answered, the others are refused without an upstream request.
func TestManager_Budget_Race(t *testing.T) {
	clk := newClock(usageDay)
	r := newRig(t, sessions.Config{Usage: sessions.UsageConfig{Now: clk.now}})
	msg := func(i int) sessions.Message {
		return sessions.Message{Key: sessions.Key{Platform: "telegram", Chat: fmt.Sprint(i)}, Author: alice, Text: "same size"}
	}
	if _, _, err := r.send(msg(0)); err != nil {
		t.Fatal(err)
	}
	one := r.counter(clk.day(), "user", "telegram:1").Tokens()
	// Restart with a limit one token above what was used.
	r.cfg.Usage.User = sessions.Limit{DailyTokens: one + 1}
	r.restart()
	asked := r.chats()

	const n = 100
	var wg sync.WaitGroup
	var answered, refused atomic.Int32
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			rep := &reply{}
			turn, err := r.m.Handle(context.Background(), msg(i), rep)
			if err != nil {
				t.Error(err)
				return
			}
			<-turn.Done()
			switch _, status, err := turn.Result(); {
			case status == "" && err == nil:
				answered.Add(1)
			case errors.Is(err, sessions.ErrOverBudget):
				refused.Add(1)
				if s := rep.last().Status; !strings.Contains(s, "You have reached your daily limit of "+fmt.Sprint(one+1)+" tokens; it resets at midnight (UTC), in 12 h.") {
					t.Errorf("refusal reads %q", s)
				}
			default:
				t.Errorf("turn %d: %q %v", i, status, err)
			}
		})
	}
	wg.Wait()
	if answered.Load() != 1 || refused.Load() != n-1 {
		t.Errorf("%d answered, %d refused; want 1 and %d", answered.Load(), refused.Load(), n-1)
	}
	if got := r.counter(clk.day(), "user", "telegram:1").Tokens(); got != 2*one {
		t.Errorf("used %d tokens, want %d (one answer over the limit of %d)", got, 2*one, one+1)
	}
	if got := r.chats() - asked; got != 1 {
		t.Errorf("%d upstream requests, want 1", got)
	}
}

// TestManager_Budget_Scopes checks each scope's limit: the refusal's
// sentence, no upstream request, and admins exempt unless LimitAdmins.
func TestManager_Budget_Scopes(t *testing.T) {
	small := sessions.Limit{DailyTokens: 1}
	group := sessions.Key{Platform: "discord", Chat: "c1"}
	tests := []struct {
		name        string
		usage       sessions.UsageConfig
		admin       bool
		wantRefusal string // "" when the second message is answered
	}{
		{"User", sessions.UsageConfig{User: small}, false,
			"You have reached your daily limit of 1 token; it resets at midnight (UTC), in 12 h."},
		{"Conversation", sessions.UsageConfig{Conversation: sessions.Limit{MonthlyTokens: 1}}, false,
			"This conversation has reached its monthly limit of 1 token; it resets on 1 May at midnight (UTC), in 16 days."},
		{"Group", sessions.UsageConfig{Group: sessions.Limit{DailyUSD: 0.000001}}, false,
			"This server has reached its daily limit of <$0.0001; it resets at midnight (UTC), in 12 h."},
		{"Model", sessions.UsageConfig{Models: map[string]sessions.Limit{"fake/echo": small}}, false,
			"Model fake/echo has reached its daily limit of 1 token (everyone together); it resets at midnight (UTC), in 12 h."},
		{"AdminExempt", sessions.UsageConfig{User: small, Group: small}, true, ""},
		{"AdminLimited", sessions.UsageConfig{User: small, LimitAdmins: true}, true,
			"You have reached your daily limit of 1 token; it resets at midnight (UTC), in 12 h."},
		{"OtherModel", sessions.UsageConfig{Models: map[string]sessions.Limit{"fake/other": small}}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(usageDay)
			tt.usage.Now = clk.now
			tt.usage.Prices = map[string]llm.Pricing{"fake/echo": {InputTokens: 1, OutputTokens: 1}}
			r := newRig(t, sessions.Config{Usage: tt.usage})
			author := sessions.Author{ID: "7", Name: "Ann", Admin: tt.admin}
			msg := sessions.Message{Key: group, Group: "guild", Shared: true, Author: author, Text: "hello"}
			if _, _, err := r.send(msg); err != nil {
				t.Fatal(err)
			}
			asked := r.chats()
			rep, status, err := r.send(msg)
			if tt.wantRefusal == "" {
				if status != "" || err != nil {
					t.Fatalf("second message: %q %v, want it answered", status, err)
				}
				return
			}
			if !errors.Is(err, sessions.ErrOverBudget) {
				t.Fatalf("second message: %q %v, want ErrOverBudget", status, err)
			}
			if got := rep.last().Status; got != "⚠️ "+tt.wantRefusal {
				t.Errorf("refusal = %q\nwant     %q", got, "⚠️ "+tt.wantRefusal)
			}
			if got := sessions.Explain(err); got != tt.wantRefusal {
				t.Errorf("Explain = %q", got)
			}
			if n := r.chats(); n != asked {
				t.Errorf("a refused turn asked upstream")
			}
		})
	}
}

// TestManager_Budget_ClockChange moves an injected clock across midnight
// and back: days follow the clock, each with its own counters.
func TestManager_Budget_ClockChange(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock(time.Date(2026, 3, 31, 23, 59, 30, 0, berlin))
	r := newRig(t, sessions.Config{Usage: sessions.UsageConfig{Now: clk.now, Location: berlin}})
	// Each message in a conversation of its own, so that each uses as
	// many tokens.
	n := 0
	msg := func() sessions.Message {
		n++
		return sessions.Message{Key: sessions.Key{Platform: "test", Chat: fmt.Sprint(n)}, Author: alice, Text: "tick"}
	}
	if _, _, err := r.send(msg()); err != nil {
		t.Fatal(err)
	}
	one := r.counter(clk.day(), "user", "test:1").Tokens()
	r.cfg.Usage.User = sessions.Limit{DailyTokens: one + 1}
	r.restart()

	steps := []struct {
		name   string
		at     time.Time
		refuse string
	}{
		{"Over", time.Date(2026, 3, 31, 23, 59, 40, 0, berlin), ""},
		{"Refused", time.Date(2026, 3, 31, 23, 59, 50, 0, berlin), "it resets at midnight (Europe/Berlin), in less than a minute."},
		{"NewDay", time.Date(2026, 4, 1, 0, 0, 10, 0, berlin), ""},
		{"SetBack", time.Date(2026, 3, 31, 23, 59, 55, 0, berlin), "in less than a minute"},
		{"NewDayAgain", time.Date(2026, 4, 1, 0, 1, 0, 0, berlin), ""},
		{"NewDayOver", time.Date(2026, 4, 1, 0, 2, 0, 0, berlin), "it resets at midnight (Europe/Berlin), in 23 h 58 min."},
	}
	for _, s := range steps {
		clk.set(s.at)
		rep, status, err := r.send(msg())
		switch {
		case s.refuse == "" && (status != "" || err != nil):
			t.Errorf("%s: %q %v, want an answer", s.name, status, err)
		case s.refuse != "" && !strings.Contains(rep.last().Status, s.refuse):
			t.Errorf("%s: %q %v, want a refusal saying %q", s.name, rep.last().Status, err, s.refuse)
		}
	}
	if got := r.counter("2026-03-31", "user", "test:1").Tokens(); got != 2*one {
		t.Errorf("31 March: %d tokens, want %d", got, 2*one)
	}
	if got := r.counter("2026-04-01", "user", "test:1").Tokens(); got != 2*one {
		t.Errorf("1 April: %d tokens, want %d", got, 2*one)
	}
}

// TestManager_Restricted checks models.restricted: chosen and used by
// admins only.
func TestManager_Restricted(t *testing.T) {
	const r1 = "fake/deepseek-ai/DeepSeek-R1-0528-Turbo"
	r := newRig(t, sessions.Config{Usage: sessions.UsageConfig{Restricted: []string{r1}}})
	admin := sessions.Author{ID: "9", Name: "Root", Admin: true}
	if _, err := r.m.ChooseModel(t.Context(), key, "r1", alice); !errors.Is(err, sessions.ErrRestricted) ||
		sessions.Explain(err) != "Model "+r1+" is for admins only here; choose another (see /models)." {
		t.Fatalf("ChooseModel by a user: %v", err)
	}
	if got, err := r.m.ChooseModel(t.Context(), key, "echo", alice); err != nil || got != "fake/echo" {
		t.Fatalf("ChooseModel(echo) by a user: %q %v", got, err)
	}
	if got, err := r.m.ChooseModel(t.Context(), key, "r1", admin); err != nil || got != r1 {
		t.Fatalf("ChooseModel(r1) by an admin: %q %v", got, err)
	}
	// The admin's choice is the conversation's: others may not use it.
	asked := r.chats()
	rep, _, err := r.send(sessions.Message{Key: key, Author: alice, Text: "hi"})
	if !errors.Is(err, sessions.ErrRestricted) || !strings.Contains(rep.last().Status, "is for admins only here") {
		t.Fatalf("a user's turn on a restricted model: %v %q", err, rep.last().Status)
	}
	if r.chats() != asked {
		t.Error("a refused turn asked upstream")
	}
	if _, status, err := r.send(sessions.Message{Key: key, Author: admin, Text: "hi"}); status != "" || err != nil {
		t.Fatalf("the admin's turn: %q %v", status, err)
	}
}

// TestManager_Usage_Retry checks that /retry is counted for the question's
// author and group, and held to their limits.
func TestManager_Usage_Retry(t *testing.T) {
	clk := newClock(usageDay)
	r := newRig(t, sessions.Config{Usage: sessions.UsageConfig{Now: clk.now}})
	k := sessions.Key{Platform: "telegram", Chat: "-5"}
	if _, _, err := r.send(sessions.Message{Key: k, Group: "-5", Shared: true, Author: alice, Text: "q"}); err != nil {
		t.Fatal(err)
	}
	one := r.counter(clk.day(), "group", "telegram:-5")
	rep := &reply{}
	turn, err := r.m.Retry(t.Context(), k, rep)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, turn)
	if got := r.counter(clk.day(), "group", "telegram:-5"); got.Requests != 2 || got.Tokens() <= one.Tokens() {
		t.Errorf("group after a retry = %+v", got)
	}
	if got := r.counter(clk.day(), "user", "telegram:1"); got.Requests != 2 {
		t.Errorf("user after a retry = %+v", got)
	}
	r.cfg.Usage.Group = sessions.Limit{DailyTokens: 1}
	r.restart()
	turn, err = r.m.Retry(t.Context(), k, rep)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, turn)
	if _, _, err := turn.Result(); !errors.Is(err, sessions.ErrOverBudget) {
		t.Errorf("retry over the group's limit: %v", err)
	}
}

// TestManager_Usage_Retention checks that counters outlive the history
// (history_limit prunes turns, not usage) and are deleted after their own
// retention.
func TestManager_Usage_Retention(t *testing.T) {
	clk := newClock(usageDay)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{Retention: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{})}, "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo", Usage: sessions.UsageConfig{Now: clk.now, RetentionDays: 40}}, store, router, nil, nil)
	t.Cleanup(func() { m.Close(context.Background()) })
	ask := func() {
		t.Helper()
		turn, err := m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "hi"}, &reply{})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, turn)
	}
	first := clk.day()
	for range 3 {
		ask()
	}
	if h, _ := store.History(t.Context(), key, 0); len(h) != 2 {
		t.Fatalf("history holds %d entries, want 2", len(h))
	}
	read := func(day string) sessions.Tally {
		got, err := store.UsageCounters(t.Context(), []sessions.UsageKey{{Period: day, Kind: "user", ID: "test:1"}})
		if err != nil {
			t.Fatal(err)
		}
		return got[0]
	}
	if got := read(first); got.Requests != 3 {
		t.Errorf("counter after history pruning = %+v, want 3 requests", got)
	}
	clk.add(39 * 24 * time.Hour)
	ask()
	if got := read(first); got.Requests != 3 {
		t.Errorf("day 40: the first day's counter = %+v, want it kept", got)
	}
	clk.add(24 * time.Hour)
	ask()
	if got := read(first); got.Requests != 0 {
		t.Errorf("day 41: the first day's counter = %+v, want it deleted", got)
	}
	if recs, err := store.UsageRecords(t.Context(), first, clk.day()); err != nil || len(recs) != 2 {
		t.Errorf("records left: %+v %v", recs, err)
	}
}

// TestManager_UsageReport checks the /usage text against golden files:
// the same Markdown for every platform (adapters render it).
func TestManager_UsageReport(t *testing.T) {
	clk := newClock(usageDay)
	limits := sessions.UsageConfig{
		Now: clk.now,
		// R1 has the provider's price, V3 this one, echo none.
		Prices:       map[string]llm.Pricing{v3: {InputTokens: 0.5, OutputTokens: 1.5}},
		User:         sessions.Limit{DailyTokens: 50_000, MonthlyUSD: 5},
		Conversation: sessions.Limit{MonthlyTokens: 1_000_000},
	}
	r := newRig(t, sessions.Config{Usage: limits})
	const r1 = "fake/deepseek-ai/DeepSeek-R1-0528-Turbo"
	grp := sessions.Key{Platform: "telegram", Chat: "-100"}
	in := func(k sessions.Key, model string, a sessions.Author, group string, sc llmtest.Script) {
		t.Helper()
		if _, err := r.m.SetModel(t.Context(), k, model); err != nil {
			t.Fatal(err)
		}
		r.up.Enqueue(sc)
		if _, _, err := r.send(sessions.Message{Key: k, Group: group, Shared: group != "", Author: a, Text: "q"}); err != nil {
			t.Fatal(err)
		}
	}
	bob := sessions.Author{ID: "2", Name: "Bob *the* builder"}
	root := sessions.Author{ID: "3", Name: "Root", Admin: true}
	private := sessions.Key{Platform: "telegram", Chat: "1"}
	in(private, "fake/echo", alice, "", stream("a", "", `{"prompt_tokens":1200,"completion_tokens":800,"total_tokens":2000}`))
	in(private, r1, alice, "", stream("a", "hmm", `{"prompt_tokens":3000,"completion_tokens":2000,"total_tokens":5000,"completion_tokens_details":{"reasoning_tokens":1500}}`))
	in(grp, v3, alice, "-100", stream("a", "", `{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150}`))
	in(grp, v3, bob, "-100", stream("a", "", `{"prompt_tokens":400,"completion_tokens":100,"total_tokens":500}`))
	in(grp, v3, root, "-100", stream("a", "", `{"prompt_tokens":10,"completion_tokens":10,"total_tokens":20}`))
	// An answer without usage: estimated. A day earlier, in this month.
	clk.add(-24 * time.Hour)
	in(grp, v3, bob, "-100", stream("twelve characters", "", ""))
	clk.add(24 * time.Hour)

	tests := []struct {
		name string
		req  sessions.UsageRequest
	}{
		{"private", sessions.UsageRequest{Key: private, Author: alice}},
		{"group_member", sessions.UsageRequest{Key: grp, Group: "-100", Shared: true, Author: bob}},
		{"group_admin", sessions.UsageRequest{Key: grp, Group: "-100", Shared: true, Author: root}},
		{"discord_admin_no_usage", sessions.UsageRequest{Key: sessions.Key{Platform: "discord", Chat: "5"}, Group: "g", Shared: true,
			Author: sessions.Author{ID: "8", Name: "Mod", Admin: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.m.UsageReport(t.Context(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "usage", tt.name+".golden"), got)
		})
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
