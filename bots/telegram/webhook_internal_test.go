package telegram

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// A message the store cannot save is answered non-2xx, so that Telegram
// posts it again; delivered again once the store works, it is answered
// once, and its user told about the delay once.
func TestBot_Webhook_StoreFailureRedelivered(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{WebhookRetry: time.Millisecond})
	t.Cleanup(tg.Close)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{MaxRetries: -1})}, "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, router, nil, nil)

	var bot atomic.Pointer[Bot]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bot.Load().WebhookHandler().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	x := tg.SendText(alice.ID, alice, "hello")
	mgr := &unsavable{Manager: m, refuse: [2]string{strconv.FormatInt(alice.ID, 10), strconv.Itoa(x.ID)}}
	b, err := New(Options{Token: tg.Token(), APIEndpoint: tg.Endpoint(), Webhook: Webhook{URL: front.URL}}, mgr, store)
	if err != nil {
		t.Fatal(err)
	}
	bot.Store(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Close(ctx)
		_ = store.Close()
	})

	wait, stop := context.WithTimeout(t.Context(), 20*time.Second)
	defer stop()
	answer, err := tg.WaitMessage(wait, alice.ID, func(m telegramtest.Message) bool {
		return m.From.ID == tg.Bot().ID && strings.Contains(m.Text, "echo: hello")
	})
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if err := tg.WaitUpdatesConsumed(wait); err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, d := range tg.Deliveries() {
		if d.UpdateID != tg.LastUpdateID() {
			t.Errorf("delivery of update %d, want only %d", d.UpdateID, tg.LastUpdateID())
		}
		statuses = append(statuses, d.Status)
	}
	if len(statuses) != 2 || statuses[0] != http.StatusInternalServerError || statuses[1] != http.StatusOK {
		t.Errorf("delivery statuses = %v, want [500 200]", statuses)
	}
	mgr.mu.Lock()
	got := len(mgr.got)
	mgr.mu.Unlock()
	if got != 1 {
		t.Errorf("messages handed over = %d, want 1", got)
	}
	answers, notices := 0, 0
	for _, m := range tg.BotMessages(alice.ID) {
		switch {
		case strings.Contains(m.Text, "echo: hello"):
			answers++
		case strings.Contains(m.Text, "can't save messages right now"):
			notices++
		}
	}
	if answers != 1 || notices != 1 {
		t.Errorf("bot messages: %d answers, %d notices (last answer %q); want one of each", answers, notices, answer.Text)
	}
}

func TestRecentIDs(t *testing.T) {
	var r recentIDs
	for id := range recentCap + 10 {
		r.add(id)
	}
	r.add(recentCap + 5) // again: no change
	for _, tc := range []struct {
		id   int
		want bool
	}{{0, false}, {9, false}, {10, true}, {recentCap + 9, true}, {recentCap + 10, false}} {
		if got := r.has(tc.id); got != tc.want {
			t.Errorf("has(%d) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if len(r.set) != recentCap {
		t.Errorf("remembers %d ids, want %d", len(r.set), recentCap)
	}
}
