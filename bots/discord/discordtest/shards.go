package discordtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Sharding, as Discord documents it (docs.discord.com/developers/topics/
// gateway, "Sharding" and "Identifying"). A gateway session identifies
// with shard [id, total] (none means [0, 1]) and receives the events of
// the guilds whose (guild_id >> 22) % total is id; DMs, and interactions
// outside guilds, come on shard 0. Several sessions may identify the same
// shard: each receives its events. The gateway refuses:
//
//   - a shard with id < 0, total < 1 or id ≥ total: close 4010 Invalid
//     Shard;
//   - a session that would serve more than Options.GuildsPerShard guilds
//     (Discord's 2500), sharded or not: close 4011 Sharding Required;
//   - with Options.IdentifyWindow set, a second IDENTIFY in one bucket
//     (shard id % max_concurrency) within the window: Invalid Session
//     (op 9, d false), which is what Discord answers an app that
//     identifies faster than max_concurrency allows; the connection stays
//     open for the client to identify again later;
//   - an IDENTIFY when the session start limit is spent: Discord then
//     ends every session and resets the token; the fake closes every
//     gateway connection, this one included, with 4004 Authentication
//     Failed.
//
// GET /gateway/bot reports Options.Shards as the recommended count and
// the session start limit as it stands; each accepted IDENTIFY takes one
// session start, RESUMEs none.

// DefaultGuildsPerShard is the most guilds Discord lets one gateway
// session serve.
const DefaultGuildsPerShard = 2500

// SessionStartLimit is GET /gateway/bot's session_start_limit, which the
// fake enforces.
type SessionStartLimit struct {
	// Total is the number of session starts (accepted IDENTIFYs) allowed
	// per period; default 1000.
	Total int
	// Remaining is the number left in the current period; default Total.
	Remaining int
	// ResetAfter is how long after NewServer, on the fake's clock, the
	// period ends and Remaining returns to Total; each later period lasts
	// 24 hours. Default 24h.
	ResetAfter time.Duration
	// MaxConcurrency is the number of identify buckets: IDENTIFYs of
	// shards in different buckets (id % MaxConcurrency) may go together;
	// default 1.
	MaxConcurrency int
}

func (l SessionStartLimit) withDefaults() SessionStartLimit {
	if l.Total <= 0 {
		l.Total = 1000
	}
	if l.Remaining <= 0 || l.Remaining > l.Total {
		l.Remaining = l.Total
	}
	if l.ResetAfter <= 0 {
		l.ResetAfter = 24 * time.Hour
	}
	if l.MaxConcurrency <= 0 {
		l.MaxConcurrency = 1
	}
	return l
}

// startPeriod is how long a session start limit period lasts after the
// first.
const startPeriod = 24 * time.Hour

// Identify is one IDENTIFY the gateway received, as Identifies lists it.
type Identify struct {
	// Time is when it arrived, on the fake's clock.
	Time time.Time
	// Shard is [id, total] as sent; [0, 1] when the IDENTIFY had none.
	Shard [2]int
	// Sharded is set when the IDENTIFY carried a shard.
	Sharded bool
	// InvalidSession is set when it came too soon after another in its
	// bucket and was answered with Invalid Session (op 9).
	InvalidSession bool
	// CloseCode is the close code it was refused with (4004, 4010, 4011);
	// zero when accepted or answered with Invalid Session.
	CloseCode int
}

// Accepted reports whether the IDENTIFY started a session (READY).
func (i Identify) Accepted() bool { return !i.InvalidSession && i.CloseCode == 0 }

// starts is the state of the session start limit; guarded by Server.mu.
type starts struct {
	remaining  int
	resetAt    time.Time
	last       map[int]time.Time // bucket → the last accepted IDENTIFY
	identifies []Identify
}

// refreshStartsLocked starts a new period of the session start limit
// when the current one has ended.
func (s *Server) refreshStartsLocked(now time.Time) {
	for !now.Before(s.starts.resetAt) {
		s.starts.remaining = s.opts.SessionStartLimit.Total
		s.starts.resetAt = s.starts.resetAt.Add(startPeriod)
	}
}

// SessionStarts returns the session start limit as GET /gateway/bot
// reports it now.
func (s *Server) SessionStarts() SessionStartLimit {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.refreshStartsLocked(now)
	l := s.opts.SessionStartLimit
	l.Remaining = s.starts.remaining
	l.ResetAfter = s.starts.resetAt.Sub(now)
	return l
}

// Identifies lists the IDENTIFYs the gateway received, oldest first.
func (s *Server) Identifies() []Identify {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.starts.identifies)
}

func (s *Server) getGatewayBot(rq *request) {
	l := s.SessionStarts()
	rq.writeJSON(http.StatusOK, map[string]any{
		"url":    s.gatewayURL(),
		"shards": s.opts.Shards,
		"session_start_limit": map[string]int64{
			"total": int64(l.Total), "remaining": int64(l.Remaining),
			"reset_after": l.ResetAfter.Milliseconds(), "max_concurrency": int64(l.MaxConcurrency),
		},
	})
}

func (s *Server) gatewayURL() string { return "ws" + strings.TrimPrefix(s.http.URL, "http") + "/ws" }

// shardOf is the shard, of total, that receives the events of guildID;
// DMs ("") go to shard 0.
func shardOf(guildID string, total int) int {
	if guildID == "" || total <= 1 {
		return 0
	}
	id, _ := strconv.ParseUint(guildID, 10, 64)
	return int((id >> 22) % uint64(total))
}

// ShardOf is the shard, of total, that receives the events of guildID,
// by Discord's formula (guild_id >> 22) % total; DMs ("") go to shard 0.
func ShardOf(guildID string, total int) int { return shardOf(guildID, total) }

// handles reports whether the session receives the events of guildID
// ("" for DMs and events outside guilds).
func (g *gwSession) handles(guildID string) bool {
	return shardOf(guildID, g.shard[1]) == g.shard[0]
}

// identifyRequest is an IDENTIFY's payload as the fake reads it.
type identifyRequest struct {
	Token   string  `json:"token"`
	Intents int64   `json:"intents"`
	Shard   *[2]int `json:"shard"`
}

// admitIdentify decides an IDENTIFY and records it. It returns the close
// code to refuse it with, or invalid for an Invalid Session answer; both
// zero admit it (and spend one session start). exhausted is set when the
// limit is spent: every gateway connection is then to be closed.
func (s *Server) admitIdentify(id identifyRequest) (code int, reason string, invalid, exhausted bool) {
	rec := Identify{Shard: [2]int{0, 1}}
	if id.Shard != nil {
		rec.Shard, rec.Sharded = *id.Shard, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	rec.Time = now
	defer func() {
		rec.InvalidSession, rec.CloseCode = invalid, code
		s.starts.identifies = append(s.starts.identifies, rec)
		s.notifyLocked()
	}()
	shard, total := rec.Shard[0], rec.Shard[1]
	switch {
	case !s.validToken(id.Token):
		return 4004, "Authentication failed.", false, false
	case total < 1 || shard < 0 || shard >= total:
		return 4010, "Invalid shard.", false, false
	}
	guilds := 0
	for _, gid := range s.guildOrder {
		if s.guilds[gid].hasBot(s.bot.ID) && shardOf(gid, total) == shard {
			guilds++
		}
	}
	if guilds > s.opts.GuildsPerShard {
		return 4011, "Sharding required.", false, false
	}
	bucket := shard % s.opts.SessionStartLimit.MaxConcurrency
	if last, ok := s.starts.last[bucket]; ok && s.opts.IdentifyWindow > 0 && now.Sub(last) < s.opts.IdentifyWindow {
		return 0, "", true, false
	}
	s.refreshStartsLocked(now)
	if s.starts.remaining <= 0 {
		return 4004, "Authentication failed.", false, true
	}
	s.starts.remaining--
	s.starts.last[bucket] = now
	return 0, "", false, false
}

// closeAll closes every gateway connection with code, as Discord ends
// every session of a bot whose session start limit is spent.
func (s *Server) closeAll(code int, reason string) {
	s.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		c.Close()
	}
}

// invalidSession is the Invalid Session frame for an IDENTIFY that came
// too soon: not resumable.
var invalidSession, _ = json.Marshal(map[string]any{"op": opInvalidSession, "d": false})
