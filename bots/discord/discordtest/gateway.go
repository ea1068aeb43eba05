package discordtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway opcodes.
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatAck   = 11
)

// Gateway intents the fake honours.
const (
	IntentGuilds         int64 = 1 << 0
	IntentGuildMessages  int64 = 1 << 9
	IntentDirectMessages int64 = 1 << 12
	IntentMessageContent int64 = 1 << 15
)

// backlogSize is how many dispatched events a session keeps for RESUME.
const backlogSize = 1000

// writeTimeout bounds one gateway frame write.
const writeTimeout = 10 * time.Second

// GatewaySession describes a gateway session opened with IDENTIFY.
type GatewaySession struct {
	ID      string
	Intents int64
	// Shard is the [id, total] the session identified with; [0, 1] when
	// it sent none.
	Shard [2]int
	// Connected is true while a websocket is attached to the session.
	Connected bool
	// Resumes counts successful RESUMEs.
	Resumes int
}

type gwSession struct {
	id      string
	intents int64
	shard   [2]int // [id, total]; set at IDENTIFY, never changed
	// active is the websocket last attached, nil once it closed; resumes
	// counts RESUMEs. Both are guarded by Server.mu. Lock order: wmu, then
	// Server.mu.
	active  *websocket.Conn
	resumes int

	wmu     sync.Mutex
	conn    *websocket.Conn // nil while disconnected
	seq     int64
	backlog []backlogEntry
}

type backlogEntry struct {
	seq   int64
	frame []byte
}

// send writes one dispatch to the session, assigning its sequence number;
// while disconnected the event only goes to the backlog. It reports
// whether the event was written to a connection.
func (g *gwSession) send(t string, d any) bool {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	return g.sendLocked(t, d)
}

func (g *gwSession) sendLocked(t string, d any) bool {
	raw, err := json.Marshal(d)
	if err != nil {
		return false
	}
	g.seq++
	seq := g.seq
	frame, _ := json.Marshal(gatewayFrame{Op: opDispatch, D: raw, S: &seq, T: &t})
	g.backlog = append(g.backlog, backlogEntry{seq, frame})
	if len(g.backlog) > backlogSize {
		g.backlog = slices.Delete(g.backlog, 0, len(g.backlog)-backlogSize)
	}
	if g.conn == nil {
		return false
	}
	g.writeLocked(frame)
	return g.conn != nil
}

func (g *gwSession) writeLocked(frame []byte) {
	g.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := g.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		g.conn.Close()
		g.conn = nil
	}
}

// GatewaySessions lists the sessions opened so far.
func (s *Server) GatewaySessions() []GatewaySession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GatewaySession, 0, len(s.sessions))
	for _, g := range s.sessions {
		out = append(out, g.describe())
	}
	slices.SortFunc(out, func(a, b GatewaySession) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (g *gwSession) describe() GatewaySession {
	return GatewaySession{ID: g.id, Intents: g.intents, Shard: g.shard, Connected: g.active != nil, Resumes: g.resumes}
}

// WaitGateway waits until some gateway session satisfies pred and returns
// it.
func (s *Server) WaitGateway(ctx context.Context, pred func(GatewaySession) bool) (GatewaySession, error) {
	var got GatewaySession
	err := s.wait(ctx, func() bool {
		for _, g := range s.GatewaySessions() {
			if pred(g) {
				got = g
				return true
			}
		}
		return false
	})
	return got, err
}

// WaitSessions waits until the gateway sessions, as GatewaySessions lists
// them, satisfy pred, and returns them.
func (s *Server) WaitSessions(ctx context.Context, pred func([]GatewaySession) bool) ([]GatewaySession, error) {
	var got []GatewaySession
	err := s.wait(ctx, func() bool {
		got = s.GatewaySessions()
		return pred(got)
	})
	return got, err
}

// WaitConnected waits until a gateway session is identified (READY sent) or
// resumed and connected, and returns it.
func (s *Server) WaitConnected(ctx context.Context) (GatewaySession, error) {
	return s.WaitGateway(ctx, func(g GatewaySession) bool { return g.Connected })
}

// DropConnections closes every gateway websocket without a close frame, as
// a network failure would. Sessions stay resumable.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.UnderlyingConn().Close()
	}
}

// dispatch sends an event of guildID ("" for DMs and events outside
// guilds) to every session of the guild's shard (shards.go).
func (s *Server) dispatch(guildID, t string, d any) {
	for _, g := range s.sessionList() {
		if g.handles(guildID) {
			g.send(t, d)
		}
	}
}

func (s *Server) sessionList() []*gwSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*gwSession, 0, len(s.sessions))
	for _, g := range s.sessions {
		out = append(out, g)
	}
	return out
}

// dispatchMessage sends MESSAGE_CREATE or MESSAGE_UPDATE to the sessions
// of the message's shard whose intents cover the message (GUILD_MESSAGES for guild channels,
// DIRECT_MESSAGES for DMs). Sessions without MESSAGE_CONTENT receive empty
// content, embeds, components and attachments unless the message is a DM,
// mentions the bot, or is the bot's own.
func (s *Server) dispatchMessage(t string, w *wireMessage, byBot bool) {
	need := IntentGuildMessages
	if w.GuildID == "" {
		need = IntentDirectMessages
	}
	visible := byBot || w.GuildID == ""
	for _, u := range w.Mentions {
		if u.ID == s.appID {
			visible = true
		}
	}
	redacted := *w
	redacted.Content = ""
	redacted.Embeds = json.RawMessage("[]")
	redacted.Components = json.RawMessage("[]")
	redacted.Attachments = []*wireAttachment{}
	delivered := 0
	for _, g := range s.sessionList() {
		var sent bool
		switch {
		case !g.handles(w.GuildID) || g.intents&need == 0:
		case visible || g.intents&IntentMessageContent != 0:
			sent = g.send(t, w)
		default:
			sent = g.send(t, &redacted)
		}
		if sent {
			delivered++
		}
	}
	if t == "MESSAGE_CREATE" {
		s.mu.Lock()
		s.delivered[w.ID] += delivered
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// Delivered is the number of gateway connections the MESSAGE_CREATE of a
// message was written to: zero when no session of its shard (with the
// intents it needs) was connected, as when the bot's connection to that
// shard was closed. Discord does not deliver such an event later.
func (s *Server) Delivered(messageID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[messageID]
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveGateway runs one gateway websocket connection.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.conns[conn] = struct{}{}
	s.mu.Unlock()

	var sess *gwSession
	defer func() {
		if sess != nil {
			sess.wmu.Lock()
			if sess.conn == conn {
				sess.conn = nil
			}
			sess.wmu.Unlock()
		}
		s.mu.Lock()
		delete(s.conns, conn)
		if sess != nil && sess.active == conn {
			sess.active = nil
		}
		s.notifyLocked()
		s.mu.Unlock()
		conn.Close()
	}()

	var wmu sync.Mutex // guards writes before a session owns the conn
	write := func(v any) error {
		b, _ := json.Marshal(v)
		if sess != nil {
			sess.wmu.Lock()
			defer sess.wmu.Unlock()
		} else {
			wmu.Lock()
			defer wmu.Unlock()
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	hello := map[string]any{"op": opHello, "d": map[string]int64{"heartbeat_interval": s.opts.HeartbeatInterval.Milliseconds()}}
	if write(hello) != nil {
		return
	}
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var f gatewayFrame
		if json.Unmarshal(data, &f) != nil {
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4002, "Error while decoding payload."), time.Now().Add(time.Second))
			return
		}
		switch f.Op {
		case opHeartbeat:
			if write(map[string]any{"op": opHeartbeatAck}) != nil {
				return
			}
		case opIdentify:
			if sess != nil {
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4005, "Already authenticated."), time.Now().Add(time.Second))
				return
			}
			var id identifyRequest
			json.Unmarshal(f.D, &id)
			code, reason, invalid, exhausted := s.admitIdentify(id) // shards.go
			switch {
			case exhausted:
				s.closeAll(code, reason)
				return
			case code != 0:
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
				return
			case invalid:
				if write(json.RawMessage(invalidSession)) != nil {
					return
				}
				continue
			}
			shard := [2]int{0, 1}
			if id.Shard != nil {
				shard = *id.Shard
			}
			sess = s.identify(conn, id.Intents, shard, id.Shard != nil)
		case opResume:
			if sess != nil {
				continue
			}
			var rs struct {
				Token     string `json:"token"`
				SessionID string `json:"session_id"`
				Seq       int64  `json:"seq"`
			}
			json.Unmarshal(f.D, &rs)
			if sess = s.resume(conn, rs.Token, rs.SessionID, rs.Seq); sess == nil {
				if write(map[string]any{"op": opInvalidSession, "d": false}) != nil {
					return
				}
			}
		}
	}
}

func (s *Server) validToken(tok string) bool {
	return tok == "Bot "+s.opts.Token || tok == s.opts.Token
}

// identify creates a session for conn and sends READY and one
// GUILD_CREATE per guild of its shard.
func (s *Server) identify(conn *websocket.Conn, intents int64, shard [2]int, sharded bool) *gwSession {
	g := &gwSession{id: newSessionID(), intents: intents, shard: shard}
	// Holding g.wmu while registering the session makes any event
	// dispatched meanwhile wait for READY, so it arrives after it.
	g.wmu.Lock()
	defer g.wmu.Unlock()
	s.mu.Lock()
	ready := map[string]any{
		"v":                  9,
		"user":               s.bot.wire(),
		"session_id":         g.id,
		"resume_gateway_url": s.gatewayURL(),
		"application":        map[string]any{"id": s.appID, "flags": 0},
		"private_channels":   []any{},
	}
	if sharded {
		ready["shard"] = shard
	}
	var guilds []*wireGuild
	unavailable := []map[string]any{}
	for _, id := range s.guildOrder {
		if !s.guilds[id].hasBot(s.bot.ID) || !g.handles(id) {
			continue
		}
		unavailable = append(unavailable, map[string]any{"id": id, "unavailable": true})
		if intents&IntentGuilds != 0 {
			guilds = append(guilds, s.wireGuildLocked(s.guilds[id]))
		}
	}
	ready["guilds"] = unavailable
	g.active = conn
	s.sessions[g.id] = g
	s.notifyLocked()
	s.mu.Unlock()

	g.conn = conn
	g.sendLocked("READY", ready)
	for _, wg := range guilds {
		g.sendLocked("GUILD_CREATE", wg)
	}
	s.log.Debug("gateway identified", slog.String("session", g.id), slog.Int64("intents", intents), slog.Any("shard", shard))
	return g
}

// resume reattaches conn to a known session, replays the events after seq
// and sends RESUMED. It returns nil when the session cannot be resumed.
func (s *Server) resume(conn *websocket.Conn, token, sessionID string, seq int64) *gwSession {
	if !s.validToken(token) {
		return nil
	}
	s.mu.Lock()
	g := s.sessions[sessionID]
	s.mu.Unlock()
	if g == nil {
		return nil
	}
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if len(g.backlog) > 0 && g.backlog[0].seq > seq+1 {
		return nil // events were lost
	}
	if g.conn != nil && g.conn != conn {
		g.conn.Close()
	}
	g.conn = conn
	for _, e := range g.backlog {
		if e.seq > seq && g.conn != nil {
			g.writeLocked(e.frame)
		}
	}
	g.sendLocked("RESUMED", map[string]any{})
	s.mu.Lock()
	g.active = conn
	g.resumes++
	s.notifyLocked()
	s.mu.Unlock()
	return g
}
