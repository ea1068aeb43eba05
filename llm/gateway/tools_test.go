package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// answerID matches llmtest's answer ids, which count its answers.
var answerID = regexp.MustCompile(`chatcmpl-llmtest-\d+`)

// streamEvents fetches a chat stream from url and returns its events, the
// answer ids made alike.
func streamEvents(t *testing.T, url, body string) []string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return readEvents(t, strings.NewReader(answerID.ReplaceAllString(string(data), "chatcmpl-ID")))
}

// Streamed tool calls and reasoning pass through the chat relay byte for
// byte: index, id once, name, argument fragments as strings, parallel
// calls, finish_reason "tool_calls", reasoning_content and reasoning.
func TestRelay_ToolCallsExact(t *testing.T) {
	calls := []llmtest.ToolCall{
		{ID: "call_w", Name: "get_weather", Arguments: []string{`{"ci`, `ty": "Pa`, `ris"}`}},
		{ID: "call_t", Name: "get_time", Arguments: []string{`{`, `}`}},
	}
	for _, tt := range []struct {
		name   string
		script llmtest.Script
	}{
		{"DeepInfra", llmtest.Script{Reasoning: []string{"Two", " calls."}, ToolCalls: calls}},
		{"VLLM", llmtest.Script{Dialect: llmtest.VLLM, Reasoning: []string{"Two", " calls."}, Content: []string{"Checking."}, ToolCalls: calls}},
		{"Ollama", llmtest.Script{Dialect: llmtest.Ollama, Reasoning: []string{"Hm"}, ToolCalls: calls}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{})
			e.up.SetScript(tt.script)
			body := `{"model":"%s","stream":true,"messages":[{"role":"user","content":"weather?"}]}`
			direct := streamEvents(t, e.up.URL+"/chat/completions", strings.Replace(body, "%s", "echo", 1))
			relayed := streamEvents(t, e.url+"/v1/chat/completions", strings.Replace(body, "%s", "deepinfra/echo", 1))
			if strings.Join(relayed, "\n") != strings.Join(direct, "\n") {
				t.Errorf("relayed:\n%s\ndirect:\n%s", strings.Join(relayed, "\n"), strings.Join(direct, "\n"))
			}
			if !strings.Contains(strings.Join(relayed, ""), `"finish_reason":"tool_calls"`) {
				t.Error("no tool_calls finish reason")
			}
		})
	}
}

// openai-go's stream accumulator rebuilds parallel tool calls from the
// relayed stream.
func TestSDK_StreamToolCalls(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Content: []string{"Let me look."}, ToolCalls: []llmtest.ToolCall{
		{ID: "call_w", Name: "get_weather", Arguments: []string{`{"city":`, ` "Paris"}`}},
		{ID: "call_t", Name: "get_time", Arguments: []string{`{"tz":"CET"}`}},
	}})
	c := newSDK(e, "x")
	stream := c.Chat.Completions.NewStreaming(t.Context(), chatParams("deepinfra/echo", "weather and time?"))
	var acc openai.ChatCompletionAccumulator
	var finished []string
	for stream.Next() {
		if !acc.AddChunk(stream.Current()) {
			t.Fatalf("chunk refused: %s", stream.Current().RawJSON())
		}
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc.ID+" "+tc.Name+" "+tc.Arguments)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	m := acc.Choices[0].Message
	if m.Content != "Let me look." || acc.Choices[0].FinishReason != "tool_calls" || len(m.ToolCalls) != 2 {
		t.Fatalf("message %+v, finish %q", m, acc.Choices[0].FinishReason)
	}
	for i, want := range []struct{ id, name, args string }{
		{"call_w", "get_weather", `{"city": "Paris"}`},
		{"call_t", "get_time", `{"tz":"CET"}`},
	} {
		tc := m.ToolCalls[i]
		if tc.ID != want.id || tc.Type != "function" || tc.Function.Name != want.name || tc.Function.Arguments != want.args {
			t.Errorf("tool call %d = %+v, want %+v", i, tc, want)
		}
	}
	if len(finished) < 1 || finished[0] != `call_w get_weather {"city": "Paris"}` {
		t.Errorf("finished calls %q", finished)
	}
}

// Tool-call arguments split at every byte, into two fragments or into
// single bytes, arrive whole and unchanged through the chat relay (as
// openai-go's accumulator joins them) and through /v1/responses (the
// function_call item's arguments, and its argument deltas joined).
func TestToolCallArguments_EverySplit(t *testing.T) {
	args := `{"path":"C:\\tmp\\a \"b\".txt","n":[1,2.5,-3e2],"s":"\u00e9\ud83d\ude00","ok":true}`
	if !json.Valid([]byte(args)) {
		t.Fatal("test arguments are not JSON")
	}
	splits := [][]string{}
	for i := 0; i <= len(args); i++ {
		splits = append(splits, []string{args[:i], args[i:]})
	}
	bytesApart := make([]string, len(args))
	for i := range args {
		bytesApart[i] = args[i : i+1]
	}
	splits = append(splits, bytesApart)

	e := newEnv(t, gateway.Options{})
	c := newSDK(e, "x")
	for n, frags := range splits {
		e.up.Enqueue(llmtest.Script{ToolCalls: []llmtest.ToolCall{{ID: "call_1", Name: "f", Arguments: frags}}})
		stream := c.Chat.Completions.NewStreaming(t.Context(), chatParams("deepinfra/echo", "go"))
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("split %d: %v", n, err)
		}
		if got := acc.Choices[0].Message.ToolCalls; len(got) != 1 || got[0].Function.Arguments != args {
			t.Fatalf("split %d (%q): chat arguments %+v", n, frags, got)
		}

		e.up.Enqueue(llmtest.Script{ToolCalls: []llmtest.ToolCall{{ID: "call_1", Name: "f", Arguments: frags}}})
		resp := e.post(t, "/v1/responses", `{"model":"deepinfra/echo","input":"go","stream":true}`, nil)
		var deltas, done string
		for _, ev := range readResponseEvents(t, resp.Body) {
			var v struct {
				Type      string `json:"type"`
				Delta     string `json:"delta"`
				Arguments string `json:"arguments"`
			}
			if err := json.Unmarshal([]byte(ev), &v); err != nil {
				t.Fatalf("split %d: event %s: %v", n, ev, err)
			}
			switch v.Type {
			case "response.function_call_arguments.delta":
				deltas += v.Delta
			case "response.function_call_arguments.done":
				done = v.Arguments
			}
		}
		resp.Body.Close()
		if deltas != args || done != args {
			t.Fatalf("split %d (%q): responses arguments %q, done %q", n, frags, deltas, done)
		}
	}
}

// readResponseEvents returns the data of a Responses event stream.
func readResponseEvents(t *testing.T, r io.Reader) []string {
	t.Helper()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	checkResponseEvents(t, data)
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(string(data), "\n\n"), "\n\n") {
		_, payload, _ := strings.Cut(ev, "\ndata: ")
		out = append(out, payload)
	}
	return out
}
