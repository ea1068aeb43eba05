package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// healthReport is the /healthz body.
type healthReport struct {
	OK         bool              `json:"ok"`
	Components map[string]string `json:"components"`
}

func TestHealth_ServeHTTP(t *testing.T) {
	tests := []struct {
		name   string
		state  map[string]string
		status int
	}{
		{"OK", map[string]string{"gateway": "up", "store": "open", "telegram": "up"}, 200},
		{"OKEmpty", map[string]string{}, 200},
		{"ErrConnecting", map[string]string{"store": "open", "discord": "connecting"}, 503},
		{"ErrRetrying", map[string]string{"store": "open", "telegram": "retrying"}, 503},
		{"ErrStopped", map[string]string{"telegram": "stopped"}, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hl := &health{state: maps.Clone(tt.state)}
			w := httptest.NewRecorder()
			hl.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got healthReport
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if got.OK != (tt.status == 200) || !maps.Equal(got.Components, tt.state) {
				t.Errorf("body = %+v, want ok %v and components %v", got, tt.status == 200, tt.state)
			}
		})
	}
}

// component reports "connecting" while the part starts, leaves its
// reports alone while it runs, and "stopped" or "down" when it ends.
func TestComponent(t *testing.T) {
	errBroken := errors.New("broken")
	tests := []struct {
		name   string
		cancel bool  // ctx ends while the part runs
		err    error // what the part returns
		want   string
	}{
		{"Stopped", true, nil, "stopped"},
		{"DownClean", false, nil, "down"},
		{"DownError", false, errBroken, "down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hl := &health{state: map[string]string{}}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var atStart string
			run := func(ctx context.Context) error {
				atStart = hl.state["bot"]
				hl.set("bot", "up") // as the part's OnState would
				if tt.cancel {
					cancel()
					<-ctx.Done()
				}
				return tt.err
			}
			err := component(ctx, hl, "bot", run)
			if atStart != "connecting" {
				t.Errorf("state at start = %q, want connecting", atStart)
			}
			if got := hl.state["bot"]; got != tt.want {
				t.Errorf("state after = %q, want %q", got, tt.want)
			}
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

// palaver run reports the Telegram connection in /healthz: up once the
// bot polls, retrying (503) after a failed poll, up again after a good one.
func TestMain_RunHealthzTelegram(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := upstreamConfig(t, up.URL, "gateway:\n  enabled: true\n  listen: "+addr+"\n"+
		"telegram:\n  token: "+tg.Token()+"\n  api_endpoint: "+tg.Endpoint()+"\n")

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(runCtx, []string{"run", "--config", cfg}, strings.NewReader(""), io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("palaver run exited %d after cancel\n%s", code, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("palaver run did not return after cancel")
		}
	})
	polling := func() {
		t.Helper()
		if err := tg.WaitFor(ctx, func() bool { return tg.Pollers() == 1 }); err != nil {
			t.Fatalf("the bot does not poll: %v", err)
		}
	}
	healthz := func(wantStatus int, want map[string]string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got healthReport
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != wantStatus || got.OK != (wantStatus == 200) || !maps.Equal(got.Components, want) {
			t.Errorf("/healthz = %d %+v, want %d %v", resp.StatusCode, got, wantStatus, want)
		}
	}

	// The bot reports up before its first poll, so a waiting poll means up.
	polling()
	healthz(200, map[string]string{"gateway": "up", "store": "open", "telegram": "up"})

	// A second poller ends the bot's poll with 409; the bot backs off and
	// polls again, still retrying until that poll succeeds.
	resp, err := tg.Client().Get(tg.URL() + "/bot" + tg.Token() + "/getUpdates?timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	polling()
	healthz(503, map[string]string{"gateway": "up", "store": "open", "telegram": "retrying"})

	// An update ends the poll with success; the bot confirms it with its
	// next poll, after reporting up.
	tg.SendText(1001, telegramtest.User{ID: 1001, FirstName: "Alice"}, "hello")
	if err := tg.WaitUpdatesConsumed(ctx); err != nil {
		t.Fatal(err)
	}
	healthz(200, map[string]string{"gateway": "up", "store": "open", "telegram": "up"})
}

// /metrics on the endpoint's listener takes the endpoint's keys when they
// are set and is open when the endpoint is; metrics.listen serves it
// without a key, and then the endpoint does not serve it at all. /healthz
// is open everywhere.
func TestMain_ServeMetricsAccess(t *testing.T) {
	const key = "sk-palaver-test"
	tests := []struct {
		name         string
		keys         bool
		metricsPort  bool
		wantNoKey    int // GET /metrics on the endpoint without a key
		wantWithKey  int // … with the key
		wantMetricsL int // GET /metrics on metrics.listen, without a key (0: not configured)
	}{
		{"Keys", true, false, http.StatusUnauthorized, http.StatusOK, 0},
		{"Open", false, false, http.StatusOK, http.StatusOK, 0},
		{"MetricsListen", true, true, http.StatusNotFound, http.StatusNotFound, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := llmtest.NewServer()
			t.Cleanup(up.Close)
			addr := freeAddr(t)
			extra := "gateway:\n  listen: " + addr + "\n"
			if tt.keys {
				extra += "  api_keys: [" + key + "]\n"
			}
			metricsAddr := ""
			if tt.metricsPort {
				metricsAddr = freeAddr(t)
				extra += "metrics:\n  listen: " + metricsAddr + "\n"
			}
			listeners := []string{addr}
			if metricsAddr != "" {
				listeners = append(listeners, metricsAddr)
			}
			startMain(t, "serve", upstreamConfig(t, up.URL, extra), listeners...)

			get := func(url, auth string) (int, string) {
				t.Helper()
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
				if auth != "" {
					req.Header.Set("Authorization", "Bearer "+auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}
			check := func(what, url, auth string, want int) {
				t.Helper()
				status, body := get(url, auth)
				if status != want || want == http.StatusOK && !strings.Contains(body, "go_goroutines") {
					t.Errorf("%s: %d %.200s, want %d", what, status, body, want)
				}
			}
			check("endpoint /metrics without a key", "http://"+addr+"/metrics", "", tt.wantNoKey)
			check("endpoint /metrics with the key", "http://"+addr+"/metrics", key, tt.wantWithKey)
			if tt.wantMetricsL != 0 {
				check("metrics.listen /metrics", "http://"+metricsAddr+"/metrics", "", tt.wantMetricsL)
			}
			if status, _ := get("http://"+addr+"/healthz", ""); status != http.StatusOK {
				t.Errorf("endpoint /healthz without a key: %d", status)
			}
		})
	}
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startMain runs palaver with command and config in the test's process
// until the test ends, once each of its listeners at addrs answers
// /healthz.
func startMain(t *testing.T, command, config string, addrs ...string) *syncWriter {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	stderr := new(syncWriter)
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{command, "--config", config}, strings.NewReader(""), io.Discard, stderr)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("palaver %s exited %d after cancel\n%s", command, code, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("palaver did not return after cancel")
		}
	})
	for _, addr := range addrs {
		for i := 0; ; i++ {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			if i == 200 {
				t.Fatalf("palaver %s never answered on %s\n%s", command, addr, stderr.String())
			}
			select {
			case code := <-done:
				done <- code // for the cleanup
				t.Fatalf("palaver %s exited %d\n%s", command, code, stderr.String())
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
	return stderr
}

// syncWriter is a buffer that one goroutine writes while another reads.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// palaver run with telegram.webhook: the bot registers its webhook with
// the secret, Telegram's posts reach it, and a message is answered.
func TestMain_RunTelegramWebhook(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	gw, hook := freeAddr(t), freeAddr(t)
	cfg := upstreamConfig(t, up.URL, "gateway:\n  enabled: true\n  listen: "+gw+"\n"+
		"telegram:\n  token: "+tg.Token()+"\n  api_endpoint: "+tg.Endpoint()+"\n"+
		"  webhook:\n    url: http://"+hook+"/telegram\n    listen: "+hook+"\n    secret_token: s3cret-Token_1\n    max_connections: 4\n")
	stderr := startMain(t, "run", cfg, gw)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := tg.WaitFor(ctx, func() bool { return tg.Webhook().URL != "" }); err != nil {
		t.Fatalf("no webhook set: %v\n%s", err, stderr.String())
	}
	if w := tg.Webhook(); w.URL != "http://"+hook+"/telegram" || w.MaxConnections != 4 {
		t.Errorf("webhook = %+v, want the configured url and max_connections 4", w)
	}
	tg.SendText(1001, telegramtest.User{ID: 1001, FirstName: "Alice"}, "hello")
	if _, err := tg.WaitMessage(ctx, 1001, func(m telegramtest.Message) bool { return m.From.IsBot && m.Text != "" }); err != nil {
		t.Fatalf("no answer over the webhook: %v\n%s", err, stderr.String())
	}
	if tg.Pollers() != 0 {
		t.Errorf("the bot polls while its webhook is set")
	}
	if len(tg.Deliveries()) == 0 {
		t.Errorf("no update was delivered through the webhook")
	}
}
