package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/palaver-bot/palaver/llm"
)

// includeUsage reports whether a chat request asks for
// stream_options.include_usage.
func includeUsage(fields map[string]json.RawMessage) bool {
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	return json.Unmarshal(fields["stream_options"], &so) == nil && so.IncludeUsage
}

// sendChat sends a chat request, fields with model replaced by the
// provider's id, to res's provider. A provider that refuses
// "stream_options" (a 400 or 422 that names the field, from a server that
// predates it) gets the request again without it, and is remembered for
// the life of the Server: later requests to it leave the field out at
// once. The relay still ends such a stream with the usage chunk the
// client asked for when the provider sends usage another way (see
// relayStream). When the request fails, the client is answered and ok is
// false.
func (s *Server) sendChat(w http.ResponseWriter, r *http.Request, res llm.Resolution, fields map[string]json.RawMessage, stream bool) (resp *http.Response, ok bool) {
	e := entryFrom(r)
	provider := res.Client.Name()
	_, strip := s.noStreamOptions.Load(provider)
	for {
		_, has := fields["stream_options"]
		if strip && has {
			delete(fields, "stream_options")
			has = false
		}
		body, err := encodeChat(fields, res.ID)
		if err != nil {
			writeError(w, r, newError(http.StatusBadRequest, typeInvalidRequest, "invalid_json", "cannot re-encode the body: %v", err))
			return nil, false
		}
		resp, err := upstream(r, func(ctx context.Context) (*http.Response, error) {
			return res.Client.Do(ctx, http.MethodPost, "/chat/completions", body, stream)
		})
		if err == nil {
			return resp, true
		}
		if has && refusesStreamOptions(err) {
			if _, known := s.noStreamOptions.LoadOrStore(provider, true); !known {
				s.log.LogAttrs(r.Context(), slog.LevelInfo, "gateway: provider refuses stream_options; leaving it out of its requests",
					slog.String("provider", provider))
			}
			strip = true
			continue
		}
		if apiErr := upstreamError(r.Context(), provider, res.Name, err); apiErr != nil {
			e.cause = err
			writeError(w, r, apiErr)
		} else {
			e.gone = true
		}
		return nil, false
	}
}

// refusesStreamOptions reports whether err is a provider's refusal of the
// "stream_options" field: 400 or 422 with a body that names it.
func refusesStreamOptions(err error) bool {
	se, ok := errors.AsType[*llm.StatusError](err)
	return ok && (se.StatusCode == http.StatusBadRequest || se.StatusCode == http.StatusUnprocessableEntity) &&
		bytes.Contains(se.Body, []byte("stream_options"))
}
