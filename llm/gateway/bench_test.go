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

// BenchmarkRelay fetches the same 2,000-chunk stream directly from llmtest
// and through the gateway, and reports for the gateway what it adds: time
// to first byte, CPU per relayed chunk, and its throughput as a share of
// the direct one. The CPU figures are the whole process's (client, gateway
// and llmtest), so the difference is the gateway's share.
func BenchmarkRelay(b *testing.B) {
	e := newEnv(b, gateway.Options{Logger: slog.New(slog.DiscardHandler)})
	// llmtest holds the rest of the stream back until the client has seen
	// the first event, so that time to first byte measures the path, not
	// how one 2-core process schedules three goroutines that are all busy
	// with the stream (which costs a millisecond or more either way).
	firstSeen := make(chan struct{}, 1)
	e.up.SetScript(llmtest.Script{
		Content: llmtest.Tokens(strings.TrimSpace(strings.Repeat("token ", benchChunks))),
		Sent: func(i, _ int) {
			if i == 1 { // the first event is out; hold the second
				select {
				case <-firstSeen:
				case <-time.After(5 * time.Second):
				}
			}
		},
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)

	var direct relayFigures
	b.Run("direct", func(b *testing.B) {
		direct = runRelay(b, client, firstSeen, e.up.URL+"/chat/completions", `{"model":"echo","messages":[{"role":"user","content":"go"}],"stream":true}`)
	})
	b.Run("gateway", func(b *testing.B) {
		gw := runRelay(b, client, firstSeen, e.url+"/v1/chat/completions", `{"model":"deepinfra/echo","messages":[{"role":"user","content":"go"}],"stream":true}`)
		if direct.chunksSec > 0 {
			b.ReportMetric(float64(gw.ttfb-direct.ttfb)/float64(time.Microsecond), "added-ttfb-µs")
			b.ReportMetric(gw.cpuChunk-direct.cpuChunk, "added-cpu-ns/chunk")
			b.ReportMetric(100*gw.chunksSec/direct.chunksSec, "throughput-%")
		}
	})
}

// runRelay fetches the stream b.N times and reports its figures.
// It signals firstSeen on each stream's first event.
func runRelay(b *testing.B, client *http.Client, firstSeen chan<- struct{}, url, body string) relayFigures {
	ttfbs := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReaderSize(resp.Body, 16<<10)
		chunks, done := 0, false
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				break
			}
			if !bytes.HasPrefix(line, []byte("data: ")) {
				continue
			}
			if chunks == 0 {
				ttfbs = append(ttfbs, time.Since(t0))
				firstSeen <- struct{}{}
			}
			chunks++
			if bytes.HasPrefix(line, []byte("data: [DONE]")) {
				done = true
			}
		}
		resp.Body.Close()
		// The content chunks, the finish chunk and [DONE].
		if !done || chunks != benchChunks+2 {
			b.Fatalf("%d events, done %v", chunks, done)
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
