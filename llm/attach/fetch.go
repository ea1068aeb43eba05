package attach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
)

// Fetch downloads rawURL with client (nil means http.DefaultClient) into
// memory and returns it as an Input for Prepare, named after the response's
// Content-Disposition or the URL's last path element and typed by its
// Content-Type.
//
// The download is bounded: a response whose Content-Length is over
// lim.MaxFileBytes is refused before its body is read, at most
// lim.MaxFileBytes+1 bytes of a body are read, and the whole exchange must
// end within lim.FetchTimeout. A file over the cap gives a *TooLargeError.
// Errors never contain the URL, which may hold a secret (Telegram's file
// URLs carry the bot token).
func Fetch(ctx context.Context, client *http.Client, rawURL string, lim Limits) (Input, error) {
	lim = lim.withDefaults()
	if client == nil {
		client = http.DefaultClient
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, lim.FetchTimeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Input{}, fmt.Errorf("attach: fetch: %w", redactURL(err))
	}
	resp, err := client.Do(req)
	if err != nil {
		return Input{}, fetchError(parent, ctx, lim, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Input{}, &StatusError{Code: resp.StatusCode}
	}
	if resp.ContentLength > lim.MaxFileBytes {
		return Input{}, &TooLargeError{Size: resp.ContentLength, Limit: lim.MaxFileBytes}
	}

	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, lim.MaxFileBytes+1)); err != nil {
		return Input{}, fetchError(parent, ctx, lim, err)
	}
	if int64(buf.Len()) > lim.MaxFileBytes {
		return Input{}, &TooLargeError{Size: -1, Limit: lim.MaxFileBytes}
	}
	return Input{
		Name: responseName(resp),
		MIME: resp.Header.Get("Content-Type"),
		Data: buf.Bytes(),
	}, nil
}

// fetchError wraps a failed request or body read, saying so when the
// download's own timeout (and not the caller's context) ended it.
func fetchError(parent, ctx context.Context, lim Limits, err error) error {
	err = redactURL(err)
	if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("attach: fetch: not done within %v: %w", lim.FetchTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("attach: fetch: %w", err)
}

// redactURL drops the URL from a *url.Error, keeping its operation and cause.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// responseName is the file name a response gives (Content-Disposition),
// else the last element of its URL's path; "" when neither says.
func responseName(resp *http.Response) string {
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		if name := path.Base(params["filename"]); name != "." && name != "/" {
			return name
		}
	}
	if resp.Request != nil && resp.Request.URL != nil {
		if name := path.Base(resp.Request.URL.Path); name != "." && name != "/" {
			return name
		}
	}
	return ""
}
