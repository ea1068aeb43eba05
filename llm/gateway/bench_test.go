//go:build unix

package gateway_test

import (
	"bufio"
	"bytes"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// benchChunks is the number of content chunks of the benchmark's answer.
const benchChunks = 2000

// relayFigures are one sub-benchmark's results.
type relayFigures struct {
	ttfb      time.Duration // median time to the first event
	cpuChunk  float64       // process CPU (user+system) per chunk, ns
	chunksSec float64
}

// BenchmarkRelay fetches the same 2,000-chunk stream directly from llmtest,
// through the gateway's chat relay, and through /v1/responses (which
// translates each chunk to an output_text.delta event), and reports what
// each way through the gateway adds: time to the first token's event,
// CPU per chunk, and its throughput as a share of the direct one. The CPU
// figures are the whole process's (client, gateway and llmtest), so the
// difference is the gateway's share.
func BenchmarkRelay(b *testing.B) {
	e := newEnv(b, gateway.Options{Logger: slog.New(slog.DiscardHandler)})
	// llmtest holds the rest of the stream back until the client has seen
	// the first token, so that time to first byte measures the path, not
	// how one 2-core process schedules three goroutines that are all busy
	// with the stream (which costs a millisecond or more either way).
	firstSeen := make(chan struct{}, 1)
	e.up.SetScript(llmtest.Script{
		Content: llmtest.Tokens(strings.TrimSpace(strings.Repeat("token ", benchChunks))),
		Sent: func(i, _ int) {
			if i == 1 { // the first token is out; hold the second
				select {
				case <-firstSeen:
				case <-time.After(5 * time.Second):
				}
			}
		},
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)

	chat := relayPath{
		first: []byte("data: "), last: []byte("data: [DONE]"),
		events: benchChunks + 2, // the content chunks, the finish chunk and [DONE]
	}
	var direct relayFigures
	b.Run("direct", func(b *testing.B) {
		p := chat
		p.url, p.body = e.up.URL+"/chat/completions", `{"model":"echo","messages":[{"role":"user","content":"go"}],"stream":true}`
		direct = runRelay(b, client, firstSeen, p)
	})
	added := func(b *testing.B, f relayFigures) {
		if direct.chunksSec > 0 {
			b.ReportMetric(float64(f.ttfb-direct.ttfb)/float64(time.Microsecond), "added-ttfb-µs")
			b.ReportMetric(f.cpuChunk-direct.cpuChunk, "added-cpu-ns/chunk")
			b.ReportMetric(100*f.chunksSec/direct.chunksSec, "throughput-%")
		}
	}
	b.Run("gateway", func(b *testing.B) {
		p := chat
		p.url, p.body = e.url+"/v1/chat/completions", `{"model":"deepinfra/echo","messages":[{"role":"user","content":"go"}],"stream":true}`
		added(b, runRelay(b, client, firstSeen, p))
	})
	b.Run("responses", func(b *testing.B) {
		added(b, runRelay(b, client, firstSeen, relayPath{
			url: e.url + "/v1/responses", body: `{"model":"deepinfra/echo","input":"go","stream":true}`,
			first: []byte(`data: {"type":"response.output_text.delta"`), last: []byte(`data: {"type":"response.completed"`),
			// created, in_progress, item and part added, the deltas,
			// text done, part and item done, completed
			events: benchChunks + 8,
		}))
	})
}

// relayPath is one way to fetch the benchmark's stream.
type relayPath struct {
	url, body string
	// first starts the data line of the first token; last the data line
	// that ends the stream; events is how many data lines it has.
	first, last []byte
	events      int
}

// runRelay fetches the stream b.N times and reports its figures.
// It signals firstSeen on each stream's first token.
func runRelay(b *testing.B, client *http.Client, firstSeen chan<- struct{}, p relayPath) relayFigures {
	ttfbs := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		resp, err := client.Post(p.url, "application/json", strings.NewReader(p.body))
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReaderSize(resp.Body, 16<<10)
		events, seen, done := 0, false, false
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				break
			}
			if !bytes.HasPrefix(line, []byte("data: ")) {
				continue
			}
			if !seen && bytes.HasPrefix(line, p.first) {
				seen = true
				ttfbs = append(ttfbs, time.Since(t0))
				firstSeen <- struct{}{}
			}
			events++
			done = bytes.HasPrefix(line, p.last)
		}
		resp.Body.Close()
		if !done || events != p.events {
			b.Fatalf("%d events, done %v", events, done)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	f := relayFigures{
		ttfb:      median(ttfbs),
		cpuChunk:  float64(cpuTime()-cpu0) / float64(b.N*benchChunks),
		chunksSec: float64(b.N*benchChunks) / elapsed.Seconds(),
	}
	b.ReportMetric(float64(f.ttfb)/float64(time.Microsecond), "ttfb-µs")
	b.ReportMetric(f.cpuChunk, "cpu-ns/chunk")
	b.ReportMetric(f.chunksSec, "chunks/s")
	return f
}

// median is the middle value of ds (which it sorts).
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
