package gateway

import (
	"context"
	"net/http"
)

// embeddings serves POST /v1/embeddings: the body goes to the provider
// that serves the model, with the provider's model id and every other
// field as the client sent it, and the answer (a JSON object with a
// "data" list) comes back as it is. Keys, limits, usage and logs are
// those of chat completions.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	e := entryFrom(r)
	key, body, release, ok := s.intake(w, r, routeEmbeddings, s.opts.MaxBody, nil)
	if !ok {
		return
	}
	defer release()
	fields, name, _, apiErr := parseChat(body)
	if apiErr != nil {
		writeError(w, r, apiErr)
		return
	}
	if raw, ok := fields["input"]; !ok || string(raw) == "null" {
		writeError(w, r, badField("input", "\"input\" is required: a string or a list of strings (or of token lists)"))
		return
	}
	e.model = name
	res, ok := s.resolve(w, r, name)
	if !ok {
		return
	}
	record, ok := s.meter(w, r, key, res.Name)
	if !ok {
		return
	}
	defer record(e, len(body))
	out, err := encodeChat(fields, res.ID)
	if err != nil {
		writeError(w, r, newError(http.StatusBadRequest, typeInvalidRequest, "invalid_json", "cannot re-encode the body: %v", err))
		return
	}
	provider := res.Client.Name()
	resp, err := upstream(r, func(ctx context.Context) (*http.Response, error) {
		return res.Client.Do(ctx, http.MethodPost, "/embeddings", out, false)
	})
	if err != nil {
		failUpstream(w, r, endpointError(r, provider, res.Name, "embeddings", err), err)
		return
	}
	defer resp.Body.Close()
	data, ok := s.readAnswer(w, r, provider, resp, "data", "an embedding list")
	if !ok {
		return
	}
	writeJSON(w, r, data)
}
