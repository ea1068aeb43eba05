package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// maxCompletionBody bounds a non-streamed answer read from a provider.
const maxCompletionBody = 64 << 20

// chat serves POST /v1/chat/completions: check the key and the limits,
// read the body, resolve the model, forward, relay the answer.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	e := entryFrom(r)
	key, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if ok, wait := s.limits.allow(key, time.Now()); !ok {
		err := newError(http.StatusTooManyRequests, typeRateLimit, "rate_limit_exceeded",
			"rate limit of %d requests per minute reached; retry in %s", s.opts.RequestsPerMinute, wait)
		err.retryAfter = wait
		writeError(w, r, err)
		return
	}
	if !s.limits.acquire(key) {
		err := newError(http.StatusTooManyRequests, typeRateLimit, "too_many_concurrent_requests",
			"too many requests in flight for this key (at most %d)", s.opts.MaxStreamsPerKey)
		err.retryAfter = time.Second
		writeError(w, r, err)
		return
	}
	defer s.limits.release(key)

	body, apiErr := s.readBody(w, r)
	if apiErr != nil {
		writeError(w, r, apiErr)
		return
	}
	// Answers may take minutes: lift the server's read and write deadlines
	// now that the body is in. (Not every ResponseWriter has them.)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})

	fields, name, stream, apiErr := parseChat(body)
	if apiErr != nil {
		writeError(w, r, apiErr)
		return
	}
	e.model, e.stream = name, stream
	// A program's name: no fragments (see llm.Router.Lookup).
	res, err := s.router.Lookup(r.Context(), name, llm.ResolveOptions{Allowed: s.opts.Allowed})
	if err != nil {
		if r.Context().Err() != nil {
			if apiErr := upstreamError(r.Context(), "", name, err); apiErr != nil {
				writeError(w, r, apiErr)
			} else {
				e.gone = true
			}
			return
		}
		writeError(w, r, resolveError(name, err))
		return
	}
	client, modelID, canonical := res.Client, res.ID, res.Name
	e.model = canonical
	// Usage budgets, and the request's usage recorded once it ended
	// (meter.go).
	record, apiErr, ok := s.admit(r, key, canonical)
	if !ok {
		if apiErr != nil {
			writeError(w, r, apiErr)
		} else {
			e.gone = true
		}
		return
	}
	defer record(e, len(body))
	if body, err = encodeChat(fields, modelID); err != nil {
		writeError(w, r, newError(http.StatusBadRequest, typeInvalidRequest, "invalid_json", "cannot re-encode the body: %v", err))
		return
	}

	resp, err := client.Do(r.Context(), http.MethodPost, "/chat/completions", body, stream)
	if err != nil {
		if apiErr := upstreamError(r.Context(), client.Name(), canonical, err); apiErr != nil {
			e.cause = err
			writeError(w, r, apiErr)
		} else {
			e.gone = true
		}
		return
	}
	defer resp.Body.Close()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if stream && mt == "text/event-stream" {
		s.relayStream(w, r, client.Name(), resp.Body)
		return
	}
	s.relayCompletion(w, r, client.Name(), resp)
}

// resolveError is what a client is told about a model name that
// llm.Router.Lookup refused. The message is one sentence without Go's
// error text.
func resolveError(name string, err error) *apiError {
	notFound := func(format string, args ...any) *apiError {
		return newError(http.StatusNotFound, typeInvalidRequest, "model_not_found", format, args...).withParam("model")
	}
	if ae, ok := errors.AsType[*llm.AliasError](err); ok {
		return notFound("model %q is an alias of %s, whose provider %q is not configured on this server (models.aliases.%s)",
			name, ae.Target, ae.Provider, ae.Alias)
	}
	if ue, ok := errors.AsType[*llm.UnknownModelError](err); ok {
		switch {
		case ue.Name == "":
			return notFound("\"model\" must be a model name such as provider/model (see GET /v1/models)")
		case ue.NotAllowed:
			return notFound("model %q is not served here (models.allowed)", name)
		case len(ue.Down) > 0:
			return notFound("model %q not found (see GET /v1/models); not searched: %s", name, reasons(ue.Down))
		}
		return notFound("model %q not found (see GET /v1/models)", name)
	}
	if les := llm.ListErrors(err); len(les) > 0 {
		return newError(http.StatusBadGateway, typeServer, "upstream_unreachable", "model %q: %s", name, reasons(les))
	}
	return newError(http.StatusInternalServerError, typeServer, "internal_error", "model %q could not be resolved", name)
}

// reasons joins the providers' failures, one sentence each (see
// llm.ListError.Reason).
func reasons(les []*llm.ListError) string {
	rs := make([]string, len(les))
	for i, le := range les {
		rs[i] = le.Reason()
	}
	return strings.Join(rs, "; ")
}

// readBody reads the request body, refusing one over MaxBody with 413.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	tooLarge := func() *apiError {
		return newError(http.StatusRequestEntityTooLarge, typeInvalidRequest, "request_too_large",
			"request body larger than %d bytes", s.opts.MaxBody)
	}
	if r.ContentLength > s.opts.MaxBody {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge()
		}
		return nil, newError(http.StatusBadRequest, typeInvalidRequest, "invalid_body", "cannot read the request body: %v", err)
	}
	return body, nil
}

// parseChat decodes the top level of a chat request: the fields, kept
// verbatim, the model name and whether the answer is streamed.
func parseChat(body []byte) (fields map[string]json.RawMessage, model string, stream bool, _ *apiError) {
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		msg := "the body must be a JSON object"
		if err != nil {
			msg = "invalid JSON body: " + err.Error()
		}
		return nil, "", false, newError(http.StatusBadRequest, typeInvalidRequest, "invalid_json", "%s", msg)
	}
	raw, ok := fields["model"]
	if !ok || json.Unmarshal(raw, &model) != nil || model == "" {
		return nil, "", false, newError(http.StatusBadRequest, typeInvalidRequest, "invalid_model",
			"\"model\" must be a model name such as provider/model (see GET /v1/models)").withParam("model")
	}
	if raw, ok := fields["stream"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &stream) != nil {
			return nil, "", false, newError(http.StatusBadRequest, typeInvalidRequest, "invalid_type",
				"\"stream\" must be true or false").withParam("stream")
		}
	}
	return fields, model, stream, nil
}

// encodeChat renders fields with model in place of the client's name.
// Values are written as the client sent them (compacted); keys come out
// sorted.
func encodeChat(fields map[string]json.RawMessage, model string) ([]byte, error) {
	name, err := json.Marshal(model)
	if err != nil {
		return nil, err
	}
	fields["model"] = name
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// relayCompletion sends a whole (non-streamed) answer on. A provider that
// answered a streamed request with JSON gets the same treatment. An error
// object in a 200 answer (llama.cpp) becomes a 502, and so does an answer
// that is not a chat completion: an event stream, or anything but a JSON
// object with a "choices" array. The client never gets such a body with
// 200.
func (s *Server) relayCompletion(w http.ResponseWriter, r *http.Request, provider string, resp *http.Response) {
	e := entryFrom(r)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_invalid_response",
			"provider %s answered with an event stream to a request without \"stream\": true", provider))
		return
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCompletionBody+1))
	if err != nil {
		if apiErr := upstreamError(r.Context(), provider, e.model, err); apiErr != nil {
			writeError(w, r, apiErr)
		} else {
			e.gone = true
		}
		return
	}
	if len(data) > maxCompletionBody {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_error",
			"provider %s sent an answer larger than %d bytes", provider, maxCompletionBody))
		return
	}
	var c struct {
		Choices json.RawMessage `json:"choices"`
		Usage   json.RawMessage `json:"usage"`
		Error   json.RawMessage `json:"error"`
	}
	invalid := func(what string) {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_invalid_response",
			"provider %s sent an answer that is %s", provider, what))
	}
	if err := json.Unmarshal(data, &c); err != nil {
		if _, ok := errors.AsType[*json.SyntaxError](err); ok {
			invalid("not valid JSON")
		} else {
			invalid("not a chat completion (not a JSON object)")
		}
		return
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_error",
			"provider %s: %s", provider, errorMessage(c.Error)))
		return
	}
	if len(c.Choices) == 0 || c.Choices[0] != '[' {
		invalid("not a chat completion (no \"choices\" list)")
		return
	}
	var usage llm.Usage
	if len(c.Usage) > 0 && json.Unmarshal(c.Usage, &usage) == nil && string(c.Usage) != "null" {
		e.noteUsage(usage)
	}
	e.answerBytes = len(data)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(data); err != nil {
		e.gone = true
	}
}
