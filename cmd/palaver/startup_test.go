package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// closedURL is the URL of a loopback port nobody listens on: connections
// to it are refused.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// With Discord unreachable, palaver run keeps going: Telegram answers, the
// endpoint serves, and /healthz reports Discord as retrying.
func TestMain_RunDiscordUnreachable(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	addr := freeAddr(t)
	cfg := upstreamConfig(t, up.URL, "gateway:\n  enabled: true\n  listen: "+addr+"\n"+
		"telegram:\n  token: "+tg.Token()+"\n  api_endpoint: "+tg.Endpoint()+"\n"+
		"discord:\n  token: some-token\n  api_base: "+closedURL(t)+"\n")
	stderr := startMain(t, "run", cfg, addr)

	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	tg.SendText(1001, alice, "still answering?")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := tg.WaitFor(ctx, func() bool {
		for _, m := range tg.Messages(1001) {
			if m.From.IsBot && strings.Contains(m.Text, "echo: still answering?") {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("Telegram got no answer while Discord was unreachable: %v\n%s", err, stderr)
	}
	var report healthReport
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&report)
		resp.Body.Close()
		if report.Components["discord"] == "retrying" || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if report.Components["discord"] != "retrying" || report.Components["telegram"] != "up" || report.OK {
		t.Errorf("/healthz = %+v, want discord retrying, telegram up, not ok", report)
	}
	logs := stderr.String()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "platform=telegram") && strings.Contains(line, "discord") {
			t.Errorf("a Telegram log line names Discord: %s", line)
		}
		if strings.Count(line, "platform=") > 1 {
			t.Errorf("repeated attribute: %s", line)
		}
	}
}

// A refused Discord token stops only Discord; palaver run fails when
// nothing configured can run.
func TestMain_RunNothingCanRun(t *testing.T) {
	dc := discordtest.NewServer(discordtest.Options{})
	t.Cleanup(dc.Close)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	cfg := upstreamConfig(t, up.URL, "discord:\n  token: wrong-token\n  api_base: "+dc.URL()+"\n")
	var stderr syncWriter
	done := make(chan int, 1)
	go func() {
		done <- Main(t.Context(), []string{"run", "--config", cfg}, strings.NewReader(""), io.Discard, &stderr)
	}()
	select {
	case code := <-done:
		out := stderr.String()
		if code != 1 || !strings.Contains(out, "check discord.token") {
			t.Errorf("palaver run = %d, want 1 naming discord.token\n%s", code, out)
		}
		if strings.Contains(out, "discord: discord") {
			t.Errorf("doubled prefix:\n%s", out)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("palaver run kept running with nothing to run")
	}
}

// The first Ctrl-C says at once that palaver is stopping; a second quits
// without waiting for answers in flight.
func TestBinary_RunSecondInterrupt(t *testing.T) {
	bin := palaverBinary(t)
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	// An upstream that never answers keeps the answer in flight.
	hang := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); up.Close() })
	cfg := upstreamConfig(t, up.URL, "telegram:\n  token: "+tg.Token()+"\n  api_endpoint: "+tg.Endpoint()+"\n")
	cmd := exec.Command(bin, "run", "--config", cfg)
	var stderr syncWriter
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := tg.WaitFor(ctx, func() bool { return tg.Pollers() == 1 }); err != nil {
		t.Fatalf("the bot does not poll: %v\n%s", err, stderr.String())
	}
	tg.SendText(1001, telegramtest.User{ID: 1001, FirstName: "Alice"}, "a long question")
	if err := tg.WaitUpdatesConsumed(ctx); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(os.Interrupt)
	for !strings.Contains(stderr.String(), "Ctrl-C again to quit now") {
		if ctx.Err() != nil {
			t.Fatalf("no stopping line after Ctrl-C:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Sys().(syscall.WaitStatus).ExitStatus() != 130 {
		t.Fatalf("after a second Ctrl-C: %v, want exit 130\n%s", err, stderr.String())
	}
}
