package gateway_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// A stream still running when the shutdown timeout ends gets an error
// event and [DONE], not a cut connection, and its log line says so; the
// upstream request stops.
func TestServer_ShutdownEndsStreams(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	tokens := make([]string, 1000)
	for i := range tokens {
		tokens[i] = "tok "
	}
	up.SetScript(llmtest.Script{Content: tokens, Interval: 20 * time.Millisecond})
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("deepinfra"), llm.Options{})}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	gw, err := gateway.New(gateway.Options{
		ShutdownTimeout: 200 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(&logs, nil)),
	}, router)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()

	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"deepinfra/m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "data: ") {
		t.Fatalf("no first event: %q %v", sc.Text(), sc.Err())
	}
	cancel()
	var last []string
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			last = append(last, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("stream cut: %v", err)
	}
	if len(last) < 2 || last[len(last)-1] != "data: [DONE]" ||
		!strings.Contains(last[len(last)-2], `"code":"server_shutting_down"`) {
		t.Fatalf("stream ended with %q, want the shutdown error then [DONE]", last[max(0, len(last)-2):])
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if err := up.WaitDisconnect(t.Context()); err != nil {
		t.Errorf("the upstream request did not stop: %v", err)
	}
	if !strings.Contains(logs.String(), "server_shutting_down") && !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no log line for the ended stream:\n%s", logs.String())
	}
}

// A Responses stream still running when the shutdown timeout ends gets
// response.failed with the reason, not a cut connection.
func TestServer_ShutdownEndsResponses(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.SetScript(llmtest.Script{Content: strings.Split(strings.Repeat("tok ", 1000), " "), Interval: 20 * time.Millisecond})
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("deepinfra"), llm.Options{})}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{ShutdownTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}, router)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/responses", "application/json",
		strings.NewReader(`{"model":"deepinfra/m","stream":true,"input":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), "response.output_text.delta") {
	}
	cancel()
	var last string
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data: ") {
			last = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("stream cut: %v", err)
	}
	if !strings.Contains(last, `"type":"response.failed"`) || !strings.Contains(last, `"code":"server_shutting_down"`) {
		t.Fatalf("stream ended with %q, want response.failed for the shutdown", last)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}
