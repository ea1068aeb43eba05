package gateway

import (
	"github.com/palaver-bot/palaver/llm/sse"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

var (
	dataPrefix = []byte("data: ")
	eventEnd   = []byte("\n\n")
	doneEvent  = []byte("data: [DONE]\n\n")
)

// relayStream sends a provider's SSE answer on, event by event (see the
// package documentation). The response starts with the first event, so
// that nothing is committed before the provider has answered, and the
// wait for that event counts as the provider's time (timing.go).
//
// When wantUsage is set (the client asked for
// stream_options.include_usage), the stream keeps OpenAI's contract,
// which SDKs rely on (openai-go adds up the usage of every chunk): the
// usage comes once, in a chunk with "choices": [] just before [DONE].
// A provider that puts its usage on a chunk with choices (its finish
// chunk: DeepInfra, llama.cpp, or any provider sent the request without
// stream_options) has that usage replaced with null, every other byte of
// the chunk kept, and the relay adds the usage chunk unless the provider
// sends its own.
func (s *Server) relayStream(w http.ResponseWriter, r *http.Request, provider string, body io.ReadCloser, wantUsage bool) {
	e := entryFrom(r)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)

	rd := sse.NewReader(&eventLimiter{r: body, max: s.opts.MaxEvent}, 16<<10)
	rd.Comments = true
	var (
		buf        []byte
		finished   bool
		flushed    bool
		usageChunk bool      // the provider sent a usage-only chunk
		last       chunkInfo // the last decoded chunk with usage
	)
	// send writes one event and flushes it when it is the first or when
	// no further event is already buffered. It reports false when the
	// client has gone.
	send := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			e.gone = true
			return false
		}
		if !flushed || !rd.Buffered() {
			flushed = true
			if err := rc.Flush(); err != nil {
				e.gone = true
				return false
			}
		}
		return true
	}
	fail := func(err *apiError) {
		e.noteError(err)
		buf = append(append(append(buf[:0], dataPrefix...), err.body()...), eventEnd...)
		if send(buf) {
			rc.Flush()
		}
	}
	// done ends the stream, with the usage chunk the client asked for
	// when the provider sent none.
	done := func() {
		if wantUsage && !usageChunk && last.usageRaw != nil {
			buf = append(appendData(append(buf[:0], dataPrefix...), appendUsageChunk(nil, last)), eventEnd...)
			if !send(buf) {
				return
			}
		}
		if send(doneEvent) {
			rc.Flush()
		}
	}
	for {
		t := time.Now()
		ev, err := rd.Next()
		if !flushed {
			e.upstream += time.Since(t)
		}
		if err != nil {
			switch {
			case context.Cause(r.Context()) == errShuttingDown:
				fail(shuttingDown())
				if send(doneEvent) {
					rc.Flush()
				}
			case r.Context().Err() != nil:
				e.gone = true
			case errors.Is(err, errEventTooLarge), errors.Is(err, sse.ErrLineTooLong):
				fail(newError(http.StatusBadGateway, typeServer, "upstream_event_too_large",
					"provider %s sent a stream event larger than %d bytes; the stream ends here", provider, s.opts.MaxEvent))
			case finished:
				// The provider finished but left out [DONE] (or broke
				// the connection after its last chunk): end the stream
				// as clients expect.
				done()
			default:
				fail(truncated(provider, err))
			}
			return
		}
		switch ev.Kind {
		case sse.Comment:
			buf = append(append(buf[:0], ev.Data...), eventEnd...)
			if !send(buf) {
				return
			}
			continue
		case sse.Error, sse.ErrorField:
			fail(newError(http.StatusBadGateway, typeServer, "upstream_error",
				"provider %s: %s", provider, errorMessage(ev.Data)))
			return
		}
		if string(ev.Data) == "[DONE]" {
			done()
			rd.Drain(body, drainWait)
			return
		}
		info := inspectChunk(ev.Data)
		data := ev.Data
		if info.usage != nil {
			e.noteUsage(*info.usage) // the last one counts: usage sent twice is the same usage
			last = info
			usageChunk = usageChunk || info.usageOnly
			if wantUsage && !info.usageOnly {
				data = nullUsage(data) // the usage goes in the usage chunk, once
			}
		}
		e.events++
		finished = finished || info.finished
		buf = append(appendData(append(buf[:0], dataPrefix...), data), eventEnd...)
		if info.errRaw != nil {
			// The provider's own error event, relayed as it is, ends the
			// stream.
			e.err = "provider " + provider + ": " + errorMessage(info.errRaw)
			if send(buf) {
				rc.Flush()
			}
			return
		}
		if !send(buf) {
			return
		}
	}
}

// appendUsageChunk appends the usage-only chunk of
// stream_options.include_usage, with the id, created time and model of
// the provider's chunk that carried the usage.
func appendUsageChunk(b []byte, c chunkInfo) []byte {
	or := func(raw json.RawMessage, def string) []byte {
		if len(raw) == 0 {
			return []byte(def)
		}
		return raw
	}
	b = append(b, `{"id":`...)
	b = append(b, or(c.id, `""`)...)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = append(b, or(c.created, "0")...)
	b = append(b, `,"model":`...)
	b = append(b, or(c.model, `""`)...)
	b = append(b, `,"choices":[],"usage":`...)
	b = append(b, c.usageRaw...)
	return append(b, '}')
}

// appendData appends an event's data, writing a multi-line payload as
// several "data:" lines.
func appendData(buf, data []byte) []byte {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return append(buf, data...)
		}
		buf = append(append(buf, data[:i]...), "\ndata: "...)
		data = data[i+1:]
	}
}

// errEventTooLarge is the read error of an event longer than its bound.
var errEventTooLarge = errors.New("stream event too large")

// eventLimiter fails a read with errEventTooLarge once one event of the
// SSE stream it reads grows past max bytes (its bytes up to the blank line
// that ends it), so that the relay holds at most about max bytes of one
// event, however long a provider makes it. A blank line is an empty line
// or a lone "\r" before the "\n".
type eventLimiter struct {
	r    io.Reader
	max  int
	n    int  // bytes of the event's complete lines, their ends included
	line int  // bytes of the line being read, before its "\n"
	cr   bool // the line being read starts with '\r'
}

func (l *eventLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for b := p[:n]; len(b) > 0; {
		i := bytes.IndexByte(b, '\n')
		seg := b
		if i >= 0 {
			seg = b[:i]
		}
		if l.line == 0 && len(seg) > 0 {
			l.cr = seg[0] == '\r'
		}
		l.line += len(seg)
		if i >= 0 { // the line ends
			if l.line == 0 || l.line == 1 && l.cr {
				l.n = 0 // a blank line: the event ends
			} else {
				l.n += l.line + 1
			}
			l.line = 0
		}
		// A line that is a lone "\r" so far may be the blank line.
		if l.n+l.line > l.max && !(l.line == 1 && l.cr) {
			return n, errEventTooLarge
		}
		if i < 0 {
			break
		}
		b = b[i+1:]
	}
	return n, err
}

// drainWait bounds the wait for the end of a body after [DONE].
const drainWait = 250 * time.Millisecond

// truncated is the error event that ends a stream the provider did not
// finish.
func truncated(provider string, err error) *apiError {
	switch {
	case errors.Is(err, llm.ErrIdleTimeout), errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusGatewayTimeout, typeServer, "upstream_timeout",
			"provider %s stopped sending before the answer was finished", provider)
	case err == io.EOF:
		return newError(http.StatusBadGateway, typeServer, "upstream_truncated",
			"provider %s ended the stream before the answer was finished", provider)
	}
	return newError(http.StatusBadGateway, typeServer, "upstream_truncated",
		"provider %s broke the stream before the answer was finished: %v", provider, err)
}
