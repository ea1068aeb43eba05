package main

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

// version, when set at build time (-ldflags "-X main.version=v1.2.3"),
// overrides the version read from the build information.
var version = ""

func cmdVersion(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	if _, err := parse(fs, args); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintf(e.stdout, "palaver %s\n", versionString(bi, version))
	return nil
}

// versionString describes a build: the module version (set by go install
// module@version, or derived by go build from the repository's tags and
// commit), the commit and its time when the build recorded them, and the
// Go version. override replaces the module version when set.
func versionString(bi *debug.BuildInfo, override string) string {
	if bi == nil {
		if override != "" {
			return override
		}
		return "(no build information)"
	}
	v := override
	if v == "" {
		v = bi.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var details []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		c := "commit " + rev
		if at != "" {
			c += " of " + at
		}
		if modified {
			c += ", with local changes"
		}
		details = append(details, c)
	}
	details = append(details, bi.GoVersion)
	return v + " (" + strings.Join(details, ", ") + ")"
}
