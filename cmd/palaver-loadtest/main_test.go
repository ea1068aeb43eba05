package main

import (
	"io"
	"math"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    map[kind]int
		wantErr string
	}{
		{in: defaultMix, want: map[kind]int{tgPrivate: 40, tgGroup: 10, tgTopic: 15, discordChannel: 20, discordDM: 15}},
		{in: " discord-channel = 1 ", want: map[kind]int{discordChannel: 1}},
		{in: "telegram-private", wantErr: "not kind=weight"},
		{in: "slack=3", wantErr: `unknown kind "slack"`},
		{in: "telegram-group=-1", wantErr: "whole number"},
		{in: "telegram-group=0", wantErr: "no kind has a weight"},
	}
	for _, tt := range tests {
		got, err := parseMix(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseMix(%q) = %v, want an error with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("parseMix(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		for k, n := range tt.want {
			if got[k] != n {
				t.Errorf("parseMix(%q)[%s] = %d, want %d", tt.in, k, got[k], n)
			}
		}
	}
}

func TestSplit(t *testing.T) {
	mix, _ := parseMix(defaultMix)
	for _, n := range []int{1, 3, 7, 100, 1000} {
		got := split(n, mix)
		total := 0
		for _, c := range got {
			total += c
		}
		if total != n {
			t.Errorf("split(%d) = %v, sums to %d", n, got, total)
		}
	}
	if got := split(1000, mix); got[tgPrivate] != 400 || got[discordChannel] != 200 || got[discordDM] != 150 {
		t.Errorf("split(1000) = %v, want the weights exactly", got)
	}
}

func TestNewTokens(t *testing.T) {
	a, b := newTokens("A1-0-0", 200), newTokens("A1-0-0", 200)
	if strings.Join(a, "") != strings.Join(b, "") {
		t.Error("the same tag gave different answers")
	}
	if len(a) != 200 || a[0] != "A1-0-0" {
		t.Errorf("%d tokens starting %q, want 200 starting with the tag", len(a), a[0])
	}
	if text := strings.Join(a, ""); strings.ContainsAny(text, "*_`[]#<>&|~") {
		t.Errorf("the answer has Markdown or HTML characters: %q", text)
	}
}

// histogramScrape is a scrape holding one histogram.
func histogramScrape(name string, bounds []float64, counts []uint64, total uint64) scrape {
	h := &dto.Histogram{SampleCount: &total}
	for i := range bounds {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: &bounds[i], CumulativeCount: &counts[i]})
	}
	inf := math.Inf(1)
	h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: &inf, CumulativeCount: &total})
	return scrape{name: &dto.MetricFamily{Name: &name, Metric: []*dto.Metric{{Histogram: h}}}}
}

func TestHistogramQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.002, 0.004}
	before := histogramScrape("x", bounds, []uint64{10, 10, 10}, 10)
	after := histogramScrape("x", bounds, []uint64{10, 60, 110}, 110)
	// Between the scrapes: 50 observations in (1, 2] ms, 50 in (2, 4] ms.
	if got := histogramQuantile(before, after, "x", nil, 0.5); math.Abs(got-0.002) > 1e-9 {
		t.Errorf("p50 = %v, want 0.002", got)
	}
	if got := histogramQuantile(before, after, "x", nil, 0.99); math.Abs(got-0.00396) > 1e-9 {
		t.Errorf("p99 = %v, want 0.00396", got)
	}
	if got := histogramQuantile(after, after, "x", nil, 0.5); !math.IsNaN(got) {
		t.Errorf("p50 of nothing = %v, want NaN", got)
	}
}

func TestQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	q := quantiles(ds)
	if q.N != 100 || q.P50 != 50 || q.P99 != 99 || q.Max != 100 {
		t.Errorf("quantiles = %+v, want n 100, p50 50, p99 99, max 100", q)
	}
}

// TestLoadTest runs a small load test end to end: the real palaver binary
// against the fakes, every kind of conversation, then again with forced
// 429s, broken upstream streams and a slow platform.
func TestLoadTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs palaver")
	}
	t.Parallel() // beside TestCrowd
	bin, err := buildPalaver(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mix, _ := parseMix("telegram-private=1,telegram-group=1,telegram-topic=2,discord-channel=1")
	base := options{
		workload: mixWorkload, conversations: 5, tokens: 40, rate: 200, turns: 2, users: 2, topics: 2, mix: mix,
		drafts: true, ramp: 200 * time.Millisecond, think: 100 * time.Millisecond,
		timeout: 2 * time.Minute, seed: 1, palaver: bin, logLevel: "warn",
	}
	tests := []struct {
		name string
		opts func(*options)
	}{
		{"clean", func(*options) {}},
		{"faults", func(o *options) {
			o.inject429, o.drop, o.platformLatency, o.drafts = 2, 0.3, 20*time.Millisecond, false
			o.tokens, o.rate, o.ramp = 100, 100, 500*time.Millisecond // streams long enough to meet the 429s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // mostly waiting out Telegram's 3 s group interval
			opts := base
			tt.opts(&opts)
			r, err := loadTest(t.Context(), opts, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			r.writeTable(&out)
			if failed := broken(r.Invariants); len(failed) > 0 {
				t.Errorf("invariants broken: %+v\n%s", failed, out.String())
			}
			all := r.Kinds[len(r.Kinds)-1]
			if all.Kind != "all" || all.Conversations != 5 || all.Answers != 14 || all.Complete != 14 {
				t.Errorf("all: %d conversations, %d answers, %d complete; want 5, 14, 14\n%s",
					all.Conversations, all.Answers, all.Complete, out.String())
			}
			if len(r.Kinds) != 5 {
				t.Errorf("%d kinds in the report, want 4 and all", len(r.Kinds))
			}
			if r.Palaver.Commits == 0 || r.Palaver.PeakRSSMB == 0 || r.Metrics.Tokens == 0 {
				t.Errorf("palaver figures missing: %+v, tokens %d", r.Palaver, r.Metrics.Tokens)
			}
			if opts.drop > 0 && all.Dropped == 0 {
				t.Error("no upstream stream was dropped")
			}
			if opts.inject429 > 0 && all.RateLimited == 0 {
				t.Errorf("no injected 429 reached Palaver (%d injected)", r.Setup.Injected429)
			}
			if err := r.writeJSON(io.Discard); err != nil {
				t.Errorf("JSON report: %v", err)
			}
		})
	}
}
