package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/cmd/internal/palaverproc"
)

// palaverProc is Palaver under test: the real binary running `palaver run`
// against the world, in its own process so that its CPU time and memory
// are its own.
type palaverProc struct {
	*palaverproc.Proc
	metrics string // base URL of its /metrics and /healthz
}

// buildPalaver compiles cmd/palaver into dir and returns the binary's path.
func buildPalaver(ctx context.Context, dir string) (string, error) {
	return palaverproc.Build(ctx, dir)
}

// writeConfig writes the config `palaver run` gets: the defaults, except
// where the fakes are and what the load needs (no per-user rate limit).
func (w *world) writeConfig(dir, metricsAddr string) (string, error) {
	q := strconv.Quote
	cfg := strings.Join([]string{
		"storage:",
		"  path: " + q(filepath.Join(dir, "palaver.db")),
		"providers:",
		"  load:",
		"    base_url: " + q(w.upURL),
		"models:",
		"  default: load/echo",
		"  aliases: {}",
		"chat:",
		"  user_rate: 0",
		"telegram:",
		"  token: " + q(w.tg.Token()),
		"  api_endpoint: " + q(w.tgEndpoint),
		"  drafts: " + strconv.FormatBool(w.opts.drafts),
		// The analyser reads the HTML path's methods (sendMessage,
		// editMessageText's text); rich messages are not read yet.
		"  format: html",
		"discord:",
		"  token: " + q(w.dc.Token()),
		"  api_base: " + q(w.dcBase),
		"  guilds: [" + q(w.guild.ID) + "]",
		"metrics:",
		"  listen: " + q(metricsAddr),
		"log:",
		"  level: " + w.opts.logLevel,
		"",
	}, "\n")
	path := filepath.Join(dir, "config.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// start runs `palaver run` and waits until it is connected to both
// platforms and has registered its Discord commands. The config gets the
// keys the workload needs beyond what writeConfig writes; a binary whose
// config refuses them (palaver check fails naming the key) is a *skipped
// run.
func (w *world) start(ctx context.Context, bin, dir string) (*palaverProc, error) {
	addr, err := palaverproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath, err := w.writeConfig(dir, addr)
	if err != nil {
		return nil, err
	}
	if extra := w.extraConfig(); len(extra) > 0 {
		if err := addConfig(cfgPath, extra); err != nil {
			return nil, err
		}
		if err := checkConfig(ctx, bin, cfgPath, extra); err != nil {
			return nil, err
		}
	}
	if w.upstreamCA != nil {
		// Palaver trusts the model's certificate through the standard
		// variable; the child inherits the environment.
		ca := filepath.Join(dir, "upstream-ca.pem")
		if err := os.WriteFile(ca, w.upstreamCA, 0o600); err != nil {
			return nil, err
		}
		os.Setenv("SSL_CERT_FILE", ca)
		defer os.Unsetenv("SSL_CERT_FILE")
	}
	proc, err := palaverproc.Start(bin, []string{"run", "--config", cfgPath}, filepath.Join(dir, "palaver.log"))
	if err != nil {
		return nil, err
	}
	p := &palaverProc{Proc: proc, metrics: "http://" + addr}
	if err := w.waitReady(ctx, p); err != nil {
		p.kill()
		return nil, fmt.Errorf("%w (log: %s)", err, p.LogPath())
	}
	return p, nil
}

// waitReady waits for /healthz to answer, Telegram to be polled and the
// Discord commands to be registered.
func (w *world) waitReady(ctx context.Context, p *palaverProc) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		select {
		case <-p.Done():
			_, err := p.Exited()
			return fmt.Errorf("palaver exited at start: %v", err)
		case <-ctx.Done():
			return errors.New("palaver did not connect to the fake platforms within 60 s")
		case <-time.After(50 * time.Millisecond):
		}
		if w.tg.Pollers() == 0 || len(w.dc.Commands(w.guild.ID)) == 0 {
			continue
		}
		resp, err := http.Get(p.metrics + "/healthz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}

// peakRSS is the process's peak resident set in bytes: VmHWM from /proc
// while it runs, else the rusage of the exited process.
func (p *palaverProc) peakRSS() int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(p.Pid()) + "/status")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return exitedPeakRSS(p.State())
}

// health fetches /healthz.
func (p *palaverProc) health() (map[string]any, error) {
	resp, err := http.Get(p.metrics + "/healthz")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h map[string]any
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// stop interrupts Palaver (a clean shutdown) and waits for it to exit,
// killing it after grace.
func (p *palaverProc) stop(grace time.Duration) error { return p.Stop(grace) }

func (p *palaverProc) kill() { p.Kill() }
