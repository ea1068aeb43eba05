package discord_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// startBot runs a Bot against apiBase with token and returns its states
// and the channel Run's result arrives on.
func startBot(t *testing.T, apiBase, token string) (states chan string, done <-chan error, cancel context.CancelFunc) {
	t.Helper()
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{MaxRetries: -1})}, "fake", nil)
	must(t, err)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, router, nil, log)
	t.Cleanup(func() { m.Close(context.Background()) })
	states = make(chan string, 32)
	bot, err := discord.New(discord.Options{
		Token: token, APIBase: apiBase, Logger: log,
		OnState: func(s string) { states <- s },
	}, m)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	finished := make(chan struct{})
	go func() { result <- bot.Run(ctx); close(finished) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return states, result, cancel
}

func waitState(t *testing.T, states <-chan string, want string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case got := <-states:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no state %q", want)
		}
	}
}

// An unreachable Discord (refused connections, then server errors) is
// retried with backoff and reported as "retrying"; Run does not return,
// and connects once Discord answers.
func TestBot_RetriesUnreachableGateway(t *testing.T) {
	dc := discordtest.NewServer(discordtest.Options{})
	t.Cleanup(dc.Close)
	target, err := url.Parse(dc.URL())
	must(t, err)
	var reachable atomic.Bool
	var refusedCalls atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !reachable.Load() {
			refusedCalls.Add(1)
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`{"message": "502: Bad Gateway", "code": 0}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	states, done, _ := startBot(t, front.URL, dc.Token())
	waitState(t, states, "connecting")
	waitState(t, states, "retrying")
	select {
	case err := <-done:
		t.Fatalf("Run returned while Discord was unreachable: %v", err)
	default:
	}
	reachable.Store(true)
	waitState(t, states, "up")
	if refusedCalls.Load() == 0 {
		t.Error("the bot never met the unreachable Discord")
	}
}

// A closed port (connection refused) is retried too.
func TestBot_RetriesRefusedConnection(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.URL
	ln.Close()
	states, done, cancel := startBot(t, addr, "fake-bot-token")
	waitState(t, states, "retrying")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// A refused token ends Run with an error that says what to check.
func TestBot_RefusedTokenIsFatal(t *testing.T) {
	dc := discordtest.NewServer(discordtest.Options{})
	t.Cleanup(dc.Close)
	_, done, _ := startBot(t, dc.URL(), "not-the-token")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "check discord.token") {
			t.Fatalf("Run = %v, want a refused token naming discord.token", err)
		}
		if strings.Contains(err.Error(), "discord: discord") {
			t.Errorf("doubled prefix: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not end on a refused token")
	}
}
