// Package telegramtest is a fake Telegram Bot API server for tests, demos
// and load tests. It speaks the real wire protocol over HTTP (form-encoded
// or JSON requests, {"ok":…} answers), so a real client library such as
// telegram-bot-api/v5 talks to it unchanged:
//
//	srv := telegramtest.NewServer(telegramtest.Options{})
//	defer srv.Close()
//	bot, err := tgbotapi.NewBotAPIWithAPIEndpoint(srv.Token(), srv.Endpoint())
//
// It enforces what Telegram enforces, with Telegram's error descriptions:
// text length and HTML validity, "message is not modified", missing
// messages, flood limits (429 with retry_after), migrated groups, drafts only
// in private chats, the 20 MB limit of getFile, the rich messages of Bot
// API 10.1 and their limits (sendRichMessage, sendRichMessageDraft,
// editMessageText with rich_message; see rich.go), the Stop button of
// drafts sent with can_stop (Bot API 10.3) and allowed_updates. A server
// older than 10.1 is one option away (NoRichMethods). Webhooks work as on
// Telegram (setWebhook, deleteWebhook, getWebhookInfo; see webhook.go):
// queued updates are POSTed to the webhook with the secret token header,
// one at a time per chat, and sent again with backoff until it answers
// 2xx; getUpdates is refused with 409 while a webhook is set. Tests push updates
// (SendText, SendPhoto, SendAlbum, SendVoice, PressButton,
// StopGeneration, …), inspect the resulting state (Messages, Drafts, Calls,
// Downloads) and wait for it (WaitFor, WaitMessage) instead of sleeping. Users' files are served as
// Telegram serves them: getFile gives a file_path, and
// GET /file/bot<token>/<file_path> the bytes.
package telegramtest

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is a usable default.
type Options struct {
	// Token is the bot token the server accepts; default
	// "123456789:TEST-fake-token".
	Token string
	// Bot is the bot's own user, answered by getMe; default id 123456789,
	// username "palaver_bot".
	Bot User
	// Now is the clock for message dates and flood limits; default
	// time.Now. Tests of flood limits inject a clock they advance.
	Now func() time.Time
	// Flood sets the flood limits; the zero value enforces Telegram's.
	Flood FloodLimits
	// MaxPollTimeout caps the timeout a getUpdates call may wait; default
	// 50 s, Telegram's own cap.
	MaxPollTimeout time.Duration
	// RefuseDrafts makes every sendMessageDraft and sendRichMessageDraft
	// fail (see SetRefuseDrafts).
	RefuseDrafts bool
	// NoRichMethods models a Bot API server older than 10.1 (see
	// SetRichMethods): sendRichMessage and sendRichMessageDraft answer 404
	// "Not Found: method not found", and editMessageText ignores
	// rich_message.
	NoRichMethods bool
	// MaxDownload is the largest file getFile serves; larger files get
	// 400 "Bad Request: file is too big". Default DefaultMaxDownload
	// (the Bot API's 20 MB); negative means no limit, as on a server
	// started with --local.
	MaxDownload int64
	// LocalDir makes getFile answer as a Bot API server started with
	// --local --dir=LocalDir: file_path is the absolute path
	// LocalDir/<token>/<type>/file_N.ext, and getFile writes the file
	// there, as such a server keeps its files on its own disk. The file
	// endpoint still serves <type>/file_N.ext, as a web server in front
	// of that directory does.
	LocalDir string
	// LocalRemote, with LocalDir, writes no file: the server's disk is
	// another machine's (or container's), as the bot sees it.
	LocalRemote bool
	// WebhookRetry is the unit of the delays between deliveries of an
	// update its webhook refused (any answer but 2xx, or none), standing
	// in for Telegram's second: as Telegram, the first retry goes at once,
	// the next after 2, 4, 8, … units, at most 60; an answer's Retry-After
	// header (whole seconds to Telegram, at most 3600) sets the delay to
	// that many units instead. Default time.Second, Telegram's timing.
	WebhookRetry time.Duration
	// WebhookTimeout bounds one delivery; default 60 s, after which
	// Telegram gives up on a silent webhook.
	WebhookTimeout time.Duration
	// WebhookClient posts updates to the webhook; default a plain client.
	// An https:// webhook on loopback needs one that trusts its
	// certificate (an httptest TLS server's Client).
	WebhookClient *http.Client
}

// Server is a fake Bot API server listening on a loopback port. It is safe
// for concurrent use.
type Server struct {
	srv     *httptest.Server
	token   string
	bot     User
	now     func() time.Time
	maxPoll time.Duration

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	closed    chan struct{}
	closeOnce sync.Once

	chats        map[int64]*chatState
	calls        []Call
	flood        FloodLimits
	refuseDrafts string // description of the refusal; "" accepts drafts
	noRich       bool   // the rich methods are unknown

	updates      []queuedUpdate
	allowed      map[string]bool // the last allowed_updates; nil for every type
	nextUpdateID int
	redeliveries int          // updates returned again by a getUpdates
	delivered    int          // the newest update id a getUpdates returned
	poller       *waitingPoll // the getUpdates call waiting, nil for none

	hook        *webhook           // the webhook set, nil for none
	hookGen     int                // counts setWebhook and deleteWebhook changes
	hookClient  *http.Client       // posts updates to the webhook
	hookRetry   time.Duration      // the unit of redelivery delays
	hookTimeout time.Duration      // bounds one delivery
	hookWG      sync.WaitGroup     // the delivery loop and its requests
	stopHooks   context.CancelFunc // cancels deliveries on Close
	hookCtx     context.Context
	deliveries  []Delivery

	users       map[int64]User   // users seen in pushed updates
	callbacks   map[string]int64 // pending callback query id → chat
	callbackSeq int
	answers     []CallbackAnswer
	commands    map[string][]BotCommand // by scope type

	files       map[string]*storedFile // by file_id
	paths       map[string]*storedFile // by file_path
	fileSeq     int
	albumSeq    int
	downloads   []string // paths asked of the file endpoint
	maxDownload int64    // 0 for no limit
	localDir    string
	localRemote bool
}

// NewServer starts a fake Bot API server.
func NewServer(opts Options) *Server {
	s := &Server{
		token:        opts.Token,
		bot:          opts.Bot,
		now:          opts.Now,
		maxPoll:      opts.MaxPollTimeout,
		changed:      make(chan struct{}),
		closed:       make(chan struct{}),
		chats:        map[int64]*chatState{},
		flood:        opts.Flood.withDefaults(),
		nextUpdateID: 1,
		callbacks:    map[string]int64{},
		users:        map[int64]User{},
		commands:     map[string][]BotCommand{},
		files:        map[string]*storedFile{},
		paths:        map[string]*storedFile{},
		maxDownload:  opts.MaxDownload,
		localDir:     opts.LocalDir,
		localRemote:  opts.LocalRemote,
		noRich:       opts.NoRichMethods,
	}
	switch {
	case s.maxDownload == 0:
		s.maxDownload = DefaultMaxDownload
	case s.maxDownload < 0:
		s.maxDownload = 0
	}
	if s.token == "" {
		s.token = "123456789:TEST-fake-token"
	}
	if s.bot.ID == 0 {
		s.bot = User{ID: 123456789, IsBot: true, FirstName: "Palaver", Username: "palaver_bot", CanJoinGroups: true}
	}
	s.bot.IsBot = true
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxPoll <= 0 {
		s.maxPoll = 50 * time.Second
	}
	if opts.RefuseDrafts {
		s.refuseDrafts = defaultDraftRefusal
	}
	s.hookRetry, s.hookTimeout, s.hookClient = opts.WebhookRetry, opts.WebhookTimeout, opts.WebhookClient
	if s.hookRetry <= 0 {
		s.hookRetry = time.Second
	}
	if s.hookTimeout <= 0 {
		s.hookTimeout = 60 * time.Second
	}
	if s.hookClient == nil {
		s.hookClient = &http.Client{Transport: &http.Transport{}}
	}
	s.hookCtx, s.stopHooks = context.WithCancel(context.Background())
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL is the server's base URL, "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.srv.URL }

// Endpoint is the API endpoint format string that telegram-bot-api's
// NewBotAPIWithAPIEndpoint and Palaver's telegram.api_endpoint take:
// URL()+"/bot%s/%s".
func (s *Server) Endpoint() string { return s.srv.URL + "/bot%s/%s" }

// FileEndpoint is the format string of file downloads, with the token and
// getFile's file_path as its two %s: URL()+"/file/bot%s/%s", as
// https://api.telegram.org/file/bot<token>/<file_path>.
func (s *Server) FileEndpoint() string { return s.srv.URL + "/file/bot%s/%s" }

// Token is the bot token the server accepts.
func (s *Server) Token() string { return s.token }

// Bot is the bot's own user.
func (s *Server) Bot() User { return s.bot }

// Client is an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close ends waiting getUpdates calls (they return no updates) and webhook
// deliveries, and shuts the server down, waiting for requests in progress.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.stopHooks()
	})
	s.srv.Close()
	s.hookWG.Wait()
	s.hookClient.CloseIdleConnections()
}

// notifyLocked wakes everything waiting for a change. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// apiError is an ok:false answer.
type apiError struct {
	code        int
	description string
	retryAfter  int
	migrateTo   int64
}

func badRequest(description string) *apiError {
	return &apiError{code: 400, description: "Bad Request: " + description}
}

// params are a request's parameters as strings.
type params map[string]string

// handler answers one method; it runs with s.mu held.
type handler func(s *Server, ctx context.Context, p params) (any, *apiError)

// lookupMethod returns the handler of a method; Telegram method names are
// case-insensitive.
func lookupMethod(name string) (handler, bool) {
	switch strings.ToLower(name) {
	case "getme":
		return (*Server).getMe, true
	case "sendmessage":
		return (*Server).sendMessage, true
	case "editmessagetext":
		return (*Server).editMessageText, true
	case "editmessagereplymarkup":
		return (*Server).editMessageReplyMarkup, true
	case "deletemessage":
		return (*Server).deleteMessage, true
	case "sendmessagedraft":
		return (*Server).sendMessageDraft, true
	case "sendrichmessage":
		return (*Server).sendRichMessage, true
	case "sendrichmessagedraft":
		return (*Server).sendRichMessageDraft, true
	case "sendchataction":
		return (*Server).sendChatAction, true
	case "setmycommands":
		return (*Server).setMyCommands, true
	case "answercallbackquery":
		return (*Server).answerCallbackQuery, true
	case "getchatmember":
		return (*Server).getChatMember, true
	case "setwebhook":
		return (*Server).setWebhook, true
	case "deletewebhook":
		return (*Server).deleteWebhook, true
	case "getwebhookinfo":
		return (*Server).getWebhookInfo, true
	case "getfile":
		return (*Server).getFile, true
	}
	return nil, false
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/file/bot") {
		s.serveFile(w, r)
		return
	}
	token, method, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/bot"), "/")
	if !ok || !strings.HasPrefix(r.URL.Path, "/bot") {
		writeAnswer(w, nil, &apiError{code: 404, description: "Not Found"})
		return
	}
	if token != s.token {
		writeAnswer(w, nil, &apiError{code: 401, description: "Unauthorized"})
		return
	}
	p, err := readParams(r)
	if err != nil {
		writeAnswer(w, nil, badRequest(err.Error()))
		return
	}
	var result any
	var aerr *apiError
	h, ok := lookupMethod(method)
	switch {
	case strings.EqualFold(method, "getUpdates"):
		result, aerr = s.getUpdates(r.Context(), p) // locks by itself while it waits
	case !ok:
		aerr = methodNotFound()
	default:
		s.mu.Lock()
		result, aerr = h(s, r.Context(), p)
		s.mu.Unlock()
	}
	s.record(method, p, result, aerr)
	writeAnswer(w, result, aerr)
}

// record logs a call.
func (s *Server) record(method string, p params, result any, aerr *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Call{Time: s.now(), Method: method, Params: p, Status: http.StatusOK}
	if m, ok := result.(*wireMessage); ok && m != nil {
		c.MessageID = m.MessageID
	}
	if aerr != nil {
		c.Status, c.ErrorCode, c.Description, c.RetryAfter = aerr.code, aerr.code, aerr.description, aerr.retryAfter
	}
	s.calls = append(s.calls, c)
	s.notifyLocked()
}

func writeAnswer(w http.ResponseWriter, result any, aerr *apiError) {
	w.Header().Set("Content-Type", "application/json")
	if aerr == nil {
		_ = json.NewEncoder(w).Encode(struct {
			OK     bool `json:"ok"`
			Result any  `json:"result"`
		}{true, result})
		return
	}
	type responseParameters struct {
		RetryAfter      int   `json:"retry_after,omitempty"`
		MigrateToChatID int64 `json:"migrate_to_chat_id,omitempty"`
	}
	body := struct {
		OK          bool                `json:"ok"`
		ErrorCode   int                 `json:"error_code"`
		Description string              `json:"description"`
		Parameters  *responseParameters `json:"parameters,omitempty"`
	}{OK: false, ErrorCode: aerr.code, Description: aerr.description}
	if aerr.retryAfter > 0 || aerr.migrateTo != 0 {
		body.Parameters = &responseParameters{RetryAfter: aerr.retryAfter, MigrateToChatID: aerr.migrateTo}
	}
	w.WriteHeader(aerr.code)
	_ = json.NewEncoder(w).Encode(body)
}

// readParams reads the query string and a form, multipart or JSON body.
func readParams(r *http.Request) (params, error) {
	p := params{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var body map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return nil, errors.New("can't parse JSON object")
		}
		for k, raw := range body {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				p[k] = str
			} else {
				p[k] = string(raw)
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			p[k] = v[0]
		}
	default:
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, v := range r.PostForm {
			p[k] = v[0]
		}
	}
	return p, nil
}

// int64Param returns an integer parameter; ok is false when it is absent.
func (p params) int64Param(name string) (v int64, ok bool, aerr *apiError) {
	raw, present := p[name]
	if !present || raw == "" || raw == "null" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return 0, false, badRequest("invalid " + name + " specified")
	}
	return v, true, nil
}

// intParam is int64Param for int-sized values, absent meaning 0.
func (p params) intParam(name string) (int, *apiError) {
	v, _, aerr := p.int64Param(name)
	return int(v), aerr
}

// boolParam reads a boolean parameter.
func (p params) boolParam(name string) bool {
	v, err := strconv.ParseBool(p[name])
	return err == nil && v
}
