package main

import (
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/cmd/internal/palaverproc"
)

// TestClusterTest runs a small version end to end: three real palaver
// processes on an embedded three-member etcd, a few conversations, one
// SIGKILL and a rolling restart. It takes about a minute and more under
// -race, so it runs only with PALAVER_CLUSTERTEST=1 (and never with
// -short).
func TestClusterTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three palaver processes")
	}
	if os.Getenv("PALAVER_CLUSTERTEST") != "1" {
		t.Skip("set PALAVER_CLUSTERTEST=1 to run three palaver processes on etcd (about a minute)")
	}
	dir := t.TempDir()
	bin, err := palaverproc.Build(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := parseOptions([]string{
		"-conversations", "6", "-questions", "1", "-kills", "1", "-failover", "2s",
		"-shards", "2", "-max-concurrency", "2", "-tokens", "16", "-think", "500ms",
		"-restart-after", "500ms", "-fsync=false",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r, err := runIn(t.Context(), dir, bin, opts, &out)
	if r != nil {
		r.write(&out)
	}
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if len(r.Violations) > 0 {
		t.Errorf("%d violations:\n%s", len(r.Violations), out.String())
	}
	if len(r.Phases) != 3 || len(r.Kills) != 1 || len(r.Rolling) != processes {
		t.Errorf("%d phases, %d kills, %d clean stops; want 3, 1, %d\n%s", len(r.Phases), len(r.Kills), len(r.Rolling), processes, out.String())
	}
	if load := r.Phases[0]; load.Questions != 6 || load.Answered != 6 {
		t.Errorf("load phase: %d questions, %d answered in full; want 6, 6\n%s", load.Questions, load.Answered, out.String())
	}
	if !r.Kills[0].Complete {
		t.Errorf("the kill was not taken over: %+v\n%s", r.Kills[0], out.String())
	}
}

func TestParseOptions(t *testing.T) {
	defaults := options{conversations: 100, questions: 3, kills: 6, failover: 10 * time.Second, shards: 4, maxConcurrency: 1,
		tokens: 50, rate: 20, think: time.Second, restartAfter: 2 * time.Second, phases: allPhases, seed: 1, fsync: true,
		timeout: 30 * time.Minute}
	withKills := defaults
	withKills.kills, withKills.failover, withKills.phases, withKills.jsonOut = 10, 3*time.Second, []string{phaseKill, phaseLoad}, true
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr string
	}{
		{"Defaults", nil, defaults, ""},
		{"OK", []string{"-kills", "10", "-failover", "3s", "-phases", "kill,load", "-json"}, withKills, ""},
		{"ErrPhase", []string{"-phases", "load,crash"}, options{}, `-phases: unknown phase "crash" (want load, kill, rolling)`},
		{"ErrPhaseTwice", []string{"-phases", "load,load"}, options{}, `-phases: "load" twice`},
		{"ErrConversations", []string{"-conversations", "0"}, options{}, "-conversations must be between 1 and 1000"},
		{"ErrFailover", []string{"-failover", "1s"}, options{}, "-failover must be at least 2s"},
		{"ErrShards", []string{"-shards", "0"}, options{}, "-shards must be between 1 and 64"},
		{"ErrTokens", []string{"-tokens", "7"}, options{}, "-tokens must be between 8 and 2000"},
		{"ErrKills", []string{"-kills", "-1"}, options{}, "-kills must be 0 or more"},
		{"ErrArgument", []string{"extra"}, options{}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseOptions = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	var hundred []int
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, i)
	}
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		name string
		ds   []time.Duration
		q    float64
		want time.Duration
	}{
		{"Empty", nil, 0.5, 0},
		{"One", ms(7), 0.99, 7 * time.Millisecond},
		{"MedianOdd", ms(5, 1, 3), 0.5, 3 * time.Millisecond},
		{"MedianEven", ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{"P99OfFewIsMax", ms(9, 1, 3, 2, 8, 4), 0.99, 9 * time.Millisecond},
		{"P99Of100", ms(hundred...), 0.99, 99 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quantile(tt.ds, tt.q); got != tt.want {
				t.Errorf("quantile(%v, %v) = %v, want %v", tt.ds, tt.q, got, tt.want)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	t0 := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	spans := []span{
		{0, at(1), at(3)},   // inside
		{1, at(9), at(12)},  // cut at the end
		{0, at(-2), at(0)},  // before
		{2, at(-1), at(11)}, // over the whole period
	}
	total, longest, n := within(spans, at(0), at(10))
	if total != 13*time.Second || longest != 10*time.Second || n != 3 {
		t.Errorf("within = %v, %v, %d; want 13s, 10s, 3", total, longest, n)
	}
}
