package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

func TestUsageConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits.Timezone = "America/New_York"
	cfg.Limits.AdminsExempt = false
	cfg.Limits.User = LimitConfig{DailyTokens: 1000, MonthlyUSD: 2.5}
	cfg.Limits.Key = LimitConfig{MonthlyTokens: 5}
	cfg.Limits.Models = map[string]LimitConfig{"deepinfra/x": {DailyUSD: 1}}
	cfg.Models.Prices = map[string]PriceConfig{"deepinfra/x": {Input: 0.5, Output: 2}}
	cfg.Models.Restricted = []string{"deepinfra/*"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := usageConfig(cfg)
	if got.Location.String() != "America/New_York" || got.RetentionDays != 400 || !got.LimitAdmins {
		t.Errorf("zone, retention, admins = %s %d %v", got.Location, got.RetentionDays, got.LimitAdmins)
	}
	if got.User != (sessions.Limit{DailyTokens: 1000, MonthlyUSD: 2.5}) || got.Key != (sessions.Limit{MonthlyTokens: 5}) ||
		!got.Conversation.IsZero() || !got.Group.IsZero() {
		t.Errorf("limits = %+v %+v %+v %+v", got.User, got.Conversation, got.Group, got.Key)
	}
	if got.Models["deepinfra/x"] != (sessions.Limit{DailyUSD: 1}) || got.Prices["deepinfra/x"] != (llm.Pricing{InputTokens: 0.5, OutputTokens: 2}) ||
		!reflect.DeepEqual(got.Restricted, []string{"deepinfra/*"}) {
		t.Errorf("models, prices, restricted = %v %v %v", got.Models, got.Prices, got.Restricted)
	}
	if def := usageConfig(DefaultConfig()); def.Location != time.UTC || def.LimitAdmins || def.Prices != nil || def.Models != nil {
		t.Errorf("defaults = %+v", def)
	}
}

func TestConfig_LimitWarnings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits.User = LimitConfig{DailyTokens: 10, MonthlyTokens: 5}
	cfg.Limits.Group = LimitConfig{DailyUSD: 3, MonthlyUSD: 2}
	cfg.Limits.Models = map[string]LimitConfig{"deepinfra/a": {}}
	cfg.Models.Restricted = []string{"deepinfra/*"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.Warnings(), "\n")
	for _, want := range []string{
		"limits.user.daily_tokens (10) is above limits.user.monthly_tokens (5): the daily limit is never reached",
		"limits.group.daily_usd (3) is above limits.group.monthly_usd (2)",
		"limits.models.deepinfra/a sets no limit",
		"models.default (deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo) is in models.restricted",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	// A cost limit with nothing priced says so.
	cfg = DefaultConfig()
	cfg.Providers = map[string]ProviderConfig{"local": {BaseURL: "http://127.0.0.1:11434/v1"}}
	cfg.Models.Default, cfg.Models.Aliases = "local/m", nil
	cfg.Limits.Key = LimitConfig{MonthlyUSD: 1}
	if w := strings.Join(cfg.Warnings(), "\n"); !strings.Contains(w, "limits.key sets a cost limit, but models.prices is empty") {
		t.Errorf("warnings:\n%s", w)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestMetrics_Usage(t *testing.T) {
	m := newMetrics()
	obs := m.turnObserver()
	obs.Usage("p/m", sessions.Tally{Requests: 1, PromptTokens: 100, CompletionTokens: 30, ReasoningTokens: 10, CostNanoUSD: 2_500_000})
	obs.Usage("p/m", sessions.Tally{Requests: 1, PromptTokens: 5, CompletionTokens: 5, UnpricedTokens: 10})
	obs.BudgetRefused("user")
	obs.BudgetRefused("user")
	for _, c := range []struct {
		kind string
		want float64
	}{{"prompt", 105}, {"completion", 25}, {"reasoning", 10}} {
		if got := counterValue(t, m.tokens.WithLabelValues("p/m", c.kind)); got != c.want {
			t.Errorf("palaver_tokens_total{kind=%q} = %g, want %g", c.kind, got, c.want)
		}
	}
	if got := counterValue(t, m.cost.WithLabelValues("p/m")); got != 0.0025 {
		t.Errorf("palaver_cost_usd_total = %g, want 0.0025", got)
	}
	if got := counterValue(t, m.refusals.WithLabelValues("user")); got != 2 {
		t.Errorf("palaver_budget_refusals_total = %g, want 2", got)
	}
}

// usageStore writes a store with usage records and a config naming it.
func usageStore(t *testing.T, recs ...sessions.UsageRecord) (config, path string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "palaver.db")
	s, err := sessions.OpenBolt(path, sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := s.AddUsage(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte("storage:\n  path: "+path+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config, path
}

var usageRecords = []sessions.UsageRecord{
	{Day: "2026-04-01", Platform: "telegram", User: "1", UserName: "Alice, \"A\"", Group: "-100", Conversation: "telegram:-100", Model: "deepinfra/r1",
		Tally: sessions.Tally{Requests: 2, PromptTokens: 1000, CompletionTokens: 400, ReasoningTokens: 300, CostNanoUSD: 2_200_000_001}},
	{Day: "2026-04-01", Platform: "telegram", User: "1", UserName: "Alice, \"A\"", Conversation: "telegram:1", Model: "local/m",
		Tally: sessions.Tally{Requests: 1, PromptTokens: 50, CompletionTokens: 20, EstimatedTokens: 70, UnpricedTokens: 70}},
	{Day: "2026-04-02", Platform: "discord", User: "42", UserName: "Bob", Group: "9", Conversation: "discord:7", Model: "deepinfra/r1",
		Tally: sessions.Tally{Requests: 1, PromptTokens: 10, CompletionTokens: 5, CostNanoUSD: 17}},
	{Day: "2026-04-02", Platform: sessions.EndpointPlatform, Key: "key#1", Model: "deepinfra/r1",
		Tally: sessions.Tally{Requests: 3, PromptTokens: 300, CompletionTokens: 30, CostNanoUSD: 123456789}},
	{Day: "2026-05-01", Platform: "console", User: "me", Conversation: "console:me", Model: "local/m",
		Tally: sessions.Tally{Requests: 1, PromptTokens: 1, CompletionTokens: 1, UnpricedTokens: 2}},
}

// runUsage runs palaver usage with args and returns its output.
func runUsage(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(t.Context(), append([]string{"usage"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestCmdUsage_CSVRoundTrip writes every record's columns as CSV and
// reads them back: the same rows, costs exact to the billionth of a
// dollar.
func TestCmdUsage_CSVRoundTrip(t *testing.T) {
	config, _ := usageStore(t, usageRecords...)
	for _, by := range []string{"day,platform,user,group,conversation,key,model", "model", "user,day"} {
		t.Run(by, func(t *testing.T) {
			out, errOut, code := runUsage(t, "--config", config, "--from", "2026-04-01", "--to", "2026-04-30", "--by", by, "--csv")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			dims, _ := parseDims(by)
			got := readUsageCSV(t, out, dims)
			want := sumUsage(usageRecords[:4], dims)
			for i := range want {
				want[i].MaxTokens, want[i].MaxCostNanoUSD = 0, 0 // not written
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back\n%+v\nwant\n%+v\nCSV:\n%s", got, want, out)
			}
		})
	}
}

// readUsageCSV parses palaver usage --csv output back into rows.
func readUsageCSV(t *testing.T, text string, dims []string) []sessions.UsageRecord {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows[0], csvHeader(dims)) {
		t.Fatalf("header = %q", rows[0])
	}
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var out []sessions.UsageRecord
	for _, row := range rows[1:] {
		var r sessions.UsageRecord
		i := 0
		for _, d := range dims {
			*dimOf(&r, d) = row[i]
			i++
			if d == "user" {
				r.UserName = row[i]
				i++
			}
		}
		whole, frac, ok := strings.Cut(row[i+5], ".")
		if !ok || len(frac) != 9 {
			t.Fatalf("cost_usd %q is not exact to 9 decimals", row[i+5])
		}
		r.Tally = sessions.Tally{Requests: num(row[i]), PromptTokens: num(row[i+1]), CompletionTokens: num(row[i+2]),
			ReasoningTokens: num(row[i+3]), EstimatedTokens: num(row[i+4]), CostNanoUSD: num(whole)*1e9 + num(frac), UnpricedTokens: num(row[i+6])}
		out = append(out, r)
	}
	return out
}

func TestCmdUsage_Table(t *testing.T) {
	config, _ := usageStore(t, usageRecords...)
	out, errOut, code := runUsage(t, "--config", config, "--from", "2026-04-01", "--to", "2026-04-30")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Usage from 2026-04-01 to 2026-04-30 (days in UTC)",
		"USER", "MODEL", "REQUESTS", "COST",
		"1 (Alice, \"A\")", "deepinfra/r1", "$2.200000",
		"unknown", "70 tokens estimated",
		"42 (Bob)",
		"total", "$2.323457",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "console") {
		t.Errorf("a day out of the range is shown:\n%s", out)
	}
	out, _, _ = runUsage(t, "--config", config, "--from", "2027-01-01", "--to", "2027-01-31")
	if !strings.Contains(out, "No usage recorded.") {
		t.Errorf("an empty range:\n%s", out)
	}
}

func TestCmdUsage_JSON(t *testing.T) {
	config, _ := usageStore(t, usageRecords...)
	out, errOut, code := runUsage(t, "--config", config, "--from", "2026-04-02", "--to", "2026-04-02", "--by", "key,platform", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	want := []map[string]any{
		{"platform": "discord", "requests": 1.0, "prompt_tokens": 10.0, "completion_tokens": 5.0, "reasoning_tokens": 0.0,
			"estimated_tokens": 0.0, "cost_usd": 1.7e-08, "unpriced_tokens": 0.0},
		{"platform": "endpoint", "key": "key#1", "requests": 3.0, "prompt_tokens": 300.0, "completion_tokens": 30.0, "reasoning_tokens": 0.0,
			"estimated_tokens": 0.0, "cost_usd": 0.123456789, "unpriced_tokens": 0.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON = %v\nwant %v", got, want)
	}
}

func TestCmdUsage_Errors(t *testing.T) {
	config, _ := usageStore(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"ErrBy", []string{"--by", "user,colour"}, `--by: unknown column "colour"; want some of day, platform, user, group, conversation, key, model`},
		{"ErrFrom", []string{"--from", "1 April"}, `--from: want a day as 2006-01-02, got "1 April"`},
		{"ErrRange", []string{"--from", "2026-05-01", "--to", "2026-04-01"}, "--from 2026-05-01 is after --to 2026-04-01"},
		{"ErrFormats", []string{"--csv", "--json"}, "--csv and --json exclude each other"},
		{"ErrArgument", []string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runUsage(t, append([]string{"--config", config}, tt.args...)...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.want)
			}
		})
	}
	t.Run("ErrNoStore", func(t *testing.T) {
		_, errOut, code := runUsage(t, "--store", filepath.Join(t.TempDir(), "none.db"), "--config", config)
		if code != 1 || !strings.Contains(errOut, "no such file") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

// TestCmdUsage_RunningPalaver reads the usage of a store another palaver
// holds: that palaver writes a snapshot through its control socket.
func TestCmdUsage_RunningPalaver(t *testing.T) {
	config, path := usageStore(t, usageRecords...)
	store, err := sessions.OpenBolt(path, sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctl, err := listenControl(store, slog.New(slog.DiscardHandler), controlTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	out, errOut, code := runUsage(t, "--config", config, "--from", "2026-04-01", "--to", "2026-05-31", "--by", "platform", "--csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "console,1,") || !strings.Contains(out, "telegram,3,") {
		t.Errorf("usage of a running palaver's store:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".usage*")); len(left) > 0 {
		t.Errorf("snapshots left behind: %v", left)
	}
}

// TestMain_ServeUsage runs palaver serve with an API key: its requests are
// recorded per key in the store, which palaver usage reads while it runs.
func TestMain_ServeUsage(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{Content: []string{"hi"}, Usage: &llm.Usage{PromptTokens: 7, CompletionTokens: 1, TotalTokens: 8}})
	addr := freeAddr(t)
	config := upstreamConfig(t, up.URL, "gateway:\n  listen: "+addr+"\n  api_keys: [sk-test]\n")
	startMain(t, "serve", config, addr)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"fake/echo","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The usage is recorded as the handler returns, just after the
	// answer: ask until it shows.
	want := "endpoint,key#1,fake/echo,1,7,1,0,0,0.000000000,8"
	var out string
	for range 100 {
		var errOut string
		var code int
		out, errOut, code = runUsage(t, "--config", config, "--by", "platform,key,model", "--csv")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if strings.Contains(out, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("palaver usage while serve runs:\n%s\nwant a row %q", out, want)
}

// ExampleMain_usage shows palaver usage's table: by user and model, this
// month unless --from and --to say otherwise.
func ExampleMain_usage() {
	dir, _ := os.MkdirTemp("", "usage")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "palaver.db")
	s, _ := sessions.OpenBolt(path, sessions.BoltOptions{})
	s.AddUsage(context.Background(), sessions.UsageRecord{Day: "2026-04-01", Platform: "telegram", User: "1", UserName: "Alice",
		Model: "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo", Tally: sessions.Tally{Requests: 3, PromptTokens: 2400, CompletionTokens: 900, ReasoningTokens: 600, CostNanoUSD: 5_100_000}})
	s.Close()
	config := filepath.Join(dir, "config.yaml")
	os.WriteFile(config, []byte("storage:\n  path: "+path+"\n"), 0o600)
	Main(context.Background(), []string{"usage", "--config", config, "--from", "2026-04-01", "--to", "2026-04-30"}, nil, os.Stdout, os.Stderr)
	fmt.Println()
	// Output:
	// Usage from 2026-04-01 to 2026-04-30 (days in UTC)
	//
	// USER       MODEL                                         REQUESTS  PROMPT  ANSWER  REASONING  COST       NOTES
	// 1 (Alice)  deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo  3         2400    900     600        $0.005100
	// total                                                    3         2400    900     600        $0.005100
}
