package sessions_test

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// worldManager is a Manager over the providers of llmtest.ResolveWorld.
func worldManager(t *testing.T, w *llmtest.ResolveWorld, cfg sessions.Config) *sessions.Manager {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	var clients []*llm.Client
	for _, p := range w.Providers {
		clients = append(clients, llm.NewClient(p, llm.Options{MaxRetries: -1, Logger: quiet}))
	}
	def, _, _ := strings.Cut(w.Default, "/")
	router, err := llm.NewRouter(clients, def, w.Aliases)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultModel == "" {
		cfg.DefaultModel = w.Default
	}
	m := sessions.NewManager(cfg, store, router, nil, quiet)
	t.Cleanup(func() {
		m.Close(t.Context())
		store.Close()
	})
	return m
}

// The shared resolution table, for names typed in a chat (/model).
func TestManager_ResolveModel_Shared(t *testing.T) {
	w, err := llmtest.NewResolveWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	m := worldManager(t, w, sessions.Config{})
	for _, tt := range llmtest.ResolveCases {
		t.Run(tt.Name, func(t *testing.T) {
			canonical, err := m.ResolveModel(t.Context(), tt.Name)
			got := canonical
			if err != nil {
				got = resolveOutcome(err)
				if !errors.Is(err, sessions.ErrUnknownModel) {
					t.Errorf("err = %v, want ErrUnknownModel", err)
				}
				checkSentence(t, sessions.Explain(err))
			}
			if got != tt.Typed {
				t.Errorf("got %s (%v), want %s", got, err, tt.Typed)
			}
		})
	}
}

// resolveOutcome classifies a refusal of ResolveModel as a ResolveCase
// outcome.
func resolveOutcome(err error) string {
	if _, ok := errors.AsType[*llm.AliasError](err); ok {
		return llmtest.ResolveBadAlias
	}
	if les := llm.ListErrors(err); len(les) == 1 {
		if _, ok := llm.Unreachable(les[0]); ok {
			return llmtest.ResolveUnreachable
		}
	}
	if ue, ok := errors.AsType[*llm.UnknownModelError](err); ok {
		if len(ue.Matches) > 1 {
			return llmtest.ResolveAmbiguous
		}
		return llmtest.ResolveUnknown
	}
	return "unexpected error"
}

// checkSentence fails when msg is not a sentence of Palaver's own.
func checkSentence(t *testing.T, msg string) {
	t.Helper()
	for _, raw := range []string{"dial tcp", "lookup ", "connection refused", "no such host", "llm:", "Get \"", "%!"} {
		if strings.Contains(msg, raw) {
			t.Errorf("%q shows Go's error text %q", msg, raw)
		}
	}
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") {
		t.Errorf("%q is not a sentence", msg)
	}
}

// /models lists what the reachable providers offer; the provider that is
// down is named in a note with the reason.
func TestManager_Models_ProviderDown(t *testing.T) {
	w, err := llmtest.NewResolveWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	m := worldManager(t, w, sessions.Config{Allowed: []string{"lab/*", "local/qwen3:8b", "local/extra", "deepinfra/x"}})
	models, err := m.Models(t.Context())
	var names []string
	for _, md := range models {
		names = append(names, md.Name())
	}
	if got, want := strings.Join(names, " "), "lab/deepseek-r1:70b lab/mistral-small:24b lab/shared local/extra local/qwen3:8b"; got != want {
		t.Errorf("models = %s, want %s", got, want)
	}
	notes := sessions.ModelsNotes(err)
	host := strings.TrimSuffix(strings.TrimPrefix(w.DownURL, "http://"), "/v1")
	want := "(deepinfra unreachable: could not reach " + host + ": is it running? Check providers.deepinfra.base_url)"
	if len(notes) != 1 || notes[0] != want {
		t.Errorf("ModelsNotes = %q, want [%q]", notes, want)
	}
}

// A turn asks only its model's provider: another provider that is down
// is never asked, so it slows no message.
func TestManager_TurnAsksOnlyItsProvider(t *testing.T) {
	var asked atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	local := llmtest.NewServer()
	t.Cleanup(local.Close)
	quiet := slog.New(slog.DiscardHandler)
	router, err := llm.NewRouter([]*llm.Client{
		llm.NewClient(llm.Provider{Name: "deepinfra", BaseURL: down.URL}, llm.Options{Logger: quiet}),
		llm.NewClient(local.Provider("local"), llm.Options{Logger: quiet}),
	}, "deepinfra", nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := sessions.NewManager(sessions.Config{DefaultModel: "deepinfra/big"}, store, router, nil, quiet)
	t.Cleanup(func() {
		m.Close(t.Context())
		store.Close()
	})
	if _, err := m.SetModel(t.Context(), key, "local/echo"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rep := &reply{}
		turn, err := m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "hello"}, rep)
		if err != nil {
			t.Fatal(err)
		}
		wait(t, turn)
		if got := rep.last().Content; got != "echo: hello" {
			t.Fatalf("answer = %q", got)
		}
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the provider that is down was asked %d times during turns to another provider's model", n)
	}
}

// BenchmarkManager_TurnProviderDown times a chat turn to a local model
// while another configured provider refuses connections (a closed
// loopback port): the turn must not wait on the provider that is down.
// Each iteration is one message in a new conversation.
func BenchmarkManager_TurnProviderDown(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	local := llmtest.NewServer()
	b.Cleanup(local.Close)
	quiet := slog.New(slog.DiscardHandler)
	router, err := llm.NewRouter([]*llm.Client{
		llm.NewClient(llm.Provider{Name: "deepinfra", BaseURL: down}, llm.Options{Logger: quiet}),
		llm.NewClient(local.Provider("local"), llm.Options{Logger: quiet}),
	}, "deepinfra", nil)
	if err != nil {
		b.Fatal(err)
	}
	store, err := sessions.OpenBolt(filepath.Join(b.TempDir(), "palaver.db"), sessions.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m := sessions.NewManager(sessions.Config{DefaultModel: "local/echo"}, store, router, nil, quiet)
	b.Cleanup(func() {
		m.Close(b.Context())
		store.Close()
	})
	var worst time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		k := sessions.Key{Platform: "bench", Chat: strconv.Itoa(i)}
		turn, err := m.Handle(b.Context(), sessions.Message{Key: k, Author: alice, Text: "hello"}, &reply{})
		if err != nil {
			b.Fatal(err)
		}
		<-turn.Done()
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}
