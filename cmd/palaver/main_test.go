package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// palaverBinary builds the command once per test run.
func palaverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "palaver-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "palaver")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// upstreamConfig writes a config naming upstream as the only provider.
func upstreamConfig(t *testing.T, upstream string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := "storage:\n  path: " + filepath.Join(dir, "palaver.db") + "\n" +
		"providers:\n  fake:\n    base_url: " + upstream + "\n" +
		"models:\n  default: fake/echo\n" + extra
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBinary_Ask(t *testing.T) {
	bin := palaverBinary(t)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{Reasoning: llmtest.Tokens("hmm"), Content: llmtest.Tokens("Hello there, friend.")})
	cfg := upstreamConfig(t, up.URL, "")

	cmd := exec.Command(bin, "ask", "--config", cfg, "--reasoning", "hidden", "hi")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("palaver ask: %v\nstderr: %s", err, stderr.String())
	}
	if got, want := stdout.String(), "Hello there, friend.\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	reqs := up.Requests()
	last := reqs[len(reqs)-1].Request
	if last.Model != "echo" || !last.Stream || last.Messages[len(last.Messages)-1].Content != "hi" {
		t.Errorf("upstream request = %+v", last)
	}
}

func TestBinary_AskStdinAndRefusal(t *testing.T) {
	bin := palaverBinary(t)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{Status: 401, Body: `{"error":{"message":"Invalid API key"}}`})
	cfg := upstreamConfig(t, up.URL, "")

	cmd := exec.Command(bin, "ask", "--config", cfg, "-")
	cmd.Stdin = strings.NewReader("a question from stdin\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		t.Fatal("palaver ask succeeded against a 401")
	}
	if msg := stderr.String(); !strings.Contains(msg, "refused the API key") || strings.Contains(msg, "{") {
		t.Errorf("stderr = %q, want one clear sentence", msg)
	}
	reqs := up.Requests()
	if got := reqs[len(reqs)-1].Request.Messages; got[len(got)-1].Content != "a question from stdin" {
		t.Errorf("question sent = %+v", got)
	}
}

func TestMain_Check(t *testing.T) {
	tests := []struct {
		name   string
		config string
		code   int
		want   []string
	}{
		{"OK", "models:\n  default: fake/echo\n", 0, []string{"OK", "warning:"}},
		{"UnknownKey", "modles:\n  default: x\n", 2, []string{`:4:1: unknown key "modles"`}},
		{"BadType", "chat:\n  temperature: hot\n", 2, []string{":5:16:", "chat.temperature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte("providers:\n  fake:\n    base_url: http://127.0.0.1:1/v1\n"+tt.config), 0o600)
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), []string{"check", "--config", path}, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			out := stdout.String() + stderr.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestMain_RunWithoutTokens(t *testing.T) {
	path := upstreamConfig(t, "http://127.0.0.1:1/v1", "")
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"run", "--config", path}, strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "palaver chat") {
		t.Fatalf("code %d, stderr %q: want a pointer to palaver chat", code, stderr.String())
	}
}

func TestMain_UnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"frobnicate"}, nil, &stdout, &stderr); code != 2 {
		t.Fatalf("code = %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "Usage") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestMain_Chat(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	path := upstreamConfig(t, up.URL, "")
	in := strings.NewReader("hello\n/model\n/settings\n")
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"chat", "--config", path, "--user", "tester"}, in, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("code %d, stderr %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"echo: hello", "Model: fake/echo", "Model: `fake/echo`"} {
		if !strings.Contains(out, want) {
			t.Errorf("chat output lacks %q:\n%s", want, out)
		}
	}
	// History survives: a second session sends the first exchange along.
	in = strings.NewReader("again\n")
	stdout.Reset()
	if code := Main(context.Background(), []string{"chat", "--config", path, "--user", "tester"}, in, &stdout, &stderr); code != 0 {
		t.Fatalf("second chat: code %d: %s", code, stderr.String())
	}
	reqs := up.Requests()
	msgs := reqs[len(reqs)-1].Request.Messages
	if len(msgs) < 3 || msgs[len(msgs)-2].Content != "echo: hello" {
		t.Fatalf("second session sent %+v, want the first exchange in history", msgs)
	}
}

func TestBinary_Serve(t *testing.T) {
	bin := palaverBinary(t)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := upstreamConfig(t, up.URL, "gateway:\n  listen: "+addr+"\n")

	cmd := exec.Command(bin, "serve", "--config", cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var resp *http.Response
	for range 100 {
		resp, err = http.Get("http://" + addr + "/v1/models")
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("endpoint never answered: %v\n%s", err, stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"fake/echo"`) {
		t.Fatalf("GET /v1/models = %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post("http://"+addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "echo: hi") {
		t.Fatalf("chat completion = %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics lacks Go metrics: %.200s", body)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("palaver serve exited with %v after Ctrl-C\n%s", err, stderr.String())
	}
}
