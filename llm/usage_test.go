package llm_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
)

// TestClient_Stream_Usage checks what a stream's last Delta says of the
// tokens used, for the ways providers report them: once after the finish
// reason (OpenAI, vLLM, Ollama with include_usage), on the finish chunk
// (DeepInfra, with its estimated_cost), in every chunk as running totals
// (vLLM's continuous_usage_stats), twice, with reasoning tokens, or not
// at all. Usage sent more than once is the same usage: the last one
// counts, never a sum.
func TestClient_Stream_Usage(t *testing.T) {
	const (
		hello  = `data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}` + "\n\n"
		finish = `data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
		done   = "data: [DONE]\n\n"
	)
	tests := []struct {
		name string
		body string
		want *llm.Usage
	}{
		{"AfterFinish", hello + finish +
			`data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}` + "\n\n" + done,
			&llm.Usage{PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}},
		{"DeepInfraOnFinish", hello +
			`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"total_tokens":17,"completion_tokens":7,"estimated_cost":1.2e-05}}` + "\n\n" + done,
			&llm.Usage{PromptTokens: 10, CompletionTokens: 7, TotalTokens: 17}},
		{"Continuous",
			`data: {"choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}` + "\n\n" +
				`data: {"choices":[{"index":0,"delta":{"content":" there"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}` + "\n\n" +
				`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}` + "\n\n" + done,
			&llm.Usage{PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}},
		{"Twice", hello +
			`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}` + "\n\n" +
			`data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}` + "\n\n" + done,
			&llm.Usage{PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}},
		{"Reasoning",
			`data: {"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}` + "\n\n" + hello + finish +
				`data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14,"completion_tokens_details":{"reasoning_tokens":8}}}` + "\n\n" + done,
			&llm.Usage{PromptTokens: 5, CompletionTokens: 9, TotalTokens: 14, CompletionDetails: llm.CompletionDetails{ReasoningTokens: 8}}},
		{"None", hello + finish + done, nil},
		{"Null", hello + finish + `data: {"choices":[],"usage":null}` + "\n\n" + done, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := llm.NewClient(llm.Provider{Name: "p", BaseURL: srv.URL}, llm.Options{})
			var got *llm.Usage
			var text strings.Builder
			for d, err := range c.Stream(t.Context(), llm.Request{Model: "m"}) {
				if err != nil {
					t.Fatal(err)
				}
				text.WriteString(d.Content)
				if d.Usage != nil {
					if got != nil {
						t.Fatalf("usage delivered twice: %+v, then %+v", *got, *d.Usage)
					}
					got = d.Usage
				}
			}
			if !strings.HasPrefix(text.String(), "Hi") {
				t.Errorf("content = %q", text.String())
			}
			switch {
			case tt.want == nil && got != nil:
				t.Errorf("usage = %+v, want none", *got)
			case tt.want != nil && (got == nil || *got != *tt.want):
				t.Errorf("usage = %+v, want %+v", got, *tt.want)
			}
		})
	}
}

func TestUsage_IsZero(t *testing.T) {
	if !(llm.Usage{}).IsZero() {
		t.Error("Usage{}.IsZero() = false")
	}
	if (llm.Usage{CompletionTokens: 1}).IsZero() {
		t.Error("a usage with a token is zero")
	}
}
