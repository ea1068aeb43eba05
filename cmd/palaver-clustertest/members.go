package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/palaver-bot/palaver/cmd/internal/palaverproc"
)

// processes is the number of palaver processes: three, as a deployment
// that survives the loss of one keeps a majority of etcd members and at
// least two processes.
const processes = 3

// Bounds of the waits for the processes.
const (
	readyTimeout = 90 * time.Second // a start to /healthz ok
	stopGrace    = 45 * time.Second // palaver's own grace is 20 s
	pollEvery    = 50 * time.Millisecond
)

// member is one palaver process of the deployment, across its restarts.
type member struct {
	name    string
	cfg     string // config path
	metrics string // base URL of its /metrics and /healthz

	mu   sync.Mutex
	proc *palaverproc.Proc // nil while stopped
	runs int
	// answers sums palaver_answers_total over the runs that ended, as last
	// read from each; current is the running one's last reading.
	answers, current float64
}

// start runs the member's process, its output in member-run.log.
func (m *member) start(bin, dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		return fmt.Errorf("%s runs already", m.name)
	}
	m.runs++
	p, err := palaverproc.Start(bin, []string{"run", "--config", m.cfg}, filepath.Join(dir, fmt.Sprintf("%s-%d.log", m.name, m.runs)))
	if err != nil {
		return err
	}
	m.proc, m.current = p, 0
	return nil
}

// running returns the process, nil while stopped.
func (m *member) running() *palaverproc.Proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// ended records that the process is gone, keeping its last count.
func (m *member) ended() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.answers += m.current
	m.current, m.proc = 0, nil
}

// kill ends the process with SIGKILL, reading its count just before.
func (m *member) kill(ctx context.Context) {
	m.readAnswers(ctx)
	if p := m.running(); p != nil {
		p.Kill()
	}
	m.ended()
}

// stop interrupts the process (a clean shutdown) and waits for it,
// reading its count just before.
func (m *member) stop(ctx context.Context) error {
	m.readAnswers(ctx)
	p := m.running()
	if p == nil {
		return nil
	}
	err := p.Stop(stopGrace)
	m.ended()
	return err
}

// totalAnswers is palaver_answers_total over every run so far.
func (m *member) totalAnswers() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.answers + m.current
}

// readAnswers reads palaver_answers_total of the running process.
func (m *member) readAnswers(ctx context.Context) {
	if m.running() == nil {
		return
	}
	n, err := m.scrape(ctx, "palaver_answers_total")
	if err != nil {
		return
	}
	m.mu.Lock()
	if m.proc != nil {
		m.current = n
	}
	m.mu.Unlock()
}

// scrape sums a counter or gauge family of the process's /metrics.
func (m *member) scrape(ctx context.Context, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.metrics+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: scrape /metrics: %w", m.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: scrape /metrics: %s", m.name, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s: scrape /metrics: %w", m.name, err)
	}
	return sum(fams[name]), nil
}

// sum adds the values of a counter or gauge family's series.
func sum(f *dto.MetricFamily) float64 {
	total := 0.0
	for _, s := range f.GetMetric() {
		total += s.GetCounter().GetValue() + s.GetGauge().GetValue()
	}
	return total
}

// healthz is what /healthz reports, as far as the harness reads it.
type healthz struct {
	OK         bool              `json:"ok"`
	Components map[string]string `json:"components"`
	Cluster    struct {
		Member struct {
			Member  string
			Lease   string
			Leading []string
			Shards  []int
		} `json:"member"`
		Telegram string `json:"telegram"`
		Discord  []struct {
			ID    int    `json:"id"`
			State string `json:"state"`
		} `json:"discord"`
	} `json:"cluster"`
}

// leads reports whether the process receives Telegram's updates.
func (h *healthz) leads() bool { return h != nil && h.Cluster.Telegram == "leader" }

// shardsUp are the shards whose gateway connection is up.
func (h *healthz) shardsUp() []int {
	if h == nil {
		return nil
	}
	var out []int
	for _, s := range h.Cluster.Discord {
		if s.State == "up" {
			out = append(out, s.ID)
		}
	}
	return out
}

// health reads the running process's /healthz; nil when it does not
// answer.
func (m *member) health(ctx context.Context) *healthz {
	if m.running() == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.metrics+"/healthz", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var h healthz
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h) != nil {
		return nil
	}
	return &h
}

// deployment is the three processes.
type deployment struct {
	w       *world
	bin     string
	members []*member
}

// newDeployment writes the configs of the processes.
func newDeployment(w *world, bin string) (*deployment, error) {
	d := &deployment{w: w, bin: bin}
	for i := range processes {
		addr, err := palaverproc.FreeAddr()
		if err != nil {
			return nil, err
		}
		m := &member{name: fmt.Sprintf("palaver-%d", i+1), metrics: "http://" + addr}
		if m.cfg, err = w.writeConfig(m.name, addr, processes); err != nil {
			return nil, err
		}
		d.members = append(d.members, m)
	}
	return d, nil
}

// start starts every stopped process.
func (d *deployment) startAll() error {
	for _, m := range d.members {
		if m.running() == nil {
			if err := m.start(d.bin, d.w.dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// stopAll stops every process cleanly, all at once.
func (d *deployment) stopAll(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(d.members))
	for i, m := range d.members {
		wg.Go(func() { errs[i] = m.stop(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// killAll kills what still runs (the run is ending early).
func (d *deployment) killAll() {
	for _, m := range d.members {
		if p := m.running(); p != nil {
			p.Kill()
			m.ended()
		}
	}
}

// state is the deployment as /healthz and the fakes show it at one moment.
type state struct {
	health  map[*member]*healthz // nil for a process not running or not answering
	leaders []*member            // the processes leading Telegram
	holders map[int][]*member    // shard → the processes whose connection to it is up
}

// look reads every running process's /healthz.
func (d *deployment) look(ctx context.Context) state {
	st := state{health: map[*member]*healthz{}, holders: map[int][]*member{}}
	for _, m := range d.members {
		h := m.health(ctx)
		st.health[m] = h
		if h.leads() {
			st.leaders = append(st.leaders, m)
		}
		for _, s := range h.shardsUp() {
			st.holders[s] = append(st.holders[s], m)
		}
	}
	return st
}

// settled reports whether every process runs and is healthy, exactly one
// leads Telegram and polls, and every shard is up in exactly one process;
// if not, why.
func (d *deployment) settled(ctx context.Context) (bool, string) {
	st := d.look(ctx)
	for _, m := range d.members {
		h := st.health[m]
		switch {
		case m.running() == nil:
			return false, m.name + " is not running"
		case h == nil:
			return false, m.name + " does not answer /healthz"
		case !h.OK:
			return false, fmt.Sprintf("%s reports %v", m.name, h.Components)
		}
	}
	if len(st.leaders) != 1 {
		return false, fmt.Sprintf("%d processes lead Telegram", len(st.leaders))
	}
	if d.w.tg.Pollers() == 0 {
		return false, "nobody polls Telegram"
	}
	for s := range d.w.opts.shards {
		if n := len(st.holders[s]); n != 1 {
			return false, fmt.Sprintf("shard %d is up in %d processes", s, n)
		}
	}
	return true, ""
}

// waitSettled waits until the deployment is settled.
func (d *deployment) waitSettled(ctx context.Context, timeout time.Duration) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	why := ""
	for {
		ok := false
		if ok, why = d.settled(ctx); ok {
			return nil
		}
		for _, m := range d.members {
			if p := m.running(); p != nil {
				if exited, err := p.Exited(); exited {
					m.ended()
					return fmt.Errorf("%s exited by itself (%v); log: %s\n%s", m.name, err, p.LogPath(), logTail(p.LogPath(), 10))
				}
			}
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("not settled within %s: %s", timeout, why)
		case <-time.After(pollEvery):
		}
	}
}

// exitedByThemselves returns the processes that exited without being
// told to, forgetting them.
func (d *deployment) exitedByThemselves() []string {
	var out []string
	for _, m := range d.members {
		if p := m.running(); p != nil {
			if exited, err := p.Exited(); exited {
				out = append(out, fmt.Sprintf("%s (%v; log %s)", m.name, err, p.LogPath()))
				m.ended()
			}
		}
	}
	return out
}

// logTail returns the last n lines of a log file, indented.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	lines = lines[max(0, len(lines)-n):]
	return "      " + strings.Join(lines, "\n      ")
}
