package gateway_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// usageChunks counts a chat stream's usage-only chunks ("choices": []
// and a usage) and returns the total tokens of the last one; it checks
// that such a chunk comes last, just before [DONE], and that no other
// chunk then has usage (which SDKs would count twice).
func usageChunks(t *testing.T, events []string) (n, total int) {
	t.Helper()
	for i, ev := range events {
		var c struct {
			Choices []json.RawMessage `json:"choices"`
			Usage   *struct {
				TotalTokens int `json:"total_tokens"`
			} `json:"usage"`
		}
		if ev == "[DONE]" || json.Unmarshal([]byte(ev), &c) != nil || c.Usage == nil {
			continue
		}
		if len(c.Choices) > 0 {
			defer func() {
				if n > 0 {
					t.Errorf("chunk %d has choices and usage as well as the usage chunk: %s", i, ev)
				}
			}()
			continue
		}
		if i != len(events)-2 || events[len(events)-1] != "[DONE]" {
			t.Errorf("usage chunk %d of %d is not the last before [DONE]", i, len(events))
		}
		n, total = n+1, c.Usage.TotalTokens
	}
	return n, total
}

// stream_options.include_usage gets the client a usage chunk whatever way
// the provider reports usage, and no chunk it did not ask for.
func TestRelay_IncludeUsage(t *testing.T) {
	for _, tt := range []struct {
		name      string
		script    llmtest.Script
		ask       bool
		wantChunk int
	}{
		{"UsageOnFinish", llmtest.Script{Content: []string{"a"}}, true, 1},                     // DeepInfra: added by the relay
		{"UsageChunk", llmtest.Script{Dialect: llmtest.VLLM, Content: []string{"a"}}, true, 1}, // the provider's own
		{"LlamaCpp", llmtest.Script{Dialect: llmtest.LlamaCpp, Content: []string{"a"}}, true, 1},
		{"NotAsked", llmtest.Script{Content: []string{"a"}}, false, 0},
		{"NotAskedVLLM", llmtest.Script{Dialect: llmtest.VLLM, Content: []string{"a"}}, false, 0},
		{"NoUsage", llmtest.Script{Content: []string{"a"}, NoUsage: true}, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{})
			e.up.Enqueue(tt.script)
			body := `{"model":"deepinfra/echo","stream":true,"messages":[{"role":"user","content":"one two"}]}`
			if tt.ask {
				body = strings.Replace(body, `"stream":true`, `"stream":true,"stream_options":{"include_usage":true}`, 1)
			}
			events := readEvents(t, e.post(t, "/v1/chat/completions", body, nil).Body)
			if n, total := usageChunks(t, events); n != tt.wantChunk || n > 0 && total != 3 {
				t.Errorf("%d usage chunks (total %d), want %d (total 3):\n%s", n, total, tt.wantChunk, strings.Join(events, "\n"))
			}
		})
	}
}

// A provider that refuses stream_options gets the request again without
// it, and is remembered: the next request leaves it out at once. The
// client still gets its usage chunk when the provider sends usage, and
// openai-go reads it.
func TestRelay_StreamOptionsRefused(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.RejectStreamOptions(true)
	c := newSDK(e, "x")
	params := chatParams("deepinfra/echo", "one two")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	for i, wantUp := range []int{2, 1} { // retried, then left out at once
		seen := len(e.up.Requests())
		e.up.Enqueue(llmtest.Script{Content: []string{"a", "b"}})
		stream := c.Chat.Completions.NewStreaming(t.Context(), params)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if acc.Choices[0].Message.Content != "ab" || acc.Usage.TotalTokens != 4 { // counted once
			t.Errorf("request %d: content %q, usage %+v", i, acc.Choices[0].Message.Content, acc.Usage)
		}
		reqs := e.up.Requests()[seen:]
		if len(reqs) != wantUp {
			t.Fatalf("request %d: %d upstream requests, want %d", i, len(reqs), wantUp)
		}
		if _, has := reqs[len(reqs)-1].Request.Fields["stream_options"]; has {
			t.Errorf("request %d: stream_options sent on the request that was answered", i)
		}
	}
	if n := strings.Count(e.log.String(), "provider refuses stream_options"); n != 1 {
		t.Errorf("%d notices, want 1:\n%s", n, e.log)
	}

	// A provider that also sends no usage: the stream ends well, without
	// a usage chunk (there is nothing to report).
	e.up.Enqueue(llmtest.Script{Content: []string{"a"}, NoUsage: true})
	events := readEvents(t, e.post(t, "/v1/chat/completions",
		`{"model":"deepinfra/echo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`, nil).Body)
	if n, _ := usageChunks(t, events); n != 0 || events[len(events)-1] != "[DONE]" {
		t.Errorf("events %q", events)
	}
}

// /v1/responses asks for include_usage itself; a provider that refuses
// it is retried without, and response.completed still has the usage the
// provider sends on its finish chunk.
func TestResponses_StreamOptionsRefused(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.RejectStreamOptions(true)
	e.up.Enqueue(llmtest.Script{Content: []string{"a", "b"}})
	c := newSDK(e, "x")
	stream := c.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{Model: "deepinfra/echo",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("one two")}})
	var done responses.Response
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.completed" {
			done = ev.AsResponseCompleted().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if done.OutputText() != "ab" || done.Usage.TotalTokens != 4 || done.Usage.InputTokens != 2 {
		t.Errorf("completed %s", done.RawJSON())
	}
	if n := len(e.up.Requests()); n != 2 {
		t.Errorf("%d upstream requests, want 2", n)
	}
}
