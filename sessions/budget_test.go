package sessions

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Growing text sleeping for the bot's budget is visited in turn: a reply
// whose destination would take its request is woken however many
// sleepers before it wait for destinations that are busy.
func TestBudget_SleepersTakeTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(Window{Requests: 10, Per: time.Second})
		busy := func() bool { return false }
		for range 3 * sleepersScanned {
			b.sleep(&sleeper{ready: busy, wake: func() bool { return true }})
		}
		woken := make(chan struct{}, 1)
		b.sleep(&sleeper{ready: func() bool { return true }, wake: func() bool {
			woken <- struct{}{}
			return true
		}})
		time.Sleep(time.Second)
		select {
		case <-woken:
		default:
			t.Fatalf("a ready sleeper behind %d busy ones was not woken in 1 s", 3*sleepersScanned)
		}
		b.mu.Lock()
		n := len(b.sleepers)
		b.mu.Unlock()
		if n != 3*sleepersScanned {
			t.Errorf("%d sleepers left, want the %d busy ones", n, 3*sleepersScanned)
		}
		// Stop the retries.
		b.mu.Lock()
		b.sleepers = nil
		b.timer.Stop()
		b.mu.Unlock()
	})
}

// A hand-out that wakes some sleepers and finds the others' destinations
// busy returns (it once went round the busy ones for ever, holding the
// budget's lock).
func TestBudget_HandOutEnds(t *testing.T) {
	b := newBudget(Window{Requests: 10, Per: time.Second})
	var woken atomic.Int32
	ready := &sleeper{ready: func() bool { return true }, wake: func() bool { woken.Add(1); return true }}
	busy := &sleeper{ready: func() bool { return false }, wake: func() bool { return true }}
	b.mu.Lock()
	b.sleepers = []*sleeper{ready, ready, busy}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		b.due()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the hand-out did not return")
	}
	if n := woken.Load(); n != 2 {
		t.Errorf("%d sleepers woken, want the 2 ready ones", n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sleepers) != 1 || b.sleepers[0] != busy {
		t.Errorf("sleepers left %d, want the busy one", len(b.sleepers))
	}
	b.timer.Stop()
}
