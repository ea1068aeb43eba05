package discordtest_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

// frozenClock is a clock that stands still; the fake's Advance moves it.
func frozenClock() func() time.Time {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	return func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
}

// rawGet sends GET path with the bot's token, outside discordgo.
func rawGet(t *testing.T, srv *discordtest.Server, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bot "+srv.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestServer_GlobalLimit(t *testing.T) {
	w := newWorld(t, discordtest.Options{Now: frozenClock(), Global: discordtest.GlobalLimits{Limit: 4}})
	// Four requests on four routes within one second; an interaction
	// callback among them does not count: Discord keeps interaction
	// endpoints out of the global limit.
	w.registerChat(t)
	if err := w.s.ChannelTyping(w.channel.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.ChannelMessageSend(w.channel.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	it, err := w.srv.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "hi"}}, w.user.ID, w.channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.s.InteractionRespond(w.interaction(it), &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.User("@me"); err != nil {
		t.Fatal(err)
	}

	// A fifth request within the second is refused, whatever its route.
	err = w.s.ChannelTyping(w.channel.ID, discordgo.WithRetryOnRatelimit(false))
	var rl *discordgo.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("fifth request: got %v, want *discordgo.RateLimitError", err)
	}
	if rl.RetryAfter != time.Second || rl.Message != "You are being rate limited." {
		t.Errorf("RateLimitError %+v, want retry after 1s", rl.TooManyRequests)
	}
	resp := rawGet(t, w.srv, "/api/v10/users/@me")
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || body["message"] != "You are being rate limited." ||
		body["retry_after"] != 1.0 || body["global"] != true {
		t.Errorf("answer %d %v, want 429 with Discord's global body", resp.StatusCode, body)
	}
	for h, want := range map[string]string{"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global", "Retry-After": "1", "X-RateLimit-Bucket": ""} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}

	want := discordtest.GlobalStats{Requests: 6, Peak: 4, Limited: 2, Invalid: 2}
	if got := w.srv.GlobalStats(); got != want {
		t.Errorf("GlobalStats = %+v, want %+v", got, want)
	}
	w.srv.Advance(time.Second)
	if err := w.s.ChannelTyping(w.channel.ID, discordgo.WithRetryOnRatelimit(false)); err != nil {
		t.Errorf("a second later: %v", err)
	}
}

func TestServer_GlobalLimit_Disabled(t *testing.T) {
	w := newWorld(t, discordtest.Options{Now: frozenClock(), Global: discordtest.GlobalLimits{Limit: -1}})
	for i := range 60 {
		if err := w.s.ChannelTyping(w.channel.ID, discordgo.WithRetryOnRatelimit(false)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if st := w.srv.GlobalStats(); st.Peak != 60 || st.Limited != 0 {
		t.Errorf("GlobalStats = %+v, want a peak of 60 and none limited", st)
	}
}

func TestServer_InvalidRequests(t *testing.T) {
	w := newWorld(t, discordtest.Options{Now: frozenClock(), MessageLimit: 1, Logger: slog.New(slog.DiscardHandler),
		Global: discordtest.GlobalLimits{InvalidLimit: 3, BanDuration: time.Minute}})
	w.registerChat(t)
	if _, err := w.s.ChannelMessageSend(w.channel.ID, "fills the channel's window"); err != nil {
		t.Fatal(err)
	}

	// A 429 of scope "shared" (an interaction's follow-up refused for its
	// channel's sake) is not an invalid request.
	it, err := w.srv.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "hi"}}, w.user.ID, w.channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.s.InteractionRespond(w.interaction(it), &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}); err != nil {
		t.Fatal(err)
	}
	_, err = w.s.FollowupMessageCreate(w.interaction(it), true, &discordgo.WebhookParams{Content: "follow-up"},
		discordgo.WithRetryOnRatelimit(false))
	if !errors.As(err, new(*discordgo.RateLimitError)) {
		t.Fatalf("follow-up: got %v, want a 429", err)
	}
	if st := w.srv.GlobalStats(); st.Invalid != 0 {
		t.Fatalf("after a shared 429: Invalid = %d, want 0", st.Invalid)
	}

	// Two 401s and a 429 of the channel's own are three.
	bad, err := discord.NewSession(discord.SessionOptions{Token: "wrong", APIBase: w.srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := bad.User("@me"); err == nil {
			t.Fatal("a wrong token was accepted")
		}
	}
	w.s.Ratelimiter = discordgo.NewRatelimiter() // forget the channel's Remaining 0, as a careless client would
	if _, err := w.s.ChannelMessageSend(w.channel.ID, "over", discordgo.WithRetryOnRatelimit(false)); !errors.As(err, new(*discordgo.RateLimitError)) {
		t.Fatalf("second message: got %v, want a 429", err)
	}
	if !w.srv.Banned() {
		t.Fatal("not banned after 3 invalid requests")
	}

	// Banned: every request is refused, valid or not.
	_, err = w.s.User("@me", discordgo.WithRetryOnRatelimit(false))
	var rl *discordgo.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Minute || rl.Message == "You are being rate limited." {
		t.Fatalf("while banned: got %v, want a 429 with the ban's message and a minute to wait", err)
	}
	want := discordtest.GlobalStats{Requests: 4, Peak: 4, Invalid: 3, Bans: 1, Banned: 1} // the callback is not counted
	if got := w.srv.GlobalStats(); got != want {
		t.Errorf("GlobalStats = %+v, want %+v", got, want)
	}

	w.srv.Advance(time.Minute)
	if w.srv.Banned() {
		t.Error("still banned after the ban's duration")
	}
	if _, err := w.s.User("@me", discordgo.WithRetryOnRatelimit(false)); err != nil {
		t.Errorf("after the ban: %v", err)
	}
}
