package gateway_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

func newSDK(e *env, key string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(e.url+"/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
	)
}

func chatParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

func TestSDK_Chat(t *testing.T) {
	e := newEnv(t, gateway.Options{APIKeys: []string{"sk-one", "sk-two"}})
	c := newSDK(e, "sk-two")
	comp, err := c.Chat.Completions.New(t.Context(), chatParams("deepinfra/echo", "hello there"))
	if err != nil {
		t.Fatal(err)
	}
	if got := comp.Choices[0].Message.Content; got != "echo: hello there" {
		t.Errorf("content = %q", got)
	}
	if comp.Usage.CompletionTokens != 3 || comp.Model != "echo" {
		t.Errorf("usage %+v, model %q", comp.Usage, comp.Model)
	}
	log := e.log.String()
	if !strings.Contains(log, "key=key#2") || !strings.Contains(log, "model=deepinfra/echo") ||
		!strings.Contains(log, "completion_tokens=3") || strings.Contains(log, "sk-two") {
		t.Errorf("log line:\n%s", log)
	}
}

func TestSDK_Stream(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Reasoning: []string{"let me", " think"}, Content: llmtest.Tokens("The answer is 42.")})
	c := newSDK(e, "unused")
	params := chatParams("deepseek-ai/DeepSeek-V3-0324-Turbo", "question")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(t.Context(), params)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "The answer is 42." {
		t.Errorf("content = %q", got)
	}
	// The reasoning, the content, the finish chunk (with DeepInfra's
	// usage) and the usage chunk include_usage asks for.
	if acc.Choices[0].FinishReason != "stop" || acc.Usage.TotalTokens != 7 || chunks != 8 {
		t.Errorf("finish %q, usage %+v, %d chunks", acc.Choices[0].FinishReason, acc.Usage, chunks)
	}
	if reqs := e.up.Requests(); reqs[len(reqs)-1].Request.Model != "deepseek-ai/DeepSeek-V3-0324-Turbo" {
		t.Errorf("upstream model = %q", reqs[len(reqs)-1].Request.Model)
	}
}

func TestSDK_Models(t *testing.T) {
	e := newEnv(t, gateway.Options{Aliases: map[string]string{"r1": "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo"}})
	c := newSDK(e, "x")
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID+"@"+m.OwnedBy)
	}
	want := "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo@deepinfra deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo@deepinfra " +
		"deepinfra/echo@deepinfra r1@deepinfra"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("models = %s\nwant     %s", got, want)
	}
}

func TestSDK_UpstreamError(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Status: http.StatusBadRequest,
		Body: `{"error":{"message":"max_tokens too large","type":"invalid_request_error","code":"bad_max"}}`})
	c := newSDK(e, "x")
	_, err := c.Chat.Completions.New(t.Context(), chatParams("deepinfra/echo", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *openai.Error", err)
	}
	if apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != "bad_max" ||
		apiErr.Message != "provider deepinfra: max_tokens too large" || apiErr.Type != "invalid_request_error" {
		t.Errorf("error = %d %+v", apiErr.StatusCode, apiErr)
	}

	// A failure inside a stream ends the SDK's stream with an error.
	e.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("one two three"), Fail: llmtest.FailDrop, FailAfter: 2})
	stream := c.Chat.Completions.NewStreaming(t.Context(), chatParams("deepinfra/echo", "hi"))
	for stream.Next() {
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "before the answer was finished") {
		t.Errorf("stream error = %v", err)
	}
}
