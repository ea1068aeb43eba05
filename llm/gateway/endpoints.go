package gateway

import (
	"errors"
	"net/http"

	"github.com/palaver-bot/palaver/llm"
)

// endpointError is what a client is told when a provider failed a request
// to one of its endpoints other than chat completions (what names it:
// "embeddings", "transcription"). A provider without that endpoint, or
// without it for that model, answers 404, 405 or 501 (llama.cpp started
// without --embeddings): the client gets a 404 that names the provider
// and the model. Other failures are told as for chat completions.
func endpointError(r *http.Request, provider, canonical, what string, err error) *apiError {
	if se, ok := errors.AsType[*llm.StatusError](err); ok && r.Context().Err() == nil {
		switch se.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return newError(http.StatusNotFound, typeInvalidRequest, "model_not_found",
				"provider %s has no %s for model %s (HTTP %d: %s)", provider, what, canonical, se.StatusCode, se.Message).withParam("model")
		}
	}
	return upstreamError(r.Context(), provider, canonical, err)
}

// failUpstream answers a request whose upstream request failed (see
// endpointError), or notes that the client has gone.
func failUpstream(w http.ResponseWriter, r *http.Request, apiErr *apiError, err error) {
	e := entryFrom(r)
	if apiErr == nil {
		e.gone = true
		return
	}
	e.cause = err
	writeError(w, r, apiErr)
}
