package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/sse"
)

// responses serves POST /v1/responses: the Responses API, stateless,
// translated to the provider's chat completions and back (see the package
// documentation).
func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	e := entryFrom(r)
	key, body, release, ok := s.intake(w, r, routeResponses, s.opts.MaxBody, nil)
	if !ok {
		return
	}
	defer release()
	req, apiErr := parseResponses(body)
	if apiErr != nil {
		writeError(w, r, apiErr)
		return
	}
	e.model, e.stream = req.model, req.stream
	res, ok := s.resolve(w, r, req.model)
	if !ok {
		return
	}
	record, ok := s.meter(w, r, key, res.Name)
	if !ok {
		return
	}
	defer record(e, len(body))
	if req.stream {
		// response.completed carries the usage: ask for it (sendChat
		// leaves it out for a provider that refuses the field).
		req.chat["stream_options"] = json.RawMessage(`{"include_usage":true}`)
	}
	resp, ok := s.sendChat(w, r, res, req.chat, req.stream)
	if !ok {
		return
	}
	defer resp.Body.Close()
	provider := res.Client.Name()
	b := newResponseBuilder(s.newID(), res.Name, req.echo, req.stream, s.now)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); req.stream && mt == "text/event-stream" {
		s.streamResponse(w, r, provider, resp.Body, b)
		return
	}
	data, ok := s.readAnswer(w, r, provider, resp, "choices", "a chat completion")
	if !ok {
		return
	}
	b.begin() // for a stream request answered whole: its events all at once
	if !addCompletion(b, data) {
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_invalid_response",
			"provider %s sent a chat completion without a choice", provider))
		return
	}
	if !req.stream {
		writeJSON(w, r, b.object())
		return
	}
	setEventStream(w.Header())
	b.complete()
	if _, err := w.Write(b.out); err != nil {
		e.gone = true
	}
}

// setEventStream sets the headers of an SSE response.
func setEventStream(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// addCompletion feeds a whole chat completion to b. It reports false when
// the completion has no choice with index 0.
func addCompletion(b *responseBuilder, data []byte) bool {
	var c struct {
		Choices []struct {
			Index   *int `json:"index"`
			Message struct {
				Content          json.RawMessage `json:"content"`
				ReasoningContent json.RawMessage `json:"reasoning_content"`
				Reasoning        json.RawMessage `json:"reasoning"`
				ToolCalls        []toolCallDelta `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *chatUsage `json:"usage"`
	}
	if json.Unmarshal(data, &c) != nil {
		return false
	}
	for _, ch := range c.Choices {
		if ch.Index != nil && *ch.Index != 0 {
			continue
		}
		m := ch.Message
		r := stringInside(m.ReasoningContent)
		if len(r) == 0 {
			r = stringInside(m.Reasoning)
		}
		b.addReasoning(r)
		b.addContent(stringInside(m.Content))
		for i, tc := range m.ToolCalls {
			tc.Index = &i
			b.addToolCall(tc)
		}
		b.finish, b.usage = ch.FinishReason, c.Usage
		return true
	}
	return false
}

// streamResponse translates a provider's chat-completion stream to the
// Responses API's events. response.created goes out at once; each chunk
// then becomes its events, flushed as relayStream flushes. The stream
// ends with response.completed once the provider finished, or with
// response.failed when it fails, breaks, stalls, sends something that is
// not a chunk, or more text than maxCompletionBody bytes (the answer is
// held whole for the final events).
func (s *Server) streamResponse(w http.ResponseWriter, r *http.Request, provider string, body io.ReadCloser, b *responseBuilder) {
	e := entryFrom(r)
	setEventStream(w.Header())
	rc := http.NewResponseController(w)
	rd := sse.NewReader(&eventLimiter{r: body, max: s.opts.MaxEvent}, 16<<10)
	rd.Comments = true
	// write sends the events built so far, flushing them unless more
	// input is already buffered. It reports false when the client has
	// gone.
	write := func(force bool) bool {
		if len(b.out) == 0 && !force {
			return true
		}
		if _, err := w.Write(b.out); err != nil {
			e.gone = true
			return false
		}
		b.out = b.out[:0]
		if force || !rd.Buffered() {
			if err := rc.Flush(); err != nil {
				e.gone = true
				return false
			}
		}
		return true
	}
	fail := func(err *apiError) {
		e.noteError(err)
		b.fail(err)
		write(true)
	}
	b.begin()
	if !write(true) {
		return
	}
	finished := false
	for {
		ev, err := rd.Next()
		if err != nil {
			switch {
			case context.Cause(r.Context()) == errShuttingDown:
				fail(shuttingDown())
			case r.Context().Err() != nil:
				e.gone = true
			case errors.Is(err, errEventTooLarge), errors.Is(err, sse.ErrLineTooLong):
				fail(newError(http.StatusBadGateway, typeServer, "upstream_event_too_large",
					"provider %s sent a stream event larger than %d bytes; the answer ends here", provider, s.opts.MaxEvent))
			case finished:
				b.complete()
				write(true)
			default:
				fail(truncated(provider, err))
			}
			return
		}
		switch ev.Kind {
		case sse.Comment:
			b.out = append(append(b.out, ev.Data...), eventEnd...)
			if !write(false) {
				return
			}
			continue
		case sse.Error, sse.ErrorField:
			fail(newError(http.StatusBadGateway, typeServer, "upstream_error", "provider %s: %s", provider, errorMessage(ev.Data)))
			return
		}
		if string(ev.Data) == "[DONE]" {
			if finished {
				b.complete()
				write(true)
			} else {
				fail(truncated(provider, io.EOF))
			}
			rd.Drain(body, drainWait)
			return
		}
		d, ok := readChatDelta(ev.Data)
		switch {
		case !ok:
			fail(newError(http.StatusBadGateway, typeServer, "upstream_invalid_response",
				"provider %s sent a stream event that is not a chat completion chunk", provider))
			return
		case d.errRaw != nil:
			fail(newError(http.StatusBadGateway, typeServer, "upstream_error", "provider %s: %s", provider, errorMessage(d.errRaw)))
			return
		}
		e.events++
		b.addReasoning(d.reasoning)
		b.addContent(d.content)
		for _, tc := range d.toolCalls {
			b.addToolCall(tc)
		}
		if d.finish != "" {
			b.finish, finished = d.finish, true
		}
		if u := d.usage; u != nil {
			b.usage = u
			e.noteUsage(llm.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens,
				CompletionDetails: llm.CompletionDetails{ReasoningTokens: u.CompletionTokensDetails.ReasoningTokens}})
		}
		if b.size > maxCompletionBody {
			fail(newError(http.StatusBadGateway, typeServer, "upstream_error",
				"provider %s sent an answer larger than %d bytes; it ends here", provider, maxCompletionBody))
			return
		}
		if !write(false) {
			return
		}
	}
}

// randomID is a response id's random part: 24 hex digits.
func randomID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
