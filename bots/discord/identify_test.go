package discord_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palaver-bot/palaver/bots/discord"
)

// identifyAt asks g for shard's turn on a goroutine and reports on the
// returned channel the time it got it, relative to start.
func identifyAt(ctx context.Context, g *discord.LocalGate, start time.Time, shard, conc int) <-chan time.Duration {
	got := make(chan time.Duration, 1)
	go func() {
		release, err := g.Identify(ctx, shard, conc)
		if err != nil {
			close(got)
			return
		}
		got <- time.Since(start)
		release()
	}()
	return got
}

func TestLocalGate_Identify(t *testing.T) {
	tests := []struct {
		name   string
		conc   int
		shards []int
		want   []time.Duration // when each shard's turn comes
	}{
		{"OneBucket", 1, []int{0, 1, 2}, []time.Duration{0, 5 * time.Second, 10 * time.Second}},
		{"Buckets", 2, []int{0, 1, 2, 3}, []time.Duration{0, 0, 5 * time.Second, 5 * time.Second}},
		{"ZeroConcurrencyIsOne", 0, []int{0, 1}, []time.Duration{0, 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := &discord.LocalGate{}
				start := time.Now()
				var got []<-chan time.Duration
				for _, shard := range tt.shards {
					got = append(got, identifyAt(t.Context(), g, start, shard, tt.conc))
					synctest.Wait() // the shards queue in order
				}
				for i, c := range got {
					if d := <-c; d != tt.want[i] {
						t.Errorf("shard %d identified at %v, want %v", tt.shards[i], d, tt.want[i])
					}
				}
			})
		})
	}
}

// A bucket stays closed until release, even past its window.
func TestLocalGate_HeldUntilRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &discord.LocalGate{}
		start := time.Now()
		release, err := g.Identify(t.Context(), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := identifyAt(t.Context(), g, start, 1, 1)
		time.Sleep(7 * time.Second)
		synctest.Wait()
		select {
		case d := <-got:
			t.Fatalf("shard 1 identified at %v while shard 0 held the bucket", d)
		default:
		}
		release()
		release() // later calls do nothing
		if d := <-got; d != 7*time.Second {
			t.Errorf("shard 1 identified at %v, want at the release, 7s", d)
		}
	})
}

// A wait ended by its context gives the turn back.
func TestLocalGate_Canceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &discord.LocalGate{}
		release, err := g.Identify(t.Context(), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		release()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := g.Identify(ctx, 0, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Identify = %v, want the context's end", err)
		}
		start := time.Now()
		if _, err := g.Identify(t.Context(), 0, 1); err != nil || time.Since(start) != 4*time.Second {
			t.Errorf("next Identify = %v after %v, want nil after the rest of the window, 4s", err, time.Since(start))
		}
	})
}

func TestLocalGate_NegativeShard(t *testing.T) {
	if _, err := (&discord.LocalGate{}).Identify(t.Context(), -1, 1); err == nil {
		t.Error("shard -1 accepted")
	}
}
