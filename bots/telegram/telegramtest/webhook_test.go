package telegramtest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

// received is a webhook request as the test's endpoint saw it.
type received struct {
	secret string
	update struct {
		UpdateID int `json:"update_id"`
		Message  struct {
			Text string `json:"text"`
			Chat struct {
				ID int64 `json:"id"`
			} `json:"chat"`
		} `json:"message"`
	}
}

// endpoint is a webhook endpoint that passes each request to answer,
// which returns the status to answer with.
func endpoint(t *testing.T, answer func(received) int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got received
		got.secret = r.Header.Get(telegramtest.SecretTokenHeader)
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got.update); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook request %s %q (%s): %v", r.Method, body, r.Header.Get("Content-Type"), err)
		}
		w.WriteHeader(answer(got))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestServer_SetWebhook_Validation(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	hook := endpoint(t, func(received) int { return 200 })
	for _, tc := range []struct {
		name, url, secret, want string
	}{
		{"OK", hook.URL + "/hook", "s3cret_-X", ""},
		{"OKLongestSecret", hook.URL, strings.Repeat("a", 256), ""},
		{"ErrHTTP", "http://example.com/hook", "", "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"},
		{"ErrPort", "https://example.com:1234/hook", "", "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"},
		{"ErrHost", "https://example.com/hook", "", "Bad Request: bad webhook: Failed to resolve host: Name or service not known"},
		{"ErrSecretCharacters", hook.URL, "a b", "Bad Request: secret token contains unallowed characters"},
		{"ErrSecretBase64", hook.URL, "a+b/c=", "Bad Request: secret token contains unallowed characters"},
		{"ErrSecretLong", hook.URL, strings.Repeat("a", 257), "Bad Request: secret token is too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bot.MakeRequest("setWebhook", tgbotapi.Params{"url": tc.url, "secret_token": tc.secret})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("setWebhook: %v", err)
				}
				if got := srv.Webhook(); got.URL != tc.url || got.SecretToken != tc.secret || got.MaxConnections != 40 {
					t.Errorf("Webhook() = %+v, want %s with its secret and 40 connections", got, tc.url)
				}
				return
			}
			if e := apiError(t, err); e.Code != 400 || e.Message != tc.want {
				t.Errorf("setWebhook = %d %q, want 400 %q", e.Code, e.Message, tc.want)
			}
		})
	}
}

func TestServer_Webhook_Delivery(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	got := make(chan received, 4)
	hook := endpoint(t, func(r received) int { got <- r; return http.StatusOK })
	if _, err := bot.MakeRequest("setWebhook", tgbotapi.Params{
		"url": hook.URL + "/tg", "secret_token": "s3cret", "max_connections": "7", "allowed_updates": `["message"]`,
	}); err != nil {
		t.Fatal(err)
	}
	sent := srv.SendText(userID, alice, "hello")
	r := <-got
	if r.secret != "s3cret" || r.update.Message.Text != "hello" || r.update.UpdateID != srv.LastUpdateID() {
		t.Errorf("delivered %+v, want update %d with the secret", r, srv.LastUpdateID())
	}
	if err := srv.WaitUpdatesConsumed(ctx10s(t)); err != nil {
		t.Fatalf("update not confirmed by the 200: %v", err)
	}
	if d := srv.Deliveries(); len(d) != 1 || !d[0].OK() || d[0].UpdateID != srv.LastUpdateID() {
		t.Errorf("Deliveries() = %+v, want one accepted", d)
	}

	// getWebhookInfo reports it; getUpdates is refused while it is set.
	resp, err := bot.MakeRequest("getWebhookInfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		URL            string   `json:"url"`
		MaxConnections int      `json:"max_connections"`
		AllowedUpdates []string `json:"allowed_updates"`
		Pending        int      `json:"pending_update_count"`
	}
	if err := json.Unmarshal(resp.Result, &info); err != nil {
		t.Fatal(err)
	}
	if info.URL != hook.URL+"/tg" || info.MaxConnections != 7 || len(info.AllowedUpdates) != 1 || info.Pending != 0 {
		t.Errorf("getWebhookInfo = %+v", info)
	}
	_, err = bot.GetUpdates(tgbotapi.UpdateConfig{})
	if e := apiError(t, err); e.Code != 409 || e.Message != "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first" {
		t.Errorf("getUpdates = %d %q, want 409 webhook active", e.Code, e.Message)
	}

	// Deleted, updates wait for getUpdates again.
	if _, err := bot.MakeRequest("deleteWebhook", nil); err != nil {
		t.Fatal(err)
	}
	srv.SendText(userID, alice, "again")
	ups, err := bot.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(ups) != 1 || ups[0].Message.Text != "again" {
		t.Fatalf("getUpdates after deleteWebhook = %+v, %v", ups, err)
	}
	if len(got) != 0 || sent.Text != "hello" {
		t.Errorf("delivered after deleteWebhook: %d", len(got))
	}
}

// A refused update is posted again, with backoff, until it is accepted.
func TestServer_Webhook_Redelivery(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{WebhookRetry: time.Millisecond})
	var mu sync.Mutex
	attempts := 0
	hook := endpoint(t, func(received) int {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	if _, err := bot.MakeRequest("setWebhook", tgbotapi.Params{"url": hook.URL}); err != nil {
		t.Fatal(err)
	}
	srv.SendText(userID, alice, "hello")
	if err := srv.WaitUpdatesConsumed(ctx10s(t)); err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, d := range srv.Deliveries() {
		if d.UpdateID != srv.LastUpdateID() {
			t.Errorf("delivery of update %d, want only %d", d.UpdateID, srv.LastUpdateID())
		}
		statuses = append(statuses, d.Status)
	}
	if want := []int{500, 500, 500, 200}; !slices.Equal(statuses, want) {
		t.Errorf("delivery statuses = %v, want %v", statuses, want)
	}
	if got := srv.Redeliveries(); got != 3 {
		t.Errorf("Redeliveries() = %d, want 3", got)
	}
	if got := srv.Webhook().LastErrorMessage; got != "Wrong response from the webhook: 500 Internal Server Error" {
		t.Errorf("LastErrorMessage = %q", got)
	}
}

// The updates of one chat go one at a time; another chat's do not wait.
func TestServer_Webhook_OneAtATimePerChat(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	release := make(chan struct{})
	seen := make(chan string, 4)
	hook := endpoint(t, func(r received) int {
		seen <- r.update.Message.Text
		if r.update.Message.Text == "a1" {
			<-release
		}
		return http.StatusOK
	})
	if _, err := bot.MakeRequest("setWebhook", tgbotapi.Params{"url": hook.URL}); err != nil {
		t.Fatal(err)
	}
	bob := telegramtest.User{ID: 77, FirstName: "Bob"}
	srv.SendText(userID, alice, "a1")
	srv.SendText(userID, alice, "a2")
	srv.SendText(bob.ID, bob, "b1")
	first := map[string]bool{<-seen: true, <-seen: true}
	if !first["a1"] || !first["b1"] {
		t.Fatalf("first deliveries = %v, want a1 and b1 (a2 waits for a1)", first)
	}
	select {
	case s := <-seen:
		t.Fatalf("delivered %q while a1 was unanswered", s)
	case <-time.After(50 * time.Millisecond):
		// a2 did not come meanwhile. (A slow machine can only make this
		// pass wrongly, never fail wrongly.)
	}
	close(release)
	if s := <-seen; s != "a2" {
		t.Errorf("then delivered %q, want a2", s)
	}
}

// setWebhook ends a waiting getUpdates with 409, as Telegram does.
func TestServer_SetWebhook_EndsPoll(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := bot.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
		errc <- err
	}()
	if err := srv.WaitFor(ctx10s(t), func() bool { return srv.Pollers() == 1 }); err != nil {
		t.Fatal(err)
	}
	hook := endpoint(t, func(received) int { return 200 })
	if _, err := bot.MakeRequest("setWebhook", tgbotapi.Params{"url": hook.URL}); err != nil {
		t.Fatal(err)
	}
	if e := apiError(t, <-errc); e.Code != 409 || e.Message != "Conflict: terminated by setWebhook request" {
		t.Errorf("waiting poll = %d %q, want 409 terminated by setWebhook", e.Code, e.Message)
	}
}
