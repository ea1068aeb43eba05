package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	goversion "go/version"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm/gateway"
)

// These tests hold docs/deploy (the Dockerfile, its config and the systemd
// unit) to the code: the ports, paths, signals, exit codes and stop times
// they name are the ones palaver uses. docs/deploy/verify.sh checks the
// rest, with the binary the image holds.

// deployDir is docs/deploy, seen from this package.
const deployDir = "../../docs/deploy"

// dockerInstruction is one Dockerfile instruction, continuation lines joined.
type dockerInstruction struct {
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
	line int
}

// readDockerfile parses docs/deploy/Dockerfile into its instructions.
// It knows what this Dockerfile uses: comments, "\" continuations.
func readDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	f, err := os.Open(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out  []dockerInstruction
		cur  strings.Builder
		from int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			from = n
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more)
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: from})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dockerArgs returns the arguments of the last instruction cmd, failing
// the test when there is none.
func dockerArgs(t *testing.T, ins []dockerInstruction, cmd string) string {
	t.Helper()
	for i := len(ins) - 1; i >= 0; i-- {
		if ins[i].cmd == cmd {
			return ins[i].args
		}
	}
	t.Fatalf("Dockerfile: no %s instruction", cmd)
	return ""
}

// execForm decodes an exec-form argument list (["a", "b"]).
func execForm(t *testing.T, what, s string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("Dockerfile: %s is not in exec form ([\"prog\", \"arg\"]): %s", what, s)
	}
	return argv
}

// healthcheckArgv is the HEALTHCHECK's command.
func healthcheckArgv(t *testing.T, ins []dockerInstruction) []string {
	t.Helper()
	_, cmd, ok := strings.Cut(dockerArgs(t, ins, "HEALTHCHECK"), "CMD ")
	if !ok {
		t.Fatal("Dockerfile: HEALTHCHECK has no CMD")
	}
	return execForm(t, "HEALTHCHECK CMD", cmd)
}

// readUnit parses docs/deploy/palaver.service into "Section.Key" → values,
// in file order.
func readUnit(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "palaver.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string][]string{}
	section := ""
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("palaver.service:%d: want Key=Value inside a [Section], got %q", n+1, line)
			}
			unit[section+"."+k] = append(unit[section+"."+k], v)
		}
	}
	return unit
}

// unitValue is the last value of key ("Service.TimeoutStopSec"), which is
// the one systemd applies to a single-valued setting.
func unitValue(t *testing.T, unit map[string][]string, key string) string {
	t.Helper()
	v := unit[key]
	if len(v) == 0 {
		t.Fatalf("palaver.service: no %s", key)
	}
	return v[len(v)-1]
}

// systemdSpan parses a systemd time span ("45s", "1min 30s", "90"; a bare
// number is seconds).
func systemdSpan(s string) (time.Duration, error) {
	units := map[string]time.Duration{
		"": time.Second, "s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"ms": time.Millisecond, "msec": time.Millisecond,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	}
	var total time.Duration
	for _, f := range strings.Fields(s) {
		i := strings.IndexFunc(f, func(r rune) bool { return r < '0' || r > '9' })
		if i < 0 {
			i = len(f)
		}
		n, err := strconv.Atoi(f[:i])
		u, ok := units[f[i:]]
		if err != nil || !ok {
			return 0, fmt.Errorf("time span %q: cannot read %q", s, f)
		}
		total += time.Duration(n) * u
	}
	if total == 0 {
		return 0, fmt.Errorf("time span %q: empty or zero", s)
	}
	return total, nil
}

func TestSystemdSpan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"45s", 45 * time.Second},
		{"90", 90 * time.Second},
		{"1min 30s", 90 * time.Second},
		{"10min", 10 * time.Minute},
		{"500ms", 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got, err := systemdSpan(tt.in); err != nil || got != tt.want {
			t.Errorf("systemdSpan(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "5 parsecs", "0"} {
		if _, err := systemdSpan(bad); err == nil {
			t.Errorf("systemdSpan(%q): no error", bad)
		}
	}
}

// The image and verify.sh build with one script, so they build the same
// binary, and with a Go at least as new as go.mod asks for.
func TestDeploy_DockerfileBuild(t *testing.T) {
	ins := readDockerfile(t)
	var built bool
	for _, in := range ins {
		if in.cmd == "RUN" && strings.HasSuffix(in.args, " sh docs/deploy/build.sh /out/palaver") {
			built = true
		}
	}
	if !built {
		t.Error("Dockerfile: no RUN ending in \"sh docs/deploy/build.sh /out/palaver\"; the image must build as verify.sh does")
	}
	script, err := os.ReadFile(filepath.Join(deployDir, "verify.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), `sh $deploy/build.sh "$bin"`) {
		t.Error("verify.sh no longer builds with docs/deploy/build.sh")
	}
	build, err := os.ReadFile(filepath.Join(deployDir, "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(build), "CGO_ENABLED=0 ") || !strings.Contains(string(build), " -trimpath ") {
		t.Error("build.sh: want a static (CGO_ENABLED=0), -trimpath build")
	}

	var goVersion string
	for _, in := range ins {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "GO_VERSION=") {
			goVersion = strings.TrimPrefix(in.args, "GO_VERSION=")
		}
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var modGo string
	for line := range strings.Lines(string(mod)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			modGo = v
		}
	}
	if !goversion.IsValid("go"+goVersion) || goversion.Compare("go"+goVersion, "go"+modGo) < 0 {
		t.Errorf("Dockerfile: ARG GO_VERSION=%s, want a Go release at least go.mod's go %s", goVersion, modGo)
	}
}

// The image runs palaver run as a non-root user, with the config it ships
// at the path the command names, and the store on the volume.
func TestDeploy_DockerfileImage(t *testing.T) {
	ins := readDockerfile(t)
	entry := execForm(t, "ENTRYPOINT", dockerArgs(t, ins, "ENTRYPOINT"))
	cmd := execForm(t, "CMD", dockerArgs(t, ins, "CMD"))
	if len(entry) != 1 || !path.IsAbs(entry[0]) {
		t.Errorf("ENTRYPOINT %q: want the binary's absolute path alone", entry)
	}
	if len(cmd) != 3 || cmd[0] != "run" || cmd[1] != "--config" {
		t.Fatalf("CMD %q: want [\"run\", \"--config\", FILE]", cmd)
	}
	configPath := cmd[2]
	var copied, binary bool
	for _, in := range ins {
		if in.cmd != "COPY" {
			continue
		}
		f := strings.Fields(in.args)
		switch {
		case slices.Equal(f, []string{"docs/deploy/container.yaml", configPath}):
			copied = true
		case slices.Equal(f, []string{"--from=build", "/out/palaver", entry[0]}):
			binary = true
		}
	}
	if !copied {
		t.Errorf("Dockerfile: no COPY docs/deploy/container.yaml %s (the config CMD names)", configPath)
	}
	if !binary {
		t.Errorf("Dockerfile: no COPY --from=build /out/palaver %s (the ENTRYPOINT)", entry[0])
	}

	user, _, _ := strings.Cut(dockerArgs(t, ins, "USER"), ":")
	if uid, err := strconv.Atoi(user); err != nil || uid == 0 {
		t.Errorf("USER %q: want a numeric, non-root uid (Kubernetes' runAsNonRoot can check only a number)", user)
	}
	volume := dockerArgs(t, ins, "VOLUME")
	if wd := dockerArgs(t, ins, "WORKDIR"); wd != volume {
		t.Errorf("WORKDIR %s, want the volume %s, so that a relative storage.path lands on it", wd, volume)
	}
	if sig := dockerArgs(t, ins, "STOPSIGNAL"); sig != "SIGTERM" {
		t.Errorf("STOPSIGNAL %s, want SIGTERM (what main.go stops gracefully on)", sig)
	}
	if from := dockerArgs(t, ins, "FROM"); !strings.Contains(from, "nonroot") && !strings.HasPrefix(from, "scratch") {
		t.Errorf("final FROM %s: want a distroless :nonroot (or scratch) base", from)
	}

	// The shipped config: valid with no environment, the store on the
	// volume, /healthz reachable through a published port.
	cfg, err := LoadConfig(filepath.Join(deployDir, "container.yaml"), true, noEnv)
	if err != nil {
		t.Fatalf("container.yaml: %v", err)
	}
	if dir := filepath.Dir(cfg.Storage.Path); dir != volume {
		t.Errorf("container.yaml: storage.path %s is not on the VOLUME %s", cfg.Storage.Path, volume)
	}
	host, metricsPort, err := net.SplitHostPort(cfg.Metrics.Listen)
	if err != nil || (host != "" && host != "0.0.0.0" && host != "::") {
		t.Errorf("container.yaml: metrics.listen %q, want every interface (0.0.0.0:PORT), or a published port reaches nothing", cfg.Metrics.Listen)
	}
	_, gatewayPort, err := net.SplitHostPort(DefaultConfig().Gateway.Listen)
	if err != nil {
		t.Fatal(err)
	}
	exposed := strings.Fields(dockerArgs(t, ins, "EXPOSE"))
	slices.Sort(exposed)
	want := []string{gatewayPort, metricsPort}
	slices.Sort(want)
	if !slices.Equal(exposed, want) {
		t.Errorf("EXPOSE %v, want %v: the endpoint's default port (gateway.listen) and container.yaml's metrics.listen", exposed, want)
	}
}

// The HEALTHCHECK's command, run against a palaver started with the
// image's config (moved to free ports and a temporary store), reports ok:
// it finds /healthz where that config serves it.
func TestDeploy_Healthcheck(t *testing.T) {
	ins := readDockerfile(t)
	argv := healthcheckArgv(t, ins)
	entry := execForm(t, "ENTRYPOINT", dockerArgs(t, ins, "ENTRYPOINT"))
	cmd := execForm(t, "CMD", dockerArgs(t, ins, "CMD"))
	if argv[0] != entry[0] || len(argv) < 2 || argv[1] != "health" {
		t.Fatalf("HEALTHCHECK CMD %q: want [%q, \"health\", ...]", argv, entry[0])
	}
	i := slices.Index(argv, "--config")
	if i < 0 || i+1 >= len(argv) || argv[i+1] != cmd[len(cmd)-1] {
		t.Fatalf("HEALTHCHECK CMD %q: want --config %s, the config palaver runs with", argv, cmd[len(cmd)-1])
	}

	data, err := os.ReadFile(filepath.Join(deployDir, "container.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(filepath.Join(deployDir, "container.yaml"), true, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	text := string(data)
	for old, repl := range map[string]string{
		"path: " + cfg.Storage.Path:     "path: " + filepath.Join(t.TempDir(), "palaver.db"),
		"listen: " + cfg.Metrics.Listen: "listen: " + metricsAddr,
	} {
		if strings.Count(text, old) != 1 {
			t.Fatalf("container.yaml: want %q once, to move it for the test", old)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	text += "providers:\n  local:\n    base_url: " + closedURL(t) + "/v1\n" +
		"models:\n  default: local/model\n" +
		"gateway:\n  listen: " + freeAddr(t) + "\n"
	config := writeConfig(t, text)
	startMain(t, "serve", config, metricsAddr)

	args := slices.Clone(argv[1:])
	args[i] = config
	code, stdout, stderr := runMain(args...)
	if code != 0 || !strings.HasPrefix(stdout, "ok:") {
		t.Errorf("palaver %s = %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	resp, err := http.Get("http://" + metricsAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz on metrics.listen = %d, want 200", resp.StatusCode)
	}
}

// The unit names palaver's paths, gives it longer to stop than palaver
// takes, does not restart it after a config error, and keeps its sandbox.
func TestDeploy_SystemdUnit(t *testing.T) {
	unit := readUnit(t)

	stop, err := systemdSpan(unitValue(t, unit, "Service.TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	// The endpoint lets its streams finish first, then the answers in
	// progress get shutdownGrace.
	if most := gateway.DefaultShutdownTimeout + shutdownGrace; stop <= most {
		t.Errorf("TimeoutStopSec=%v, want more than palaver's longest stop, %v (endpoint %v + answers %v)",
			stop, most, gateway.DefaultShutdownTimeout, shutdownGrace)
	}

	bad := writeConfig(t, "chat:\n  reasoning: loud\n")
	code, _, _ := runMain("run", "--config", bad)
	if got := unitValue(t, unit, "Service.RestartPreventExitStatus"); got != strconv.Itoa(code) {
		t.Errorf("RestartPreventExitStatus=%s, want %d, the exit status of palaver run with a bad config", got, code)
	}

	state := unitValue(t, unit, "Service.StateDirectory")
	configDir := unitValue(t, unit, "Service.ConfigurationDirectory")
	exec := strings.Fields(unitValue(t, unit, "Service.ExecStart"))
	if want := []string{"/usr/local/bin/palaver", "run", "--config", "/etc/" + configDir + "/config.yaml"}; !slices.Equal(exec, want) {
		t.Errorf("ExecStart=%s, want %s (verify.sh and docs/deploy.md name these paths)", strings.Join(exec, " "), strings.Join(want, " "))
	}
	if wd := unitValue(t, unit, "Service.WorkingDirectory"); wd != "%S/"+state {
		t.Errorf("WorkingDirectory=%s, want %%S/%s, so that a relative storage.path lands in the state directory", wd, state)
	}

	tests := []struct {
		key, want string
	}{
		{"Service.KillSignal", "SIGTERM"},
		{"Service.Restart", "on-failure"},
		{"Service.DynamicUser", "yes"},
		{"Service.StateDirectory", "palaver"},
		{"Service.NoNewPrivileges", "yes"},
		{"Service.CapabilityBoundingSet", ""},
		{"Service.ProtectSystem", "strict"},
		{"Service.ProtectHome", "yes"},
		{"Service.PrivateTmp", "yes"},
		{"Service.MemoryDenyWriteExecute", "yes"},
		{"Service.RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"Service.UMask", "0077"},
	}
	for _, tt := range tests {
		if got := unitValue(t, unit, tt.key); got != tt.want {
			t.Errorf("%s=%s, want %q", tt.key, got, tt.want)
		}
	}
	if filters := unit["Service.SystemCallFilter"]; len(filters) == 0 || filters[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first (verify.sh checks the calls palaver makes against it)", filters)
	}
}

// SIGTERM, the signal systemd and Docker stop palaver with, stops it
// cleanly: exit status 0 (so Restart=on-failure leaves it stopped) after
// the "stopped" line.
func TestBinary_SIGTERMStops(t *testing.T) {
	if got := unitValue(t, readUnit(t), "Service.KillSignal"); got != "SIGTERM" {
		t.Fatalf("palaver.service: KillSignal=%s; this test sends SIGTERM", got)
	}
	bin := palaverBinary(t)
	addr := freeAddr(t)
	config := writeConfig(t, "storage:\n  path: "+filepath.Join(t.TempDir(), "palaver.db")+"\n"+
		"providers:\n  local:\n    base_url: "+closedURL(t)+"/v1\n"+
		"models:\n  default: local/model\n"+
		"gateway:\n  enabled: true\n  listen: "+addr+"\n")
	cmd := exec.Command(bin, "run", "--config", config)
	var stderr syncWriter
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 200 {
			t.Fatalf("palaver run never answered /healthz\n%s", stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Errorf("palaver run after SIGTERM: %v, want exit status 0\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("palaver run still running a minute after SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Errorf("palaver run logged no \"stopped\" line\n%s", stderr.String())
	}
}
