package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

// The command list, each command's help and the mistakes a newcomer makes
// print what golden files under testdata/cli hold (go test -update
// rewrites them).
func TestMain_HelpAndErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no_args", nil, 2},
		{"help", []string{"help"}, 0},
		{"dash_help", []string{"--help"}, 0},
		{"help_run", []string{"help", "run"}, 0},
		{"run_h", []string{"run", "-h"}, 0},
		{"serve_h", []string{"serve", "-h"}, 0},
		{"chat_h", []string{"chat", "-h"}, 0},
		{"ask_h", []string{"ask", "-h"}, 0},
		{"models_h", []string{"models", "-h"}, 0},
		{"check_h", []string{"check", "-h"}, 0},
		{"health_h", []string{"health", "-h"}, 0},
		{"store_h", []string{"store", "-h"}, 0},
		{"store_check_h", []string{"store", "check", "-h"}, 0},
		{"unknown_command", []string{"bogus"}, 2},
		{"help_unknown", []string{"help", "bogus"}, 2},
		{"unknown_flag", []string{"run", "--bogus"}, 2},
		{"missing_config", []string{"check", "--config", "/nonexistent/palaver.yaml"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), tt.args, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tt.code, stderr.String())
			}
			got := "exit " + string(rune('0'+code)) + "\n--- stdout\n" + stdout.String() + "--- stderr\n" + stderr.String()
			if code > 9 {
				t.Fatalf("exit %d", code)
			}
			checkGolden(t, filepath.Join("testdata", "cli", tt.name+".golden"), got)
		})
	}
}

func TestMain_Version(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-v"} {
		var stdout, stderr bytes.Buffer
		if code := Main(t.Context(), []string{arg}, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", arg, code, stderr.String())
		}
		if out := stdout.String(); !strings.HasPrefix(out, "palaver ") || !strings.Contains(out, "go1.") {
			t.Errorf("%s printed %q", arg, out)
		}
	}
}

// palaver serve --listen overrides gateway.listen.
func TestMain_ServeListen(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	cfg := upstreamConfig(t, up.URL, "")
	addr := freeAddr(t)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var stderr syncWriter
	go func() {
		done <- Main(ctx, []string{"serve", "--config", cfg, "--listen", addr}, strings.NewReader(""), &bytes.Buffer{}, &stderr)
	}()
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("exit %d\n%s", code, stderr.String())
		}
	}()
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 200 {
			t.Fatalf("nothing listens on %s\n%s", addr, stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	var out bytes.Buffer
	if code := Main(t.Context(), []string{"health", "--url", "http://" + addr + "/healthz"}, strings.NewReader(""), &out, &out); code != 0 {
		t.Errorf("palaver health = %d: %s", code, out.String())
	}
	if !strings.HasPrefix(out.String(), "ok: gateway up") {
		t.Errorf("palaver health printed %q", out.String())
	}
}
