package llm_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// answer is everything a stream delivered.
type answer struct {
	Content, Reasoning string
	FinishReason       string
	Usage              *llm.Usage
	Deltas             int
	Err                error
}

// collect drains a stream, checking the iterator's contract on the way:
// nothing after an error or after the finish delta.
func collect(t *testing.T, c *llm.Client, ctx context.Context, req llm.Request) answer {
	t.Helper()
	var a answer
	for d, err := range c.Stream(ctx, req) {
		if a.Err != nil || a.FinishReason != "" {
			t.Fatalf("stream yielded after its end: %+v, %v", d, err)
		}
		if err != nil {
			a.Err = err
			continue
		}
		a.Deltas++
		a.Content += d.Content
		a.Reasoning += d.Reasoning
		a.FinishReason = d.FinishReason
		if d.Usage != nil {
			if d.FinishReason == "" {
				t.Errorf("usage on a delta without finish reason: %+v", d)
			}
			u := *d.Usage
			a.Usage = &u
		}
	}
	return a
}

// serveFile serves a recorded SSE body as the answer to every request.
func serveFile(t *testing.T, name string) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClient_Stream_Recorded(t *testing.T) {
	var streamErr *llm.StreamError
	tests := []struct {
		file    string
		model   string
		want    answer
		wantErr func(error) bool
		errText string
	}{
		{file: "deepinfra_r1.sse", want: answer{
			Reasoning: "The user greets me.", Content: "\n\nHello there — 😀!", FinishReason: "stop",
			Usage: &llm.Usage{PromptTokens: 10, CompletionTokens: 7, TotalTokens: 17}}},
		{file: "vllm_reasoning.sse", want: answer{
			Reasoning: "Two plus two is four.", Content: "4", FinishReason: "length",
			Usage: &llm.Usage{PromptTokens: 12, CompletionTokens: 8, TotalTokens: 20}}},
		{file: "ollama.sse", want: answer{
			Reasoning: "Okay, hi.", Content: "Hi!", FinishReason: "stop",
			Usage: &llm.Usage{PromptTokens: 9, CompletionTokens: 4, TotalTokens: 13}}},
		{file: "llamacpp_ok.sse", want: answer{
			Reasoning: "Think.", Content: "Done.", FinishReason: "stop",
			Usage: &llm.Usage{PromptTokens: 5, CompletionTokens: 3, TotalTokens: 8}}},
		{file: "llamacpp_error_field.sse", want: answer{Content: "Partial"},
			wantErr: func(err error) bool { return errors.As(err, &streamErr) && streamErr.Code == "500" },
			errText: "the context size was exceeded"},
		{file: "think_split.sse", want: answer{
			Reasoning: "Let me think", Content: "\n\nThe answer is </think> 42.", FinishReason: "stop",
			Usage: &llm.Usage{PromptTokens: 3, CompletionTokens: 9, TotalTokens: 12}}},
		{file: "think_no_open.sse", model: "deepseek-ai/DeepSeek-R1", want: answer{
			Reasoning: "Okay, the user wants 2+2.\n", Content: "\n\n4", FinishReason: "stop"}},
		// A model not known to omit the opening tag: the text passed through
		// as content before "</think>" showed up, so the tag stays.
		{file: "think_no_open.sse", model: "some/model", want: answer{
			Content: "Okay, the user wants 2+2.\n</think>\n\n4", FinishReason: "stop"}},
		{file: "keepalive_no_done.sse", want: answer{Content: "abc", FinishReason: "stop"}},
		{file: "usage_before_finish_multi_choice.sse", want: answer{
			Content: "mine!", FinishReason: "stop",
			Usage: &llm.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}}},
		{file: "truncated.sse", want: answer{Content: "Once upon a time"},
			wantErr: func(err error) bool { return errors.Is(err, llm.ErrTruncated) }},
		{file: "truncated_mid_line.sse", want: answer{Content: "Once"},
			wantErr: func(err error) bool { return errors.Is(err, llm.ErrTruncated) }},
		{file: "done_without_finish.sse", want: answer{Content: "Hello"},
			wantErr: func(err error) bool { return errors.Is(err, llm.ErrTruncated) }},
		{file: "midstream_error.sse", want: answer{Content: "Hel"},
			wantErr: func(err error) bool {
				return errors.As(err, &streamErr) && streamErr.Type == "server_error" && streamErr.Code == "503"
			},
			errText: "Model busy, retry later"},
		{file: "midstream_error_string.sse", want: answer{Content: "Hel"},
			wantErr: func(err error) bool { return errors.As(err, &streamErr) },
			errText: "upstream connection lost"},
		{file: "event_error.sse", want: answer{Content: "Hel"},
			wantErr: func(err error) bool { return errors.As(err, &streamErr) && streamErr.Code == "422" },
			errText: "invalid token sequence"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".sse")+"/"+tt.model, func(t *testing.T) {
			srv := serveFile(t, tt.file)
			c := llm.NewClient(llm.Provider{Name: "test", BaseURL: srv.URL}, llm.Options{MaxRetries: -1})
			model := tt.model
			if model == "" {
				model = "m"
			}
			got := collect(t, c, t.Context(), llm.Request{Model: model})
			if tt.wantErr == nil && got.Err != nil {
				t.Fatalf("err = %v", got.Err)
			}
			if tt.wantErr != nil && (got.Err == nil || !tt.wantErr(got.Err)) {
				t.Fatalf("err = %v (%T), not the expected kind", got.Err, got.Err)
			}
			if got.Err != nil && !strings.Contains(got.Err.Error(), tt.errText) {
				t.Errorf("err = %q, want it to contain %q", got.Err, tt.errText)
			}
			if got.Content != tt.want.Content {
				t.Errorf("content = %q, want %q", got.Content, tt.want.Content)
			}
			if got.Reasoning != tt.want.Reasoning {
				t.Errorf("reasoning = %q, want %q", got.Reasoning, tt.want.Reasoning)
			}
			if got.FinishReason != tt.want.FinishReason {
				t.Errorf("finish = %q, want %q", got.FinishReason, tt.want.FinishReason)
			}
			if (got.Usage == nil) != (tt.want.Usage == nil) || got.Usage != nil && *got.Usage != *tt.want.Usage {
				t.Errorf("usage = %+v, want %+v", got.Usage, tt.want.Usage)
			}
		})
	}
}

func TestClient_Stream_JSONAnswer(t *testing.T) {
	// A server that ignores "stream" and answers with a whole completion.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write([]byte(`{"choices":[{"index":0,"message":{"role":"assistant","content":"<think>hm</think>Yes."},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`))
	}))
	t.Cleanup(srv.Close)
	c := llm.NewClient(llm.Provider{Name: "test", BaseURL: srv.URL}, llm.Options{})
	got := collect(t, c, t.Context(), llm.Request{Model: "m"})
	if got.Err != nil || got.Content != "Yes." || got.Reasoning != "hm" || got.FinishReason != "stop" || got.Usage == nil || got.Usage.TotalTokens != 3 {
		t.Errorf("got %+v", got)
	}
}

func TestClient_Stream_ReusesConnection(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "deepinfra_r1.sse"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
		// The end of the chunked body comes a moment after "[DONE]".
		http.NewResponseController(w).Flush()
		time.Sleep(10 * time.Millisecond)
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := llm.NewClient(llm.Provider{Name: "test", BaseURL: srv.URL}, llm.Options{})
	for range 3 {
		if got := collect(t, c, t.Context(), llm.Request{Model: "m"}); got.Err != nil {
			t.Fatal(got.Err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 streams, want 1", n)
	}
}

func TestClient_Stream_Paced(t *testing.T) {
	up := newServer(t)
	text := strings.Repeat("paced words arrive in batches ", 20)
	up.SetScript(llmtest.Script{Content: llmtest.Tokens(text), Interval: time.Millisecond})
	c := llm.NewClient(up.Provider("up"), llm.Options{})
	// A consumer that takes a snapshot every 10 ms.
	snapshot := time.Now()
	next := func() time.Time {
		for !snapshot.After(time.Now()) {
			snapshot = snapshot.Add(10 * time.Millisecond)
		}
		return snapshot
	}
	got := collect(t, c, llm.WithPacing(t.Context(), 2*time.Millisecond, next), llm.Request{Model: "m"})
	if got.Err != nil || got.FinishReason != "stop" {
		t.Fatalf("paced stream ended with %v (finish %q)", got.Err, got.FinishReason)
	}
	if got.Content != text {
		t.Errorf("paced stream delivered %q, want %q", got.Content, text)
	}

	// Cancelling while the reader waits for the next snapshot ends the
	// stream.
	up.SetScript(llmtest.Script{Content: llmtest.Tokens(text), Interval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var err error
	later := time.Now().Add(time.Hour)
	for d, e := range c.Stream(llm.WithPacing(ctx, 0, func() time.Time { return later }), llm.Request{Model: "m"}) {
		if e != nil {
			err = e
			break
		}
		if d.Content != "" {
			cancel() // the next read would wait an hour
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled paced stream ended with %v, want context.Canceled", err)
	}
}
