package llm_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
)

// benchChunks is the length of the benchmark stream.
const benchChunks = 20000

// deepInfraBody is a DeepInfra-style R1 stream of n chunks (about 260 B
// each): the first half reasoning_content, the second half content, the
// last chunk finish_reason and usage.
func deepInfraBody(n int) []byte {
	var b strings.Builder
	const head = `data: {"id":"chatcmpl-5f1f0e6c8a7b","object":"chat.completion.chunk","created":1750000000,"model":"deepseek-ai/DeepSeek-R1-0528-Turbo","choices":[{"index":0,"delta":{`
	for i := range n - 1 {
		b.WriteString(head)
		tok := fmt.Sprintf(" tok%05d", i)
		if i < n/2 {
			b.WriteString(`"role":"assistant","content":null,"reasoning_content":"` + tok + `"`)
		} else {
			b.WriteString(`"role":"assistant","content":"` + tok + `","reasoning_content":null`)
		}
		b.WriteString(`},"finish_reason":null}],"usage":null}` + "\n\n")
	}
	b.WriteString(head)
	b.WriteString(`},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":20000,"total_tokens":20012}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

func BenchmarkStream(b *testing.B) {
	body := deepInfraBody(benchChunks)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	c := llm.NewClient(llm.Provider{Name: "bench", BaseURL: srv.URL}, llm.Options{})
	req := llm.Request{Model: "deepseek-ai/DeepSeek-R1-0528-Turbo", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	b.ResetTimer()
	for b.Loop() {
		var content, reasoning int
		var finish string
		for d, err := range c.Stream(b.Context(), req) {
			if err != nil {
				b.Fatal(err)
			}
			content += len(d.Content)
			reasoning += len(d.Reasoning)
			if d.FinishReason != "" {
				finish = d.FinishReason
				if d.Usage == nil || d.Usage.CompletionTokens != benchChunks {
					b.Fatalf("usage = %+v", d.Usage)
				}
			}
		}
		if want := (benchChunks / 2) * 9; reasoning != want || content != (benchChunks-1-benchChunks/2)*9 || finish != "stop" {
			b.Fatalf("reasoning %d, content %d, finish %q", reasoning, content, finish)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	chunks := float64(b.N) * benchChunks
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/chunks, "ns/chunk")
	b.ReportMetric(float64(ms.Mallocs-mallocs)/chunks, "allocs/chunk")
	b.ReportMetric(chunks/b.Elapsed().Seconds(), "chunks/s")
}
