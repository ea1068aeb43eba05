package telegram

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// Webhook configures receiving updates by webhook (telegram.webhook), an
// alternative to long polling: while the Bot leads, Telegram POSTs each
// update to URL, and the Bot answers 200 only once the update is handed
// over durably (to the Manager, or an album's item to the store until the
// album is complete), so that Telegram sends it again on any failure.
// Telegram posts the updates of one chat one at a time, and those of
// different chats at once, up to MaxConnections.
type Webhook struct {
	// URL is the public HTTPS URL Telegram posts updates to
	// (telegram.webhook.url); empty means long polling. Telegram accepts
	// only ports 443, 80, 88 and 8443. Every process of a cluster sets the
	// same URL: the leader registers it (setWebhook) when it starts
	// leading.
	URL string
	// Listen is the address the Bot serves webhook requests on itself,
	// in plain HTTP, while Run runs (telegram.webhook.listen), such as
	// ":8443" behind a proxy that terminates TLS; every path is served.
	// Empty serves none: mount WebhookHandler on a server of your own.
	Listen string
	// SecretToken is the token Telegram sends with every request, in the
	// X-Telegram-Bot-Api-Secret-Token header, and the Bot checks on every
	// request (telegram.webhook.secret_token): 1-256 characters of A-Z,
	// a-z, 0-9, _ and -. Empty derives one from the bot token, the same in
	// every process.
	SecretToken string
	// MaxConnections is the most requests Telegram makes at once
	// (telegram.webhook.max_connections), 1-100; default 40, Telegram's.
	MaxConnections int
}

// Webhook limits and headers.
const (
	// maxWebhookBody caps a webhook request's body: an update is at most
	// a few tens of KB (a 4096-character text with its entities and the
	// message it replies to), so 1 MiB refuses only what is not one (413).
	maxWebhookBody = 1 << 20
	// forwardTimeout bounds a request forwarded to the leader, which may
	// wait for its turn and then for the store.
	forwardTimeout = 30 * time.Second
	// maxForwardAnswer caps the leader's answer relayed to Telegram.
	maxForwardAnswer = 64 << 10
	// webhookGrace is how long the Bot's own webhook server lets requests
	// in progress finish when Run ends.
	webhookGrace = 5 * time.Second

	secretHeader = "X-Telegram-Bot-Api-Secret-Token"
	// forwardedHeader marks a request a standby forwarded, so that it is
	// never forwarded again.
	forwardedHeader  = "X-Palaver-Forwarded"
	maxSecretToken   = 256
	defaultWebhookMC = 40
)

// checkWebhook validates the webhook and cluster options, naming the
// config key at fault, and fills in the defaults.
func checkWebhook(opts *Options) error {
	h := &opts.Webhook
	if h.URL == "" {
		if h.Listen != "" || h.SecretToken != "" || h.MaxConnections != 0 {
			return errors.New("telegram: telegram.webhook is set without telegram.webhook.url")
		}
	} else if err := checkURL(h.URL); err != nil {
		return fmt.Errorf("telegram: telegram.webhook.url %q: %w", redactToken(h.URL, opts.Token), err)
	}
	if h.Listen != "" {
		if _, _, err := net.SplitHostPort(h.Listen); err != nil {
			return fmt.Errorf("telegram: telegram.webhook.listen %q: %w", h.Listen, err)
		}
	}
	switch {
	case h.SecretToken == "":
		h.SecretToken = derivedSecret(opts.Token)
	case len(h.SecretToken) > maxSecretToken:
		return fmt.Errorf("telegram: telegram.webhook.secret_token is %d characters long; Telegram takes at most %d", len(h.SecretToken), maxSecretToken)
	case strings.IndexFunc(h.SecretToken, func(r rune) bool { return !isSecretChar(r) }) >= 0:
		return errors.New("telegram: telegram.webhook.secret_token may hold only A-Z, a-z, 0-9, _ and -")
	}
	switch {
	case h.MaxConnections == 0:
		h.MaxConnections = defaultWebhookMC
	case h.MaxConnections < 1 || h.MaxConnections > 100:
		return fmt.Errorf("telegram: telegram.webhook.max_connections is %d; Telegram takes 1 to 100", h.MaxConnections)
	}
	if opts.Advertise != "" {
		if err := checkURL(opts.Advertise); err != nil {
			return fmt.Errorf("telegram: cluster.advertise %q: %w", opts.Advertise, err)
		}
	}
	return nil
}

// checkURL accepts an absolute http or https URL.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("want an https:// URL")
	case u.Host == "":
		return errors.New("no host")
	}
	return nil
}

func isSecretChar(r rune) bool {
	return r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// derivedSecret is the webhook secret of a bot whose config sets none:
// every process with the token derives the same, and it reveals nothing
// of the token.
func derivedSecret(token string) string {
	sum := sha256.Sum256([]byte("palaver telegram webhook\x00" + token))
	return hex.EncodeToString(sum[:])
}

// redactToken hides the bot token in a URL that holds it (a webhook path
// made secret with the token, as Telegram once advised).
func redactToken(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "<token>")
}

// setWebhook registers the webhook with Telegram, keeping the updates
// waiting (drop_pending_updates=false).
func (a *api) setWebhook(ctx context.Context, h Webhook) error {
	p := tgbotapi.Params{
		"url":                  h.URL,
		"secret_token":         h.SecretToken,
		"max_connections":      strconv.Itoa(h.MaxConnections),
		"allowed_updates":      allowedUpdates,
		"drop_pending_updates": "false",
	}
	if err := a.call(ctx, "setWebhook", p, nil); err != nil {
		return fmt.Errorf("telegram: set webhook: %w", err)
	}
	return nil
}

// deleteWebhook removes the webhook, keeping the updates waiting, so that
// getUpdates works.
func (a *api) deleteWebhook(ctx context.Context) error {
	if err := a.call(ctx, "deleteWebhook", tgbotapi.Params{"drop_pending_updates": "false"}, nil); err != nil {
		return fmt.Errorf("telegram: delete webhook: %w", err)
	}
	return nil
}

// webhookURL is the webhook Telegram has for the bot, "" for none.
func (a *api) webhookURL(ctx context.Context) (string, error) {
	var info struct {
		URL string `json:"url"`
	}
	if err := a.call(ctx, "getWebhookInfo", nil, &info); err != nil {
		return "", fmt.Errorf("telegram: get webhook info: %w", err)
	}
	return info.URL, nil
}

// isWebhookConflict reports getUpdates refused because a webhook is set
// (409 "can't use getUpdates method while webhook is active", or a poll
// ended by setWebhook).
func isWebhookConflict(err error) bool {
	e := apiError(err)
	return e != nil && e.Code == http.StatusConflict && strings.Contains(strings.ToLower(e.Message), "webhook")
}

// isPollConflict reports a poll ended by another process's getUpdates.
func isPollConflict(err error) bool {
	e := apiError(err)
	return e != nil && e.Code == http.StatusConflict && !isWebhookConflict(err)
}

// dropWebhook deletes a webhook left set by an earlier configuration (or
// a process that still has one), so that polling works. Failures are
// logged: a poll refused with 409 says so again.
func (b *Bot) dropWebhook(ctx context.Context) {
	set, err := b.api.webhookURL(ctx)
	if err != nil || set == "" {
		if err != nil && ctx.Err() == nil {
			b.log.Warn("check for a webhook before polling", "error", err)
		}
		return
	}
	b.log.Info("deleting the webhook to poll for updates (telegram.webhook.url is not set)", "webhook", redactToken(set, b.opts.Token))
	if err := b.api.deleteWebhook(ctx); err != nil && ctx.Err() == nil {
		b.log.Warn("delete the webhook", "error", err)
	}
}

// takeWebhooks registers the webhook and takes the updates of webhook
// requests until ctx ends (Run ends, or leadership is lost). It returns
// an error only when Telegram refuses the webhook or the token.
func (b *Bot) takeWebhooks(ctx context.Context) error {
	// Telegram posts as soon as it accepts the webhook: the intake is
	// ready first.
	in := newHookIntake(b, ctx)
	in.load()
	b.hook.Store(in)
	defer func() {
		b.hook.Store(nil)
		in.close()
	}()
	if err := b.registerWebhook(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	in.runAlbums()
	return nil
}

// registerWebhook calls setWebhook until it succeeds, backing off while
// Telegram cannot be reached; a refusal is a configuration error.
func (b *Bot) registerWebhook(ctx context.Context) error {
	backoff := backoffMin
	shown := redactToken(b.opts.Webhook.URL, b.opts.Token)
	for {
		err := b.api.setWebhook(ctx, b.opts.Webhook)
		if err == nil {
			b.setConn(stateUp)
			b.log.Info("receiving updates by webhook", "url", shown)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if e := apiError(err); e != nil {
			switch {
			case e.Code == http.StatusUnauthorized || e.Code == http.StatusNotFound:
				return fmt.Errorf("telegram: the Bot API refused the token (check telegram.token): %w", err)
			case e.Code == http.StatusBadRequest && strings.Contains(e.Message, "secret token"):
				return fmt.Errorf("telegram: the Bot API refused telegram.webhook.secret_token: %w", err)
			case e.Code == http.StatusBadRequest:
				return fmt.Errorf("telegram: the Bot API refused telegram.webhook.url %q: %w", shown, err)
			}
		}
		wait := backoff
		if rl := rateLimit(err); rl != nil {
			wait = max(wait, rl.RetryAfter)
		}
		b.log.Warn("set the webhook", "error", err, "retry_in", wait)
		b.setConn(stateRetrying)
		if !sleep(ctx, wait) {
			return nil
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// WebhookHandler serves Telegram's webhook requests (POST, any path), for
// Options.Webhook.Listen or a server of the caller's. Every request must
// carry the secret token (else 403) and a body of at most 1 MiB (else
// 413). While the Bot leads, it answers 200 once the update is handed
// over durably, 500 when the store cannot save it and 503 (Retry-After: 1)
// when leadership is lost meanwhile: Telegram sends the update again on
// anything but 2xx. On a standby the request is forwarded, with its
// headers and body, to the URL the leader advertised (Options.Advertise),
// within 30 s, and the leader's answer relayed (502 or 504 when it cannot
// be reached); with no leader known, or no Options.Leader, it is answered
// 503 (Retry-After: 1), so that Telegram tries again a second later.
func (b *Bot) WebhookHandler() http.Handler { return http.HandlerFunc(b.serveWebhook) }

func (b *Bot) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	got := sha256.Sum256([]byte(r.Header.Get(secretHeader)))
	if subtle.ConstantTimeCompare(got[:], b.secretSum[:]) != 1 {
		b.log.Warn("refused a webhook request without the secret token", "remote", r.RemoteAddr)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	if in := b.hook.Load(); in != nil {
		status := in.take(r.Context(), body)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		if status != http.StatusOK {
			http.Error(w, http.StatusText(status), status)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	b.forward(w, r, body)
}

// forward sends a webhook request that landed on a standby on to the
// leader and relays its answer; see WebhookHandler.
func (b *Bot) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	addr := ""
	if b.opts.Leader != nil && r.Header.Get(forwardedHeader) == "" {
		a, err := b.opts.Leader.LeaderAddr(ctx, leaderName)
		if err != nil {
			b.log.Warn("look up the leader to forward a webhook request", "error", err)
		}
		if a != b.opts.Advertise { // this process's own address is stale
			addr = a
		}
	}
	if addr == "" {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no leader to take the update; try again", http.StatusServiceUnavailable)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr, bytes.NewReader(body))
	if err != nil {
		b.log.Error("forward a webhook request", "leader", addr, "error", err)
		http.Error(w, "bad leader address", http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	for _, h := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"} {
		req.Header.Del(h)
	}
	req.Header.Set(forwardedHeader, "1")
	resp, err := b.forwarder.Do(req)
	if err != nil {
		b.log.Warn("forward a webhook request to the leader", "leader", addr, "error", err)
		status := http.StatusBadGateway
		if ctx.Err() != nil {
			status = http.StatusGatewayTimeout
		}
		http.Error(w, "the leader cannot be reached", status)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxForwardAnswer))
}

// newForwarder is the client of forwarded webhook requests: the leader is
// another process of the cluster, reached directly, never through a proxy.
func newForwarder() *http.Client {
	return &http.Client{
		Timeout: forwardTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// serveWebhooks serves WebhookHandler on Options.Webhook.Listen until stop
// is called, which lets requests in progress finish within webhookGrace.
func (b *Bot) serveWebhooks() (stop func(), err error) {
	ln, err := net.Listen("tcp", b.opts.Webhook.Listen)
	if err != nil {
		return nil, fmt.Errorf("telegram: serve webhooks on telegram.webhook.listen %q: %w", b.opts.Webhook.Listen, err)
	}
	srv := &http.Server{
		Handler:           b.WebhookHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("serve webhooks", "listen", b.opts.Webhook.Listen, "error", err)
		}
	}()
	b.log.Info("serving webhooks", "listen", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), webhookGrace)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}, nil
}
