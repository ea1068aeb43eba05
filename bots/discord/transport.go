package discord

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
)

// discordHost is the host whose requests the rewriting transport redirects.
const discordHost = "discord.com"

// Intents are the gateway intents the bot asks for: guild metadata, guild
// messages and direct messages. MESSAGE_CONTENT is not requested: Discord
// still delivers the content of DMs and of messages that mention the bot,
// which are the only ones the bot answers.
const Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentsDirectMessages

// RewriteTransport is an http.RoundTripper that sends requests addressed to
// https://discord.com to Base instead, keeping their path and query (a path
// in Base is prepended). Requests to any other host pass through unchanged.
// It lets a session talk to a self-hosted or fake Discord without touching
// discordgo's package-level endpoint variables.
type RewriteTransport struct {
	// Base is the scheme and host (and optional path prefix) that replace
	// https://discord.com.
	Base *url.URL
	// Next performs the rewritten request; nil means http.DefaultTransport.
	Next http.RoundTripper
}

// RoundTrip implements http.RoundTripper. It does not modify req.
func (t *RewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	if t.Base == nil || !strings.EqualFold(req.URL.Hostname(), discordHost) {
		return next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	u := *req.URL
	u.Scheme = t.Base.Scheme
	u.Host = t.Base.Host
	if prefix := strings.TrimSuffix(t.Base.Path, "/"); prefix != "" {
		u.Path = prefix + req.URL.Path
		if req.URL.RawPath != "" {
			u.RawPath = prefix + req.URL.RawPath
		}
	}
	r.URL = &u
	r.Host = ""
	return next.RoundTrip(r)
}

// ParseAPIBase validates a discord.api_base value: an http or https URL with
// a host and no query. An empty string means the real Discord and returns nil.
func ParseAPIBase(apiBase string) (*url.URL, error) {
	if apiBase == "" {
		return nil, nil
	}
	u, err := url.Parse(apiBase)
	if err != nil {
		return nil, fmt.Errorf("discord: api_base: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("discord: api_base %q: scheme must be http or https", apiBase)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("discord: api_base %q: missing host", apiBase)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("discord: api_base %q: must not have a query or fragment", apiBase)
	}
	return u, nil
}

// SessionOptions configure NewSession.
type SessionOptions struct {
	// OnGlobalLimit, when set, is called with the retry_after of every 429
	// that is Discord's global limit (X-RateLimit-Global or
	// X-RateLimit-Scope: global), before discordgo sees the answer.
	OnGlobalLimit func(retryAfter time.Duration)
	// Token is the bot token, with or without the "Bot " prefix.
	Token string
	// APIBase replaces https://discord.com for REST calls (discord.api_base).
	// The gateway address is whatever GET /api/v9/gateway at that base
	// returns. Empty means the real Discord.
	APIBase string
	// RequestTimeout bounds each REST request, including reading the
	// response; default 20s.
	RequestTimeout time.Duration
	// DialTimeout bounds TCP connect and TLS handshakes; default 10s.
	DialTimeout time.Duration
	// Transport, if set, performs the HTTP requests (before rewriting);
	// nil means a transport cloned from http.DefaultTransport.
	Transport http.RoundTripper
	// Logger receives a line when the session is configured; nil means
	// slog.Default(). The token is never logged.
	Logger *slog.Logger
}

// NewSession returns a discordgo session configured for Palaver: the bot
// token, an HTTP client with timeouts that redirects discord.com to
// APIBase, a websocket dialer with a handshake timeout, and Intents. The
// session retries rate-limited requests (discordgo's default), which suits
// one-off calls; streaming edits must pass
// discordgo.WithRetryOnRatelimit(false) so that a 429 surfaces as a
// *discordgo.RateLimitError instead of an unbounded sleep.
func NewSession(opts SessionOptions) (*discordgo.Session, error) {
	token := strings.TrimSpace(opts.Token)
	token = strings.TrimPrefix(token, "Bot ")
	if token == "" {
		return nil, errors.New("discord: empty bot token")
	}
	base, err := ParseAPIBase(opts.APIBase)
	if err != nil {
		return nil, err
	}
	reqTimeout := opts.RequestTimeout
	if reqTimeout <= 0 {
		reqTimeout = 20 * time.Second
	}
	dialTimeout := opts.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = 10 * time.Second
	}
	next := opts.Transport
	if next == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = dialTimeout
		tr.ResponseHeaderTimeout = reqTimeout
		// Answers streaming into many channels edit concurrently; the
		// default of 2 idle connections would dial (and shake hands) anew
		// for most requests.
		tr.MaxIdleConns = 128
		tr.MaxIdleConnsPerHost = 64
		next = tr
	}
	var rt http.RoundTripper = next
	if base != nil {
		rt = &RewriteTransport{Base: base, Next: next}
	}
	if opts.OnGlobalLimit != nil {
		rt = &globalWatch{next: rt, on: opts.OnGlobalLimit}
	}

	s, err := discordgo.New("Bot " + token)
	if err != nil {
		return nil, fmt.Errorf("discord: new session: %w", err)
	}
	s.Client = &http.Client{Timeout: reqTimeout, Transport: rt}
	s.Dialer = &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: dialTimeout,
		NetDialContext:   (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
	}
	s.Identify.Intents = Intents
	s.ShouldRetryOnRateLimit = true
	s.ShouldReconnectOnError = true
	// State is used only for guild, channel and role lookups.
	s.StateEnabled = true

	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	apiBase := "https://" + discordHost
	if base != nil {
		apiBase = base.String()
	}
	logger.Debug("session configured",
		slog.String("api_base", apiBase),
		slog.String("token", RedactToken(token)))
	return s, nil
}

// RedactToken returns a form of a secret token safe for logs: its last four
// characters at most, the rest elided.
func RedactToken(token string) string {
	token = strings.TrimPrefix(token, "Bot ")
	if len(token) <= 8 {
		return "…"
	}
	return "…" + token[len(token)-4:]
}

// globalWatch reports Discord's global rate limits as they pass.
type globalWatch struct {
	next http.RoundTripper
	on   func(retryAfter time.Duration)
}

func (g *globalWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests &&
		(strings.EqualFold(resp.Header.Get("X-RateLimit-Global"), "true") || strings.EqualFold(resp.Header.Get("X-RateLimit-Scope"), "global")) {
		after, _ := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64)
		g.on(time.Duration(max(after, 1) * float64(time.Second)))
	}
	return resp, err
}
