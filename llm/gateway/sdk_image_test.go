package gateway_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/palaver-bot/palaver/llm/gateway"
)

// An OpenAI SDK request with an image content part goes through the
// endpoint untouched: the upstream gets the same parts, image bytes equal.
func TestSDK_ImageContentParts(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	c := newSDK(e, "x")
	pic := []byte("\x89PNG\r\n\x1a\n not really decoded by the relay")
	url := "data:image/png;base64," + base64.StdEncoding.EncodeToString(pic)
	params := openai.ChatCompletionNewParams{
		Model: "deepinfra/echo",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
				openai.TextContentPart("what is in this picture?"),
				openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: url, Detail: "high"}),
			}),
		},
	}
	for _, stream := range []bool{false, true} {
		if stream {
			s := c.Chat.Completions.NewStreaming(t.Context(), params)
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := c.Chat.Completions.New(t.Context(), params); err != nil {
			t.Fatal(err)
		}
		reqs := e.up.Requests()
		parts := reqs[len(reqs)-1].Request.Parts
		if len(parts) != 1 || len(parts[0]) != 2 {
			t.Fatalf("stream %v: upstream parts %+v, want one message of two parts", stream, parts)
		}
		text, img := parts[0][0], parts[0][1]
		if text.Type != "text" || text.Text != "what is in this picture?" {
			t.Errorf("stream %v: text part %+v", stream, text)
		}
		if img.Type != "image_url" || img.URL != url || img.Detail != "high" || !bytes.Equal(img.Image.Data, pic) {
			t.Errorf("stream %v: image part %+v", stream, img)
		}
	}
}
