package sessions

import (
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
