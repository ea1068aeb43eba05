package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Do sends one request to the provider, path relative to the base URL
// ("/chat/completions"), with the provider's headers. Transport errors
// before any response (a refused connect, a connection reset before the
// headers), 429 and 5xx answers are retried up to Options.MaxRetries times
// (see Backoff); a first-byte timeout and ctx's end are not. A non-2xx
// answer that is not retried becomes a *StatusError.
//
// Timeouts.FirstByte bounds the wait for response headers. The returned
// body fails with ErrIdleTimeout when one Read waits longer than
// Timeouts.Idle; closing it, or cancelling ctx, closes the connection at
// once. The caller must close the body.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, stream bool) (*http.Response, error) {
	return c.do(ctx, method, path, body, stream, c.retries)
}

// do is Do with at most retries retries.
func (c *Client) do(ctx context.Context, method, path string, body []byte, stream bool, retries int) (*http.Response, error) {
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	return c.doType(ctx, method, path, ct, body, stream, retries)
}

// doType is do with a body of the given Content-Type ("" when body is nil).
func (c *Client) doType(ctx context.Context, method, path, contentType string, body []byte, stream bool, retries int) (*http.Response, error) {
	url := c.base + path
	for attempt := 0; ; attempt++ {
		resp, retryable, err := c.send(ctx, method, url, contentType, body, stream)
		if err == nil {
			return resp, nil
		}
		if !retryable || attempt >= retries {
			return nil, err
		}
		wait, ok := c.retryWait(err, attempt)
		if !ok {
			return nil, err
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "llm: retrying request",
			slog.String("path", path), slog.Int("attempt", attempt+1),
			slog.Duration("wait", wait), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("llm: %s: %w (while waiting to retry after: %v)", c.p.Name, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// retryWait is the pause before retry number attempt (from 0). ok is false
// when the server asked for a longer wait than Backoff.Max.
func (c *Client) retryWait(err error, attempt int) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, se.RetryAfter <= c.backoff.Max
	}
	d := c.backoff.Base
	for i := 0; i < attempt && d < c.backoff.Max; i++ {
		d *= 2
	}
	d = min(d, c.backoff.Max)
	half := d / 2
	return half + rand.N(d-half+1), true
}

// send makes one attempt. retryable reports an error worth another try:
// a transport failure before any response, 429 or 5xx.
func (c *Client) send(ctx context.Context, method, url, contentType string, body []byte, stream bool) (resp *http.Response, retryable bool, err error) {
	rctx, cancel := context.WithCancelCause(ctx)
	var inBody atomic.Bool // past the response headers: the timer is the idle timer
	timer := time.AfterFunc(c.timeouts.FirstByte, func() {
		if inBody.Load() {
			cancel(ErrIdleTimeout)
		} else {
			cancel(ErrFirstByteTimeout)
		}
	})
	fail := func() {
		timer.Stop()
		cancel(nil)
		if resp != nil {
			resp.Body.Close()
		}
	}

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, url, rd)
	if err != nil {
		fail()
		return nil, false, fmt.Errorf("llm: %s: new request: %w", c.p.Name, err)
	}
	c.p.setHeaders(req.Header, contentType, stream, c.anonymous)

	resp, err = c.http.Do(req)
	if err != nil {
		cause := context.Cause(rctx)
		fail()
		switch {
		case ctx.Err() != nil:
			return nil, false, fmt.Errorf("llm: %s: %w", c.p.Name, ctx.Err())
		case errors.Is(cause, ErrFirstByteTimeout):
			return nil, false, fmt.Errorf("llm: %s: %s %s: %w", c.p.Name, method, url, ErrFirstByteTimeout)
		}
		return nil, true, fmt.Errorf("llm: %s: %w", c.p.Name, err)
	}
	timer.Stop()
	inBody.Store(true)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		timer.Reset(c.timeouts.Idle)
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		fail()
		se := newStatusError(c.p.Name, c.anonymous, resp, data, time.Now())
		return nil, se.Temporary(), se
	}
	resp.Body = &timedBody{rc: resp.Body, ctx: rctx, cancel: cancel, timer: timer, idle: c.timeouts.Idle}
	return resp, false, nil
}

// timedBody is a response body whose reads fail with ErrIdleTimeout when
// the server sends nothing for longer than idle. Close closes the
// connection (when the body was not read to the end) and releases the
// request's context.
type timedBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer // cancels ctx with ErrIdleTimeout when it fires
	idle   time.Duration
}

func (b *timedBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		} else if ctxErr := b.ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
