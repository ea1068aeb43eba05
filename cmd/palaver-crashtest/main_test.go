package main

import (
	"io"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/cmd/internal/palaverproc"
)

// TestCrashTest runs a small seeded campaign end to end: the real palaver
// binary against the fakes, killed at random moments, checked after every
// restart and after a final clean run.
func TestCrashTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs palaver")
	}
	dir := t.TempDir()
	bin, err := palaverproc.Build(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	const cycles, messages = 4, 6
	var out strings.Builder
	r, err := campaignIn(t.Context(), dir, bin, options{cycles: cycles, seed: 1, messages: messages, discord: true}, &out)
	if r != nil {
		r.writeSummary(&out, 20)
	}
	if err != nil {
		t.Fatalf("campaign: %v\n%s", err, out.String())
	}
	if len(r.Found) > 0 {
		t.Errorf("%d violations:\n%s", len(r.Found), out.String())
	}
	kills, sent := 0, 0
	for _, cr := range r.Cycles {
		sent += cr.Sent
		if cr.KilledAt > 0 {
			kills++
		}
	}
	if len(r.Cycles) != cycles+1 || kills != cycles || sent != (cycles+1)*messages || r.Starts != 2*cycles+1 {
		t.Errorf("%d cycles, %d kills, %d sent, %d starts; want %d, %d, %d, %d\n%s",
			len(r.Cycles), kills, sent, r.Starts, cycles+1, cycles, (cycles+1)*messages, 2*cycles+1, out.String())
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr string
	}{
		{"OK", []string{"-cycles", "200", "-seed", "7", "-messages", "5", "-v", "-discord=false"}, options{cycles: 200, seed: 7, messages: 5, verbose: true}, ""},
		{"Defaults", nil, options{cycles: 20, seed: 1, messages: 8, discord: true}, ""},
		{"ErrCycles", []string{"-cycles", "-1"}, options{}, "-cycles must be 0 or more"},
		{"ErrMessages", []string{"-messages", "0"}, options{}, "-messages must be between 1 and 30"},
		{"ErrTooManyMessages", []string{"-messages", "31"}, options{}, "-messages must be between 1 and 30"},
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
			if err != nil || got != tt.want {
				t.Errorf("parseOptions = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
