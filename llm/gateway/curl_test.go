package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm/gateway"
)

// issueBody is the -d argument of the curl request in the issue, byte for
// byte; stream is "true" or "false".
func issueBody(stream string) string {
	return `{"model": "deepseek-ai/DeepSeek-V3-0324-Turbo",
       "messages": [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "Explain quantum computing in simple terms."}],
       "temperature": 0.7, "max_tokens": 1000, "stream": ` + stream + `}`
}

// issueRequest is the curl request of the issue, headers included.
func issueRequest(t *testing.T, base, stream string) *http.Request {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(issueBody(stream)))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range [][2]string{
		{"User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"},
		{"Accept", "text/event-stream"},
		{"Content-Type", "application/json"},
		{"X-Deepinfra-Source", "web-page"},
		{"Origin", "https://deepinfra.com"},
		{"Referer", "https://deepinfra.com/"},
	} {
		req.Header.Set(h[0], h[1])
	}
	return req
}

func TestCurl_Stream(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	resp, err := http.DefaultClient.Do(issueRequest(t, e.url, "true"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	events := readEvents(t, resp.Body)
	if len(events) < 2 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events = %q", events)
	}
	var content strings.Builder
	finish := ""
	for _, ev := range events[:len(events)-1] {
		var chunk struct {
			Object  string `json:"object"`
			Model   string `json:"model"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev), &chunk); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		if chunk.Object != "chat.completion.chunk" || chunk.Model != "deepseek-ai/DeepSeek-V3-0324-Turbo" {
			t.Errorf("chunk %s", ev)
		}
		content.WriteString(chunk.Choices[0].Delta.Content)
		if fr := chunk.Choices[0].FinishReason; fr != nil {
			finish = *fr
		}
	}
	if got := content.String(); got != "echo: Explain quantum computing in simple terms." || finish != "stop" {
		t.Errorf("content %q, finish %q", got, finish)
	}
	rec := e.up.Requests()[len(e.up.Requests())-1]
	if r := rec.Request; r.Model != "deepseek-ai/DeepSeek-V3-0324-Turbo" || *r.Temperature != 0.7 ||
		r.MaxTokens != 1000 || !r.Stream || len(r.Messages) != 2 || r.IncludeUsage {
		t.Errorf("upstream request %+v", r)
	}
	if !strings.Contains(e.log.String(), "model=deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo stream=true prompt_tokens=11 completion_tokens=7") {
		t.Errorf("log:\n%s", e.log.String())
	}
}

func TestCurl_NonStream(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	resp, err := http.DefaultClient.Do(issueRequest(t, e.url, "false"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	var comp struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role, Content string
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(data, &comp); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if comp.Object != "chat.completion" || comp.Choices[0].Message.Content != "echo: Explain quantum computing in simple terms." ||
		comp.Choices[0].FinishReason != "stop" || comp.Usage.PromptTokens != 11 || comp.Usage.CompletionTokens != 7 {
		t.Errorf("completion %s", data)
	}
	if rec := e.up.Requests()[len(e.up.Requests())-1]; rec.Request.Stream {
		t.Error("upstream request was streamed")
	}
}
