package discord

import (
	"context"
	"sync"
)

// arrivals keeps the questions asked in one channel in the order Discord
// delivered them while each is handled on a goroutine of its own, so that
// one person's questions are queued, and answered, in the order they were
// asked. (Their ids do not order them: messages are
// sessions.Message.Unordered.)
// A ticket is taken in delivery order, from the goroutine that
// receives the events, and a question is handed to the Manager only once
// the tickets before it in its channel are done. It holds one entry per
// channel with a question being handled.
type arrivals struct {
	mu    sync.Mutex
	tails map[string]chan struct{} // channel → the last ticket's done
}

// ticket is one question's place in its channel's order.
type ticket struct {
	a       *arrivals
	channel string
	prev    chan struct{} // closed when the ticket before is done; nil if none
	mine    chan struct{}
	once    sync.Once
}

// take returns the next ticket of channelID.
func (a *arrivals) take(channelID string) *ticket {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tails == nil {
		a.tails = map[string]chan struct{}{}
	}
	t := &ticket{a: a, channel: channelID, prev: a.tails[channelID], mine: make(chan struct{})}
	a.tails[channelID] = t.mine
	return t
}

// wait returns once the tickets before t are done, or ctx ended (the
// question is then handed over anyway: those before it are stuck). A nil
// ticket waits for nothing.
func (t *ticket) wait(ctx context.Context) {
	if t == nil || t.prev == nil {
		return
	}
	select {
	case <-t.prev:
	case <-ctx.Done():
	}
}

// done lets the next ticket go; later calls do nothing. A nil ticket is
// done already.
func (t *ticket) done() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		close(t.mine)
		t.a.mu.Lock()
		if t.a.tails[t.channel] == t.mine {
			delete(t.a.tails, t.channel)
		}
		t.a.mu.Unlock()
	})
}
