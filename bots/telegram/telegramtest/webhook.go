package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SecretTokenHeader is the header in which Telegram sends a webhook's
// secret_token with every update it posts.
const SecretTokenHeader = "X-Telegram-Bot-Api-Secret-Token"

// Telegram's 409 descriptions of getUpdates.
const (
	conflictWebhookActive = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
	conflictOtherPoll     = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
	conflictSetWebhook    = "Conflict: terminated by setWebhook request"
)

// Bounds Telegram puts on webhooks.
const (
	maxSecretToken      = 256
	defaultMaxConns     = 40
	maxMaxConns         = 100
	maxRetryAfterUnits  = 3600 // the longest Retry-After Telegram obeys, in seconds
	maxBackoffUnits     = 60   // the longest delay between redeliveries, in seconds
	maxWebhookAnswerLen = 1 << 20
)

// webhook is the webhook set by setWebhook.
type webhook struct {
	url      string
	secret   string
	maxConns int
	gen      int // s.hookGen when it was set

	lastErrorDate    int64
	lastErrorMessage string
}

// WebhookInfo is the webhook set, as getWebhookInfo reports it and with
// its secret token; the zero value when none is set.
type WebhookInfo struct {
	URL            string
	SecretToken    string
	MaxConnections int
	// LastErrorMessage describes the last delivery the webhook refused,
	// as Telegram does: "Wrong response from the webhook: 500 Internal
	// Server Error".
	LastErrorMessage string
}

// Delivery is one POST of an update to the webhook.
type Delivery struct {
	Time     time.Time
	UpdateID int
	// Status is the HTTP status the webhook answered; 0 when no answer
	// came (Error says why).
	Status int
	Error  string
}

// OK reports whether the webhook accepted the update (a 2xx answer).
func (d Delivery) OK() bool { return d.Status >= 200 && d.Status <= 299 }

// Webhook is the webhook set by the bot, the zero value for none.
func (s *Server) Webhook() WebhookInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hook == nil {
		return WebhookInfo{}
	}
	return WebhookInfo{URL: s.hook.url, SecretToken: s.hook.secret, MaxConnections: s.hook.maxConns, LastErrorMessage: s.hook.lastErrorMessage}
}

// Deliveries returns every POST of an update to a webhook so far, in the
// order their answers came.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// queue is the chat an update belongs to: Telegram posts the updates of
// one chat to a webhook one at a time, in order.
func (u wireUpdate) queue() int64 {
	switch {
	case u.Message != nil:
		return u.Message.Chat.ID
	case u.CallbackQuery != nil && u.CallbackQuery.Message != nil:
		return u.CallbackQuery.Message.Chat.ID
	case u.CallbackQuery != nil:
		return u.CallbackQuery.From.ID
	case u.StoppedMessageGeneration != nil:
		return u.StoppedMessageGeneration.Chat.ID
	}
	return 0
}

// setWebhook validates and sets a webhook as Telegram does, with one
// difference: the fake cannot reach the internet, so it delivers only to
// loopback hosts (127.0.0.0/8, ::1, localhost), over http:// too and on
// any port, where Telegram wants https:// on port 443, 80, 88 or 8443
// (those are checked for other hosts, which then fail as unresolvable). An
// empty url deletes the webhook. It ends a waiting getUpdates with 409.
func (s *Server) setWebhook(_ context.Context, p params) (any, *apiError) {
	raw := strings.TrimSpace(p["url"])
	if raw == "" {
		s.deleteWebhookLocked(p.boolParam("drop_pending_updates"))
		return true, nil
	}
	if aerr := checkWebhookURL(raw); aerr != nil {
		return nil, aerr
	}
	secret := p["secret_token"]
	if len(secret) > maxSecretToken {
		return nil, badRequest("secret token is too long")
	}
	if strings.IndexFunc(secret, func(r rune) bool { return r > 0x7f || r != '-' && !isWordByte(byte(r)) }) >= 0 {
		return nil, badRequest("secret token contains unallowed characters")
	}
	conns, _, aerr := p.int64Param("max_connections")
	if aerr != nil {
		return nil, aerr
	}
	if conns == 0 {
		conns = defaultMaxConns
	}
	conns = min(max(conns, 1), maxMaxConns) // Telegram clamps it
	if aerr := s.setAllowedLocked(p["allowed_updates"]); aerr != nil {
		return nil, aerr
	}
	if p.boolParam("drop_pending_updates") {
		s.updates = nil
	}
	s.endPollLocked(conflictSetWebhook)
	if h := s.hook; h != nil && h.url == raw && h.secret == secret && h.maxConns == int(conns) {
		return true, nil // "Webhook is already set"
	}
	s.hookGen++
	s.hook = &webhook{url: raw, secret: secret, maxConns: int(conns), gen: s.hookGen}
	for i := range s.updates {
		s.updates[i].failures, s.updates[i].retryAt = 0, time.Time{}
	}
	s.hookWG.Add(1)
	go s.deliver(s.hookGen)
	s.notifyLocked()
	return true, nil
}

// checkWebhookURL refuses a URL the fake cannot deliver to, with
// Telegram's descriptions.
func checkWebhookURL(raw string) *apiError {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return badRequest("bad webhook: Failed to resolve host: Name or service not known")
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loopback := strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()
	switch {
	case u.Scheme == "http" && loopback:
		return nil
	case u.Scheme != "https":
		return badRequest("bad webhook: An HTTPS URL must be provided for webhook")
	case loopback:
		return nil
	}
	switch u.Port() {
	case "", "443", "80", "88", "8443":
	default:
		return badRequest("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
	}
	return badRequest("bad webhook: Failed to resolve host: Name or service not known")
}

// setAllowedLocked sets allowed_updates from its JSON list, as getUpdates
// and setWebhook take it: absent keeps the setting, an empty list allows
// every type. s.mu must be held.
func (s *Server) setAllowedLocked(raw string) *apiError {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" {
		return nil
	}
	var allowed []string
	if err := json.Unmarshal([]byte(raw), &allowed); err != nil {
		return badRequest("can't parse allowed updates JSON object")
	}
	s.allowed = nil
	if len(allowed) > 0 {
		s.allowed = map[string]bool{}
		for _, k := range allowed {
			s.allowed[k] = true
		}
	}
	return nil
}

func (s *Server) deleteWebhook(_ context.Context, p params) (any, *apiError) {
	s.deleteWebhookLocked(p.boolParam("drop_pending_updates"))
	return true, nil
}

// deleteWebhookLocked removes the webhook; deliveries in flight finish.
// s.mu must be held.
func (s *Server) deleteWebhookLocked(drop bool) {
	if drop {
		s.updates = nil
	}
	if s.hook != nil {
		s.hook = nil
		s.hookGen++
		s.notifyLocked()
	}
}

func (s *Server) getWebhookInfo(context.Context, params) (any, *apiError) {
	info := map[string]any{"url": "", "has_custom_certificate": false, "pending_update_count": len(s.updates)}
	if h := s.hook; h != nil {
		info["url"], info["max_connections"] = h.url, h.maxConns
		if h.lastErrorDate != 0 {
			info["last_error_date"], info["last_error_message"] = h.lastErrorDate, h.lastErrorMessage
		}
		if s.allowed != nil {
			var kinds []string
			for k := range s.allowed {
				kinds = append(kinds, k)
			}
			slices.Sort(kinds)
			info["allowed_updates"] = kinds
		}
	}
	return info, nil
}

// deliver posts the queued updates to the webhook of generation gen until
// it is replaced or deleted or the server closes: the first pending update
// of each chat, at most max_connections at once, each again after a delay
// while the webhook refuses it.
func (s *Server) deliver(gen int) {
	defer s.hookWG.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	s.mu.Lock()
	for {
		h := s.hook
		if h == nil || h.gen != gen || s.hookCtx.Err() != nil {
			s.mu.Unlock()
			return
		}
		if s.allowed != nil {
			s.updates = slices.DeleteFunc(s.updates, func(u queuedUpdate) bool { return !u.posting && !s.allowed[u.kind] })
		}
		now := time.Now()
		var wake time.Time
		busy := map[int64]bool{}
		out := 0
		for _, u := range s.updates {
			if u.posting {
				busy[u.queue] = true
				out++
			}
		}
		for i := range s.updates {
			u := &s.updates[i]
			if busy[u.queue] || out >= h.maxConns {
				continue
			}
			busy[u.queue] = true // later updates of the chat wait for this one
			if u.retryAt.After(now) {
				if wake.IsZero() || u.retryAt.Before(wake) {
					wake = u.retryAt
				}
				continue
			}
			if u.sent {
				s.redeliveries++
			}
			u.sent, u.posting = true, true
			s.delivered = max(s.delivered, u.id)
			out++
			s.hookWG.Add(1)
			go s.post(h, u.id, u.raw)
		}
		changed := s.changed
		s.mu.Unlock()
		var wakeC <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(time.Until(wake))
			wakeC = timer.C
		}
		select {
		case <-changed:
		case <-wakeC:
		case <-s.hookCtx.Done():
		}
		s.mu.Lock()
	}
}

// post sends one update to the webhook h and records the answer: a 2xx
// confirms the update, anything else schedules it again.
func (s *Server) post(h *webhook, id int, raw json.RawMessage) {
	defer s.hookWG.Done()
	d := Delivery{UpdateID: id}
	retryAfter := 0
	ctx, cancel := context.WithTimeout(s.hookCtx, s.hookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(raw))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		if h.secret != "" {
			req.Header.Set(SecretTokenHeader, h.secret)
		}
		var resp *http.Response
		if resp, err = s.hookClient.Do(req); err == nil {
			d.Status = resp.StatusCode
			retryAfter, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookAnswerLen))
			resp.Body.Close()
		}
	}
	if err != nil {
		d.Error = err.Error()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	d.Time = s.now()
	s.deliveries = append(s.deliveries, d)
	defer s.notifyLocked()
	i := slices.IndexFunc(s.updates, func(u queuedUpdate) bool { return u.id == id })
	if i < 0 {
		return // dropped meanwhile
	}
	u := &s.updates[i]
	u.posting = false
	if d.OK() {
		s.updates = slices.Delete(s.updates, i, i+1)
		return
	}
	u.failures++
	units := 0
	switch {
	case retryAfter > 0:
		units = min(retryAfter, maxRetryAfterUnits)
	case u.failures > 1:
		units = min(1<<min(u.failures-1, 16), maxBackoffUnits)
	}
	u.retryAt = time.Now().Add(time.Duration(units) * s.hookRetry)
	if s.hook == h {
		h.lastErrorDate = d.Time.Unix()
		h.lastErrorMessage = "Wrong response from the webhook: " + strconv.Itoa(d.Status) + " " + http.StatusText(d.Status)
		if d.Status == 0 {
			h.lastErrorMessage = "Connection refused"
			if ctx.Err() != nil {
				h.lastErrorMessage = "Read timeout expired"
			}
		}
	}
}
