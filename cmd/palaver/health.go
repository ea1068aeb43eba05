package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// healthTimeout bounds palaver health's request.
const healthTimeout = 5 * time.Second

// cmdHealth asks a running palaver's /healthz and exits 0 when it reports
// ok, 1 otherwise: the check a container's HEALTHCHECK or a monitor runs.
// Without --url it asks metrics.listen when set, else gateway.listen.
func cmdHealth(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	url := fs.String("url", "", "the `URL` of /healthz (default: metrics.listen, else gateway.listen)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *url == "" {
		cfg, err := e.config()
		if err != nil {
			return err
		}
		addr := cfg.Metrics.Listen
		if addr == "" {
			addr = cfg.Gateway.Listen
		}
		*url = "http://" + dialable(addr) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--url: %w", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no answer from %s: is palaver running, with metrics.listen or the endpoint on that address? (%w)", *url, err)
	}
	defer resp.Body.Close()
	var report struct {
		OK         bool              `json:"ok"`
		Components map[string]string `json:"components"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(body, &report); err != nil {
		return fmt.Errorf("%s answered %s with something that is not a health report", *url, resp.Status)
	}
	names := make([]string, 0, len(report.Components))
	for name := range report.Components {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + " " + report.Components[name]
	}
	state := "ok"
	if !report.OK || resp.StatusCode != http.StatusOK {
		state = "not ok"
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", state, strings.Join(parts, ", "))
	if state != "ok" {
		return &exitError{code: 1}
	}
	return nil
}

// dialable turns a listen address into one to connect to: a wildcard host
// (":9090", "0.0.0.0:9090", "[::]:9090") becomes the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
