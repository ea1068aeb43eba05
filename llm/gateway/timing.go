package gateway

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Routes, as Server-Timing and Options.Overhead name them.
const (
	routeChat           = "chat"
	routeResponses      = "responses"
	routeEmbeddings     = "embeddings"
	routeTranscriptions = "transcriptions"
)

// timeResponse runs as the response's status line is written. For an API
// route it sets the Server-Timing header, which splits the time to the
// response's first byte in two:
//
//	Server-Timing: provider;dur=812.250;desc="provider first byte", palaver;dur=0.187;desc="palaver"
//
// provider is the time spent waiting for the provider: for its response
// headers and, for a chat stream, its first event, or for a whole answer
// the whole answer (its absence means no request went upstream); palaver
// is the rest, Palaver's own time (reading and checking the request,
// resolving the model, translating). Durations are in milliseconds. When a
// request went upstream, Options.Overhead gets Palaver's own time.
func (e *entry) timeResponse(h http.Header) {
	if e.route == "" {
		return
	}
	own := max(time.Since(e.start)-e.upstream, 0)
	b := make([]byte, 0, 96)
	if e.upstreamUsed {
		b = append(b, "provider;dur="...)
		b = appendMillis(b, e.upstream)
		b = append(b, `;desc="provider first byte", `...)
	}
	b = append(b, "palaver;dur="...)
	b = appendMillis(b, own)
	b = append(b, `;desc="palaver"`...)
	h.Set("Server-Timing", string(b))
	if e.upstreamUsed && e.overhead != nil {
		e.overhead(e.route, own)
	}
}

// appendMillis appends d in milliseconds with three decimals.
func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// upstream sends one request to a provider through do, counting the wait
// as the provider's time (see timeResponse).
func upstream(r *http.Request, do func(ctx context.Context) (*http.Response, error)) (*http.Response, error) {
	e := entryFrom(r)
	e.upstreamUsed = true
	t := time.Now()
	resp, err := do(r.Context())
	e.upstream += time.Since(t)
	return resp, err
}
