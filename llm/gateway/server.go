package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// Defaults for zero Options fields.
const (
	DefaultListen            = "127.0.0.1:8000"
	DefaultMaxBody           = 1 << 20
	DefaultMaxEvent          = 1 << 20
	DefaultMaxStreamsPerKey  = 8
	DefaultRequestsPerMinute = 60 // what the config applies; 0 in Options means unlimited
	DefaultShutdownTimeout   = 10 * time.Second
)

// Options configure a Server. The zero value serves 127.0.0.1:8000 without
// keys and without a request rate limit.
type Options struct {
	// Listen is the TCP address ListenAndServe binds; "" means
	// DefaultListen.
	Listen string
	// APIKeys, when not empty, are the bearer tokens clients must send.
	APIKeys []string
	// AllowAnonymous permits a non-loopback Listen without APIKeys.
	AllowAnonymous bool
	// CORSOrigins are the browser origins allowed to call the API
	// ("https://app.example.com"); "*" allows every origin.
	CORSOrigins []string
	// Aliases are the configured short model names (alias → "provider/model"),
	// listed by GET /v1/models. Resolving them is the Router's job.
	Aliases map[string]string
	// Allowed restricts the models served (models.allowed); empty serves
	// every model the providers list.
	Allowed llm.AllowList
	// Health, when set, answers GET /healthz (palaver run reports its
	// platform connections and store there); nil answers {"status":"ok"}.
	Health http.Handler
	// MaxBody bounds a JSON request body in bytes; 0 means
	// DefaultMaxBody. (A transcription upload is bounded by MaxUpload.)
	MaxBody int64
	// MaxEvent bounds one event of a provider's stream in bytes (its
	// lines and their ends, up to the blank line that ends it); 0 means
	// DefaultMaxEvent. A longer event is neither buffered whole nor
	// relayed: the stream ends with an error event there.
	MaxEvent int
	// MaxStreamsPerKey bounds the requests to providers (chat
	// completions and responses, streamed or not, embeddings,
	// transcriptions) that one key may have in flight; 0 means
	// DefaultMaxStreamsPerKey and a negative value means no bound.
	MaxStreamsPerKey int
	// RequestsPerMinute bounds the requests to providers one key may
	// start per minute (a bucket of that many, refilled evenly); 0 means
	// no bound.
	RequestsPerMinute int
	// ShutdownTimeout is how long Serve lets requests in flight finish
	// once its context ends, before it breaks their connections; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives one line per request; nil means slog.Default().
	Logger *slog.Logger
	// Meter, when set, holds each key to its usage budget and records
	// what its requests used (see Meter); nil records nothing.
	Meter Meter
	// Overhead, when set, is called once for each request that went to a
	// provider, as its response starts, with the route ("chat",
	// "responses", "embeddings" or "transcriptions") and the time Palaver
	// itself added before the response's first byte: the time to first
	// byte less the time spent waiting for the provider (the "palaver"
	// entry of the Server-Timing header). It backs a histogram of added
	// latency, and must be quick and safe for concurrent use.
	Overhead func(route string, d time.Duration)
}

// Server is the gateway's http.Handler. It is safe for concurrent use.
type Server struct {
	opts    Options
	router  *llm.Router
	log     *slog.Logger
	mux     *http.ServeMux
	keys    keyring
	cors    corsPolicy
	limits  *limiter
	guard   *authGuard
	aliases []alias
	// noStreamOptions holds the names of the providers that refused
	// "stream_options" (see sendChat).
	noStreamOptions sync.Map

	// newID and now make response ids and times (randomID and time.Now;
	// tests make them deterministic).
	newID func() string
	now   func() time.Time

	// halt, once cancelled (with errShuttingDown), ends the requests in
	// flight: see Serve.
	halt     context.Context
	haltWith context.CancelCauseFunc
}

// New returns a Server relaying to router's providers. It refuses a
// non-loopback Listen address without APIKeys unless AllowAnonymous is
// set.
func New(opts Options, router *llm.Router) (*Server, error) {
	if router == nil {
		return nil, errors.New("gateway: no router")
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxEvent <= 0 {
		opts.MaxEvent = DefaultMaxEvent
	}
	if opts.MaxStreamsPerKey == 0 {
		opts.MaxStreamsPerKey = DefaultMaxStreamsPerKey
	}
	if opts.RequestsPerMinute < 0 {
		opts.RequestsPerMinute = 0
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	keys, err := newKeyring(opts.APIKeys)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen address %q: %w", opts.Listen, err)
	}
	if err := checkExposure(host, opts.Listen, keys, opts.AllowAnonymous); err != nil {
		return nil, err
	}
	s := &Server{
		opts:    opts,
		router:  router,
		log:     log,
		mux:     http.NewServeMux(),
		keys:    keys,
		cors:    newCORSPolicy(opts.CORSOrigins),
		limits:  newLimiter(opts.RequestsPerMinute, opts.MaxStreamsPerKey),
		guard:   newAuthGuard(),
		aliases: sortedAliases(opts.Aliases),
		newID:   randomID,
		now:     time.Now,
	}
	s.halt, s.haltWith = context.WithCancelCause(context.Background())
	for _, prefix := range []string{"/v1", ""} {
		s.mux.HandleFunc("POST "+prefix+"/chat/completions", s.chat)
		s.mux.HandleFunc("POST "+prefix+"/responses", s.responses)
		s.mux.HandleFunc("POST "+prefix+"/embeddings", s.embeddings)
		s.mux.HandleFunc("POST "+prefix+"/audio/transcriptions", s.transcriptions)
		s.mux.HandleFunc("GET "+prefix+"/models", s.models)
		s.mux.HandleFunc("GET "+prefix+"/models/{id...}", s.model)
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("/", s.notFound)
	return s, nil
}

// Handle mounts handler at pattern (http.ServeMux syntax) on the same
// listener, e.g. "GET /metrics", behind the API's access rule: with
// APIKeys set a request needs one of them, as on /v1 (and counts towards
// the failed-authentication limit); without keys it is open, as the API
// is. It panics, as ServeMux does, on a pattern that conflicts with the
// gateway's routes.
func (s *Server) Handle(pattern string, handler http.Handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(w, r); ok {
			handler.ServeHTTP(w, r)
		}
	})
}

// ServeHTTP serves one request and logs it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := &entry{start: time.Now(), level: slog.LevelInfo, overhead: s.opts.Overhead}
	rec := &recorder{ResponseWriter: w, e: e}
	ctx, cancel := context.WithCancelCause(context.WithValue(r.Context(), entryKey{}, e))
	defer cancel(nil)
	defer context.AfterFunc(s.halt, func() { cancel(errShuttingDown) })()
	r = r.WithContext(ctx)
	if origin := r.Header.Get("Origin"); origin != "" {
		s.cors.annotate(rec.Header(), origin)
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		s.preflight(rec, r)
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	s.logRequest(r, rec, e)
}

// ListenAndServe listens on Options.Listen and serves until ctx ends (see
// Serve).
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then stops accepting connections and
// lets requests in flight finish for up to Options.ShutdownTimeout. Those
// still running then are ended the way a client expects: a stream gets an
// error event ("server_shutting_down") and [DONE], a request not yet
// answered gets a 503 with that error; their upstream requests stop. It
// returns nil after a shutdown caused by ctx, and refuses, like New, a
// non-loopback TCP listener without keys unless AllowAnonymous is set.
// Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if addr, ok := ln.Addr().(*net.TCPAddr); ok {
		if err := checkExposure(addr.IP.String(), addr.String(), s.keys, s.opts.AllowAnonymous); err != nil {
			ln.Close()
			return err
		}
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// The chat handler lifts both deadlines once it has read the
		// body: answers may take minutes.
		ReadTimeout:  time.Minute,
		WriteTimeout: 2 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	s.log.LogAttrs(ctx, slog.LevelInfo, "listening", slog.String("url", "http://"+ln.Addr().String()+"/v1"))
	select {
	case err := <-done:
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "answers still in flight after the shutdown timeout; ending them",
			slog.Duration("timeout", s.opts.ShutdownTimeout))
		s.haltWith(errShuttingDown)
		// The handlers now write their last event and return.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), haltWait)
		defer cancel()
		if err := hs.Shutdown(lctx); err != nil {
			hs.Close()
		}
	}
	<-done
	return nil
}

// haltWait bounds the wait for the handlers ended at shutdown to write
// their last event.
const haltWait = 2 * time.Second

// checkExposure refuses to serve a non-loopback host without keys unless
// anonymous access was allowed.
func checkExposure(host, addr string, keys keyring, allowAnonymous bool) error {
	if len(keys) > 0 || allowAnonymous || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("gateway: refusing to listen on %s without API keys: anyone who can reach it could use "+
		"your providers; set gateway.api_keys, bind a loopback address such as 127.0.0.1:8000, "+
		"or set gateway.allow_anonymous: true to allow it", addr)
}

// isLoopback reports whether host names only the loopback interface. An
// empty host (every interface) and host names other than "localhost" are
// not loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	entryFrom(r).level = slog.LevelDebug
	if s.opts.Health != nil {
		s.opts.Health.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, newError(http.StatusNotFound, typeInvalidRequest, "not_found",
		"no route for %s %s; this server serves POST /v1/chat/completions, POST /v1/responses, POST /v1/embeddings, "+
			"POST /v1/audio/transcriptions, GET /v1/models and GET /v1/models/{model}", r.Method, r.URL.Path))
}
