package sessions

import (
	"sync"
	"time"
)

// userRate is a token bucket per user: perMinute messages a minute, with a
// burst of the same size. A zero rate allows everything.
type userRate struct {
	perMinute int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	told   bool // refused since the last message allowed
}

func newUserRate(perMinute int) *userRate {
	return &userRate{perMinute: perMinute, buckets: make(map[string]*bucket)}
}

// allow takes one token from user's bucket, reporting whether there was
// one, and for a refusal whether it is the first since the user's last
// message allowed (the one worth telling them about).
func (r *userRate) allow(user string, now time.Time) (ok, first bool) {
	if r.perMinute <= 0 {
		return true, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	capacity := float64(r.perMinute)
	refill := capacity / float64(time.Minute)
	if len(r.buckets) > 10000 {
		// Forget users whose buckets are full again: they are not limited.
		for k, b := range r.buckets {
			if b.tokens+float64(now.Sub(b.last))*refill >= capacity {
				delete(r.buckets, k)
			}
		}
	}
	b := r.buckets[user]
	if b == nil {
		b = &bucket{tokens: capacity, last: now}
		r.buckets[user] = b
	}
	b.tokens = min(capacity, b.tokens+float64(now.Sub(b.last))*refill)
	b.last = now
	if b.tokens < 1 {
		first = !b.told
		b.told = true
		return false, first
	}
	b.tokens--
	b.told = false
	return true, false
}
