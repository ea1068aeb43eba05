package discord_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

func TestRewriteTransport_RoundTrip(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Host+" "+r.URL.RequestURI())
	}))
	t.Cleanup(srv.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "other "+r.URL.RequestURI())
	}))
	t.Cleanup(other.Close)

	tests := []struct {
		name, base, url, want string
	}{
		{"OK", srv.URL, "https://discord.com/api/v9/channels/1/messages?wait=true", strings.TrimPrefix(srv.URL, "http://") + " /api/v9/channels/1/messages?wait=true"},
		{"OKPrefix", srv.URL + "/discord/", "https://discord.com/api/v9/gateway", strings.TrimPrefix(srv.URL, "http://") + " /discord/api/v9/gateway"},
		{"OKEscapedPath", srv.URL, "https://discord.com/api/v9/webhooks/1/a%2Fb/messages/@original", strings.TrimPrefix(srv.URL, "http://") + " /api/v9/webhooks/1/a%2Fb/messages/@original"},
		{"OtherHost", srv.URL, other.URL + "/x", "other /x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			base, err := discord.ParseAPIBase(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: &discord.RewriteTransport{Base: base}}
			req, _ := http.NewRequest("GET", tt.url, nil)
			orig := req.URL.String()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("server saw %q, want %q", got, tt.want)
			}
			if req.URL.String() != orig {
				t.Errorf("the caller's request was modified: %s", req.URL)
			}
		})
	}
}

func TestParseAPIBase(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"http://127.0.0.1:8080", true},
		{"https://discord.example.org/prefix", true},
		{"ftp://x", false},
		{"http://", false},
		{"http://x/?a=b", false},
		{"::", false},
	}
	for _, tt := range tests {
		if _, err := discord.ParseAPIBase(tt.in); (err == nil) != tt.ok {
			t.Errorf("ParseAPIBase(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestNewSession(t *testing.T) {
	before := discordgo.EndpointAPI
	srv := discordtest.NewServer(discordtest.Options{})
	t.Cleanup(srv.Close)
	s, err := discord.NewSession(discord.SessionOptions{Token: "Bot " + srv.Token(), APIBase: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Token != "Bot "+srv.Token() {
		t.Errorf("token %q, want a single Bot prefix", s.Token)
	}
	if s.Identify.Intents != discordgo.IntentsGuilds|discordgo.IntentsGuildMessages|discordgo.IntentsDirectMessages {
		t.Errorf("intents %b", s.Identify.Intents)
	}
	if s.Client.Timeout == 0 || !s.ShouldRetryOnRateLimit {
		t.Errorf("client timeout %v, retry %v", s.Client.Timeout, s.ShouldRetryOnRateLimit)
	}
	gw, err := s.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	if want := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/ws/"; gw != want {
		t.Errorf("gateway %q, want %q", gw, want)
	}
	if discordgo.EndpointAPI != before || before != "https://discord.com/api/v9/" {
		t.Errorf("discordgo.EndpointAPI = %q, want it untouched", discordgo.EndpointAPI)
	}
	if _, err := discord.NewSession(discord.SessionOptions{Token: " "}); err == nil {
		t.Error("an empty token was accepted")
	}
	if _, err := discord.NewSession(discord.SessionOptions{Token: "x", APIBase: "ftp://x"}); err == nil {
		t.Error("a bad api_base was accepted")
	}
}

func TestRedactToken(t *testing.T) {
	for in, want := range map[string]string{
		"Bot MTIzNDU2Nzg5.abcdef.ghijklmnop": "…mnop",
		"short":                              "…",
	} {
		if got := discord.RedactToken(in); got != want {
			t.Errorf("RedactToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewSession_OnGlobalLimit(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"Global", map[string]string{"X-RateLimit-Global": "true", "Retry-After": "2.5"}, 2500 * time.Millisecond},
		{"ScopeGlobal", map[string]string{"X-RateLimit-Scope": "global", "Retry-After": "3"}, 3 * time.Second},
		{"PerRoute", map[string]string{"X-RateLimit-Scope": "user", "Retry-After": "3"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"message": "You are being rate limited.", "retry_after": 1, "global": true}`))
			}))
			t.Cleanup(srv.Close)
			var got time.Duration
			s, err := discord.NewSession(discord.SessionOptions{Token: "x", APIBase: srv.URL,
				OnGlobalLimit: func(d time.Duration) { got = d }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.ChannelMessageSend("1", "hi", discordgo.WithRetryOnRatelimit(false))
			var rl *discordgo.RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("send: %v, want a rate limit", err)
			}
			if got != tt.want {
				t.Errorf("OnGlobalLimit got %v, want %v", got, tt.want)
			}
		})
	}
}
