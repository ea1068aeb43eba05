package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
// with DeepInfra's optional metadata.context_length and metadata.pricing).
// A successful list is cached for Options.ModelsTTL; concurrent callers
// share one request, which is not cancelled when one of them gives up.
// Failures are not cached. The returned slice is the caller's.
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	c.mu.Lock()
	if c.models != nil && c.now().Sub(c.modelsAt) < c.modelsTTL {
		m := cloneModels(c.models)
		c.mu.Unlock()
		return m, nil
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

// fetchModels runs one shared fetch and publishes its result.
func (c *Client) fetchModels(ctx context.Context, f *modelsFetch) {
	// The fetch outlives its first caller, so it gets a bound of its own.
	ctx, cancel := context.WithTimeout(ctx, c.timeouts.FirstByte+c.timeouts.Idle)
	defer cancel()
	f.models, f.err = c.listModels(ctx)
	c.mu.Lock()
	if f.err == nil {
		c.models, c.modelsAt = f.models, c.now()
	}
	c.fetching = nil
	c.mu.Unlock()
	close(f.done)
}

// modelsJSON is the OpenAI model-list shape with DeepInfra's metadata.
type modelsJSON struct {
	Data []struct {
		ID       string `json:"id"`
		OwnedBy  string `json:"owned_by"`
		Metadata *struct {
			ContextLength int      `json:"context_length"`
			Pricing       *Pricing `json:"pricing"`
		} `json:"metadata"`
	} `json:"data"`
}

// listModels fetches and decodes the model list.
func (c *Client) listModels(ctx context.Context) ([]Model, error) {
	resp, err := c.Do(ctx, http.MethodGet, "/models", nil, false)
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
		return nil, fmt.Errorf("llm: %s: decode model list: %w", c.p.Name, err)
	}
	models := make([]Model, 0, len(mj.Data))
	for _, d := range mj.Data {
		if d.ID == "" {
			continue
		}
		m := Model{Provider: c.p.Name, ID: d.ID, OwnedBy: d.OwnedBy}
		if d.Metadata != nil {
			m.ContextLength = d.Metadata.ContextLength
			m.Pricing = d.Metadata.Pricing
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
