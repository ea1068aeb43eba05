package telegram_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

const testSecret = "s3cret_token-42"

// withWebhook makes the rig's Bot receive updates by webhook: the fake
// Bot API posts them to a loopback server in front of the Bot (as a proxy
// terminating TLS would), and sends refused ones again within
// milliseconds.
func withWebhook(r *rig) {
	var bot atomic.Pointer[telegram.Bot]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if b := bot.Load(); b != nil {
			b.WebhookHandler().ServeHTTP(w, req)
			return
		}
		http.Error(w, "no bot", http.StatusServiceUnavailable)
	}))
	r.t.Cleanup(front.Close)
	r.opts.Webhook = telegram.Webhook{URL: front.URL + "/telegram", SecretToken: testSecret}
	r.fake.WebhookRetry = 5 * time.Millisecond
	r.onStart = func(b *telegram.Bot) { bot.Store(b) }
}

func TestBot_Webhook(t *testing.T) {
	r := newRig(t, withWebhook)
	r.tg.SendText(alice.ID, alice, "hello")
	r.final(alice.ID, "echo: hello")
	if err := r.tg.WaitUpdatesConsumed(r.ctx()); err != nil {
		t.Fatal(err)
	}
	if got := r.bot.Role(); got != telegram.RoleLeader {
		t.Errorf("Role() = %q, want leader", got)
	}
	calls := r.tg.CallsTo("setWebhook")
	if len(calls) != 1 {
		t.Fatalf("setWebhook calls = %d, want 1", len(calls))
	}
	p := calls[0].Params
	if p["url"] != r.opts.Webhook.URL || p["secret_token"] != testSecret || p["max_connections"] != "40" ||
		p["drop_pending_updates"] != "false" || !strings.Contains(p["allowed_updates"], "stopped_message_generation") {
		t.Errorf("setWebhook params = %v", p)
	}
	if n := len(r.tg.CallsTo("getUpdates")); n != 0 {
		t.Errorf("getUpdates called %d times with a webhook", n)
	}
	if d := r.tg.Deliveries(); len(d) != 1 || !d[0].OK() {
		t.Errorf("deliveries = %+v, want one, accepted", d)
	}
}

// Requests without the secret token, or that are no update, are refused
// and hand nothing over.
func TestBot_Webhook_Refused(t *testing.T) {
	r := newRig(t, withWebhook)
	r.tg.SendText(alice.ID, alice, "hello")
	r.final(alice.ID, "echo: hello") // the Bot takes webhook requests now
	update := []byte(`{"update_id":900001,"message":{"message_id":5,"date":1,"chat":{"id":1001,"type":"private"},"from":{"id":1001,"first_name":"Mallory"},"text":"forged"}}`)
	for _, tc := range []struct {
		name   string
		method string
		secret string
		body   []byte
		want   int
	}{
		{"ErrNoSecret", http.MethodPost, "", update, http.StatusForbidden},
		{"ErrWrongSecret", http.MethodPost, "s3cret_token-43", update, http.StatusForbidden},
		{"ErrSecretPrefix", http.MethodPost, testSecret[:5], update, http.StatusForbidden},
		{"ErrMethod", http.MethodGet, testSecret, nil, http.StatusMethodNotAllowed},
		{"ErrTooLarge", http.MethodPost, testSecret, bytes.Repeat([]byte(" "), 1<<20+1), http.StatusRequestEntityTooLarge},
		{"ErrNoUpdate", http.MethodPost, testSecret, []byte(`{"ok":true}`), http.StatusBadRequest},
		{"OKUndecodable", http.MethodPost, testSecret, []byte(`{"update_id":900002,"message":"not a message"}`), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(r.ctx(), tc.method, r.opts.Webhook.URL, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tc.secret != "" {
				req.Header.Set(telegramtest.SecretTokenHeader, tc.secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if got := r.handled(); len(got) != 1 || got[0].Text != "hello" {
		t.Errorf("messages handed over = %+v, want only the real one", got)
	}
}

// An album's items, posted one at a time, are answered as one message.
func TestBot_Webhook_Album(t *testing.T) {
	r := newRig(t, withWebhook)
	pics := [][]byte{picture(t, 40, 30, "jpeg"), picture(t, 41, 30, "jpeg"), picture(t, 42, 30, "jpeg")}
	items := r.tg.SendAlbum(alice.ID, alice, pics, "compare these")
	r.tg.SendText(alice.ID, alice, "and then?")

	got := r.handled()
	if len(got) != 2 {
		t.Fatalf("messages handed over = %d, want 2 (the album, then the text): %+v", len(got), got)
	}
	if got[0].ID != fmt.Sprint(items[0].ID) || got[0].Text != "compare these" || !slices.Equal(refs(got[0]), photoRefs(items...)) {
		t.Errorf("album = {ID: %q, Text: %q, files %q}, want {%d, %q, %q}", got[0].ID, got[0].Text, refs(got[0]), items[0].ID, "compare these", photoRefs(items...))
	}
	if got[1].Text != "and then?" {
		t.Errorf("second message = %+v, want the text", got[1])
	}
	if d := r.tg.Deliveries(); len(d) != 4 {
		t.Errorf("deliveries = %d, want 4 (each item, then the text)", len(d))
	}
	if v, err := r.store.Value(r.ctx(), "telegram/albums"); err != nil || v != nil {
		t.Errorf("staged albums after the hand-over = %q, %v; want none", v, err)
	}
}

// An album that nothing follows is answered once AlbumWait has passed
// after its last item.
func TestBot_Webhook_AlbumAlone(t *testing.T) {
	r := newRig(t, withWebhook)
	items := r.tg.SendAlbum(group, alice, [][]byte{picture(t, 40, 30, "jpeg"), picture(t, 41, 30, "jpeg")}, "@palaver_bot which?")
	if err := r.tg.WaitFor(r.ctx(), func() bool { return len(r.rec.messages()) > 0 }); err != nil {
		t.Fatal("the album was never handed over")
	}
	got := r.handled()
	if len(got) != 1 || got[0].Text != "which?" || !slices.Equal(refs(got[0]), photoRefs(items...)) {
		t.Errorf("messages handed over = %+v, want the album as one", got)
	}
}

func TestNew_Webhook(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(*telegram.Options)
		want string // in the error; "" for none
	}{
		{"OK", func(o *telegram.Options) {
			o.Webhook = telegram.Webhook{URL: "https://bot.example.com/tg", Listen: ":8443"}
		}, ""},
		{"OKDerivedSecret", func(o *telegram.Options) { o.Webhook = telegram.Webhook{URL: "https://bot.example.com/tg"} }, ""},
		{"ErrScheme", func(o *telegram.Options) { o.Webhook.URL = "ftp://bot.example.com/tg" }, "telegram.webhook.url"},
		{"ErrRelative", func(o *telegram.Options) { o.Webhook.URL = "/tg" }, "telegram.webhook.url"},
		{"ErrNoURL", func(o *telegram.Options) { o.Webhook.Listen = ":8443" }, "without telegram.webhook.url"},
		{"ErrListen", func(o *telegram.Options) { o.Webhook = telegram.Webhook{URL: "https://b.example.com", Listen: "8443"} }, "telegram.webhook.listen"},
		{"ErrSecretChars", func(o *telegram.Options) {
			o.Webhook = telegram.Webhook{URL: "https://b.example.com", SecretToken: "abc+/="}
		}, "telegram.webhook.secret_token"},
		{"ErrSecretLong", func(o *telegram.Options) {
			o.Webhook = telegram.Webhook{URL: "https://b.example.com", SecretToken: strings.Repeat("a", 257)}
		}, "telegram.webhook.secret_token"},
		{"ErrMaxConnections", func(o *telegram.Options) {
			o.Webhook = telegram.Webhook{URL: "https://b.example.com", MaxConnections: 101}
		}, "telegram.webhook.max_connections"},
		{"ErrAdvertise", func(o *telegram.Options) { o.Advertise = "10.0.0.5:8443" }, "cluster.advertise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := telegram.Options{Token: "123:secret-token"}
			tc.opts(&opts)
			m, store := newManager(t, nil)
			_, err := telegram.New(opts, m, store)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New = %v, want an error naming %s", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "secret-token"):
				t.Errorf("New = %v, shows the bot token", err)
			}
		})
	}
}

// Telegram's refusal of the webhook stops Run with an error that names
// the config key.
func TestBot_Run_WebhookRefused(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	m, store := newManager(t, nil)
	b, err := telegram.New(telegram.Options{Token: tg.Token(), APIEndpoint: tg.Endpoint(),
		Webhook: telegram.Webhook{URL: "https://bot.example.com:1234/tg"}}, m, store)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "telegram.webhook.url") ||
		!strings.Contains(err.Error(), "Webhook can be set up only on ports 80, 88, 443 or 8443") {
		t.Errorf("Run = %v, want Telegram's refusal naming telegram.webhook.url", err)
	}
}

// The Bot serves webhooks itself on Webhook.Listen.
func TestBot_Webhook_Listen(t *testing.T) {
	addr := freeAddr(t)
	r := newRig(t, func(r *rig) {
		r.opts.Webhook = telegram.Webhook{URL: "http://" + addr + "/any/path", Listen: addr}
		r.fake.WebhookRetry = 5 * time.Millisecond
	})
	r.tg.SendText(alice.ID, alice, "hello")
	r.final(alice.ID, "echo: hello")
	if got := r.tg.Webhook().SecretToken; len(got) != 64 {
		t.Errorf("derived secret token = %q, want 64 hex digits", got)
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL)
	srv.Close()
	return u.Host
}

// A polling Bot deletes a webhook set meanwhile (Telegram refuses
// getUpdates while one is), saying why.
func TestBot_Poll_WebhookConflict(t *testing.T) {
	logs := &logLines{}
	r := newRig(t, func(r *rig) { r.logs = logs })
	if err := r.tg.WaitFor(r.ctx(), func() bool { return r.tg.Pollers() == 1 }); err != nil {
		t.Fatal(err)
	}
	setWebhook(t, r.tg, "http://127.0.0.1:9/elsewhere") // as another process would
	if _, err := r.tg.WaitCall(r.ctx(), func(c telegramtest.Call) bool { return c.Method == "deleteWebhook" && c.OK() }); err != nil {
		t.Fatal("the Bot did not delete the webhook")
	}
	r.tg.SendText(alice.ID, alice, "still there?")
	r.final(alice.ID, "echo: still there?")
	if len(logs.with("refuses getUpdates while a webhook is set", "telegram.webhook.url")) == 0 {
		t.Errorf("no log explains the conflict; logs: %q", logs.with(""))
	}
}

// A polling Bot started while a webhook is set deletes it before it polls.
func TestBot_Poll_DeletesWebhook(t *testing.T) {
	r := newRig(t, func(r *rig) {
		r.onStart = func(*telegram.Bot) { setWebhook(t, r.tg, "http://127.0.0.1:9/old") }
	})
	r.tg.SendText(alice.ID, alice, "hello")
	r.final(alice.ID, "echo: hello")
	if n := len(r.tg.CallsTo("deleteWebhook")); n != 1 {
		t.Errorf("deleteWebhook calls = %d, want 1", n)
	}
	for _, c := range r.tg.CallsTo("getUpdates") {
		if c.ErrorCode == http.StatusConflict {
			t.Errorf("getUpdates refused: %s", c.Description)
		}
	}
}

// setWebhook sets a webhook on the fake directly.
func setWebhook(t *testing.T, tg *telegramtest.Server, hook string) {
	t.Helper()
	resp, err := tg.Client().PostForm(tg.URL()+"/bot"+tg.Token()+"/setWebhook", url.Values{"url": {hook}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("setWebhook: %s", resp.Status)
	}
}

// newManager is a Manager on a new bbolt store with an llmtest upstream
// (up, or a new one), all closed at the end of the test.
func newManager(t *testing.T, up *llmtest.Server) (*sessions.Manager, *sessions.BoltStore) {
	t.Helper()
	if up == nil {
		up = llmtest.NewServer()
		t.Cleanup(up.Close)
	}
	store, err := sessions.OpenBolt(t.TempDir()+"/palaver.db", sessions.BoltOptions{ProgressFlush: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newManagerOn(t, store, up), store
}

// newManagerOn is a Manager on store, closed at the end of the test
// (before the store).
func newManagerOn(t *testing.T, store *sessions.BoltStore, up *llmtest.Server) *sessions.Manager {
	t.Helper()
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{MaxRetries: -1})}, "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, router, nil, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Close(ctx)
	})
	return m
}

// messages are the messages handed to the Manager so far.
func (r *recorder) messages() []sessions.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}
