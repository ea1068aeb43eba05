package main

import (
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestVersionString(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-06T03:10:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     string
	}{
		{"Installed", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "",
			"v1.2.3 (go1.26.8)"},
		{"BuiltInRepo", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261206031000-0123456789ab+dirty"}, Settings: vcs}, "",
			"v0.0.0-20261206031000-0123456789ab+dirty (commit 0123456789ab of 2026-12-06T03:10:00Z, with local changes, go1.26.8)"},
		{"Devel", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "",
			"devel (go1.26.8)"},
		{"Override", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "v2.0.0",
			"v2.0.0 (go1.26.8)"},
		{"NoBuildInfo", nil, "", "(no build information)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionString(tt.bi, tt.override); got != tt.want {
				t.Errorf("versionString = %q, want %q", got, tt.want)
			}
		})
	}
}

// JSON logs write durations as Go does ("1.5s"), not as nanoseconds.
func TestNewLogger_JSONDurations(t *testing.T) {
	var buf strings.Builder
	cfg := DefaultConfig()
	cfg.Log.Format = "json"
	newLogger(cfg, &buf).Info("x", "retry_in", 1500*time.Millisecond)
	if !strings.Contains(buf.String(), `"retry_in":"1.5s"`) {
		t.Errorf("log line %s", buf.String())
	}
}
