package sessions_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// slowReply is an in-memory reply on a 1 s schedule per conversation.
type slowReply struct {
	dest  sessions.Destination
	shows atomic.Int64
	final atomic.Pointer[string]
}

func (r *slowReply) Destination() sessions.Destination { return r.dest }

func (r *slowReply) Show(ctx context.Context, v sessions.View) (int, error) {
	r.shows.Add(1)
	if v.Final {
		s := v.Content
		r.final.Store(&s)
	}
	return 1, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkManager_Conversations streams 500-token answers into 1,000
// concurrent conversations through the real llm client, Manager, engine
// and bbolt store, with a 1 s edit interval per conversation. The fake
// upstream (llmtest) runs in a child process, so CPU, allocations and heap
// are Palaver's own.
func BenchmarkManager_Conversations(b *testing.B) {
	const (
		convs  = 1000
		tokens = 500
	)
	url := startUpstreamProcess(b)
	store, err := sessions.OpenBolt(filepath.Join(b.TempDir(), "bench.db"), sessions.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	client := llm.NewClient(llm.Provider{Name: "fake", BaseURL: url}, llm.Options{})
	router, err := llm.NewRouter([]*llm.Client{client}, "fake", nil)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, router, sessions.NewEngine(log, sessions.Observer{}), log)
	defer m.Close(context.Background())

	var totalTokens int
	var peakHeap uint64
	var peakStacks, peakGoroutines int64
	rtm := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}, {Name: "/sched/goroutines:goroutines"}}
	var cpu time.Duration
	var mallocs uint64
	b.ResetTimer()
	for n := range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		metrics.Read(rtm)
		stacks0, goroutines0 := int64(rtm[0].Value.Uint64()), int64(rtm[1].Value.Uint64())
		cpu0 := cpuTime()

		stop := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					peakHeap = max(peakHeap, ms.HeapInuse-before.HeapInuse)
					metrics.Read(rtm)
					peakStacks = max(peakStacks, int64(rtm[0].Value.Uint64())-stacks0)
					peakGoroutines = max(peakGoroutines, int64(rtm[1].Value.Uint64())-goroutines0)
				}
			}
		})

		var wg sync.WaitGroup
		replies := make([]*slowReply, convs)
		for i := range convs {
			key := sessions.Key{Platform: "bench", Chat: fmt.Sprintf("%d-%d", n, i)}
			replies[i] = &slowReply{dest: sessions.Destination{ID: key.String(), Interval: time.Second}}
			turn, err := m.Handle(context.Background(), sessions.Message{Key: key, Author: sessions.Author{ID: "u"}, Text: "go"}, replies[i])
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() { <-turn.Done() })
		}
		wg.Wait()
		close(stop)
		sampler.Wait()
		cpu += cpuTime() - cpu0
		runtime.ReadMemStats(&after)
		mallocs += after.Mallocs - before.Mallocs
		totalTokens += convs * tokens
		for i, r := range replies {
			if f := r.final.Load(); f == nil || len(*f) == 0 {
				b.Fatalf("conversation %d: no final text", i)
			}
		}
	}
	b.StopTimer()
	_, p50, p99 := store.CommitStats()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(totalTokens), "cpu-ns/token")
	b.ReportMetric(float64(mallocs)/float64(totalTokens), "allocs/token")
	b.ReportMetric(float64(peakHeap)/convs, "peak-heap-B/conv")
	b.ReportMetric(float64(peakStacks)/convs, "peak-stack-B/conv")
	b.ReportMetric(float64(peakGoroutines)/convs, "peak-goroutines/conv")
	b.ReportMetric(float64(p50.Microseconds()), "commit-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "commit-p99-µs")
}

// upstreamEnv makes the test binary serve llmtest instead of testing.
const upstreamEnv = "PALAVER_BENCH_UPSTREAM"

// TestMain serves a fake upstream when the benchmark starts the test
// binary as its child process.
func TestMain(m *testing.M) {
	if os.Getenv(upstreamEnv) == "" {
		os.Exit(m.Run())
	}
	up := llmtest.NewServer()
	words := make([]string, 500)
	for i := range words {
		words[i] = fmt.Sprintf("w%d ", i)
	}
	// 500 tokens at 2 ms: each answer streams for about a second.
	up.SetScriptFunc(func(llmtest.Request) llmtest.Script {
		return llmtest.Script{Content: words, Interval: 2 * time.Millisecond}
	})
	fmt.Println(up.URL)
	// Serve until the parent closes stdin.
	io.Copy(io.Discard, os.Stdin)
	up.Close()
	os.Exit(0)
}

// startUpstreamProcess runs llmtest in a child process and returns its URL.
func startUpstreamProcess(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), upstreamEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("upstream process: %v", err)
	}
	return strings.TrimSpace(line)
}
