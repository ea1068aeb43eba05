package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

const chatBody = `{"model":"deepinfra/echo","messages":[{"role":"user","content":"hi"}]}`

func TestNew_Exposure(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("p"), llm.Options{})}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		listen    string
		keys      []string
		anonymous bool
		wantErr   string
	}{
		{listen: ""},
		{listen: "127.0.0.1:8000"},
		{listen: "127.0.0.2:8000"},
		{listen: "[::1]:8000"},
		{listen: "localhost:8000"},
		{listen: "0.0.0.0:8000", wantErr: "refusing to listen on 0.0.0.0:8000 without API keys"},
		{listen: ":8000", wantErr: "set gateway.api_keys"},
		{listen: "192.168.1.5:8000", wantErr: "gateway.allow_anonymous: true"},
		{listen: "example.com:8000", wantErr: "without API keys"},
		{listen: "0.0.0.0:8000", keys: []string{"k"}},
		{listen: "0.0.0.0:8000", anonymous: true},
		{listen: "no-port", wantErr: "listen address"},
		{listen: "127.0.0.1:8000", keys: []string{" "}, wantErr: "API key #1 is empty"},
	} {
		_, err := gateway.New(gateway.Options{Listen: tt.listen, APIKeys: tt.keys, AllowAnonymous: tt.anonymous}, router)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("New(%q, keys %q, anonymous %v) = %v, want error containing %q", tt.listen, tt.keys, tt.anonymous, err, tt.wantErr)
		}
	}
}

func TestServer_Auth(t *testing.T) {
	e := newEnv(t, gateway.Options{APIKeys: []string{"sk-alpha", "sk-beta"}})
	for _, tt := range []struct {
		name, path, auth string
		want             int
	}{
		{"OK", "/v1/chat/completions", "Bearer sk-beta", 200},
		{"OKSchemeCase", "/v1/chat/completions", "bearer sk-alpha", 200},
		{"ErrWrongKey", "/v1/chat/completions", "Bearer sk-gamma", 401},
		{"ErrPrefix", "/v1/chat/completions", "Bearer sk-alph", 401},
		{"ErrMissing", "/v1/chat/completions", "", 401},
		{"ErrBasic", "/v1/chat/completions", "Basic c2stYWxwaGE=", 401},
		{"ErrModels", "/v1/models", "Bearer nope", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodPost
			if strings.HasSuffix(tt.path, "models") {
				method = http.MethodGet
			}
			req, _ := http.NewRequestWithContext(t.Context(), method, e.url+tt.path, strings.NewReader(chatBody))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 401 {
				if got := readError(t, resp); got.Error.Code == nil || *got.Error.Code != "invalid_api_key" {
					t.Errorf("error %+v", got)
				}
			}
		})
	}
	if n := len(e.up.Requests()); n != 2 {
		t.Errorf("provider got %d requests, want 2", n)
	}
	if log := e.log.String(); strings.Contains(log, "sk-") || !strings.Contains(log, "key=key#2") {
		t.Errorf("log:\n%s", log)
	}
}

func TestServer_RequestErrors(t *testing.T) {
	e := newEnv(t, gateway.Options{MaxBody: 1024})
	big := `{"model":"deepinfra/echo","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`
	for _, tt := range []struct {
		name, body string
		chunked    bool
		want       int
		wantCode   string
	}{
		{"ErrTooLarge", big, false, 413, "request_too_large"},
		{"ErrTooLargeChunked", big, true, 413, "request_too_large"},
		{"ErrBadJSON", `{"model":`, false, 400, "invalid_json"},
		{"ErrNotObject", `[1,2]`, false, 400, "invalid_json"},
		{"ErrNull", `null`, false, 400, "invalid_json"},
		{"ErrNoModel", `{"messages":[]}`, false, 400, "invalid_model"},
		{"ErrModelNotString", `{"model":7}`, false, 400, "invalid_model"},
		{"ErrStreamNotBool", `{"model":"deepinfra/echo","stream":"yes"}`, false, 400, "invalid_type"},
		{"ErrEmptyProviderModel", `{"model":"deepinfra/"}`, false, 404, "model_not_found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // unknown length: sent chunked
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/v1/chat/completions", body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := readError(t, resp)
			if resp.StatusCode != tt.want || got.Error.Code == nil || *got.Error.Code != tt.wantCode {
				t.Errorf("status %d, error %+v; want %d %s", resp.StatusCode, got.Error, tt.want, tt.wantCode)
			}
		})
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Errorf("provider got %d requests", n)
	}
}

func TestServer_UpstreamErrors(t *testing.T) {
	for _, tt := range []struct {
		name       string
		script     llmtest.Script
		want       int
		wantCode   string
		wantMsg    string
		retryAfter string
	}{
		{"Err404", llmtest.Script{Status: 404, Body: `{"detail":"Model is not available"}`}, 404, "model_not_found",
			"model deepinfra/echo: provider deepinfra says: Model is not available", ""},
		{"Err429", llmtest.Script{Status: 429, RetryAfter: "7"}, 429, "rate_limit_exceeded",
			"provider deepinfra is rate limiting: Too Many Requests", "7"},
		{"Err500", llmtest.Script{Status: 500, Body: "model crashed"}, 502, "upstream_error",
			"provider deepinfra failed (HTTP 500): model crashed", ""},
		{"Err401WithKey", llmtest.Script{Status: 401}, 502, "upstream_auth_failed",
			"provider deepinfra refused the configured API key (HTTP 401): Unauthorized", ""},
		{"ErrNonStreamErrorBody", llmtest.Script{Fail: llmtest.FailErrorChunk, FailMessage: "no slot"}, 502, "upstream_error",
			"provider deepinfra: no slot", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{})
			e.up.Enqueue(tt.script)
			resp := e.post(t, "/v1/chat/completions", chatBody, nil)
			got := readError(t, resp)
			if resp.StatusCode != tt.want || *got.Error.Code != tt.wantCode || got.Error.Message != tt.wantMsg ||
				resp.Header.Get("Retry-After") != tt.retryAfter {
				t.Errorf("%d Retry-After %q %+v\nwant %d %q %s %q", resp.StatusCode, resp.Header.Get("Retry-After"),
					got.Error, tt.want, tt.retryAfter, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestServer_AnonymousProviderNeedsKey(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.RequireKey("real-key")
	addr := strings.TrimPrefix(strings.TrimSuffix(up.URL, "/v1"), "http://")
	c := llm.NewClient(llm.Provider{Name: "deepinfra", BaseURL: "http://" + llm.DeepInfraHost + "/v1"},
		llm.Options{HTTPClient: dialTo(addr), MaxRetries: -1, Logger: slog.New(slog.DiscardHandler)})
	if !c.Anonymous() {
		t.Fatal("client is not in the anonymous preset")
	}
	e := startEnv(t, up, c, gateway.Options{})
	resp := e.post(t, "/v1/chat/completions", chatBody, nil)
	got := readError(t, resp)
	if resp.StatusCode != http.StatusBadGateway || *got.Error.Code != "upstream_api_key_required" ||
		!strings.Contains(got.Error.Message, "providers.deepinfra.api_key") || !strings.Contains(got.Error.Message, "DEEPINFRA_API_KEY") {
		t.Errorf("%d %+v", resp.StatusCode, got.Error)
	}
}

func TestServer_RateLimit(t *testing.T) {
	e := newEnv(t, gateway.Options{APIKeys: []string{"a", "b"}, RequestsPerMinute: 2})
	for i, tt := range []struct {
		key  string
		want int
	}{{"a", 200}, {"a", 200}, {"a", 429}, {"b", 200}} {
		resp := e.post(t, "/v1/chat/completions", chatBody, map[string]string{"Authorization": "Bearer " + tt.key})
		if resp.StatusCode != tt.want {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, tt.want)
		}
		if tt.want == 429 {
			// One request every 30 s refills the bucket.
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 30 {
				t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
			}
			if got := readError(t, resp); got.Error.Type != "rate_limit_error" || *got.Error.Code != "rate_limit_exceeded" {
				t.Errorf("error %+v", got.Error)
			}
		}
	}
}

func TestServer_ConcurrentStreams(t *testing.T) {
	e := newEnv(t, gateway.Options{MaxStreamsPerKey: 1})
	release := make(chan struct{})
	// The first token goes out; the second waits for release.
	e.up.Enqueue(llmtest.Script{Content: []string{"slow", " answer"}, Sent: func(i, n int) {
		if i == 1 {
			<-release
		}
	}})
	first := e.post(t, "/v1/chat/completions", streamBody, nil)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	second := e.post(t, "/v1/chat/completions", streamBody, nil)
	if got := readError(t, second); second.StatusCode != 429 || *got.Error.Code != "too_many_concurrent_requests" ||
		second.Header.Get("Retry-After") != "1" {
		t.Errorf("second: %d %+v", second.StatusCode, got.Error)
	}
	close(release)
	if events := readEvents(t, first.Body); events[len(events)-1] != "[DONE]" {
		t.Errorf("first stream ended %q", events[len(events)-1])
	}
	// The finished stream frees its place. The handler returns just after
	// the last byte; retry briefly for it.
	for i := 0; ; i++ {
		third := e.post(t, "/v1/chat/completions", streamBody, nil)
		if third.StatusCode == http.StatusOK {
			break
		}
		if i == 100 {
			t.Fatalf("third: %d", third.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServer_CORS(t *testing.T) {
	e := newEnv(t, gateway.Options{CORSOrigins: []string{"https://app.example.com/"}})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, e.url+"/v1/chat/completions", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Add("Access-Control-Request-Headers", "authorization,content-type,x-stainless-os,x-stainless-lang")
		req.Header.Add("Access-Control-Request-Headers", "x-stainless-retry-count")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := preflight("https://app.example.com")
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		h.Get("Access-Control-Allow-Headers") != "authorization,content-type,x-stainless-os,x-stainless-lang, x-stainless-retry-count" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight: %d %v", resp.StatusCode, h)
	}
	if resp := preflight("https://evil.example"); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %d %v", resp.StatusCode, resp.Header)
	}
	got := e.post(t, "/v1/chat/completions", chatBody, map[string]string{"Origin": "https://app.example.com"})
	if got.StatusCode != 200 || got.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		got.Header.Get("Access-Control-Expose-Headers") != "Retry-After" {
		t.Errorf("request: %d %v", got.StatusCode, got.Header)
	}

	open := newEnv(t, gateway.Options{CORSOrigins: []string{"*"}})
	got = open.post(t, "/v1/chat/completions", chatBody, map[string]string{"Origin": "https://anywhere.example"})
	if got.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("wildcard: %v", got.Header)
	}
}

func TestServer_RoutesAndHealth(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.gw.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "metrics here\n")
	}))
	for _, tt := range []struct{ path, want string }{
		{"/healthz", `{"status":"ok"}` + "\n"},
		{"/metrics", "metrics here\n"},
	} {
		resp, err := http.Get(e.url + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(data) != tt.want {
			t.Errorf("GET %s: %d %q", tt.path, resp.StatusCode, data)
		}
	}
	resp, err := http.Get(e.url + "/v1/images/generations")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := readError(t, resp); resp.StatusCode != 404 || *got.Error.Code != "not_found" {
		t.Errorf("unknown route: %d %+v", resp.StatusCode, got.Error)
	}
	resp, err = http.Get(e.url + "/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /models: %d", resp.StatusCode)
	}
}

func TestServer_ServeShutdown(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("deepinfra"), llm.Options{})}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{Logger: slog.New(slog.DiscardHandler)}, router)
	if err != nil {
		t.Fatal(err)
	}

	// A wildcard listener without keys is refused by Serve too.
	var lc net.ListenConfig
	wild, err := lc.Listen(t.Context(), "tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Serve(t.Context(), wild); err == nil || !strings.Contains(err.Error(), "without API keys") {
		t.Errorf("Serve on 0.0.0.0 = %v", err)
	}

	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v after shutdown", err)
	}
}
