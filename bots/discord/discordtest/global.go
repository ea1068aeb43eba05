package discordtest

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The per-bot limits. Discord lets a bot make about 50 requests per second
// across all routes (docs.discord.com/developers/topics/rate-limits, "Global
// Rate Limit"); past it every route answers 429 with "global": true,
// X-RateLimit-Global: true and X-RateLimit-Scope: global. The fake counts
// every request of a bot token, typing and interaction callbacks included
// (Discord exempts interaction endpoints; the fake does not, so that a bot
// budgeting them too is never refused), within a sliding window like its
// per-route limits: any span of GlobalLimits.Window admits at most
// GlobalLimits.Limit requests. A bucket-shaped client passes it when its
// burst plus one window's refill stays within the limit. Requests without
// an Authorization header are counted per client address, as on Discord.
// A request the global limit refuses is not counted.
//
// Discord also counts invalid requests per IP address: every answer with
// status 401, 403 or 429 (except 429s with X-RateLimit-Scope: shared).
// 10,000 of them within 10 minutes earn a temporary Cloudflare ban, during
// which every request is refused with 429 and the message Discord sends
// then ("You are being blocked from accessing our API temporarily…"). The
// fake does the same, for all its clients together; requests refused
// during a ban are counted apart and do not extend it.

// GlobalLimits configure the per-bot limits. Zero fields take the
// defaults noted; a negative Limit or InvalidLimit disables that limit.
type GlobalLimits struct {
	// Limit requests are allowed per bot token in any Window; defaults 50
	// and one fifth of Options.MessageWindow, which is one second at
	// Discord's 5 s, so that a fake whose windows are shortened for a fast
	// test keeps Discord's proportions.
	Limit  int
	Window time.Duration
	// InvalidLimit invalid requests within any InvalidWindow start a ban of
	// BanDuration; defaults 10,000, 10 minutes and one hour.
	InvalidLimit  int
	InvalidWindow time.Duration
	BanDuration   time.Duration
}

func (l GlobalLimits) withDefaults(messageWindow time.Duration) GlobalLimits {
	if l.Limit == 0 {
		l.Limit = 50
	}
	if l.Window <= 0 {
		l.Window = messageWindow / 5
	}
	if l.InvalidLimit == 0 {
		l.InvalidLimit = 10000
	}
	if l.InvalidWindow <= 0 {
		l.InvalidWindow = 10 * time.Minute
	}
	if l.BanDuration <= 0 {
		l.BanDuration = time.Hour
	}
	return l
}

// bannedMessage is the message of Discord's answer to a banned client.
const bannedMessage = "You are being blocked from accessing our API temporarily due to exceeding our rate limits frequently. " +
	"Please read our docs at https://discord.com/developers/docs/topics/rate-limits to prevent this moving forward."

// GlobalStats is what the per-bot limits saw of one bot token.
type GlobalStats struct {
	// Requests is every request of the bot that reached the global limit
	// (refused ones included; requests refused by a ban are not).
	Requests int
	// Peak is the most requests the fake admitted from the bot within any
	// span of GlobalLimits.Window (one second by default): the bot's peak
	// request rate. It is kept even when the limit is disabled.
	Peak int
	// Limited is how many of its requests the global limit refused.
	Limited int
	// Invalid is how many invalid requests (401, 403, and 429 other than
	// scope "shared") the fake answered, from any client, since it started.
	Invalid int
	// Bans is how many times the invalid requests earned a ban, and
	// Banned how many requests were refused during one.
	Bans   int
	Banned int
}

// globalLimits is the fake's per-bot and per-address bookkeeping, guarded
// by Server.mu. Its maps are made on first use, so that the zero value is
// ready.
type globalLimits struct {
	bots        map[string]*botUsage // by Authorization header, or "ip:" + address
	invalid     window               // invalid requests within InvalidWindow
	invalidSeen int
	bannedUntil time.Time
	bans        int
	banned      int
}

// botUsage is one bot token's global window and counters.
type botUsage struct {
	win      window
	requests int
	peak     int
	limited  int
}

// globalKey is who a request is charged to: its Authorization header, or
// its client address when it has none.
func globalKey(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		return a
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// admitGlobal refuses a request from a banned client or over its bot's
// global limit, writing Discord's 429; it runs before the route's own
// checks. It reports whether the request was refused for a ban.
func (s *Server) admitGlobal(rq *request) (banned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.global
	now := s.nowLocked()
	if now.Before(g.bannedUntil) {
		g.banned++
		rq.banned(g.bannedUntil.Sub(now))
		return true
	}
	if isInteractionCallback(rq.r) {
		// "Interaction endpoints are not bound to the bot's Global Rate
		// Limit" (Discord's rate-limit documentation).
		return false
	}
	if g.bots == nil {
		g.bots = map[string]*botUsage{}
	}
	key := globalKey(rq.r)
	b := g.bots[key]
	if b == nil {
		limit, span := s.opts.Global.Limit, s.opts.Global.Window
		if limit < 0 {
			limit = math.MaxInt // not enforced, but the peak is still kept
		}
		b = &botUsage{win: window{limit: limit, span: span}}
		g.bots[key] = b
	}
	b.requests++
	b.win.prune(now)
	if ra := b.win.retryAfter(now); ra > 0 {
		b.limited++
		rq.globalTooMany(ra)
		return false
	}
	b.win.times = append(b.win.times, now)
	b.peak = max(b.peak, len(b.win.times))
	return false
}

// countInvalidLocked counts the request's answer against the invalid
// request limit, starting a ban past it.
func (s *Server) countInvalidLocked(rq *request) {
	l := s.opts.Global
	if l.InvalidLimit < 0 {
		return
	}
	switch rq.call.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
	case http.StatusTooManyRequests:
		if rq.w.Header().Get("X-RateLimit-Scope") == "shared" {
			return
		}
	default:
		return
	}
	g := &s.global
	now := s.nowLocked()
	g.invalidSeen++
	g.invalid.limit, g.invalid.span = l.InvalidLimit, l.InvalidWindow
	g.invalid.prune(now)
	g.invalid.times = append(g.invalid.times, now)
	if len(g.invalid.times) >= g.invalid.limit {
		g.bans++
		g.bannedUntil = now.Add(l.BanDuration)
		g.invalid.times = nil
		s.log.Warn("invalid requests past the limit: every request is refused for a while",
			"invalid", l.InvalidLimit, "window", l.InvalidWindow, "ban", l.BanDuration)
	}
}

// GlobalStats returns what the per-bot limits saw of the fake's bot token.
func (s *Server) GlobalStats() GlobalStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.global
	st := GlobalStats{Invalid: g.invalidSeen, Bans: g.bans, Banned: g.banned}
	if b := g.bots["Bot "+s.opts.Token]; b != nil {
		st.Requests, st.Peak, st.Limited = b.requests, b.peak, b.limited
	}
	return st
}

// Banned reports whether the fake refuses every request for now, because
// of too many invalid requests.
func (s *Server) Banned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked().Before(s.global.bannedUntil)
}

// globalTooMany writes Discord's answer to a request over the global limit.
func (rq *request) globalTooMany(retryAfter time.Duration) {
	hd := rq.w.Header()
	hd.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	hd.Set("X-RateLimit-Global", "true")
	hd.Set("X-RateLimit-Scope", "global")
	rq.writeJSON(http.StatusTooManyRequests, wireRateLimit{
		Message:    "You are being rate limited.",
		RetryAfter: math.Round(retryAfter.Seconds()*1000) / 1000,
		Global:     true,
	})
}

// banned writes the answer to a banned client: a 429 that no rate-limit
// header describes, with the time left as retry_after.
func (rq *request) banned(left time.Duration) {
	rq.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(left.Seconds()))))
	rq.writeJSON(http.StatusTooManyRequests, wireBanned{
		Message:    bannedMessage,
		RetryAfter: math.Round(left.Seconds()*1000) / 1000,
	})
}

type wireBanned struct {
	Code       int     `json:"code"`
	Message    string  `json:"message"`
	RetryAfter float64 `json:"retry_after"`
}

// isInteractionCallback reports whether r answers an interaction
// (POST /interactions/{id}/{token}/callback).
func isInteractionCallback(r *http.Request) bool {
	return strings.Contains(r.URL.Path, "/interactions/") && strings.HasSuffix(r.URL.Path, "/callback")
}
