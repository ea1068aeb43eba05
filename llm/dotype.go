package llm

import (
	"context"
	"net/http"
)

// DoType is Do with a body of the given Content-Type ("" when body is
// nil), for requests that are not JSON: a multipart/form-data upload to
// POST /audio/transcriptions. Retries send the same body again.
func (c *Client) DoType(ctx context.Context, method, path, contentType string, body []byte, stream bool) (*http.Response, error) {
	return c.doType(ctx, method, path, contentType, body, stream, c.retries)
}
