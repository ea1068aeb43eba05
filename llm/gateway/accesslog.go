package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// entry collects what the request log line says about one request.
type entry struct {
	start time.Time
	level slog.Level

	key      string
	client   string // the client's address, noted for a failed authentication
	model    string
	stream   bool
	usage    llm.Usage
	hasUsage bool
	// events counts the stream's data events relayed, answerBytes the
	// size of a whole answer: what estimates the usage of a provider
	// that reports none.
	events      int
	answerBytes int
	gone        bool // the client hung up before the answer was complete
	err         string
	cause       error // the error behind err, for the operator's log only

	// route names the API route that served the request ("chat",
	// "responses", …; "" for the others), for Server-Timing and
	// Options.Overhead (timing.go).
	route string
	// upstream is the time spent waiting for the provider before the
	// response's first byte; upstreamUsed is set once a request went
	// to a provider.
	upstream     time.Duration
	upstreamUsed bool
	overhead     func(route string, d time.Duration)
}

type entryKey struct{}

// entryFrom returns the request's log entry (a scratch one for requests
// that did not come through ServeHTTP).
func entryFrom(r *http.Request) *entry {
	if e, ok := r.Context().Value(entryKey{}).(*entry); ok {
		return e
	}
	return &entry{}
}

// noteError records the message of an error sent to the client.
func (e *entry) noteError(err *apiError) { e.err = err.Message }

// noteUsage records the provider's token counts.
func (e *entry) noteUsage(u llm.Usage) { e.usage, e.hasUsage = u, true }

// recorder is the ResponseWriter handlers see: it notes the status and
// the time of the first body byte. Unwrap lets http.ResponseController
// reach the connection's Flush and deadlines.
type recorder struct {
	http.ResponseWriter
	e         *entry
	status    int
	firstByte time.Duration
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.e.timeResponse(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.e.timeResponse(w.Header())
	}
	if w.firstByte == 0 {
		w.firstByte = max(time.Since(w.e.start), 1)
	}
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequest writes the request's log line.
func (s *Server) logRequest(r *http.Request, w *recorder, e *entry) {
	ctx := context.WithoutCancel(r.Context())
	if !s.log.Enabled(ctx, e.level) {
		return
	}
	status := w.status
	if e.gone {
		status = statusClientClosed
	} else if status == 0 {
		status = http.StatusOK
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
	)
	if e.key != "" {
		attrs = append(attrs, slog.String("key", e.key))
	}
	if e.client != "" {
		attrs = append(attrs, slog.String("client", e.client))
	}
	if e.model != "" {
		attrs = append(attrs, slog.String("model", e.model), slog.Bool("stream", e.stream))
	}
	if e.hasUsage {
		attrs = append(attrs,
			slog.Int("prompt_tokens", e.usage.PromptTokens),
			slog.Int("completion_tokens", e.usage.CompletionTokens))
		if n := e.usage.CompletionDetails.ReasoningTokens; n > 0 {
			attrs = append(attrs, slog.Int("reasoning_tokens", n))
		}
	}
	if w.firstByte > 0 {
		attrs = append(attrs, slog.Duration("ttfb", w.firstByte))
	}
	attrs = append(attrs, slog.Duration("duration", time.Since(e.start)))
	if e.err != "" {
		attrs = append(attrs, slog.String("error", e.err))
		if e.cause != nil {
			attrs = append(attrs, slog.String("cause", e.cause.Error()))
		}
	}
	s.log.LogAttrs(ctx, e.level, "request", attrs...)
}
