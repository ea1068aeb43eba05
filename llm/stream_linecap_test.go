package llm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/llm/sse"
)

// TestClient_Stream_LineTooLong streams a chunk longer than sse.MaxLine,
// as a runaway model might send: the text before it arrives, then the
// stream ends with an error that says so, not as a cut-off answer.
func TestClient_Stream_LineTooLong(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{Content: []string{"Hello", strings.Repeat("x", sse.MaxLine), "never"}})
	c := llm.NewClient(llm.Provider{Name: "test", BaseURL: up.URL}, llm.Options{})
	got := collect(t, c, t.Context(), llm.Request{Model: "m"})
	if got.Content != "Hello" {
		t.Errorf("content = %.20q, want the text before the long chunk", got.Content)
	}
	if !errors.Is(got.Err, sse.ErrLineTooLong) || errors.Is(got.Err, llm.ErrTruncated) {
		t.Errorf("error = %v, want sse.ErrLineTooLong and not ErrTruncated", got.Err)
	}
}
