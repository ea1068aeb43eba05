package discordtest

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure a Server. Zero fields take the defaults noted.
type Options struct {
	// Token is the bot token the fake accepts; default "fake-bot-token".
	// Clients send it as "Authorization: Bot <token>".
	Token string
	// BotName is the bot user's username; default "palaver".
	BotName string
	// MessageLimit message creates and edits are allowed per channel in any
	// MessageWindow (a sliding window); defaults 5 and 5s. A negative
	// MessageLimit disables the limit.
	MessageLimit  int
	MessageWindow time.Duration
	// WebhookLimit requests are allowed per interaction webhook token in
	// any WebhookWindow; defaults 5 and 2s. Negative disables.
	WebhookLimit  int
	WebhookWindow time.Duration
	// InteractionDeadline is how long after dispatch an interaction's first
	// response is accepted; default 3s.
	InteractionDeadline time.Duration
	// InteractionTokenTTL is how long an interaction token works for
	// webhook calls; default 15m.
	InteractionTokenTTL time.Duration
	// HeartbeatInterval is sent in HELLO; default 41.25s.
	HeartbeatInterval time.Duration
	// Now is the fake's clock, used for token deadlines, rate-limit windows
	// and timestamps; default time.Now. Advance shifts it further.
	Now func() time.Time
	// NoEcho stops the gateway from dispatching MESSAGE_CREATE,
	// MESSAGE_UPDATE and MESSAGE_DELETE for the bot's own messages, which
	// Discord does send; load tests turn it on to save work.
	NoEcho bool
	// Logger receives the fake's own diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// Global sets the per-bot limits (global.go); the zero value enforces
	// Discord's.
	Global GlobalLimits
	// AttachmentTTL is how long an attachment's signed URL works after the
	// upload, on the fake's clock; default 24h, about what Discord's CDN
	// links last.
	AttachmentTTL time.Duration
	// UserInstall makes the app installable to users as well as to guilds
	// (the Developer Portal's Installation Contexts). Without it, as for a
	// new app on Discord, InstallApp fails and registering a global command
	// whose integration_types include USER_INSTALL (1) is refused.
	UserInstall bool
	// RefuseComponentsV2 makes the fake refuse every message create or
	// edit that sets FlagComponentsV2 (400, 50035), as a server that does
	// not support Components V2 might.
	RefuseComponentsV2 bool
	// Shards is the shard count GET /gateway/bot recommends; default 1.
	// Sessions may identify with any count (shards.go).
	Shards int
	// SessionStartLimit is GET /gateway/bot's session_start_limit, which
	// the gateway enforces (shards.go); zero fields take its defaults.
	SessionStartLimit SessionStartLimit
	// IdentifyWindow, when positive, allows one IDENTIFY per identify
	// bucket (shard id % SessionStartLimit.MaxConcurrency) in any
	// IdentifyWindow, on the fake's clock; one too soon is answered with
	// Invalid Session (op 9). Discord's window is 5s. Zero enforces
	// nothing, so that tests may restart a bot at once.
	IdentifyWindow time.Duration
	// GuildsPerShard is the most guilds one gateway session may serve;
	// an IDENTIFY whose shard has more is closed with 4011 (Sharding
	// Required). Default DefaultGuildsPerShard.
	GuildsPerShard int
}

func (o *Options) setDefaults() {
	if o.Token == "" {
		o.Token = "fake-bot-token"
	}
	if o.BotName == "" {
		o.BotName = "palaver"
	}
	if o.MessageLimit == 0 {
		o.MessageLimit = 5
	}
	if o.MessageWindow <= 0 {
		o.MessageWindow = 5 * time.Second
	}
	if o.WebhookLimit == 0 {
		o.WebhookLimit = 5
	}
	if o.WebhookWindow <= 0 {
		o.WebhookWindow = 2 * time.Second
	}
	if o.InteractionDeadline <= 0 {
		o.InteractionDeadline = 3 * time.Second
	}
	if o.InteractionTokenTTL <= 0 {
		o.InteractionTokenTTL = 15 * time.Minute
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 41250 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AttachmentTTL <= 0 {
		o.AttachmentTTL = 24 * time.Hour
	}
	o.Global = o.Global.withDefaults(o.MessageWindow)
	if o.Shards <= 0 {
		o.Shards = 1
	}
	o.SessionStartLimit = o.SessionStartLimit.withDefaults()
	if o.GuildsPerShard <= 0 {
		o.GuildsPerShard = DefaultGuildsPerShard
	}
}

// Server is a fake Discord. Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	http     *httptest.Server
	upgrader websocket.Upgrader

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	offset  time.Duration // added to opts.Now by Advance
	lastID  uint64
	closed  bool

	bot          *User
	appID        string
	users        map[string]*User
	guilds       map[string]*guild
	guildOrder   []string
	channels     map[string]*Channel
	dms          map[string]string // user id → DM channel id
	messages     map[string]*Message
	msgOrder     []string
	commands     map[string][]Command // by guild id; "" is global
	interactions map[string]*interaction
	byToken      map[string]*interaction
	calls        []Call
	limits       map[string]*window // "channel:<id>" and "webhook:<token>"
	injected     map[string]*injection
	sessions     map[string]*gwSession
	conns        map[*websocket.Conn]struct{}
	threads      threads                      // threads.go
	global       globalLimits                 // global.go
	attachments  map[string]*storedAttachment // by id (attachments.go)
	downloads    []Download
	installs     map[string]bool // users who installed the app (InstallApp)
	starts       starts          // the session start limit (shards.go)
	delivered    map[string]int  // message id → connections its MESSAGE_CREATE reached
}

// NewServer starts a fake Discord on a loopback port. Close it when done.
func NewServer(opts Options) *Server {
	opts.setDefaults()
	s := &Server{
		opts:         opts,
		log:          opts.Logger.With(slog.String("component", "discordtest")),
		changed:      make(chan struct{}),
		users:        map[string]*User{},
		guilds:       map[string]*guild{},
		channels:     map[string]*Channel{},
		dms:          map[string]string{},
		messages:     map[string]*Message{},
		commands:     map[string][]Command{},
		interactions: map[string]*interaction{},
		byToken:      map[string]*interaction{},
		limits:       map[string]*window{},
		injected:     map[string]*injection{},
		sessions:     map[string]*gwSession{},
		conns:        map[*websocket.Conn]struct{}{},
		attachments:  map[string]*storedAttachment{},
		installs:     map[string]bool{},
		delivered:    map[string]int{},
	}
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.mu.Lock()
	s.starts = starts{remaining: opts.SessionStartLimit.Remaining, last: map[int]time.Time{},
		resetAt: s.nowLocked().Add(opts.SessionStartLimit.ResetAfter)}
	s.appID = s.newIDLocked()
	s.bot = &User{ID: s.appID, Name: opts.BotName, Bot: true}
	s.users[s.bot.ID] = s.bot
	s.mu.Unlock()

	s.http = httptest.NewServer(s.routes())
	return s
}

// URL is the fake's base URL ("http://127.0.0.1:port"), the value for
// discord.api_base.
func (s *Server) URL() string { return s.http.URL }

// Token is the bot token the fake accepts, without the "Bot " prefix.
func (s *Server) Token() string { return s.opts.Token }

// AppID is the application id, which is also the bot user's id.
func (s *Server) AppID() string { return s.appID }

// BotUser is the bot's user.
func (s *Server) BotUser() User { return *s.bot }

// Close disconnects every gateway connection and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := make([]*websocket.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	s.http.Close()
}

// Now is the fake's current time: Options.Now plus every Advance.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Server) nowLocked() time.Time { return s.opts.Now().Add(s.offset) }

// Advance moves the fake's clock forward by d, so that tests can expire
// interaction tokens or rate-limit windows without waiting.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.notifyLocked()
	s.mu.Unlock()
}

// discordEpoch is the start of Discord's snowflake clock, 2015-01-01 UTC.
const discordEpoch = 1420070400000

// newIDLocked returns a fresh snowflake: the fake's clock in its top bits,
// strictly increasing.
func (s *Server) newIDLocked() string {
	ms := s.nowLocked().UnixMilli() - discordEpoch
	id := uint64(max(ms, 0)) << 22
	if id <= s.lastID {
		id = s.lastID + 1
	}
	s.lastID = id
	return formatUint(id)
}

// notifyLocked wakes every Wait helper.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// request is one REST call being served.
type request struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	body []byte
	call Call
	done bool
}

func (rq *request) writeJSON(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message":"500: Internal Server Error","code":0}`)
	}
	rq.w.Header().Set("Content-Type", "application/json")
	rq.w.WriteHeader(status)
	rq.w.Write(b)
	rq.call.Status = status
	rq.call.Response = b
	rq.done = true
}

func (rq *request) noContent() {
	rq.w.WriteHeader(http.StatusNoContent)
	rq.call.Status = http.StatusNoContent
	rq.done = true
}

// fail writes a Discord JSON error. errs, when not nil, is the "errors"
// object of a 50035 Invalid Form Body.
func (rq *request) fail(status, code int, msg string, errs any) {
	e := wireError{Code: code, Message: msg}
	if errs != nil {
		e.Errors, _ = json.Marshal(errs)
	}
	rq.writeJSON(status, e)
}

func (rq *request) decode(v any) bool {
	if err := json.Unmarshal(rq.body, v); err != nil {
		rq.fail(http.StatusBadRequest, 50109, "The request body contains invalid JSON.", nil)
		return false
	}
	return true
}

// auth says who may call a route.
type auth int

const (
	authBot  auth = iota // "Authorization: Bot <token>"
	authNone             // webhook and interaction-callback routes
)

// maxBody bounds request bodies; Discord's own limit is larger, but the
// bot sends only JSON.
const maxBody = 1 << 20

// handle registers pattern ("METHOD /api/{v}/path") with h.
func (s *Server) handle(mux *http.ServeMux, pattern string, a auth, h func(*request)) {
	method, path, _ := strings.Cut(pattern, " ")
	route := strings.TrimPrefix(path, "/api/{v}")
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rq := &request{s: s, w: w, r: r, call: Call{
			Time:   s.Now(),
			Method: method,
			Route:  route,
			Path:   r.URL.Path,
		}}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			rq.fail(http.StatusBadRequest, 0, "could not read body", nil)
		}
		rq.body = body
		rq.call.Body = body
		banned := !rq.done && s.admitGlobal(rq) // global.go
		if v := r.PathValue("v"); !rq.done && v != "v9" && v != "v10" {
			rq.fail(http.StatusNotFound, 0, "404: Not Found", nil)
		}
		if !rq.done && a == authBot && r.Header.Get("Authorization") != "Bot "+s.opts.Token {
			rq.fail(http.StatusUnauthorized, 0, "401: Unauthorized", nil)
		}
		if !rq.done {
			s.refuseDeletedChannel(rq)
		}
		if !rq.done && a == authBot {
			s.refuseNoAccess(rq)
		}
		if !rq.done {
			h(rq)
		}
		if !rq.done {
			rq.noContent()
		}
		s.mu.Lock()
		s.calls = append(s.calls, rq.call)
		if !banned {
			s.countInvalidLocked(rq)
		}
		s.notifyLocked()
		s.mu.Unlock()
	})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, a auth, f func(*request)) { s.handle(mux, pattern, a, f) }

	h("GET /api/{v}/gateway", authNone, s.getGateway)
	h("GET /api/{v}/gateway/bot", authBot, s.getGatewayBot) // shards.go
	h("GET /api/{v}/users/{user}", authBot, s.getUser)

	h("GET /api/{v}/channels/{channel}", authBot, s.getChannel)
	h("GET /api/{v}/channels/{channel}/messages/{message}", authBot, s.getMessage)
	h("GET /api/{v}/channels/{channel}/messages", authBot, s.listMessages)
	h("POST /api/{v}/channels/{channel}/messages", authBot, s.createMessage)
	h("PATCH /api/{v}/channels/{channel}/messages/{message}", authBot, s.editMessage)
	h("DELETE /api/{v}/channels/{channel}/messages/{message}", authBot, s.deleteMessage)
	h("POST /api/{v}/channels/{channel}/typing", authBot, s.typing)
	h("POST /api/{v}/channels/{channel}/messages/{message}/threads", authBot, s.startThreadFromMessage)
	h("POST /api/{v}/channels/{channel}/threads", authBot, s.startThreadWithoutMessage)

	h("GET /api/{v}/guilds/{guild}", authBot, s.getGuild)
	h("GET /api/{v}/guilds/{guild}/roles", authBot, s.getRoles)
	h("GET /api/{v}/guilds/{guild}/members/{user}", authBot, s.getMember)

	h("GET /api/{v}/applications/{app}/commands", authBot, s.getCommands)
	h("PUT /api/{v}/applications/{app}/commands", authBot, s.putCommands)
	h("GET /api/{v}/applications/{app}/guilds/{guild}/commands", authBot, s.getCommands)
	h("PUT /api/{v}/applications/{app}/guilds/{guild}/commands", authBot, s.putCommands)

	h("POST /api/{v}/interactions/{id}/{token}/callback", authNone, s.interactionCallback)
	h("POST /api/{v}/webhooks/{app}/{token}", authNone, s.webhookExecute)
	h("GET /api/{v}/webhooks/{app}/{token}/messages/{message}", authNone, s.webhookGet)
	h("PATCH /api/{v}/webhooks/{app}/{token}/messages/{message}", authNone, s.webhookEdit)
	h("DELETE /api/{v}/webhooks/{app}/{token}/messages/{message}", authNone, s.webhookDelete)

	// Discord's CDN (cdn.discordapp.com, media.discordapp.net), here on
	// the same host.
	mux.HandleFunc("GET /attachments/{channel}/{attachment}/{filename}", s.serveAttachment)
	mux.HandleFunc("GET /ws/", s.serveGateway)
	mux.HandleFunc("GET /ws", s.serveGateway)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message": "404: Not Found", "code": 0}`)
	})
	return mux
}

func (s *Server) getGateway(rq *request) {
	rq.writeJSON(http.StatusOK, map[string]any{"url": s.gatewayURL()})
}
