package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// env is a gateway in front of an llmtest server.
type env struct {
	up  *llmtest.Server
	gw  *gateway.Server
	url string // the gateway's base URL, without /v1
	log *syncBuffer
}

// newEnv starts an llmtest server as provider "deepinfra" and a gateway
// with opts in front of it.
func newEnv(t testing.TB, opts gateway.Options) *env {
	t.Helper()
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	c := llm.NewClient(up.Provider("deepinfra"), llm.Options{MaxRetries: -1, Logger: slog.New(slog.DiscardHandler)})
	return startEnv(t, up, c, opts)
}

func startEnv(t testing.TB, up *llmtest.Server, c *llm.Client, opts gateway.Options) *env {
	t.Helper()
	router, err := llm.NewRouter([]*llm.Client{c}, "", opts.Aliases)
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	gw, err := gateway.New(opts, router)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &env{up: up, gw: gw, url: srv.URL, log: buf}
}

// syncBuffer is a log sink that tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// post sends body to path with the given headers.
func (e *env) post(t testing.TB, path, body string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// apiErr is OpenAI's error body.
type apiErr struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// readError decodes an OpenAI-shaped error response, failing the test on
// any other shape.
func readError(t testing.TB, resp *http.Response) apiErr {
	t.Helper()
	data, _ := io.ReadAll(resp.Body)
	var e apiErr
	if err := json.Unmarshal(data, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("body %q is not an OpenAI error: %v", data, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	return e
}

// readEvents reads an SSE body into its "data:" payloads, checking that
// every event is one "data: " line followed by a blank line.
func readEvents(t testing.TB, body io.Reader) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	expectBlank := false
	for sc.Scan() {
		line := sc.Text()
		if expectBlank {
			if line != "" {
				t.Fatalf("line %q after event %d, want a blank line", line, len(events))
			}
			expectBlank = false
			continue
		}
		payload, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not a data line", line)
		}
		events = append(events, payload)
		expectBlank = true
	}
	if expectBlank {
		t.Fatalf("stream ends without the blank line after event %q", events[len(events)-1])
	}
	return events
}

// dialTo is an HTTP client whose every connection goes to addr, so that a
// provider on api.deepinfra.com (the anonymous preset) reaches llmtest.
func dialTo(addr string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}
