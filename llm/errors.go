package llm

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrTruncated reports a stream that ended (EOF, a broken connection, an
// idle timeout, or "[DONE]") before the server sent a finish reason. The
// answer is incomplete; errors that wrap it may also wrap the read error.
var ErrTruncated = errors.New("stream ended without a finish reason")

// ErrFirstByteTimeout reports that the server sent no response headers
// within Timeouts.FirstByte.
var ErrFirstByteTimeout = errors.New("no response within the first-byte timeout")

// ErrIdleTimeout reports that a response body stalled for longer than
// Timeouts.Idle between two reads.
var ErrIdleTimeout = errors.New("no data within the idle timeout")

// ErrMalformed reports a streamed chunk or a model list the client could
// not decode: not the JSON object it should be. Errors that wrap it also
// carry the decoder's message, which is for the log, not for users.
var ErrMalformed = errors.New("malformed answer")

// Unreachable reports whether err is a failure to reach a server: a name
// that does not resolve, a refused, reset or timed-out connection, a failed
// TLS handshake or certificate check, or a base URL the transport cannot
// use. host is the host that was tried (with its port when the URL names
// one), or "" when err does not say. ErrFirstByteTimeout, ErrIdleTimeout,
// ErrTruncated and a context's end are not failures to reach a server.
func Unreachable(err error) (host string, ok bool) {
	if err == nil || errors.Is(err, ErrFirstByteTimeout) || errors.Is(err, ErrIdleTimeout) || errors.Is(err, ErrTruncated) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "", false
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		if u, err := url.Parse(ue.URL); err == nil {
			return u.Host, true
		}
		return "", true
	}
	if de, ok := errors.AsType[*net.DNSError](err); ok {
		return de.Name, true
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		if oe.Addr != nil {
			return oe.Addr.String(), true
		}
		return "", true
	}
	_, unknownCA := errors.AsType[x509.UnknownAuthorityError](err)
	_, badName := errors.AsType[x509.HostnameError](err)
	_, invalid := errors.AsType[x509.CertificateInvalidError](err)
	_, verify := errors.AsType[*tls.CertificateVerificationError](err)
	_, notTLS := errors.AsType[tls.RecordHeaderError](err)
	return "", unknownCA || badName || invalid || verify || notTLS
}

// CouldNotReach says, for a person, that provider's server at host could
// not be reached (see Unreachable), with the next step, and no final
// period: "could not reach api.deepinfra.com; check the network connection
// and providers.deepinfra.base_url", or for a server on this machine
// (IsLoopback) "could not reach 127.0.0.1:8080: is it running? Check
// providers.local.base_url". An empty host is left out.
func CouldNotReach(provider, host string) string {
	key := "providers." + provider + ".base_url"
	switch {
	case host == "":
		return "could not reach it; check the network connection and " + key
	case IsLoopback(host):
		return "could not reach " + host + ": is it running? Check " + key
	}
	return "could not reach " + host + "; check the network connection and " + key
}

// IsLoopback reports whether host, with or without a port, names this
// machine: "localhost" or a loopback address. A provider there is a server
// the operator runs (llama.cpp, Ollama, vLLM).
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// StatusError is a non-2xx answer to a request. Message is the provider's
// own explanation, extracted from whichever error shape it used.
type StatusError struct {
	// Provider is the configured provider name.
	Provider string
	// StatusCode is the HTTP status code.
	StatusCode int
	// Message is the provider's message, or the status text when the body
	// held none.
	Message string
	// Type and Code are the provider's error type and code, when given.
	Type string
	Code string
	// RetryAfter is the wait the server asked for in its Retry-After
	// header; zero when absent.
	RetryAfter time.Duration
	// Anonymous is true when the request was sent keyless with the
	// DeepInfra web-page headers.
	Anonymous bool
	// Body is the start (up to 64 KiB) of the response body, verbatim, and
	// ContentType its media type, for relays that forward the error.
	Body        []byte
	ContentType string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("llm: %s: HTTP %d: %s", e.Provider, e.StatusCode, e.Message)
}

// NeedsKey reports whether the provider refused an anonymous request for
// want of an API key (401 or 403 to a keyless DeepInfra request).
func (e *StatusError) NeedsKey() bool {
	return e.Anonymous && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// Temporary reports whether the same request may succeed later (429, 5xx).
func (e *StatusError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// StreamError is a failure the server reported inside a response that had
// started well: a top-level "error" in a chunk, an SSE "error:" field
// (llama.cpp), an "event: error", or an error object in a 200 non-streamed
// body.
type StreamError struct {
	Provider string
	Message  string
	Type     string
	Code     string
}

func (e *StreamError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("llm: %s: stream error: %s (code %s)", e.Provider, e.Message, e.Code)
	}
	return fmt.Sprintf("llm: %s: stream error: %s", e.Provider, e.Message)
}

// providerError is what an error body says, whatever its shape.
type providerError struct {
	Message, Type, Code string
}

// parseErrorBody extracts the provider's message from an error body. It
// knows {"error":{"message","type","code"}}, {"error":"…"},
// {"detail":{"error":…}}, {"detail":"…"}, {"detail":[{"msg":…}]},
// {"message":…,"code":…} and plain text. ok is false when nothing
// readable was found.
func parseErrorBody(body []byte) (pe providerError, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return pe, false
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		// Plain text; HTML error pages (proxies, Cloudflare) say nothing useful.
		if body[0] == '<' || !utf8.Valid(body) {
			return pe, false
		}
		return providerError{Message: clip(string(body), 500)}, true
	}
	return errorFromValue(v)
}

// errorFromValue walks a decoded error value of any known shape.
func errorFromValue(v any) (pe providerError, ok bool) {
	switch v := v.(type) {
	case string:
		if v = strings.TrimSpace(v); v == "" {
			return pe, false
		}
		return providerError{Message: clip(v, 500)}, true
	case []any:
		// FastAPI validation errors: [{"loc":[…],"msg":"…","type":"…"}].
		var msgs []string
		for _, item := range v {
			if p, ok := errorFromValue(item); ok {
				msgs = append(msgs, p.Message)
			}
		}
		if len(msgs) == 0 {
			return pe, false
		}
		return providerError{Message: clip(strings.Join(msgs, "; "), 500)}, true
	case map[string]any:
		for _, k := range []string{"error", "detail"} {
			if inner, found := v[k]; found && inner != nil {
				if p, ok := errorFromValue(inner); ok {
					if p.Type == "" {
						p.Type = scalarString(v["type"])
					}
					if p.Code == "" {
						p.Code = scalarString(v["code"])
					}
					return p, true
				}
			}
		}
		for _, k := range []string{"message", "msg"} {
			if s, isStr := v[k].(string); isStr && strings.TrimSpace(s) != "" {
				return providerError{
					Message: clip(strings.TrimSpace(s), 500),
					Type:    scalarString(v["type"]),
					Code:    scalarString(v["code"]),
				}, true
			}
		}
	}
	return pe, false
}

// scalarString renders a JSON scalar (a code may be a string or a number).
func scalarString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// newStatusError builds the error for a non-2xx response.
func newStatusError(provider string, anonymous bool, resp *http.Response, body []byte, now time.Time) *StatusError {
	e := &StatusError{
		Provider:    provider,
		StatusCode:  resp.StatusCode,
		Anonymous:   anonymous,
		Body:        body,
		ContentType: resp.Header.Get("Content-Type"),
		RetryAfter:  parseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
	if pe, ok := parseErrorBody(body); ok {
		e.Message, e.Type, e.Code = pe.Message, pe.Type, pe.Code
	} else if t := http.StatusText(resp.StatusCode); t != "" {
		e.Message = t
	} else {
		e.Message = "status " + strconv.Itoa(resp.StatusCode)
	}
	return e
}

// newStreamError builds the error for a failure reported inside a stream.
func newStreamError(provider string, payload []byte) *StreamError {
	pe, ok := parseErrorBody(payload)
	if !ok {
		pe.Message = "the server reported an error"
		if t := strings.TrimSpace(string(payload)); t != "" && utf8.ValidString(t) {
			pe.Message += ": " + clip(t, 200)
		}
	}
	return &StreamError{Provider: provider, Message: pe.Message, Type: pe.Type, Code: pe.Code}
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// It returns 0 when the header is absent, malformed or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		secs = min(secs, 1e6) // keep the Duration from overflowing
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
