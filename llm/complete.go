package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxCompletionBody bounds a non-streamed answer.
const maxCompletionBody = 64 << 20

// Complete sends req as a non-streamed chat completion and returns the
// whole answer, reasoning kept apart from content as Stream does. A
// refused request is a *StatusError; an error object in a 200 answer is a
// *StreamError.
func (c *Client) Complete(ctx context.Context, req Request) (Completion, error) {
	body, err := encodeRequest(req, false)
	if err != nil {
		return Completion{}, err
	}
	resp, err := c.Do(ctx, http.MethodPost, "/chat/completions", body, false)
	if err != nil {
		return Completion{}, err
	}
	defer resp.Body.Close()
	comp, _, err := c.readCompletion(ctx, resp.Body, c.implicit(req.Model))
	return comp, err
}

// completionJSON is the part of a chat.completion object the client reads.
type completionJSON struct {
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
			Reasoning        string `json:"reasoning"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage          `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// readCompletion decodes a chat.completion body.
func (c *Client) readCompletion(ctx context.Context, body io.Reader, implicit bool) (comp Completion, hasUsage bool, err error) {
	data, err := io.ReadAll(io.LimitReader(body, maxCompletionBody))
	if err != nil {
		if ctx.Err() != nil {
			return comp, false, fmt.Errorf("llm: %s: %w", c.p.Name, ctx.Err())
		}
		return comp, false, fmt.Errorf("llm: %s: read completion: %w", c.p.Name, err)
	}
	var cj completionJSON
	if err := json.Unmarshal(data, &cj); err != nil {
		return comp, false, fmt.Errorf("llm: %s: decode completion: %w: %w", c.p.Name, ErrMalformed, err)
	}
	if len(cj.Error) > 0 && string(cj.Error) != "null" {
		return comp, false, newStreamError(c.p.Name, data)
	}
	found := false
	for _, ch := range cj.Choices {
		if ch.Index != 0 {
			continue
		}
		found = true
		m := ch.Message
		comp.Reasoning = m.ReasoningContent
		if comp.Reasoning == "" {
			comp.Reasoning = m.Reasoning
		}
		content, reasoning := splitThink(m.Content, implicit && comp.Reasoning == "")
		comp.Content = content
		comp.Reasoning += reasoning
		comp.FinishReason = ch.FinishReason
		break
	}
	if !found {
		return comp, false, fmt.Errorf("llm: %s: %w: completion has no choices", c.p.Name, ErrMalformed)
	}
	if cj.Usage != nil {
		comp.Usage, hasUsage = *cj.Usage, true
	}
	return comp, hasUsage, nil
}
