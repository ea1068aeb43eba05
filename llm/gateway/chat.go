package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	key, body, release, ok := s.intake(w, r, routeChat, s.opts.MaxBody, nil)
	if !ok {
		return
	}
	defer release()
	fields, name, stream, apiErr := parseChat(body)
	if apiErr != nil {
		writeError(w, r, apiErr)
		return
	}
	e.model, e.stream = name, stream
	res, ok := s.resolve(w, r, name)
	if !ok {
		return
	}
	// Usage budgets, and the request's usage recorded once it ended
	// (meter.go).
	record, ok := s.meter(w, r, key, res.Name)
	if !ok {
		return
	}
	defer record(e, len(body))
	wantUsage := stream && includeUsage(fields)
	resp, ok := s.sendChat(w, r, res, fields, stream)
	if !ok {
		return
	}
	defer resp.Body.Close()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if stream && mt == "text/event-stream" {
		s.relayStream(w, r, res.Client.Name(), resp.Body, wantUsage)
		return
	}
	s.relayCompletion(w, r, res.Client.Name(), resp)
}

// liftDeadlines lifts the server's read and write deadlines once a
// request's body is in: answers may take minutes. (Not every
// ResponseWriter has them.)
func liftDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}

// resolve resolves a model name a client sent, as a program's name (no
// fragments, see llm.Router.Lookup). When it cannot, it answers the
// client and ok is false.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, name string) (res llm.Resolution, ok bool) {
	e := entryFrom(r)
	res, err := s.router.Lookup(r.Context(), name, llm.ResolveOptions{Allowed: s.opts.Allowed})
	if err != nil {
		if r.Context().Err() != nil {
			if apiErr := upstreamError(r.Context(), "", name, err); apiErr != nil {
				writeError(w, r, apiErr)
			} else {
				e.gone = true
			}
			return res, false
		}
		writeError(w, r, resolveError(name, err))
		return res, false
	}
	e.model = res.Name
	return res, true
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

// readBody reads the request body, refusing one over limit bytes with 413.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	tooLarge := func() *apiError {
		return newError(http.StatusRequestEntityTooLarge, typeInvalidRequest, "request_too_large",
			"request body larger than %d bytes", limit)
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
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
// answered a streamed request with JSON gets the same treatment.
func (s *Server) relayCompletion(w http.ResponseWriter, r *http.Request, provider string, resp *http.Response) {
	data, ok := s.readAnswer(w, r, provider, resp, "choices", "a chat completion")
	if !ok {
		return
	}
	writeJSON(w, r, data)
}

// writeJSON sends data, a JSON object, with 200.
func writeJSON(w http.ResponseWriter, r *http.Request, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(data); err != nil {
		entryFrom(r).gone = true
	}
}

// readAnswer reads a provider's whole answer, which must be a JSON object
// with a list under key (what, "a chat completion", names it in errors),
// and notes its usage. An error object in a 200 answer (llama.cpp)
// becomes a 502, and so does an answer that is not what, or an event
// stream: the client never gets such a body with 200. When the answer
// cannot be used, the client is answered and ok is false.
func (s *Server) readAnswer(w http.ResponseWriter, r *http.Request, provider string, resp *http.Response, key, what string) (data []byte, ok bool) {
	e := entryFrom(r)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_invalid_response",
			"provider %s answered with an event stream to a request without \"stream\": true", provider))
		return nil, false
	}
	t := time.Now()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCompletionBody+1))
	e.upstream += time.Since(t)
	if err != nil {
		if apiErr := upstreamError(r.Context(), provider, e.model, err); apiErr != nil {
			writeError(w, r, apiErr)
		} else {
			e.gone = true
		}
		return nil, false
	}
	if len(data) > maxCompletionBody {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_error",
			"provider %s sent an answer larger than %d bytes", provider, maxCompletionBody))
		return nil, false
	}
	var c map[string]json.RawMessage
	invalid := func(why string) {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_invalid_response",
			"provider %s sent an answer that is %s", provider, why))
	}
	if err := json.Unmarshal(data, &c); err != nil {
		if _, ok := errors.AsType[*json.SyntaxError](err); ok {
			invalid("not valid JSON")
		} else {
			invalid("not " + what + " (not a JSON object)")
		}
		return nil, false
	}
	if raw := c["error"]; len(raw) > 0 && string(raw) != "null" {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_error",
			"provider %s: %s", provider, errorMessage(raw)))
		return nil, false
	}
	if raw := c[key]; len(raw) == 0 || raw[0] != '[' {
		invalid(fmt.Sprintf("not %s (no %q list)", what, key))
		return nil, false
	}
	var usage llm.Usage
	if raw := c["usage"]; len(raw) > 0 && string(raw) != "null" && json.Unmarshal(raw, &usage) == nil {
		e.noteUsage(usage)
	}
	e.answerBytes = len(data)
	return data, true
}
