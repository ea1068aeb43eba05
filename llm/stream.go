package llm

import (
	"github.com/palaver-bot/palaver/llm/sse"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"time"
)

// Stream sends req as a streamed chat completion and returns its steps.
//
// Each Delta carries new Content and/or Reasoning text. A normal end is one
// last Delta with the FinishReason and the last Usage the server sent (nil
// when it sent none); it is yielded when the stream is over ("[DONE]" or
// the end of the body), so that usage sent in a chunk after the finish
// chunk (Ollama, vLLM) is included. A failure is yielded once as an error,
// which ends the sequence: a *StatusError (the request was refused), a
// *StreamError (the server reported an error mid-stream), an error
// wrapping ErrTruncated (the stream ended, broke or stalled before a finish
// reason; it may also wrap ErrIdleTimeout or the read error), an error
// wrapping sse.ErrLineTooLong (one line or event of the stream was longer
// than sse.MaxLine: it was not read whole, and the connection is closed),
// or ctx's error. A stream that broke after its finish reason is a normal end.
// Requests are retried only before the response starts, never after text
// was delivered. Breaking out of the loop, or cancelling ctx, closes the
// connection at once.
//
// A ctx made by WithPacing paces the reading once the first text came.
//
// Reasoning is kept apart from content as the package documentation says
// ("reasoning_content" wins when a delta has both fields). Content may
// begin with the white space that followed the reasoning.
func (c *Client) Stream(ctx context.Context, req Request) iter.Seq2[Delta, error] {
	return func(yield func(Delta, error) bool) {
		body, err := encodeRequest(req, true)
		if err != nil {
			yield(Delta{}, err)
			return
		}
		resp, err := c.Do(ctx, http.MethodPost, "/chat/completions", body, true)
		if err != nil {
			yield(Delta{}, err)
			return
		}
		defer resp.Body.Close()
		implicit := c.implicit(req.Model)
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
			// The server ignored "stream": a whole completion came back.
			c.yieldCompletion(ctx, resp.Body, implicit, yield)
			return
		}
		var in io.Reader = resp.Body
		var pace *pacedReader
		if pc := pacingOf(ctx); pc.next != nil {
			pace = &pacedReader{r: resp.Body, ctx: ctx, pace: pc}
			defer pace.stop()
			in = pace
		}
		if c.readStream(ctx, in, pace, implicit, yield) {
			drain(resp.Body)
		}
	}
}

// drain reads what little follows "[DONE]" (the end of a chunked body), so
// that the connection can be reused; a server that keeps the body open
// gets its connection closed instead.
func drain(body io.Reader) {
	if tb, ok := body.(*timedBody); ok {
		tb.idle = drainWait
	}
	io.CopyN(io.Discard, body, 64<<10)
}

// drainWait bounds the wait for the end of a body after "[DONE]".
const drainWait = 250 * time.Millisecond

// readStream decodes an SSE chat-completion body into deltas. It reports
// whether the stream ended normally with "[DONE]" and the body may hold
// nothing more of use.
func (c *Client) readStream(ctx context.Context, body io.Reader, pace *pacedReader, implicit bool, yield func(Delta, error) bool) (done bool) {
	var (
		events     = sse.NewReader(body, sseBuffer)
		ch         chunk
		think      = newThinkSplitter(implicit)
		serverSide bool // the server sends reasoning in its own field
		finish     string
		usage      Usage
		hasUsage   bool
	)
read:
	for {
		ev, err := events.Next()
		if err != nil {
			if err == io.EOF || finish != "" {
				break
			}
			yield(Delta{}, c.readError(ctx, err))
			return
		}
		if ev.Kind != sse.Data {
			yield(Delta{}, newStreamError(c.p.Name, ev.Data))
			return
		}
		data := bytes.TrimSpace(ev.Data)
		switch {
		case len(data) == 0:
			continue
		case string(data) == "[DONE]":
			done = true
			break read
		}
		if err := ch.parse(data); err != nil {
			if ev.AtEOF {
				err = fmt.Errorf("%w: last chunk cut short: %w", ErrTruncated, err)
			}
			yield(Delta{}, fmt.Errorf("llm: %s: decode chunk: %w", c.p.Name, err))
			return
		}
		if len(ch.errRaw) > 0 {
			yield(Delta{}, newStreamError(c.p.Name, ch.errRaw))
			return
		}
		var d Delta
		r := ch.reasoning
		if len(r) == 0 {
			r = ch.reasoningAlt
		}
		if len(r) > 0 {
			if !serverSide {
				serverSide = true
				d.Content = think.serverReasons()
			}
			d.Reasoning = string(r)
		}
		if len(ch.content) > 0 {
			content, reasoning := think.push(string(ch.content))
			d.Content += content
			d.Reasoning += reasoning
		}
		if len(ch.finish) > 0 {
			finish = string(ch.finish)
		}
		if ch.hasUsage {
			usage, hasUsage = ch.usage, true
		}
		if d.Content != "" || d.Reasoning != "" {
			if !yield(d, nil) {
				return
			}
			pace.start()
		}
	}
	if content, reasoning := think.flush(); content != "" || reasoning != "" {
		if !yield(Delta{Content: content, Reasoning: reasoning}, nil) {
			return
		}
	}
	if finish == "" {
		yield(Delta{}, fmt.Errorf("llm: %s: %w", c.p.Name, ErrTruncated))
		return
	}
	last := Delta{FinishReason: finish}
	if hasUsage {
		last.Usage = &usage
	}
	return yield(last, nil) && done
}

// readError describes a failed body read before the finish reason.
func (c *Client) readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("llm: %s: %w", c.p.Name, ctx.Err())
	}
	if errors.Is(err, ErrIdleTimeout) {
		return fmt.Errorf("llm: %s: %w: %w", c.p.Name, ErrTruncated, err)
	}
	if errors.Is(err, sse.ErrLineTooLong) {
		return fmt.Errorf("llm: %s: read: %w", c.p.Name, err)
	}
	return fmt.Errorf("llm: %s: %w: read: %w", c.p.Name, ErrTruncated, err)
}

// yieldCompletion serves a whole JSON completion as a stream's deltas.
func (c *Client) yieldCompletion(ctx context.Context, body io.Reader, implicit bool, yield func(Delta, error) bool) {
	comp, hasUsage, err := c.readCompletion(ctx, body, implicit)
	if err != nil {
		yield(Delta{}, err)
		return
	}
	if comp.Content != "" || comp.Reasoning != "" {
		if !yield(Delta{Content: comp.Content, Reasoning: comp.Reasoning}, nil) {
			return
		}
	}
	if comp.FinishReason == "" {
		comp.FinishReason = "stop"
	}
	last := Delta{FinishReason: comp.FinishReason}
	if hasUsage {
		last.Usage = &comp.Usage
	}
	yield(last, nil)
}
