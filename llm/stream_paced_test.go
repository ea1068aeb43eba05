package llm

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestReadStream_PacedFast reads a fast model (1,000 chunks of
// 260 bytes a second) paced as the reply engine paces it: a snapshot every
// second, the stream read from 100 ms before it, and otherwise at most
// 20 ms after the last read. Each paced read takes what waited, however
// much: no token comes more than a few reads late, and the end of the
// answer is seen within one pause of it. With a read buffer that stays at
// its size, each read takes no more than the buffer holds, and the stream
// falls behind: by 767 ms with 1 KiB (the end seen 400 ms late), by 239 ms
// with 4 KiB (180 ms).
func TestReadStream_PacedFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			rate   = 1000 // chunks per second
			chunks = 3500 // ends half-way between two snapshots
			lead   = 100 * time.Millisecond
			lag    = 20 * time.Millisecond
		)
		start := time.Now()
		written := func(i int) time.Time { return start.Add(time.Duration(i) * time.Second / rate) }
		s := &socket{ready: make(chan struct{}, 1)}
		go func() {
			for i := range chunks {
				time.Sleep(time.Until(written(i)))
				s.write(fmt.Sprintf(`data: {"id":"chatcmpl-5f1f0e6c8a7b","object":"chat.completion.chunk","created":1750000000,"model":"deepseek-ai/DeepSeek-R1-0528-Turbo","choices":[{"index":0,"delta":{"role":"assistant","content":" %05d","reasoning_content":null},"finish_reason":null}],"usage":null}`+"\n\n", i))
			}
			s.write(`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")
			s.close()
		}()
		snapshot := start
		next := func() time.Time {
			for !snapshot.After(time.Now()) {
				snapshot = snapshot.Add(time.Second)
			}
			if limit := time.Now().Add(lead + lag); snapshot.After(limit) {
				return limit
			}
			return snapshot
		}
		p := &pacedReader{r: s, ctx: t.Context(), pace: pacing{lead: lead, next: next}}
		defer p.stop()
		c := NewClient(Provider{Name: "fast"}, Options{})
		var late time.Duration // the most a chunk came after it was written
		var end time.Time
		got := 0
		c.readStream(t.Context(), p, p, false, func(d Delta, err error) bool {
			if err != nil {
				t.Fatal(err)
			}
			if d.FinishReason != "" {
				end = time.Now()
				return true
			}
			var i int
			if fmt.Sscanf(d.Content, " %d", &i); i != got {
				t.Fatalf("delta %q came as chunk %d", d.Content, got)
			}
			late = max(late, time.Since(written(i)))
			got++
			return true
		})
		if got != chunks {
			t.Fatalf("read %d chunks, want %d", got, chunks)
		}
		t.Logf("latest chunk %v after it was written, the end %v", late, end.Sub(written(chunks)))
		if want := 3 * lag; late > want {
			t.Errorf("a chunk came %v after it was written, want at most %v", late, want)
		}
		if d := end.Sub(written(chunks)); d > lag {
			t.Errorf("the end came %v after it was written, want at most %v", d, lag)
		}
	})
}
