package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// Meter accounts for the endpoint's requests to providers (chat
// completions, responses, embeddings, transcriptions) by API key: it may
// refuse one over a budget, and records what each one used.
// sessions.Ledger satisfies it.
type Meter interface {
	// Admit is asked before a request of key (its name in the logs,
	// "key#1", or "anonymous") for model ("provider/model") goes upstream;
	// it may wait (answers in flight near a limit). An error that has a
	// RetryAfter() time.Duration method (a budget refusal) is answered
	// with 429 and its text, any other with 500. Otherwise the returned
	// function is called once, when the request has ended, with the
	// provider's usage or, when it sent none, an estimate (estimated
	// true); zero usage when nothing was answered.
	Admit(ctx context.Context, key, model string) (record func(u llm.Usage, estimated bool), err error)
}

// refusal is a Meter's refusal of a request over a budget.
type refusal interface {
	error
	RetryAfter() time.Duration
}

// typeInsufficientQuota is the error type OpenAI's API gives a request
// over the account's quota, with 429.
const typeInsufficientQuota = "insufficient_quota"

// admit asks the Meter, if any, to admit r, a request of key for model.
// The returned function records the request's usage as e noted it, or an
// estimate from the request body's size and what was relayed. When the
// request may not go on, ok is false and apiErr says why, or is nil when
// the client has gone.
func (s *Server) admit(r *http.Request, key, model string) (record func(e *entry, body int), apiErr *apiError, ok bool) {
	if s.opts.Meter == nil {
		return func(*entry, int) {}, nil, true
	}
	ctx := r.Context()
	rec, err := s.opts.Meter.Admit(ctx, key, model)
	if err != nil {
		if ctx.Err() != nil {
			return nil, upstreamError(ctx, "", model, err), false
		}
		if ra, ok := errors.AsType[refusal](err); ok {
			apiErr := newError(http.StatusTooManyRequests, typeInsufficientQuota, typeInsufficientQuota, "%s", err.Error())
			apiErr.retryAfter = ra.RetryAfter()
			return nil, apiErr, false
		}
		entryFrom(r).cause = err
		return nil, newError(http.StatusInternalServerError, typeServer, "internal_error", "the usage limits could not be checked"), false
	}
	return func(e *entry, body int) {
		if e.hasUsage {
			rec(e.usage, false)
			return
		}
		rec(estimateUsage(e, body), true)
	}, nil, true
}

// estimateUsage estimates the tokens of a request whose provider sent no
// usage: a token per 4 bytes of the request body, and one per event
// relayed (providers send about a token per chunk) or per 4 bytes of a
// whole answer. Nothing relayed counts nothing.
func estimateUsage(e *entry, body int) llm.Usage {
	completion := e.events
	if e.answerBytes > 0 {
		completion = e.answerBytes / 4
	}
	if completion == 0 {
		return llm.Usage{}
	}
	u := llm.Usage{PromptTokens: body / 4, CompletionTokens: completion}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// meter is admit for a handler: when the request may not go on, it
// answers the client (or notes that the client has gone) and ok is false.
func (s *Server) meter(w http.ResponseWriter, r *http.Request, key, model string) (record func(e *entry, body int), ok bool) {
	record, apiErr, ok := s.admit(r, key, model)
	if !ok {
		if apiErr != nil {
			writeError(w, r, apiErr)
		} else {
			entryFrom(r).gone = true
		}
	}
	return record, ok
}
