package etcdstore

import (
	"testing"
	"time"
)

// counter records the counts ShareBudget reports.
type counter chan int

func (c counter) set(n int) { c <- n }

func (c counter) want(t *testing.T, who string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-c:
			if got == n {
				return
			}
		case <-timeout:
			t.Fatalf("%s: never counted %d others", who, n)
		}
	}
}

// Each process learns how many others draw on a bot's budget: as they
// start and stop drawing, and when one's lease is gone.
func TestStore_ShareBudget(t *testing.T) {
	a, b := openPair(t)
	ctx := t.Context()
	da, db := make(chan bool, 1), make(chan bool, 1)
	ca, cb := make(counter, 16), make(counter, 16)
	go a.ShareBudget(ctx, "discord", da, ca.set)
	go b.ShareBudget(ctx, "discord", db, cb.set)
	ca.want(t, "m1", 0)
	cb.want(t, "m2", 0)
	da <- true
	cb.want(t, "m2", 1)
	db <- true
	ca.want(t, "m1", 1)
	da <- false
	cb.want(t, "m2", 0)
	da <- true
	cb.want(t, "m2", 1)
	// Another bot's budget is its own.
	cc := make(counter, 16)
	go b.ShareBudget(ctx, "telegram", make(chan bool), cc.set)
	cc.want(t, "m2 (telegram)", 0)
	revoke(t, a)
	cb.want(t, "m2 after m1's lease was revoked", 0)
}
