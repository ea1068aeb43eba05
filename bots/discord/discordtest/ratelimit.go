package discordtest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// The fake's rate limits are sliding windows: a key (a channel, or an
// interaction webhook token) admits at most limit requests within any span
// of the window's length, so "5 per 5 s" never lets a burst straddle two
// fixed windows. Rejected requests are not counted. Message creates and
// edits are charged to the channel they land in, whether they come through
// the channel routes or through an interaction webhook; webhook calls are
// also charged to their token, and their X-RateLimit-* headers describe
// the token's window (a refusal for the channel's sake says
// X-RateLimit-Scope: shared). Interaction callbacks are exempt, as on
// Discord.

type window struct {
	limit int
	span  time.Duration
	times []time.Time // admitted requests within the span, oldest first
}

func (w *window) prune(now time.Time) {
	i := 0
	for i < len(w.times) && now.Sub(w.times[i]) >= w.span {
		i++
	}
	w.times = w.times[i:]
}

// retryAfter is how long until the window admits another request.
func (w *window) retryAfter(now time.Time) time.Duration {
	if len(w.times) < w.limit {
		return 0
	}
	return w.times[len(w.times)-w.limit].Add(w.span).Sub(now)
}

// injection is a pending run of forced 429s for a channel.
type injection struct {
	count      int
	retryAfter time.Duration
	global     bool
}

// InjectRateLimit makes the next count message creates or edits landing
// in channelID (through channel routes or interaction webhooks) fail with
// a 429 whose retry_after is retryAfter, regardless of the real windows.
func (s *Server) InjectRateLimit(channelID string, count int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.injected[channelID] = &injection{count: count, retryAfter: retryAfter}
}

// rateHeaders are the X-RateLimit-* values of one answer.
type rateHeaders struct {
	bucket     string
	limit      int
	remaining  int
	resetAfter time.Duration
	shared     bool // X-RateLimit-Scope: shared
}

// admitWriteLocked charges one message create or edit landing in
// channelID, and one webhook request to hookToken when it is not empty.
// On refusal it writes the 429 and returns false; otherwise it sets the
// rate-limit headers and returns true.
func (s *Server) admitWriteLocked(rq *request, channelID, hookToken string) bool {
	now := s.nowLocked()
	rq.call.Time = now
	rq.call.ChannelID = channelID
	rq.call.Write = true

	if inj := s.injected[channelID]; inj != nil && inj.count > 0 {
		inj.count--
		rq.tooMany(now, rateHeaders{bucket: "fake-messages", limit: max(s.opts.MessageLimit, 1),
			resetAfter: inj.retryAfter}, inj.global)
		return false
	}

	type charged struct {
		w      *window
		bucket string
	}
	var wins []charged
	add := func(key string, limit int, span time.Duration, bucket string) {
		if limit < 0 {
			return
		}
		w := s.limits[key]
		if w == nil {
			w = &window{limit: limit, span: span}
			s.limits[key] = w
		}
		w.prune(now)
		wins = append(wins, charged{w, bucket})
	}
	add("channel:"+channelID, s.opts.MessageLimit, s.opts.MessageWindow, "fake-messages")
	if hookToken != "" {
		add("webhook:"+hookToken, s.opts.WebhookLimit, s.opts.WebhookWindow, "fake-webhook")
	}
	var refused *rateHeaders
	for _, c := range wins {
		if ra := c.w.retryAfter(now); ra > 0 && (refused == nil || ra > refused.resetAfter) {
			refused = &rateHeaders{bucket: c.bucket, limit: c.w.limit, resetAfter: ra}
		}
	}
	if refused != nil {
		// A webhook call refused for its channel's sake hit a limit shared
		// with other routes.
		refused.shared = hookToken != "" && refused.bucket == "fake-messages"
		rq.tooMany(now, *refused, false)
		return false
	}
	// The headers describe the route's own bucket: the webhook token's on
	// webhook routes (as on Discord), else the channel's.
	for i, c := range wins {
		w := c.w
		w.times = append(w.times, now)
		h := rateHeaders{bucket: c.bucket, limit: w.limit, remaining: w.limit - len(w.times),
			resetAfter: w.times[0].Add(w.span).Sub(now)}
		if h.remaining <= 0 {
			h.resetAfter = w.retryAfter(now)
		}
		if i == len(wins)-1 && (hookToken == "" || c.bucket == "fake-webhook") {
			rq.setRateHeaders(now, h)
		}
	}
	return true
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(math.Max(d.Seconds(), 0), 'f', 3, 64)
}

func (rq *request) setRateHeaders(now time.Time, h rateHeaders) {
	hd := rq.w.Header()
	reset := now.Add(h.resetAfter)
	hd.Set("X-RateLimit-Limit", strconv.Itoa(h.limit))
	hd.Set("X-RateLimit-Remaining", strconv.Itoa(max(h.remaining, 0)))
	hd.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(reset.UnixMilli())/1000, 'f', 3, 64))
	hd.Set("X-RateLimit-Reset-After", seconds(h.resetAfter))
	hd.Set("X-RateLimit-Bucket", h.bucket)
}

// tooMany writes Discord's 429 answer.
func (rq *request) tooMany(now time.Time, h rateHeaders, global bool) {
	h.remaining = 0
	rq.setRateHeaders(now, h)
	hd := rq.w.Header()
	hd.Set("Retry-After", strconv.Itoa(int(math.Ceil(h.resetAfter.Seconds()))))
	hd.Set("X-RateLimit-Scope", "user")
	if h.shared {
		hd.Set("X-RateLimit-Scope", "shared")
	}
	if global {
		hd.Set("X-RateLimit-Global", "true")
		hd.Set("X-RateLimit-Scope", "global")
	}
	rq.writeJSON(http.StatusTooManyRequests, wireRateLimit{
		Message:    "You are being rate limited.",
		RetryAfter: math.Round(h.resetAfter.Seconds()*1000) / 1000,
		Global:     global,
	})
}
