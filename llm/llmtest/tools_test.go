package llmtest_test

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

// post sends a JSON body to path and returns the response.
func post(t *testing.T, s *llmtest.Server, path, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(s.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// dataEvents reads the "data:" payloads of an SSE body.
func dataEvents(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, p)
		}
	}
	return out
}

func TestServer_ToolCallsStream(t *testing.T) {
	s := newServer(t)
	s.Enqueue(llmtest.Script{Content: []string{"Let me check."}, ToolCalls: []llmtest.ToolCall{
		{ID: "call_w", Name: "weather", Arguments: []string{`{"city":`, `"Paris"}`}},
		{Name: "time", Arguments: []string{`{}`}},
	}})
	events := dataEvents(t, post(t, s, "/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`).Body)
	deltas := make([]string, len(events))
	for i, ev := range events {
		var c struct {
			Choices []struct {
				Delta        json.RawMessage `json:"delta"`
				FinishReason *string         `json:"finish_reason"`
			} `json:"choices"`
		}
		if ev == "[DONE]" {
			deltas[i] = ev
			continue
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil || len(c.Choices) != 1 {
			t.Fatalf("event %q: %v", ev, err)
		}
		deltas[i] = string(c.Choices[0].Delta)
		if f := c.Choices[0].FinishReason; f != nil {
			deltas[i] += " " + *f
		}
	}
	want := []string{
		`{"role":"assistant","content":"Let me check."}`,
		`{"tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"weather","arguments":""}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`,
		`{"tool_calls":[{"index":1,"id":"call_1","type":"function","function":{"name":"time","arguments":""}}]}`,
		`{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}`,
		`{} tool_calls`,
		`[DONE]`,
	}
	if strings.Join(deltas, "\n") != strings.Join(want, "\n") {
		t.Errorf("deltas:\n%s\nwant:\n%s", strings.Join(deltas, "\n"), strings.Join(want, "\n"))
	}
}

func TestServer_ToolCallsWhole(t *testing.T) {
	s := newServer(t)
	s.Enqueue(llmtest.Script{ToolCalls: []llmtest.ToolCall{{Name: "weather", Arguments: []string{`{"city":`, `"Paris"}`}}}})
	var c struct {
		Choices []struct {
			Message struct {
				Content   *string `json:"content"`
				ToolCalls []struct {
					ID       string `json:"id"`
					Type     string `json:"type"`
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(post(t, s, "/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`).Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	ch := c.Choices[0]
	if ch.Message.Content != nil || len(ch.Message.ToolCalls) != 1 || ch.FinishReason != "tool_calls" || c.Usage.CompletionTokens != 2 {
		t.Fatalf("answer %+v usage %+v", ch, c.Usage)
	}
	if tc := ch.Message.ToolCalls[0]; tc.ID != "call_0" || tc.Type != "function" || tc.Function.Name != "weather" ||
		tc.Function.Arguments != `{"city":"Paris"}` {
		t.Errorf("tool call %+v", tc)
	}
}

func TestServer_NoUsage(t *testing.T) {
	s := newServer(t)
	for _, d := range []llmtest.Dialect{llmtest.DeepInfra, llmtest.VLLM, llmtest.LlamaCpp} {
		s.Enqueue(llmtest.Script{Dialect: d, Content: []string{"a"}, NoUsage: true})
		body := `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
		for _, ev := range dataEvents(t, post(t, s, "/chat/completions", body).Body) {
			if strings.Contains(ev, `"usage"`) {
				t.Errorf("dialect %d: usage sent: %s", d, ev)
			}
		}
	}
	s.Enqueue(llmtest.Script{Content: []string{"a"}, NoUsage: true})
	data, _ := io.ReadAll(post(t, s, "/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`).Body)
	if strings.Contains(string(data), `"usage"`) {
		t.Errorf("whole answer has usage: %s", data)
	}
}

func TestServer_RejectStreamOptions(t *testing.T) {
	s := newServer(t)
	s.RejectStreamOptions(true)
	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"ErrStreamOptions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`, 400},
		{"ErrNull", `{"model":"m","stream":true,"stream_options":null,"messages":[]}`, 400},
		{"Without", `{"model":"m","stream":true,"messages":[]}`, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, s, "/chat/completions", tt.body)
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want || tt.want == 400 && !strings.Contains(string(data), llmtest.StreamOptionsRefusal) {
				t.Errorf("status %d: %s", resp.StatusCode, data)
			}
		})
	}
	s.RejectStreamOptions(false)
	if resp := post(t, s, "/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`); resp.StatusCode != 200 {
		t.Errorf("accepted again: status %d", resp.StatusCode)
	}
	if n := len(s.Requests()); n != 4 {
		t.Errorf("%d requests recorded, want 4", n)
	}
}

func TestServer_Embeddings(t *testing.T) {
	s := newServer(t)
	type answer struct {
		Data []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Model string `json:"model"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	read := func(body string) answer {
		t.Helper()
		resp := post(t, s, "/embeddings", body)
		var a answer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		return a
	}
	a := read(`{"model":"bge","input":["one two","three"]}`)
	if len(a.Data) != 2 || a.Model != "bge" || a.Usage.PromptTokens != 3 {
		t.Fatalf("answer %+v", a)
	}
	var v []float32
	if err := json.Unmarshal(a.Data[1].Embedding, &v); err != nil || len(v) != llmtest.DefaultEmbeddingDimensions {
		t.Fatalf("vector %s: %v", a.Data[1].Embedding, err)
	}
	want := llmtest.Vector("three", llmtest.DefaultEmbeddingDimensions)
	for i := range v {
		if v[i] != want[i] || v[i] < -1 || v[i] > 1 {
			t.Errorf("v[%d] = %v, want %v in [-1, 1]", i, v[i], want[i])
		}
	}
	a = read(`{"model":"bge","input":"three","encoding_format":"base64","dimensions":3}`)
	var s64 string
	json.Unmarshal(a.Data[0].Embedding, &s64)
	raw, err := base64.StdEncoding.DecodeString(s64)
	if err != nil || len(raw) != 12 || math.Float32frombits(binary.LittleEndian.Uint32(raw)) != llmtest.Vector("three", 3)[0] {
		t.Errorf("base64 %q: %v", s64, err)
	}

	s.EnqueueEmbedding(llmtest.Embedding{Status: 404})
	if resp := post(t, s, "/embeddings", `{"model":"bge","input":"x"}`); resp.StatusCode != 404 {
		t.Errorf("scripted refusal: status %d", resp.StatusCode)
	}
	for _, body := range []string{`{"model":"bge","input":{}}`, `{"input":"x"}`, `[]`} {
		if resp := post(t, s, "/embeddings", body); resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", body, resp.StatusCode)
		}
	}
}

func TestServer_ModelTags(t *testing.T) {
	s := newServer(t)
	s.SetModels([]llmtest.ModelInfo{{ID: "a", Vision: true, Tools: true, Reasoning: true}, {ID: "b", Tools: true}, {ID: "c"}})
	resp, err := http.Get(s.URL + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			Metadata *struct {
				Tags []string `json:"tags"`
			} `json:"metadata"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if d := list.Data; len(d) != 3 || strings.Join(d[0].Metadata.Tags, ",") != "vision,tools,reasoning" ||
		strings.Join(d[1].Metadata.Tags, ",") != "tools" || d[2].Metadata != nil {
		t.Errorf("list %+v", list)
	}
}
