package llmtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

func newServer(t *testing.T) *llmtest.Server {
	t.Helper()
	s := llmtest.NewServer()
	t.Cleanup(s.Close)
	return s
}

func TestTokens(t *testing.T) {
	for _, text := range []string{"", "one", "echo: hello  world\n", " lead", "a b c"} {
		if got := strings.Join(llmtest.Tokens(text), ""); got != text {
			t.Errorf("Tokens(%q) joined = %q", text, got)
		}
	}
	if got := llmtest.Tokens("a b c"); len(got) != 3 {
		t.Errorf("Tokens(\"a b c\") = %q, want 3 tokens", got)
	}
}

func TestServer_EchoAndQueue(t *testing.T) {
	s := newServer(t)
	s.Enqueue(llmtest.Script{Content: []string{"first"}})
	c := llm.NewClient(s.Provider("fake"), llm.Options{})
	req := llm.Request{Model: "echo", Messages: []llm.Message{{Role: llm.RoleUser, Content: "ping pong"}}}
	for i, want := range []string{"first", "echo: ping pong", "echo: ping pong"} {
		var comp llm.Completion
		var err error
		if i < 2 {
			comp, err = c.Complete(t.Context(), req)
		} else {
			// The same answer, streamed.
			for d, e := range c.Stream(t.Context(), req) {
				comp.Content += d.Content
				err = e
			}
		}
		if err != nil || comp.Content != want {
			t.Errorf("answer %d = %q, %v; want %q", i, comp.Content, err, want)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/v1/chat/completions" ||
		reqs[0].Request.Model != "echo" || reqs[0].Request.Messages[0].Content != "ping pong" || reqs[0].Request.Stream ||
		!reqs[2].Request.Stream || !reqs[2].Request.IncludeUsage {
		t.Errorf("recorded %d requests: %+v", len(reqs), reqs)
	}
}

func TestServer_Models(t *testing.T) {
	s := newServer(t)
	resp, err := http.Get(s.URL + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID       string          `json:"id"`
			Object   string          `json:"object"`
			Metadata json.RawMessage `json:"metadata"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 3 || list.Data[0].Object != "model" ||
		string(list.Data[0].Metadata) != `{"context_length":32768,"pricing":{"input_tokens":1,"output_tokens":3}}` ||
		string(list.Data[2].Metadata) != "null" {
		t.Errorf("got %+v", list)
	}
}

func TestServer_RequireKeyAndRoutes(t *testing.T) {
	s := newServer(t)
	s.RequireKey("k")
	for _, tt := range []struct {
		method, path, auth string
		want               int
	}{
		{http.MethodGet, "/models", "", 401},
		{http.MethodGet, "/models", "Bearer k", 200},
		{http.MethodPost, "/chat/completions", "Bearer x", 401},
		{http.MethodGet, "/nowhere", "Bearer k", 404},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, s.URL+tt.path, strings.NewReader(`{}`))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.want)
		}
	}
}

func TestServer_Raw(t *testing.T) {
	s := newServer(t)
	for _, tt := range []struct {
		name, raw, rawType string
		stream             bool
		wantType           string
	}{
		{"NotJSON", `{"choices":[`, "", false, "application/json"},
		{"SSEToNonStream", "data: {}\n\n", "text/event-stream", false, "text/event-stream"},
		{"GarbageToStream", "<html>", "text/html", true, "text/html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.Enqueue(llmtest.Script{Raw: tt.raw, RawType: tt.rawType})
			body := `{"model":"echo","messages":[]}`
			if tt.stream {
				body = `{"model":"echo","messages":[],"stream":true}`
			}
			resp, err := http.Post(s.URL+"/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.wantType || string(got) != tt.raw {
				t.Errorf("%d %q %q, want 200 %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), got, tt.wantType, tt.raw)
			}
		})
	}
}
