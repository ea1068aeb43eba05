package llm_test

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/llm/sse"
)

// text is n characters of alphabet in no repeating order, so that one
// lost, doubled or moved shows.
func text(n int, alphabet string) string {
	r := rand.New(rand.NewPCG(2, uint64(n)))
	chars := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(chars[r.IntN(len(chars))])
	}
	return b.String()
}

const letters = "abcdefghijklmnopqrstuvwxyz"

// TestClient_Stream_LongLine streams one chunk of a given line length,
// from one longer than the read buffers to sse.MaxLine and one byte more,
// through the Client's own transport: up to the cap it arrives intact,
// beyond it the stream ends with sse.ErrLineTooLong after the text before.
func TestClient_Stream_LongLine(t *testing.T) {
	const (
		head = `data: {"choices":[{"index":0,"delta":{"content":"`
		tail = `"},"finish_reason":null}]}`
	)
	tests := []struct {
		name string
		line int // the long line's length, "data: " included
		err  error
	}{
		{"LongerThanBuffers", 5 << 10, nil},
		{"Long", 300 << 10, nil},
		{"AtCap", sse.MaxLine, nil},
		{"OverCap", sse.MaxLine + 1, sse.ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := text(tt.line-len(head)-len(tail), letters)
			body := head + "Hello" + tail + "\n\n" + head + content + tail + "\r\n\r\n" +
				`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, body)
			}))
			t.Cleanup(srv.Close)
			c := llm.NewClient(llm.Provider{Name: "test", BaseURL: srv.URL}, llm.Options{})
			got := collect(t, c, t.Context(), llm.Request{Model: "m"})
			if tt.err != nil {
				if got.Content != "Hello" {
					t.Errorf("content = %.20q, want the text before the long chunk", got.Content)
				}
				if !errors.Is(got.Err, tt.err) || errors.Is(got.Err, llm.ErrTruncated) {
					t.Errorf("error = %v, want %v and not ErrTruncated", got.Err, tt.err)
				}
				return
			}
			if got.Err != nil || got.FinishReason != "stop" {
				t.Fatalf("stream ended with %v (finish %q)", got.Err, got.FinishReason)
			}
			if got.Content != "Hello"+content {
				t.Errorf("content is %d bytes, want %d", len(got.Content), len("Hello"+content))
			}
		})
	}
}

// TestClient_Stream_LongPrompt sends a 1 MB prompt through the Client's
// own transport, whose write buffer is 1 KiB: the server receives it
// intact.
func TestClient_Stream_LongPrompt(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{Content: []string{"ok"}})
	c := llm.NewClient(up.Provider("up"), llm.Options{})
	prompt := text(1_000_000, letters+" \n\"\\<>&é") // with what JSON escapes
	got := collect(t, c, t.Context(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: prompt}}})
	if got.Err != nil || got.Content != "ok" {
		t.Fatalf("stream = %q, %v; want %q", got.Content, got.Err, "ok")
	}
	reqs := up.Requests()
	if len(reqs) != 1 || len(reqs[0].Request.Messages) != 1 {
		t.Fatalf("server received %d requests, want 1 with 1 message", len(reqs))
	}
	if m := reqs[0].Request.Messages[0].Content; m != prompt {
		t.Errorf("server received a prompt of %d bytes, want the %d sent", len(m), len(prompt))
	}
}

// BenchmarkStream_LongPrompt sends a 1 MB prompt through the Client's own
// transport and reads a one-token answer: the cost of writing a large
// request body through the connection's write buffer.
func BenchmarkStream_LongPrompt(b *testing.B) {
	const answer = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, answer)
	}))
	b.Cleanup(srv.Close)
	c := llm.NewClient(llm.Provider{Name: "bench", BaseURL: srv.URL}, llm.Options{})
	req := llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: strings.Repeat("word ", 200_000)}}}
	b.SetBytes(1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range c.Stream(b.Context(), req) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
