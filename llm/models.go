package llm

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxModelsBody bounds a model list.
const maxModelsBody = 32 << 20

// modelsFetch is a model-list request that concurrent callers share.
type modelsFetch struct {
	done   chan struct{}
	models []Model
	err    error
}

// Models lists the provider's models (GET /models, the OpenAI list shape,
// with DeepInfra's optional metadata.context_length, metadata.pricing and
// metadata.tags, which set Model.Vision, Tools and Reasoning (see
// capabilities.go), and the context length vLLM gives as max_model_len and
// others as a top-level context_length).
// A successful list is cached for Options.ModelsTTL; concurrent callers
// share one request, which is not cancelled when one of them gives up.
// The request is made once, never retried: a caller may be a chat message
// waiting for its answer.
//
// A failure is a *ListError, remembered and returned at once, without a
// request, until its Until (see Options.ModelsRetry); the first call after
// that asks the provider again. The returned slice is the caller's.
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	c.mu.Lock()
	now := c.now()
	if c.models != nil && now.Sub(c.modelsAt) < c.modelsTTL {
		m := cloneModels(c.models)
		c.mu.Unlock()
		return m, nil
	}
	if le := c.listErr; le != nil && now.Before(le.Until) {
		c.mu.Unlock()
		return nil, le
	}
	f := c.fetching
	if f == nil {
		f = &modelsFetch{done: make(chan struct{})}
		c.fetching = f
		go c.fetchModels(context.WithoutCancel(ctx), f)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return cloneModels(f.models), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("llm: %s: list models: %w", c.p.Name, ctx.Err())
	}
}

// fetchModels runs one shared fetch and publishes its result: the list,
// or the failure and when to ask again.
func (c *Client) fetchModels(ctx context.Context, f *modelsFetch) {
	// The fetch outlives its first caller, so it gets a bound of its own.
	ctx, cancel := context.WithTimeout(ctx, c.timeouts.FirstByte+c.timeouts.Idle)
	defer cancel()
	models, err := c.listModels(ctx)
	c.mu.Lock()
	if err == nil {
		f.models = models
		c.models, c.modelsAt = models, c.now()
		c.listErr, c.listFail = nil, 0
	} else {
		c.listFail++
		wait := c.listRetry.Base
		for i := 1; i < c.listFail && wait < c.listRetry.Max; i++ {
			wait *= 2
		}
		le := &ListError{Provider: c.p.Name, Err: err, Until: c.now().Add(min(wait, c.listRetry.Max))}
		f.err, c.listErr = le, le
	}
	c.fetching = nil
	c.mu.Unlock()
	close(f.done)
}

// ListError is a provider's failure to list its models. Client.Models
// returns it again, without asking the provider, until Until.
type ListError struct {
	// Provider is the configured provider name.
	Provider string
	// Err is the failure: a *StatusError, a failure to reach the server
	// (see Unreachable), a timeout, or a list that could not be decoded.
	Err error
	// Until is when the provider will be asked again.
	Until time.Time
}

func (e *ListError) Error() string {
	// Err names the provider already ("llm: NAME: …"): say it once.
	return "llm: " + e.Provider + ": list models: " + strings.TrimPrefix(e.Err.Error(), "llm: "+e.Provider+": ")
}

func (e *ListError) Unwrap() error { return e.Err }

// Reason is the failure in one line for a person, with what to do next,
// and never Go's error text: "deepinfra unreachable: could not reach
// api.deepinfra.com; check the network connection and
// providers.deepinfra.base_url". It starts with the provider's name and
// has no final period, so that lists of them read well.
func (e *ListError) Reason() string {
	p := e.Provider
	if host, ok := Unreachable(e.Err); ok {
		return p + " unreachable: " + CouldNotReach(p, host)
	}
	if se, ok := errors.AsType[*StatusError](e.Err); ok {
		switch st := se.StatusCode; {
		case se.NeedsKey():
			return fmt.Sprintf("%s unavailable: it refused anonymous access; set providers.%s.api_key", p, p)
		case st == http.StatusUnauthorized || st == http.StatusForbidden:
			return fmt.Sprintf("%s unavailable: it refused the API key (HTTP %d); check providers.%s.api_key", p, st, p)
		case st == http.StatusTooManyRequests:
			return p + " unavailable: it is rate limiting us; try again shortly"
		case st >= 500:
			return fmt.Sprintf("%s unavailable: server error (HTTP %d); try again shortly", p, st)
		}
		return fmt.Sprintf("%s unavailable: it refused to list its models (HTTP %d); check providers.%s.base_url", p, se.StatusCode, p)
	}
	switch {
	case errors.Is(e.Err, ErrFirstByteTimeout), errors.Is(e.Err, ErrIdleTimeout), errors.Is(e.Err, context.DeadlineExceeded):
		return p + " unavailable: it did not answer in time; try again shortly"
	case errors.Is(e.Err, ErrMalformed):
		return fmt.Sprintf("%s unavailable: its model list could not be read; check providers.%s.base_url", p, p)
	}
	return p + " unavailable: its model list could not be fetched (the log has the details)"
}

// ListErrors returns the *ListError values in err's tree (wrapped, or
// joined as Router.Models joins them), in order.
func ListErrors(err error) []*ListError {
	var out []*ListError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *ListError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// modelsJSON is the OpenAI model-list shape with DeepInfra's metadata.
type modelsJSON struct {
	Data []struct {
		ID            string `json:"id"`
		OwnedBy       string `json:"owned_by"`
		ContextLength int    `json:"context_length"`
		MaxModelLen   int    `json:"max_model_len"`
		Metadata      *struct {
			ContextLength int      `json:"context_length"`
			Pricing       *Pricing `json:"pricing"`
			Tags          []string `json:"tags"`
		} `json:"metadata"`
	} `json:"data"`
}

// listModels fetches and decodes the model list.
func (c *Client) listModels(ctx context.Context) ([]Model, error) {
	resp, err := c.do(ctx, http.MethodGet, "/models", nil, false, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxModelsBody))
	if err != nil {
		return nil, fmt.Errorf("llm: %s: read model list: %w", c.p.Name, err)
	}
	var mj modelsJSON
	if err := json.Unmarshal(data, &mj); err != nil {
		return nil, fmt.Errorf("llm: %s: decode model list: %w: %w", c.p.Name, ErrMalformed, err)
	}
	models := make([]Model, 0, len(mj.Data))
	for _, d := range mj.Data {
		if d.ID == "" {
			continue
		}
		m := Model{Provider: c.p.Name, ID: d.ID, OwnedBy: d.OwnedBy, ContextLength: cmp.Or(d.ContextLength, d.MaxModelLen)}
		if d.Metadata != nil {
			m.ContextLength = cmp.Or(d.Metadata.ContextLength, m.ContextLength)
			m.Pricing = d.Metadata.Pricing
			m.applyTags(d.Metadata.Tags)
		}
		models = append(models, m)
	}
	return models, nil
}

// cloneModels copies a list, Pricing included, so callers may change it.
func cloneModels(ms []Model) []Model {
	out := make([]Model, len(ms))
	for i, m := range ms {
		if m.Pricing != nil {
			p := *m.Pricing
			m.Pricing = &p
		}
		out[i] = m
	}
	return out
}
