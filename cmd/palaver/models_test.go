package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

// palaver models lists what the reachable providers offer on stdout, and
// names the provider that is down on stderr with the reason.
func TestModels_SomeDown(t *testing.T) {
	w, err := llmtest.NewResolveWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"models", "--config", worldConfig(t, w, "")}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d\nstderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 9 || !strings.HasPrefix(lines[0], "PROVIDER") || !strings.HasPrefix(lines[1], "lab ") || !strings.HasPrefix(lines[8], "local ") {
		t.Errorf("stdout:\n%s\nwant a header and lab's and local's 8 models", stdout.String())
	}
	host := strings.TrimSuffix(strings.TrimPrefix(w.DownURL, "http://"), "/v1")
	want := "palaver models: deepinfra unreachable: could not reach " + host + ": is it running? Check providers.deepinfra.base_url\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

// When no provider can be reached, palaver models prints the sentence
// alone (no empty table) and exits non-zero.
func TestModels_NoneReachable(t *testing.T) {
	closedPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	a, b := closedPort(), closedPort()
	tests := []struct {
		name      string
		providers string
		want      string
	}{
		{"One", "  deepinfra:\n    base_url: http://" + a + "/v1\n",
			"palaver models: deepinfra unreachable: could not reach " + a + ": is it running? Check providers.deepinfra.base_url.\n"},
		{"Two", "  deepinfra:\n    base_url: http://" + a + "/v1\n  local:\n    base_url: http://" + b + "/v1\n",
			"palaver models: no provider could list its models: deepinfra unreachable: could not reach " + a +
				": is it running? Check providers.deepinfra.base_url; local unreachable: could not reach " + b +
				": is it running? Check providers.local.base_url.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			cfg := "providers:\n" + tt.providers + "models:\n  default: deepinfra/m\n"
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"models", "--config", path}, strings.NewReader(""), &stdout, &stderr)
			if code != 1 || stdout.Len() != 0 || stderr.String() != tt.want {
				t.Errorf("code %d\nstdout %q\nstderr %q\nwant   %q", code, stdout.String(), stderr.String(), tt.want)
			}
			checkCommandSentence(t, "models", stderr.String())
		})
	}
}
