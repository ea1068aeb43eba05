package console

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// newManager is a Manager on a bbolt store in dir answering with up.
func newManager(t *testing.T, dir string, up *llmtest.Server) *sessions.Manager {
	t.Helper()
	store, err := sessions.OpenBolt(filepath.Join(dir, "palaver.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{MaxRetries: -1})}, "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, router, nil, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		m.Close(context.Background())
		store.Close()
	})
	return m
}

// lockedBuffer is an output written by the chat and its answers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runPlain runs a chat reading input to its end and returns its output.
func runPlain(t *testing.T, m *sessions.Manager, input string) string {
	t.Helper()
	var out lockedBuffer
	c := New(m, strings.NewReader(input), &out, Options{User: "tester", LogFile: "/var/log/chat.log"})
	if err := c.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out.String()
}

func TestChat_Run_Plain(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	dir := t.TempDir()
	m := newManager(t, dir, up)

	out := runPlain(t, m, "one\ntwo\n/help\n\nthree\n")
	for _, want := range []string{"talking to fake/echo", "Logs go to /var/log/chat.log.", "/quit — leave", "echo: three"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "`") || strings.Contains(out, "\x1b[") || strings.Contains(out, "Resuming") {
		t.Errorf("output has Markdown, escape sequences or a resume line:\n%s", out)
	}
	var asked []string
	for _, r := range up.Requests() {
		if r.Path == "/v1/chat/completions" {
			asked = append(asked, r.Request.Messages[len(r.Request.Messages)-1].Content)
		}
	}
	if got := strings.Join(asked, ","); got != "one,two,three" {
		t.Errorf("the model was asked %q, want one,two,three in order", got)
	}

	out = runPlain(t, m, "")
	if !strings.Contains(out, "Resuming: 6 earlier messages are in context") {
		t.Errorf("second run's output lacks the resume line:\n%s", out)
	}
}
