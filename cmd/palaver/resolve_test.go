package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

// worldConfig writes a config over the providers of llmtest.ResolveWorld,
// retrying nothing.
func worldConfig(t *testing.T, w *llmtest.ResolveWorld, extra string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("storage:\n  path: " + filepath.Join(dir, "palaver.db") + "\nproviders:\n")
	for _, p := range w.Providers {
		b.WriteString("  " + p.Name + ":\n    base_url: " + p.BaseURL + "\n")
	}
	b.WriteString("models:\n  default: " + w.Default + "\n  aliases:\n")
	for name, target := range w.Aliases {
		b.WriteString("    " + name + ": " + target + "\n")
	}
	b.WriteString("llm:\n  max_retries: 0\n" + extra)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The shared resolution table, for palaver ask --model: a name a person
// types, resolved as chat's /model resolves it.
func TestAsk_ResolveShared(t *testing.T) {
	w, err := llmtest.NewResolveWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	cfg := worldConfig(t, w, "")
	for _, tt := range llmtest.ResolveCases {
		t.Run(tt.Name, func(t *testing.T) {
			served := w.Mark()
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"ask", "--config", cfg, "--model", tt.Name, "hi"}, strings.NewReader(""), &stdout, &stderr)
			msg := stderr.String()
			var got string
			switch {
			case code == 0 && stdout.String() == "echo: hi\n":
				got = served()
			case code == 0:
				got = "answer " + stdout.String()
			case strings.Contains(msg, "matches several models"):
				got = llmtest.ResolveAmbiguous
			case strings.Contains(msg, "is a name for") && strings.Contains(msg, "no provider"):
				got = llmtest.ResolveBadAlias
			case strings.Contains(msg, "not available here"), strings.Contains(msg, "was not found"):
				got = llmtest.ResolveUnknown
			case strings.Contains(msg, "unreachable: could not reach"):
				got = llmtest.ResolveUnreachable
			default:
				got = "stderr " + msg
			}
			if got != tt.Typed {
				t.Errorf("got %s, want %s\nstderr: %s", got, tt.Typed, msg)
			}
			if code != 0 {
				checkCommandSentence(t, "ask", msg)
			}
		})
	}
}

// checkCommandSentence fails unless stderr is one line, "palaver CMD:
// sentence.", with no Go error text and no chat command in it.
func checkCommandSentence(t *testing.T, cmd, stderr string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "palaver "+cmd+": ") ||
		!(strings.HasSuffix(stderr, ".\n") || strings.HasSuffix(stderr, "?\n")) {
		t.Errorf("stderr = %q, want one sentence", stderr)
	}
	for _, raw := range []string{"dial tcp", "lookup ", "connection refused", "no such host", "llm:", "Get \"", "Post \"", " /model", "/retry"} {
		if strings.Contains(stderr, raw) {
			t.Errorf("stderr %q shows %q", stderr, raw)
		}
	}
}
