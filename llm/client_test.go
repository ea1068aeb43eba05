package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// newServer starts a fake provider closed at the end of the test.
func newServer(t *testing.T) *llmtest.Server {
	t.Helper()
	s := llmtest.NewServer()
	t.Cleanup(s.Close)
	return s
}

// fastRetries retries at once, so tests do not wait.
var fastRetries = llm.Options{
	MaxRetries: 3,
	Backoff:    llm.Backoff{Base: time.Millisecond, Max: 50 * time.Millisecond},
	Logger:     slog.New(slog.DiscardHandler),
}

func TestClient_Stream_Dialects(t *testing.T) {
	reasoning := []string{"Let", " me", " see."}
	content := []string{"The", " answer", " is", " 4", "."}
	tests := []struct {
		name   string
		script llmtest.Script
		model  string
	}{
		{"DeepInfra", llmtest.Script{Dialect: llmtest.DeepInfra}, ""},
		{"VLLM", llmtest.Script{Dialect: llmtest.VLLM}, ""},
		{"Ollama", llmtest.Script{Dialect: llmtest.Ollama, NoSpace: true}, ""},
		{"LlamaCpp", llmtest.Script{Dialect: llmtest.LlamaCpp, KeepAlive: true}, ""},
		{"InlineThink", llmtest.Script{Dialect: llmtest.InlineThink, NoDone: true}, ""},
		{"InlineThinkNoOpenTag", llmtest.Script{Dialect: llmtest.InlineThink, OmitOpenTag: true}, "deepseek-ai/DeepSeek-R1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			sc := tt.script
			sc.Reasoning, sc.Content = reasoning, content
			s.SetScript(sc)
			c := llm.NewClient(s.Provider("fake"), llm.Options{})
			model := tt.model
			if model == "" {
				model = "m"
			}
			got := collect(t, c, t.Context(), llm.Request{Model: model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "two plus two"}}})
			if got.Err != nil {
				t.Fatal(got.Err)
			}
			wantContent := "The answer is 4."
			if sc.Dialect == llmtest.InlineThink {
				wantContent = "\n\n" + wantContent
			}
			if got.Content != wantContent || got.Reasoning != "Let me see." || got.FinishReason != "stop" {
				t.Errorf("got %+v", got)
			}
			want := llm.Usage{PromptTokens: 3, CompletionTokens: 8, TotalTokens: 11}
			if got.Usage == nil || *got.Usage != want {
				t.Errorf("usage = %+v, want %+v", got.Usage, want)
			}
		})
	}
}

func TestClient_Stream_Failures(t *testing.T) {
	var streamErr *llm.StreamError
	tests := []struct {
		name    string
		fail    llmtest.Failure
		wantErr func(error) bool
	}{
		{"ErrorChunk", llmtest.FailErrorChunk, func(err error) bool { return errors.As(err, &streamErr) }},
		{"ErrorField", llmtest.FailErrorField, func(err error) bool { return errors.As(err, &streamErr) }},
		{"ErrorEvent", llmtest.FailErrorEvent, func(err error) bool { return errors.As(err, &streamErr) }},
		{"Drop", llmtest.FailDrop, func(err error) bool { return errors.Is(err, llm.ErrTruncated) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.SetScript(llmtest.Script{Content: []string{"a", "b", "c"}, Fail: tt.fail, FailAfter: 2, FailMessage: "out of memory"})
			c := llm.NewClient(s.Provider("fake"), fastRetries)
			got := collect(t, c, t.Context(), llm.Request{Model: "m"})
			if !tt.wantErr(got.Err) {
				t.Fatalf("err = %v (%T)", got.Err, got.Err)
			}
			if got.Content != "ab" {
				t.Errorf("content = %q, want %q", got.Content, "ab")
			}
			if tt.fail != llmtest.FailDrop && !strings.Contains(got.Err.Error(), "out of memory") {
				t.Errorf("err = %q, want the server's message", got.Err)
			}
			// Text was delivered: never retried.
			if n := len(s.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestClient_Stream_RetriesBeforeFirstByte(t *testing.T) {
	s := newServer(t)
	s.Enqueue(
		llmtest.Script{Status: http.StatusTooManyRequests, RetryAfter: "0", Body: `{"error":{"message":"Model busy, retry later"}}`},
		llmtest.Script{Status: http.StatusServiceUnavailable},
		llmtest.Script{Content: []string{"ok"}},
	)
	c := llm.NewClient(s.Provider("fake"), fastRetries)
	got := collect(t, c, t.Context(), llm.Request{Model: "m"})
	if got.Err != nil || got.Content != "ok" {
		t.Fatalf("got %+v", got)
	}
	if n := len(s.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestClient_Stream_RetryAfterHonoured(t *testing.T) {
	s := newServer(t)
	s.Enqueue(llmtest.Script{Status: http.StatusTooManyRequests, RetryAfter: "0.01"}, llmtest.Script{Content: []string{"ok"}})
	c := llm.NewClient(s.Provider("fake"), fastRetries)
	if got := collect(t, c, t.Context(), llm.Request{Model: "m"}); got.Err != nil || got.Content != "ok" {
		t.Fatalf("got %+v", got)
	}
}

func TestClient_Stream_RetryAfterTooLong(t *testing.T) {
	s := newServer(t)
	s.Enqueue(llmtest.Script{Status: http.StatusTooManyRequests, RetryAfter: "120", Body: `{"error":"Rate limited"}`})
	c := llm.NewClient(s.Provider("fake"), fastRetries)
	got := collect(t, c, t.Context(), llm.Request{Model: "m"})
	var se *llm.StatusError
	if !errors.As(got.Err, &se) {
		t.Fatalf("err = %v, want *StatusError", got.Err)
	}
	if se.StatusCode != 429 || se.RetryAfter != 120*time.Second || se.Message != "Rate limited" || !se.Temporary() {
		t.Errorf("got %+v", se)
	}
	if n := len(s.Requests()); n != 1 {
		t.Errorf("%d requests, want 1 (a wait above Backoff.Max is not waited for)", n)
	}
}

func TestClient_Stream_RetriesExhausted(t *testing.T) {
	s := newServer(t)
	s.SetScript(llmtest.Script{Status: http.StatusBadGateway})
	opts := fastRetries
	opts.MaxRetries = 2
	c := llm.NewClient(s.Provider("fake"), opts)
	got := collect(t, c, t.Context(), llm.Request{Model: "m"})
	var se *llm.StatusError
	if !errors.As(got.Err, &se) || se.StatusCode != 502 {
		t.Fatalf("err = %v", got.Err)
	}
	if n := len(s.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestClient_Do_RetriesConnectErrors(t *testing.T) {
	// A port where nothing listens: every attempt fails to connect.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	attempts := 0
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		attempts++
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	opts := fastRetries
	opts.HTTPClient = hc
	c := llm.NewClient(llm.Provider{Name: "down", BaseURL: "http://" + addr}, opts)
	_, err = c.Do(t.Context(), http.MethodGet, "/models", nil, false)
	if err == nil {
		t.Fatal("no error")
	}
	if attempts != 4 {
		t.Errorf("%d attempts, want 4", attempts)
	}
}

func TestClient_Stream_BreakClosesConnection(t *testing.T) {
	s := newServer(t)
	s.SetScript(llmtest.Script{Content: llmtest.Tokens(strings.Repeat("word ", 500)), Interval: 2 * time.Millisecond})
	c := llm.NewClient(s.Provider("fake"), llm.Options{})
	for d, err := range c.Stream(t.Context(), llm.Request{Model: "m"}) {
		if err != nil {
			t.Fatal(err)
		}
		if d.Content != "" {
			break
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.WaitDisconnect(ctx); err != nil {
		t.Fatalf("server saw no disconnect: %v", err)
	}
}

func TestClient_Stream_CancelClosesConnection(t *testing.T) {
	s := newServer(t)
	s.SetScript(llmtest.Script{Content: llmtest.Tokens(strings.Repeat("word ", 500)), Interval: 2 * time.Millisecond})
	c := llm.NewClient(s.Provider("fake"), llm.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var gotErr error
	for d, err := range c.Stream(ctx, llm.Request{Model: "m"}) {
		if err != nil {
			gotErr = err
			break
		}
		if d.Content != "" {
			cancel()
		}
	}
	if !errors.Is(gotErr, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", gotErr)
	}
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	if err := s.WaitDisconnect(wctx); err != nil {
		t.Fatalf("server saw no disconnect: %v", err)
	}
}

func TestClient_Stream_IdleTimeout(t *testing.T) {
	s := newServer(t)
	s.SetScript(llmtest.Script{Content: []string{"a", "b"}, Interval: 5 * time.Second})
	c := llm.NewClient(s.Provider("fake"), llm.Options{Timeouts: llm.Timeouts{Idle: 50 * time.Millisecond}})
	got := collect(t, c, t.Context(), llm.Request{Model: "m"})
	if !errors.Is(got.Err, llm.ErrIdleTimeout) || !errors.Is(got.Err, llm.ErrTruncated) {
		t.Fatalf("err = %v, want ErrIdleTimeout and ErrTruncated", got.Err)
	}
}

func TestClient_Do_FirstByteTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := llm.NewClient(llm.Provider{Name: "slow", BaseURL: srv.URL}, llm.Options{Timeouts: llm.Timeouts{FirstByte: 50 * time.Millisecond}})
	_, err := c.Do(t.Context(), http.MethodGet, "/models", nil, false)
	if !errors.Is(err, llm.ErrFirstByteTimeout) {
		t.Fatalf("err = %v, want ErrFirstByteTimeout", err)
	}
}

func TestClient_Stream_RequestBody(t *testing.T) {
	zero, half := 0.0, 0.5
	tests := []struct {
		name string
		req  llm.Request
		want []string // substrings of the body
		not  []string
	}{
		{"TemperatureZero", llm.Request{Model: "m", Temperature: &zero},
			[]string{`"temperature":0`, `"stream":true`, `"stream_options":{"include_usage":true}`}, []string{"top_p", "max_tokens"}},
		{"NoTemperature", llm.Request{Model: "m", TopP: &half, MaxTokens: 100},
			[]string{`"top_p":0.5`, `"max_tokens":100`}, []string{"temperature"}},
		{"Extra", llm.Request{Model: "m", Extra: map[string]json.RawMessage{"reasoning_effort": json.RawMessage(`"high"`)}},
			[]string{`"reasoning_effort":"high"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			c := llm.NewClient(s.Provider("fake"), llm.Options{})
			tt.req.Messages = []llm.Message{{Role: llm.RoleUser, Content: "hi"}}
			if got := collect(t, c, t.Context(), tt.req); got.Err != nil || got.Content != "echo: hi" {
				t.Fatalf("got %+v", got)
			}
			reqs := s.Requests()
			body := string(reqs[0].Body)
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %s lacks %s", body, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(body, n) {
					t.Errorf("body %s has %s", body, n)
				}
			}
			if tt.req.Temperature != nil && (reqs[0].Request.Temperature == nil || *reqs[0].Request.Temperature != *tt.req.Temperature) {
				t.Errorf("recorded temperature = %v", reqs[0].Request.Temperature)
			}
		})
	}
}

// deepInfraClient returns a client whose base URL is on api.deepinfra.com
// and whose connections all go to s.
func deepInfraClient(t *testing.T, s *llmtest.Server, key string) *llm.Client {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, u.Host)
	}}}
	p := llm.Provider{Name: "deepinfra", BaseURL: "http://api.deepinfra.com/v1", APIKey: key}
	return llm.NewClient(p, llm.Options{HTTPClient: hc, MaxRetries: -1})
}

func TestProvider_Headers(t *testing.T) {
	preset := map[string]string{
		"X-Deepinfra-Source": "web-page",
		"Origin":             "https://deepinfra.com",
		"Referer":            "https://deepinfra.com/",
		"Accept":             "text/event-stream",
	}
	t.Run("DeepInfraAnonymous", func(t *testing.T) {
		s := newServer(t)
		c := deepInfraClient(t, s, "")
		if got := collect(t, c, t.Context(), llm.Request{Model: "m"}); got.Err != nil {
			t.Fatal(got.Err)
		}
		h := s.Requests()[0].Header
		for k, v := range preset {
			if h.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, h.Get(k), v)
			}
		}
		if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "Mozilla/5.0") {
			t.Errorf("User-Agent = %q, want a browser's", ua)
		}
		if h.Get("Authorization") != "" {
			t.Errorf("Authorization sent without a key")
		}
	})
	t.Run("DeepInfraWithKey", func(t *testing.T) {
		s := newServer(t)
		c := deepInfraClient(t, s, "sekrit")
		if got := collect(t, c, t.Context(), llm.Request{Model: "m"}); got.Err != nil {
			t.Fatal(got.Err)
		}
		h := s.Requests()[0].Header
		if h.Get("Authorization") != "Bearer sekrit" {
			t.Errorf("Authorization = %q", h.Get("Authorization"))
		}
		for k := range preset {
			if k != "Accept" && h.Get(k) != "" {
				t.Errorf("%s sent with a key", k)
			}
		}
	})
	t.Run("OtherProvider", func(t *testing.T) {
		s := newServer(t)
		p := s.Provider("local")
		p.Headers = map[string]string{"X-Title": "palaver"}
		c := llm.NewClient(p, llm.Options{})
		if got := collect(t, c, t.Context(), llm.Request{Model: "m"}); got.Err != nil {
			t.Fatal(got.Err)
		}
		h := s.Requests()[0].Header
		if h.Get("X-Title") != "palaver" {
			t.Errorf("configured header missing")
		}
		for _, k := range []string{"Authorization", "X-Deepinfra-Source", "Origin", "Referer"} {
			if h.Get(k) != "" {
				t.Errorf("%s sent to a keyless non-DeepInfra provider", k)
			}
		}
	})
	t.Run("NeedsKey", func(t *testing.T) {
		s := newServer(t)
		s.RequireKey("right")
		for _, key := range []string{"", "wrong-key-123"} {
			c := deepInfraClient(t, s, key)
			got := collect(t, c, t.Context(), llm.Request{Model: "m"})
			var se *llm.StatusError
			if !errors.As(got.Err, &se) || se.StatusCode != 401 || se.Message != "Not authenticated" {
				t.Fatalf("err = %v", got.Err)
			}
			if se.NeedsKey() != (key == "") || se.Anonymous != (key == "") {
				t.Errorf("key %q: NeedsKey = %v, Anonymous = %v", key, se.NeedsKey(), se.Anonymous)
			}
			if key != "" && strings.Contains(got.Err.Error(), key) {
				t.Errorf("error %q shows the key", got.Err)
			}
		}
	})
}

func TestStatusError_Shapes(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		retryAfter  string
		wantMessage string
		wantType    string
		wantCode    string
		wantRetry   time.Duration
	}{
		{"OpenAIObject", 401, `{"error":{"message":"Not authenticated","type":"invalid_request_error","param":null,"code":null}}`,
			"", "Not authenticated", "invalid_request_error", "", 0},
		{"OpenAIObjectCode", 404, `{"error":{"message":"model not found","type":"not_found_error","code":"model_not_found"}}`,
			"", "model not found", "not_found_error", "model_not_found", 0},
		{"ErrorString", 403, `{"error":"Unauthorised"}`, "", "Unauthorised", "", "", 0},
		{"DetailError", 403, `{"detail":{"error":"Not authenticated"}}`, "", "Not authenticated", "", "", 0},
		{"DetailString", 404, `{"detail":"Model not found"}`, "", "Model not found", "", "", 0},
		{"DetailList", 422, `{"detail":[{"loc":["body","model"],"msg":"field required","type":"value_error.missing"},{"loc":["body"],"msg":"bad temperature","type":"x"}]}`,
			"", "field required; bad temperature", "", "", 0},
		{"MessageCode", 500, `{"code":500,"message":"llama crashed","type":"server_error"}`, "", "llama crashed", "server_error", "500", 0},
		{"PlainText", 402, "You need positive balance to do inference.\n", "", "You need positive balance to do inference.", "", "", 0},
		{"Empty", 500, "", "", "Internal Server Error", "", "", 0},
		{"HTML", 502, "<html><body>Bad gateway</body></html>", "", "Bad Gateway", "", "", 0},
		{"RetryAfterSeconds", 429, `{"error":{"message":"Rate limited"}}`, "7", "Rate limited", "", "", 7 * time.Second},
		{"RetryAfterDate", 503, "", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), "Service Unavailable", "", "", time.Hour},
		{"RetryAfterJunk", 429, "", "soon", "Too Many Requests", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c := llm.NewClient(llm.Provider{Name: "p", BaseURL: srv.URL}, llm.Options{MaxRetries: -1})
			_, err := c.Complete(t.Context(), llm.Request{Model: "m"})
			var se *llm.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *StatusError", err)
			}
			if se.StatusCode != tt.status || se.Message != tt.wantMessage || se.Type != tt.wantType || se.Code != tt.wantCode {
				t.Errorf("got %d %q type %q code %q, want %d %q type %q code %q",
					se.StatusCode, se.Message, se.Type, se.Code, tt.status, tt.wantMessage, tt.wantType, tt.wantCode)
			}
			// An HTTP date has one-second resolution.
			if d := se.RetryAfter - tt.wantRetry; d < -2*time.Second || d > 0 {
				t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, tt.wantRetry)
			}
			if string(se.Body) != tt.body {
				t.Errorf("Body = %q, want %q", se.Body, tt.body)
			}
		})
	}
}

func TestClient_Complete(t *testing.T) {
	tests := []struct {
		name          string
		script        llmtest.Script
		model         string
		wantContent   string
		wantReasoning string
	}{
		{"DeepInfra", llmtest.Script{Reasoning: []string{"hm"}, Content: []string{"Yes"}}, "m", "Yes", "hm"},
		{"VLLM", llmtest.Script{Dialect: llmtest.VLLM, Reasoning: []string{"hm"}, Content: []string{"Yes"}}, "m", "Yes", "hm"},
		{"InlineThink", llmtest.Script{Dialect: llmtest.InlineThink, Reasoning: []string{"hm"}, Content: []string{"Yes"}}, "m", "\n\nYes", "hm"},
		{"InlineNoOpen", llmtest.Script{Dialect: llmtest.InlineThink, OmitOpenTag: true, Reasoning: []string{"hm"}, Content: []string{"Yes"}},
			"deepseek-ai/DeepSeek-R1", "\n\nYes", "hm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.SetScript(tt.script)
			c := llm.NewClient(s.Provider("fake"), llm.Options{})
			got, err := c.Complete(t.Context(), llm.Request{Model: tt.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "ok?"}}})
			if err != nil {
				t.Fatal(err)
			}
			want := llm.Completion{Content: tt.wantContent, Reasoning: tt.wantReasoning, FinishReason: "stop",
				Usage: llm.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if r := s.Requests()[0].Request; r.Stream || strings.Contains(string(s.Requests()[0].Body), "stream_options") {
				t.Errorf("non-streamed request asked for a stream: %s", s.Requests()[0].Body)
			}
		})
	}
	t.Run("ErrorIn200", func(t *testing.T) {
		s := newServer(t)
		s.SetScript(llmtest.Script{Fail: llmtest.FailErrorChunk, FailMessage: "boom"})
		c := llm.NewClient(s.Provider("fake"), llm.Options{})
		_, err := c.Complete(t.Context(), llm.Request{Model: "m"})
		var se *llm.StreamError
		if !errors.As(err, &se) || se.Message != "boom" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClient_Models(t *testing.T) {
	s := newServer(t)
	s.SetModels([]llmtest.ModelInfo{
		{ID: "deepseek-ai/DeepSeek-R1-0528-Turbo", OwnedBy: "deepinfra", ContextLength: 131072, Pricing: &llm.Pricing{InputTokens: 1, OutputTokens: 3}},
		{ID: "plain"},
	})
	c := llm.NewClient(s.Provider("di"), llm.Options{})
	results := make(chan []llm.Model, 8)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			m, err := c.Models(t.Context())
			results <- m
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		got := <-results
		want := []llm.Model{
			{Provider: "di", ID: "deepseek-ai/DeepSeek-R1-0528-Turbo", OwnedBy: "deepinfra", ContextLength: 131072, Pricing: &llm.Pricing{InputTokens: 1, OutputTokens: 3}},
			{Provider: "di", ID: "plain"},
		}
		if !slices.EqualFunc(got, want, func(a, b llm.Model) bool {
			return a.Provider == b.Provider && a.ID == b.ID && a.OwnedBy == b.OwnedBy && a.ContextLength == b.ContextLength &&
				(a.Pricing == nil) == (b.Pricing == nil) && (a.Pricing == nil || *a.Pricing == *b.Pricing)
		}) {
			t.Errorf("got %+v", got)
		}
		if got[0].Name() != "di/deepseek-ai/DeepSeek-R1-0528-Turbo" {
			t.Errorf("Name = %q", got[0].Name())
		}
	}
	if n := len(s.Requests()); n != 1 {
		t.Errorf("%d requests for 8 concurrent callers, want 1", n)
	}
}
