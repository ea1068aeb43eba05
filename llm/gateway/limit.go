package gateway

import (
	"math"
	"net/http"
	"sync"
	"time"
)

// limiter enforces the per-key limits: a request-rate bucket and a bound
// on completions in flight. Keys are the configured ones plus
// anonymousKey, so its map stays small.
type limiter struct {
	perMinute  int // 0: no rate limit
	maxStreams int // ≤ 0: no bound

	mu   sync.Mutex
	keys map[string]*keyLimits
}

type keyLimits struct {
	tokens  float64
	updated time.Time
	streams int
}

func newLimiter(perMinute, maxStreams int) *limiter {
	return &limiter{perMinute: perMinute, maxStreams: maxStreams, keys: make(map[string]*keyLimits)}
}

func (l *limiter) state(key string, now time.Time) *keyLimits {
	k := l.keys[key]
	if k == nil {
		k = &keyLimits{tokens: float64(l.perMinute), updated: now}
		l.keys[key] = k
	}
	return k
}

// allow takes one request from key's bucket at now. When the bucket is
// empty it returns false and the wait until it holds one again, rounded up
// to a whole second.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l.perMinute <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.state(key, now)
	rate := float64(l.perMinute) / float64(time.Minute) // tokens per nanosecond
	if elapsed := now.Sub(k.updated); elapsed > 0 {
		k.tokens = min(float64(l.perMinute), k.tokens+float64(elapsed)*rate)
		k.updated = now
	}
	if k.tokens >= 1 {
		k.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - k.tokens) / rate))
	return false, (wait + time.Second - 1).Truncate(time.Second)
}

// acquire counts one more completion in flight for key; false means key
// is at its bound. Each successful acquire needs one release.
func (l *limiter) acquire(key string) bool {
	if l.maxStreams <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.state(key, time.Now())
	if k.streams >= l.maxStreams {
		return false
	}
	k.streams++
	return true
}

// release ends a completion counted by acquire.
func (l *limiter) release(key string) {
	if l.maxStreams <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys[key].streams--
}

// enter admits a request to an API route that goes to a provider: it
// checks the key (see authenticate), the key's request rate and its
// requests in flight, answering the client itself when one refuses. The
// returned release ends the request's count in flight.
func (s *Server) enter(w http.ResponseWriter, r *http.Request) (key string, release func(), ok bool) {
	key, ok = s.authenticate(w, r)
	if !ok {
		return "", nil, false
	}
	if ok, wait := s.limits.allow(key, time.Now()); !ok {
		err := newError(http.StatusTooManyRequests, typeRateLimit, "rate_limit_exceeded",
			"rate limit of %d requests per minute reached; retry in %s", s.opts.RequestsPerMinute, wait)
		err.retryAfter = wait
		writeError(w, r, err)
		return "", nil, false
	}
	if !s.limits.acquire(key) {
		err := newError(http.StatusTooManyRequests, typeRateLimit, "too_many_concurrent_requests",
			"too many requests in flight for this key (at most %d)", s.opts.MaxStreamsPerKey)
		err.retryAfter = time.Second
		writeError(w, r, err)
		return "", nil, false
	}
	return key, func() { s.limits.release(key) }, true
}

// intake starts an API request of route: the key and its limits (enter),
// the body up to maxBody (an over-long one goes to tooLarge first, when
// set, to say more), then the connection's deadlines lifted for the
// provider's answer. It has answered the client when ok is false; the
// caller must call release when ok is true.
func (s *Server) intake(w http.ResponseWriter, r *http.Request, route string, maxBody int64, tooLarge func(*apiError)) (key string, body []byte, release func(), ok bool) {
	entryFrom(r).route = route
	key, release, ok = s.enter(w, r)
	if !ok {
		return "", nil, nil, false
	}
	body, apiErr := s.readBody(w, r, maxBody)
	if apiErr != nil {
		if tooLarge != nil && apiErr.status == http.StatusRequestEntityTooLarge {
			tooLarge(apiErr)
		}
		writeError(w, r, apiErr)
		release()
		return "", nil, nil, false
	}
	liftDeadlines(w)
	return key, body, release, true
}
