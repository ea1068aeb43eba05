package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// OpenAI's error types, as its SDKs expect them.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuthentication = "authentication_error"
	typeRateLimit      = "rate_limit_error"
	typeServer         = "server_error"
)

// statusClientClosed is logged (never sent) for a request whose client
// hung up before the answer was complete, as nginx does.
const statusClientClosed = 499

// apiError is an error in OpenAI's shape,
// {"error":{"message","type","param","code"}}, and the status it is sent
// with before the first byte of a response.
type apiError struct {
	status     int
	retryAfter time.Duration // sent as Retry-After when positive

	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

// newError is an apiError with a code.
func newError(status int, typ, code, format string, args ...any) *apiError {
	return &apiError{status: status, Type: typ, Code: &code, Message: fmt.Sprintf(format, args...)}
}

// withParam sets the error's param.
func (e *apiError) withParam(p string) *apiError {
	e.Param = &p
	return e
}

// body renders {"error":{…}}.
func (e *apiError) body() []byte {
	b, err := json.Marshal(struct {
		Error *apiError `json:"error"`
	}{e})
	if err != nil { // unreachable: only strings and pointers to strings
		return []byte(`{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}`)
	}
	return b
}

// writeError sends e as a JSON response and notes it for the log.
func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	entryFrom(r).noteError(e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(e.status)
	w.Write(append(e.body(), '\n'))
}

// errShuttingDown is the cause of a request's context when the server
// ends the requests still in flight at shutdown.
var errShuttingDown = errors.New("gateway: shutting down")

// shuttingDown is the error a request ended by the shutdown gets: an error
// event in a stream, or the response before its first byte.
func shuttingDown() *apiError {
	return newError(http.StatusServiceUnavailable, typeServer, "server_shutting_down",
		"palaver is shutting down; the answer ends here, try again when it is back")
}

// upstreamError turns an error of llm.Client.Do into what the client is
// told. It returns nil when the client itself has gone.
func upstreamError(ctx context.Context, provider, canonical string, err error) *apiError {
	if ctx.Err() != nil {
		if context.Cause(ctx) == errShuttingDown {
			return shuttingDown()
		}
		return nil
	}
	var se *llm.StatusError
	switch {
	case errors.As(err, &se):
		return statusError(provider, canonical, se)
	case errors.Is(err, llm.ErrFirstByteTimeout):
		return newError(http.StatusGatewayTimeout, typeServer, "upstream_timeout",
			"provider %s did not answer in time", provider)
	case errors.Is(err, llm.ErrIdleTimeout):
		return newError(http.StatusGatewayTimeout, typeServer, "upstream_timeout",
			"provider %s stopped sending its answer", provider)
	}
	if host, ok := llm.Unreachable(err); ok {
		return newError(http.StatusBadGateway, typeServer, "upstream_unreachable",
			"provider %s is unreachable: %s", provider, llm.CouldNotReach(provider, host))
	}
	return newError(http.StatusBadGateway, typeServer, "upstream_error",
		"the request to provider %s failed before its answer began", provider)
}

// statusError maps a provider's refusal. Client errors (400, 404, 422,
// 429, …) keep their status, since they are about the request; a refused
// key and server errors become 502, since the client can do nothing about
// them.
func statusError(provider, canonical string, se *llm.StatusError) *apiError {
	if se.NeedsKey() {
		return newError(http.StatusBadGateway, typeServer, "upstream_api_key_required",
			"provider %[1]s refused an anonymous request (HTTP %[2]d): the operator of this server must set an API key "+
				"(providers.%[1]s.api_key in the config, e.g. api_key: ${DEEPINFRA_API_KEY}, with DEEPINFRA_API_KEY set "+
				"in the environment)", provider, se.StatusCode)
	}
	code := se.Code
	switch st := se.StatusCode; {
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return newError(http.StatusBadGateway, typeServer, "upstream_auth_failed",
			"provider %s refused the configured API key (HTTP %d): %s", provider, st, se.Message)
	case st == http.StatusNotFound:
		return newError(http.StatusNotFound, typeInvalidRequest, "model_not_found",
			"model %s: provider %s says: %s", canonical, provider, se.Message).withParam("model")
	case st == http.StatusTooManyRequests:
		e := newError(st, typeRateLimit, "rate_limit_exceeded", "provider %s is rate limiting: %s", provider, se.Message)
		e.retryAfter = se.RetryAfter
		return e
	case st >= 400 && st < 500:
		typ := se.Type
		if typ == "" {
			typ = typeInvalidRequest
		}
		e := &apiError{status: st, Type: typ, Message: "provider " + provider + ": " + se.Message}
		if code != "" {
			e.Code = &code
		}
		return e
	}
	return newError(http.StatusBadGateway, typeServer, "upstream_error",
		"provider %s failed (HTTP %d): %s", provider, se.StatusCode, se.Message)
}

// errorMessage extracts a message from a provider's error value: an
// object with "message" (or "msg"), or a string.
func errorMessage(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	var obj struct {
		Message string `json:"message"`
		Msg     string `json:"msg"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		if obj.Message != "" {
			return obj.Message
		}
		if obj.Msg != "" {
			return obj.Msg
		}
	}
	return "the provider reported an error"
}
