package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCheck runs palaver check on the config file path, with the variables
// of env set in the process environment.
func runCheck(t *testing.T, path string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	code = Main(context.Background(), []string{"check", "--config", path}, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCheck_Warnings checks palaver check's whole output for a valid
// config with unset variables and unusable aliases against check.golden.
func TestCheck_Warnings(t *testing.T) {
	code, stdout, stderr := runCheck(t, "testdata/config/check.yaml", map[string]string{
		"LOCAL_API_KEY": "", "TELEGRAM_BOT_TOKEN": "", "TELEGRAM_ADMIN": "", "DISCORD_BOT_TOKEN": "",
	})
	if code != 0 || stderr != "" {
		t.Fatalf("exit code %d, stderr %q; want 0 and nothing", code, stderr)
	}
	checkGolden(t, "testdata/config/check.golden", stdout)
}

// TestCheck_Errors checks that palaver check exits 2 and names every
// problem, a required value's unset variable among them.
func TestCheck_Errors(t *testing.T) {
	path := writeConfig(t, "providers:\n  local:\n    base_url: ${LOCAL_URL}\n"+
		"models:\n  default: local/m\n\tqueue: 1\n")
	code, stdout, stderr := runCheck(t, path, nil)
	if want := path + ":6:1: YAML does not allow tabs for indentation; use spaces"; code != 2 || !strings.Contains(stderr, want) {
		t.Fatalf("exit code %d, stderr %q; want 2 and %q", code, stderr, want)
	}

	path = writeConfig(t, "providers:\n  local:\n    base_url: ${LOCAL_URL}\n"+
		"models:\n  default: local/m\nchat:\n  queue: -1\n")
	code, stdout, stderr = runCheck(t, path, map[string]string{"LOCAL_URL": ""})
	if code != 2 || stdout != "" {
		t.Fatalf("exit code %d, stdout %q; want 2 and nothing", code, stdout)
	}
	for _, want := range []string{
		path + ":3:15: providers.local.base_url: uses ${LOCAL_URL}, which is not set\n",
		path + ":7:3: chat.queue: must be at least 0, got -1\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
