package main

import (
	"sync"
	"time"
)

// span is a stretch of time on one Discord shard.
type span struct {
	shard    int
	from, to time.Time
}

// shardMonitor watches the fake Discord's gateway sessions and records,
// per shard, when no connection to it was open (a gap: Discord delivers
// that shard's events to nobody) and when two were (an overlap: both
// processes receive its events).
type shardMonitor struct {
	w    *world
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	gaps     []span
	overlaps []span
}

// monitorEvery is how often the monitor looks: gaps and overlaps shorter
// than that may go unseen.
const monitorEvery = 25 * time.Millisecond

func startShardMonitor(w *world) *shardMonitor {
	m := &shardMonitor{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	return m
}

func (m *shardMonitor) run() {
	defer close(m.done)
	n := m.w.opts.shards
	gapFrom := make([]time.Time, n)     // zero while connected
	overlapFrom := make([]time.Time, n) // zero while at most one
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	for {
		now := time.Now()
		conns := make([]int, n)
		for _, g := range m.w.dc.GatewaySessions() {
			if g.Connected && g.Shard[1] == n && g.Shard[0] < n {
				conns[g.Shard[0]]++
			}
		}
		m.mu.Lock()
		for s := range n {
			switch {
			case conns[s] == 0 && gapFrom[s].IsZero():
				gapFrom[s] = now
			case conns[s] > 0 && !gapFrom[s].IsZero():
				m.gaps = append(m.gaps, span{s, gapFrom[s], now})
				gapFrom[s] = time.Time{}
			}
			switch {
			case conns[s] > 1 && overlapFrom[s].IsZero():
				overlapFrom[s] = now
			case conns[s] <= 1 && !overlapFrom[s].IsZero():
				m.overlaps = append(m.overlaps, span{s, overlapFrom[s], now})
				overlapFrom[s] = time.Time{}
			}
		}
		m.mu.Unlock()
		select {
		case <-m.stop:
			m.mu.Lock()
			for s := range n {
				if !gapFrom[s].IsZero() {
					m.gaps = append(m.gaps, span{s, gapFrom[s], now})
				}
				if !overlapFrom[s].IsZero() {
					m.overlaps = append(m.overlaps, span{s, overlapFrom[s], now})
				}
			}
			m.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

// close stops the monitor; its spans are complete afterwards.
func (m *shardMonitor) close() {
	close(m.stop)
	<-m.done
}

// within sums the spans' lengths inside [from, to) and returns the
// longest, and how many there were.
func within(spans []span, from, to time.Time) (total, longest time.Duration, n int) {
	for _, s := range spans {
		a, b := s.from, s.to
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if !b.After(a) {
			continue
		}
		n++
		total += b.Sub(a)
		longest = max(longest, b.Sub(a))
	}
	return total, longest, n
}

// spans returns copies of the gaps and overlaps recorded.
func (m *shardMonitor) spans() (gaps, overlaps []span) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]span(nil), m.gaps...), append([]span(nil), m.overlaps...)
}
