package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// With -profile the load test builds palaver with one more file in its
// main package, by `go build -overlay`: it serves net/http/pprof on a
// loopback address the load test passes in profileEnv. The tree and the
// palaver users run stay as they are: no pprof in production.
const profileEnv = "PALAVER_LOADTEST_PPROF"

// profileSource is the file added to cmd/palaver. Its heap profile
// samples every 64 KiB allocated (the default is 512 KiB), finer for the
// smaller per-answer costs, at a little CPU.
const profileSource = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
)

func init() {
	addr := os.Getenv("` + profileEnv + `")
	if addr == "" {
		return
	}
	runtime.MemProfileRate = 64 << 10
	go http.ListenAndServe(addr, nil)
}
`

// buildProfiled compiles cmd/palaver with the pprof file into dir and
// returns the binary's path.
func buildProfiled(ctx context.Context, dir string) (string, error) {
	const pkg = "github.com/palaver-bot/palaver/cmd/palaver"
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", pkg, err)
	}
	src := filepath.Join(dir, "loadtest_pprof.go")
	if err := os.WriteFile(src, []byte(profileSource), 0o600); err != nil {
		return "", err
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(strings.TrimSpace(string(out)), "zz_loadtest_pprof.go"): src},
	})
	if err != nil {
		return "", err
	}
	ovPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovPath, overlay, 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "palaver")
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", ovPath, "-o", bin, pkg)
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build palaver with pprof: %w\n%s", err, msg.String())
	}
	return bin, nil
}

// profiler saves palaver's heap and goroutine profiles whenever its heap
// in use reaches a new peak, so that dir holds them as they were at the
// run's peak.
type profiler struct {
	base string // http://addr of the pprof server
	dir  string
	peak float64
}

// maxProfile bounds a profile read from palaver.
const maxProfile = 64 << 20

// observe is called with each sample of the heap in use.
func (p *profiler) observe(ctx context.Context, heap float64) {
	if p == nil || heap <= p.peak {
		return
	}
	p.peak = heap
	for name, path := range map[string]string{
		"heap.pb.gz":    "/debug/pprof/heap",
		"goroutine.txt": "/debug/pprof/goroutine?debug=1",
	} {
		if err := p.save(ctx, path, filepath.Join(p.dir, name)); err != nil {
			fmt.Fprintln(os.Stderr, "palaver-loadtest: profile:", err)
		}
	}
}

func (p *profiler) save(ctx context.Context, path, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxProfile))
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
