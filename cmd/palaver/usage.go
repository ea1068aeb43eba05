package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	// limits.timezone names an IANA zone: palaver carries the zone
	// database, so that a machine without one (a scratch container)
	// reads it the same.
	_ "time/tzdata"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore"
)

// usageConfig turns the limits section, models.prices and
// models.restricted into the Manager's plain values. cfg is valid, so its
// time zone loads.
func usageConfig(cfg *Config) sessions.UsageConfig {
	loc, err := time.LoadLocation(cfg.Limits.Timezone)
	if err != nil {
		loc = time.UTC // unreachable: Validate loaded it
	}
	limit := func(l LimitConfig) sessions.Limit {
		return sessions.Limit{DailyTokens: l.DailyTokens, MonthlyTokens: l.MonthlyTokens, DailyUSD: l.DailyUSD, MonthlyUSD: l.MonthlyUSD}
	}
	u := sessions.UsageConfig{
		Location:      loc,
		RetentionDays: cfg.Limits.UsageRetentionDays,
		User:          limit(cfg.Limits.User),
		Conversation:  limit(cfg.Limits.Conversation),
		Group:         limit(cfg.Limits.Group),
		Key:           limit(cfg.Limits.Key),
		LimitAdmins:   !cfg.Limits.AdminsExempt,
		Restricted:    slices.Clone(cfg.Models.Restricted),
	}
	if len(cfg.Models.Prices) > 0 {
		u.Prices = make(map[string]llm.Pricing, len(cfg.Models.Prices))
		for name, p := range cfg.Models.Prices {
			u.Prices[name] = llm.Pricing{InputTokens: p.Input, OutputTokens: p.Output}
		}
	}
	if len(cfg.Limits.Models) > 0 {
		u.Models = make(map[string]sessions.Limit, len(cfg.Limits.Models))
		for name, l := range cfg.Limits.Models {
			u.Models[name] = limit(l)
		}
	}
	return u
}

// endpointMeter is what holds the endpoint's keys to their budgets and
// records their usage: the Manager's ledger, shared with the bots so that
// a model's limit counts both; nil without a store.
func endpointMeter(c *core) gateway.Meter {
	if c == nil || c.manager.Ledger() == nil {
		return nil
	}
	return c.manager.Ledger()
}

// unmeteredEndpoint reports whether the endpoint may run without a store
// after err opened none: when another palaver holds the store and no
// limit needs the endpoint's usage (limits.key, limits.models).
func unmeteredEndpoint(cfg *Config, err error) bool {
	return errors.Is(err, sessions.ErrLocked) && cfg.Limits.Key == (LimitConfig{}) && len(cfg.Limits.Models) == 0
}

// usageDims are the columns "palaver usage --by" groups by, in the order
// they are shown.
var usageDims = []string{"day", "platform", "user", "group", "conversation", "key", "model"}

// dimOf returns a record's value of a dimension.
func dimOf(r *sessions.UsageRecord, dim string) *string {
	switch dim {
	case "day":
		return &r.Day
	case "platform":
		return &r.Platform
	case "user":
		return &r.User
	case "group":
		return &r.Group
	case "conversation":
		return &r.Conversation
	case "key":
		return &r.Key
	}
	return &r.Model
}

// cmdUsage runs "palaver usage": the recorded usage of a range of days,
// added up by the chosen columns, as a table, CSV or JSON.
func cmdUsage(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	from := fs.String("from", "", "first `day` (2006-01-02; default the first of this month, in limits.timezone)")
	to := fs.String("to", "", "last `day` (default today)")
	by := fs.String("by", "user,model", "`columns` to add up by, comma-separated: "+strings.Join(usageDims, ", "))
	asCSV := fs.Bool("csv", false, "write CSV")
	asJSON := fs.Bool("json", false, "write JSON")
	storeFile := fs.String("store", "", "read this store `file` (a backup) instead of storage.path")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q (see palaver usage -h)", pos[0])}
	}
	if *asCSV && *asJSON {
		return &exitError{code: 2, err: errors.New("--csv and --json exclude each other")}
	}
	dims, err := parseDims(*by)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	loc, _ := time.LoadLocation(cfg.Limits.Timezone)
	first, last, err := usageRange(*from, *to, time.Now().In(loc))
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var recs []sessions.UsageRecord
	if len(cfg.Storage.Etcd.Endpoints) > 0 && *storeFile == "" {
		recs, err = readEtcdUsage(ctx, cfg, first, last)
	} else {
		recs, err = readUsage(ctx, cmp.Or(*storeFile, cfg.Storage.Path), first, last, *storeFile == "")
	}
	if err != nil {
		return err
	}
	rows := sumUsage(recs, dims)
	switch {
	case *asCSV:
		return writeUsageCSV(e.stdout, rows, dims)
	case *asJSON:
		return writeUsageJSON(e.stdout, rows)
	}
	writeUsageTable(e.stdout, rows, dims, first, last, cfg.Limits.Timezone)
	return nil
}

// parseDims checks a --by list.
func parseDims(s string) ([]string, error) {
	var dims []string
	for d := range strings.SplitSeq(s, ",") {
		d = strings.TrimSpace(d)
		if !slices.Contains(usageDims, d) {
			return nil, fmt.Errorf("--by: unknown column %q; want some of %s", d, strings.Join(usageDims, ", "))
		}
		if !slices.Contains(dims, d) {
			dims = append(dims, d)
		}
	}
	// Shown in the order of usageDims.
	slices.SortFunc(dims, func(a, b string) int { return slices.Index(usageDims, a) - slices.Index(usageDims, b) })
	return dims, nil
}

// usageRange checks --from and --to, defaulting to this month so far.
func usageRange(from, to string, now time.Time) (string, string, error) {
	first := cmp.Or(from, now.Format("2006-01")+"-01")
	last := cmp.Or(to, now.Format(time.DateOnly))
	for _, d := range []struct{ flag, day string }{{"--from", first}, {"--to", last}} {
		if _, err := time.Parse(time.DateOnly, d.day); err != nil {
			return "", "", fmt.Errorf("%s: want a day as 2006-01-02, got %q", d.flag, d.day)
		}
	}
	if first > last {
		return "", "", fmt.Errorf("--from %s is after --to %s", first, last)
	}
	return first, last, nil
}

// readUsage reads the usage records of the store at path. While a running
// palaver holds the store (and live is set: path is storage.path), that
// palaver writes a copy through its control socket, which is read and
// removed: a snapshot as of now.
func readUsage(ctx context.Context, path, from, to string, live bool) ([]sessions.UsageRecord, error) {
	recs, err := sessions.ReadUsageFile(path, sessions.DefaultLockTimeout, from, to)
	if !errors.Is(err, sessions.ErrLocked) || !live {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (no store there: palaver records usage in it as it answers)", err)
		}
		return recs, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".usage")
	if err != nil {
		return nil, fmt.Errorf("usage: a snapshot of the running palaver's store: %w", err)
	}
	defer os.RemoveAll(dir)
	snap := filepath.Join(dir, "snapshot.db")
	if _, err := requestBackup(ctx, path, snap, false); err != nil {
		return nil, err
	}
	return sessions.ReadUsageFile(snap, sessions.DefaultLockTimeout, from, to)
}

// readEtcdUsage reads the usage records of the days from to to from the
// etcd store, which every process shares.
func readEtcdUsage(ctx context.Context, cfg *Config, from, to string) ([]sessions.UsageRecord, error) {
	ec, err := etcdConfig(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	s, err := etcdstore.Open(ctx, ec)
	if err != nil {
		return nil, fmt.Errorf("storage.etcd: %w", err)
	}
	defer s.Close()
	return s.UsageRecords(ctx, from, to)
}

// sumUsage adds up recs by dims: the other columns are left empty. Rows
// come sorted by their columns.
func sumUsage(recs []sessions.UsageRecord, dims []string) []sessions.UsageRecord {
	byKey := make(map[string]int)
	var rows []sessions.UsageRecord
	for _, r := range recs {
		var row sessions.UsageRecord
		parts := make([]string, len(dims))
		for i, d := range dims {
			*dimOf(&row, d) = *dimOf(&r, d)
			parts[i] = *dimOf(&r, d)
		}
		if slices.Contains(dims, "user") {
			row.UserName = r.UserName
		}
		k := strings.Join(parts, "\x00")
		i, ok := byKey[k]
		if !ok {
			i = len(rows)
			byKey[k] = i
			rows = append(rows, row)
		}
		rows[i].Tally.Add(r.Tally)
	}
	slices.SortFunc(rows, func(a, b sessions.UsageRecord) int {
		for _, d := range usageDims {
			if c := cmp.Compare(*dimOf(&a, d), *dimOf(&b, d)); c != 0 {
				return c
			}
		}
		return 0
	})
	return rows
}

// usageColumns are the figures of a row, after its columns, in CSV.
var usageColumns = []string{"requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "estimated_tokens", "cost_usd", "unpriced_tokens"}

// csvHeader is the CSV header for dims: the columns (with user_name after
// user), then the figures.
func csvHeader(dims []string) []string {
	var h []string
	for _, d := range dims {
		h = append(h, d)
		if d == "user" {
			h = append(h, "user_name")
		}
	}
	return append(h, usageColumns...)
}

// writeUsageCSV writes rows as CSV: costs exact to the billionth of a
// dollar, so that reading the file back gives the same figures.
func writeUsageCSV(w io.Writer, rows []sessions.UsageRecord, dims []string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader(dims)); err != nil {
		return err
	}
	for _, r := range rows {
		var rec []string
		for _, d := range dims {
			rec = append(rec, *dimOf(&r, d))
			if d == "user" {
				rec = append(rec, r.UserName)
			}
		}
		t := r.Tally
		rec = append(rec, itoa(t.Requests), itoa(t.PromptTokens), itoa(t.CompletionTokens), itoa(t.ReasoningTokens),
			itoa(t.EstimatedTokens), nanoUSD(t.CostNanoUSD), itoa(t.UnpricedTokens))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// nanoUSD writes billionths of a dollar as dollars, exactly: 0.000012345.
func nanoUSD(n int64) string {
	return fmt.Sprintf("%d.%09d", n/1e9, n%1e9)
}

// usageJSON is a row of palaver usage --json.
type usageJSON struct {
	Day              string  `json:"day,omitempty"`
	Platform         string  `json:"platform,omitempty"`
	User             string  `json:"user,omitempty"`
	UserName         string  `json:"user_name,omitempty"`
	Group            string  `json:"group,omitempty"`
	Conversation     string  `json:"conversation,omitempty"`
	Key              string  `json:"key,omitempty"`
	Model            string  `json:"model,omitempty"`
	Requests         int64   `json:"requests"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	ReasoningTokens  int64   `json:"reasoning_tokens"`
	EstimatedTokens  int64   `json:"estimated_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	UnpricedTokens   int64   `json:"unpriced_tokens"`
}

// writeUsageJSON writes rows as a JSON array, one object per row with
// its columns and figures.
func writeUsageJSON(w io.Writer, rows []sessions.UsageRecord) error {
	out := make([]usageJSON, len(rows))
	for i, r := range rows {
		t := r.Tally
		out[i] = usageJSON{Day: r.Day, Platform: r.Platform, User: r.User, UserName: r.UserName, Group: r.Group,
			Conversation: r.Conversation, Key: r.Key, Model: r.Model, Requests: t.Requests, PromptTokens: t.PromptTokens,
			CompletionTokens: t.CompletionTokens, ReasoningTokens: t.ReasoningTokens, EstimatedTokens: t.EstimatedTokens,
			CostUSD: t.CostUSD(), UnpricedTokens: t.UnpricedTokens}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeUsageTable writes rows as an aligned table with a total line.
func writeUsageTable(w io.Writer, rows []sessions.UsageRecord, dims []string, from, to, zone string) {
	fmt.Fprintf(w, "Usage from %s to %s (days in %s)\n\n", from, to, zone)
	if len(rows) == 0 {
		fmt.Fprintln(w, "No usage recorded.")
		return
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	var head []string
	for _, d := range dims {
		head = append(head, strings.ToUpper(d))
	}
	head = append(head, "REQUESTS", "PROMPT", "ANSWER", "REASONING", "COST", "NOTES")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	var total sessions.Tally
	line := func(cols []string, t sessions.Tally) {
		cols = append(cols, itoa(t.Requests), itoa(t.PromptTokens), itoa(t.CompletionTokens), itoa(t.ReasoningTokens), costOf(t), notes(t))
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	for _, r := range rows {
		var cols []string
		for _, d := range dims {
			v := *dimOf(&r, d)
			if d == "user" && r.UserName != "" {
				v += " (" + r.UserName + ")"
			}
			cols = append(cols, cmp.Or(v, "-"))
		}
		line(cols, r.Tally)
		total.Add(r.Tally)
	}
	cols := make([]string, len(dims))
	cols[0] = "total"
	line(cols, total)
	tw.Flush()
	for l := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(l, " \n"))
	}
}

// costOf shows a row's cost: "$0.012345", "unknown" when no token has a
// price.
func costOf(t sessions.Tally) string {
	if t.CostNanoUSD == 0 && t.UnpricedTokens > 0 {
		return "unknown"
	}
	return "$" + strconv.FormatFloat(t.CostUSD(), 'f', 6, 64)
}

// notes says what a row's figures leave out or guess.
func notes(t sessions.Tally) string {
	var n []string
	if t.UnpricedTokens > 0 && t.CostNanoUSD > 0 {
		n = append(n, "+ "+itoa(t.UnpricedTokens)+" tokens unpriced")
	}
	if t.EstimatedTokens > 0 {
		n = append(n, itoa(t.EstimatedTokens)+" tokens estimated")
	}
	return strings.Join(n, ", ")
}
