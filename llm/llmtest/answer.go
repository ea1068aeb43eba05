package llmtest

import (
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/llm"
)

// created is the "created" time of every answer and model: answers are
// deterministic.
const created = 1700000000

// token is one piece of a scripted answer.
type token struct {
	text      string
	reasoning bool
}

// tokens lists the script's tokens in the order they are sent.
func (sc Script) tokens() []token {
	var toks []token
	if sc.Dialect == InlineThink {
		if len(sc.Reasoning) > 0 {
			if !sc.OmitOpenTag {
				toks = append(toks, token{text: "<think>"})
			}
			for _, r := range sc.Reasoning {
				toks = append(toks, token{text: r})
			}
			toks = append(toks, token{text: "</think>"}, token{text: "\n\n"})
		}
	} else {
		for _, r := range sc.Reasoning {
			toks = append(toks, token{text: r, reasoning: true})
		}
	}
	for _, c := range sc.Content {
		toks = append(toks, token{text: c})
	}
	return toks
}

// streamWriter writes one SSE answer.
type streamWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	sc    Script
	model string
	id    string
	buf   []byte
	first bool
}

// send writes payload as one "data:" event and flushes it.
func (sw *streamWriter) send(payload []byte) error {
	sw.buf = sw.buf[:0]
	if sw.sc.NoSpace {
		sw.buf = append(sw.buf, "data:"...)
	} else {
		sw.buf = append(sw.buf, "data: "...)
	}
	sw.buf = append(sw.buf, payload...)
	sw.buf = append(sw.buf, "\n\n"...)
	return sw.raw(sw.buf)
}

// raw writes b as it is and flushes it.
func (sw *streamWriter) raw(b []byte) error {
	if _, err := sw.w.Write(b); err != nil {
		return err
	}
	return sw.rc.Flush()
}

// chunk renders a chat.completion.chunk. delta is the inside of the delta
// object; finish is "" for null; usage is rendered when non-nil; choices
// false renders "choices": [].
func (sw *streamWriter) chunk(delta []byte, finish string, usage *llm.Usage, choices bool, extra string) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"id":"`...)
	b = append(b, sw.id...)
	b = append(b, `","object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	b = appendQuote(b, sw.model)
	if sw.sc.Dialect == Ollama {
		b = append(b, `,"system_fingerprint":"fp_ollama"`...)
	}
	if choices {
		b = append(b, `,"choices":[{"index":0,"delta":{`...)
		b = append(b, delta...)
		b = append(b, `},"finish_reason":`...)
		if finish == "" {
			b = append(b, "null"...)
		} else {
			b = appendQuote(b, finish)
		}
		b = append(b, "}]"...)
	} else {
		b = append(b, `,"choices":[]`...)
	}
	if usage != nil {
		b = append(b, `,"usage":`...)
		b = appendUsage(b, *usage)
	}
	b = append(b, extra...)
	return append(b, '}')
}

// delta renders the inside of a delta object for t.
func (sw *streamWriter) delta(t token) []byte {
	var b []byte
	if sw.first {
		b = append(b, `"role":"assistant",`...)
		sw.first = false
	}
	switch {
	case !t.reasoning:
		b = append(b, `"content":`...)
		b = appendQuote(b, t.text)
	case sw.sc.Dialect == VLLM:
		b = append(b, `"reasoning":`...)
		b = appendQuote(b, t.text)
	case sw.sc.Dialect == Ollama:
		b = append(b, `"content":"","reasoning":`...)
		b = appendQuote(b, t.text)
	default:
		b = append(b, `"content":null,"reasoning_content":`...)
		b = appendQuote(b, t.text)
	}
	return b
}

// stream sends sc as an SSE answer.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req Request, sc Script) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	sw := &streamWriter{
		w: w, rc: http.NewResponseController(w), sc: sc, model: req.Model, first: true,
		id: "chatcmpl-llmtest-" + strconv.FormatInt(s.ids.Add(1), 10),
	}
	if err := sw.rc.Flush(); err != nil {
		s.noteDisconnect()
		return
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	toks := sc.tokens()
	for i, t := range toks {
		if sc.Fail != NoFailure && i == sc.FailAfter {
			s.fail(sw, sc)
			return
		}
		if sc.Interval > 0 {
			timer.Reset(sc.Interval)
			select {
			case <-r.Context().Done():
				timer.Stop()
				s.noteDisconnect()
				return
			case <-timer.C:
			}
		}
		if sc.KeepAlive {
			if err := sw.raw([]byte(": keep-alive\n\n")); err != nil {
				s.noteDisconnect()
				return
			}
		}
		chunk := sw.chunk(sw.delta(t), "", nil, true, "")
		if sc.Sent != nil {
			sc.Sent(i, len(toks))
		}
		if err := sw.send(chunk); err != nil {
			s.noteDisconnect()
			return
		}
	}
	if sc.Fail != NoFailure {
		s.fail(sw, sc)
		return
	}
	if !s.sendToolCalls(sw, r, timer) {
		return
	}
	if r.Context().Err() != nil {
		s.noteDisconnect()
		return
	}
	u := sc.usage(req)
	var err error
	switch {
	case sc.NoUsage:
		err = sw.send(sw.chunk(nil, sc.finishReason(), nil, true, ""))
	case sc.Dialect == VLLM, sc.Dialect == Ollama:
		err = sw.send(sw.chunk(nil, sc.finishReason(), nil, true, ""))
		if err == nil && req.IncludeUsage {
			err = sw.send(sw.chunk(nil, "", &u, false, ""))
		}
	case sc.Dialect == LlamaCpp:
		err = sw.send(sw.chunk(nil, sc.finishReason(), &u, true,
			`,"timings":{"prompt_n":`+strconv.Itoa(u.PromptTokens)+`,"predicted_n":`+strconv.Itoa(u.CompletionTokens)+`}`))
	default:
		err = sw.send(sw.chunk(nil, sc.finishReason(), &u, true, ""))
	}
	if err == nil && !sc.NoDone {
		err = sw.send([]byte("[DONE]"))
	}
	if err != nil {
		s.noteDisconnect()
	}
}

// fail ends a stream the way sc.Fail says.
func (s *Server) fail(sw *streamWriter, sc Script) {
	msg := appendQuote(nil, sc.failMessage())
	switch sc.Fail {
	case FailErrorChunk:
		sw.send([]byte(`{"error":{"message":` + string(msg) + `,"type":"server_error","param":null,"code":500}}`))
	case FailErrorField:
		sw.raw([]byte(`error: {"code":500,"message":` + string(msg) + `,"type":"server_error"}` + "\n\n"))
		sw.send([]byte("[DONE]"))
	case FailErrorEvent:
		sw.raw([]byte("event: error\ndata: {\"code\":500,\"message\":" + string(msg) + "}\n\n"))
	case FailDrop:
		// Abort the response: the connection closes without the end of
		// the chunked body.
		panic(http.ErrAbortHandler)
	}
}

// complete sends sc as a whole chat.completion.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, req Request, sc Script) {
	switch sc.Fail {
	case FailDrop:
		panic(http.ErrAbortHandler)
	case FailErrorChunk:
		writeJSON(w, http.StatusOK, map[string]any{"error": map[string]any{
			"message": sc.failMessage(), "type": "server_error", "code": 500}})
		return
	case FailErrorField, FailErrorEvent:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]any{
			"message": sc.failMessage(), "type": "server_error", "code": 500}})
		return
	}
	if sc.Interval > 0 {
		t := time.NewTimer(sc.Interval * time.Duration(len(sc.Reasoning)+len(sc.Content)))
		select {
		case <-r.Context().Done():
			t.Stop()
			s.noteDisconnect()
			return
		case <-t.C:
		}
	}
	var content, reasoning []byte
	for _, t := range sc.tokens() {
		if t.reasoning {
			reasoning = append(reasoning, t.text...)
		} else {
			content = append(content, t.text...)
		}
	}
	msg := map[string]any{"role": "assistant", "content": string(content)}
	if len(sc.ToolCalls) > 0 {
		msg["tool_calls"] = sc.wholeToolCalls()
		if len(content) == 0 {
			msg["content"] = nil
		}
	}
	if len(reasoning) > 0 {
		switch sc.Dialect {
		case VLLM, Ollama:
			msg["reasoning"] = string(reasoning)
		default:
			msg["reasoning_content"] = string(reasoning)
		}
	}
	answer := map[string]any{
		"id":      "chatcmpl-llmtest-" + strconv.FormatInt(s.ids.Add(1), 10),
		"object":  "chat.completion",
		"created": created,
		"model":   req.Model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": sc.finishReason()}},
	}
	if !sc.NoUsage {
		answer["usage"] = sc.usage(req)
	}
	writeJSON(w, http.StatusOK, answer)
}

// appendUsage renders a usage object.
func appendUsage(b []byte, u llm.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
	return append(b, '}')
}

// quote renders s as a JSON string.
func quote(s string) string { return string(appendQuote(nil, s)) }

// appendQuote appends s as a JSON string.
func appendQuote(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
