package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// A client address that keeps failing authentication is refused, key
// unchecked, with one warning naming it; another address is not.
func TestServer_AuthFailuresRefused(t *testing.T) {
	e := newEnv(t, gateway.Options{APIKeys: []string{"sk-right"}})
	get := func(auth string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/v1/models", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for i := range gateway.AuthMaxFailures {
		auth := "sk-guess" + strconv.Itoa(i)
		if i%2 == 0 {
			auth = "" // a missing key fails as well
		}
		if resp := get(auth); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	for range 3 {
		resp := get("sk-right") // refused all the same: the key is not checked
		got := readError(t, resp)
		if resp.StatusCode != http.StatusTooManyRequests || *got.Error.Code != "too_many_failed_authentications" ||
			got.Error.Type != "rate_limit_error" {
			t.Fatalf("refused client: %d %+v", resp.StatusCode, got.Error)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > int(gateway.AuthWindow/time.Second) {
			t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
		}
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Errorf("provider got %d requests", n)
	}
	log := e.log.String()
	if n := strings.Count(log, "too many failed authentications; refusing the client"); n != 1 {
		t.Errorf("%d refusal warnings, want 1:\n%s", n, log)
	}
	if !strings.Contains(log, "level=WARN msg=\"too many failed authentications; refusing the client\" client=127.0.0.1") ||
		strings.Count(log, "status=401 client=127.0.0.1") != gateway.AuthMaxFailures ||
		strings.Count(log, "level=DEBUG msg=request method=GET path=/v1/models status=429 client=127.0.0.1") != 3 ||
		strings.Contains(log, "sk-") {
		t.Errorf("log:\n%s", log)
	}

	// Another address, through the same handler, is served.
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/models", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	req.Header.Set("Authorization", "Bearer sk-right")
	w := httptest.NewRecorder()
	e.gw.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("another address: %d %s", w.Code, w.Body)
	}
}

// /metrics mounted with Handle takes the API's keys when they are set, and
// is open when the API is; /healthz is open either way.
func TestServer_HandleAuth(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics here\n") })
	for _, tt := range []struct {
		name       string
		keys       []string
		path, auth string
		want       int
	}{
		{"Keyed", []string{"sk-a", "sk-b"}, "/metrics", "Bearer sk-b", 200},
		{"ErrKeyedNoKey", []string{"sk-a"}, "/metrics", "", 401},
		{"ErrKeyedWrongKey", []string{"sk-a"}, "/metrics", "Bearer sk-x", 401},
		{"KeyedHealthz", []string{"sk-a"}, "/healthz", "", 200},
		{"Open", nil, "/metrics", "", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{APIKeys: tt.keys})
			e.gw.Handle("GET /metrics", metrics)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 401 {
				if got := readError(t, resp); *got.Error.Code != "invalid_api_key" {
					t.Errorf("error %+v", got.Error)
				}
			} else if data, _ := io.ReadAll(resp.Body); tt.path == "/metrics" && string(data) != "metrics here\n" {
				t.Errorf("body %q", data)
			}
		})
	}
}

// A non-streamed answer that is not a chat completion is a 502 in OpenAI's
// shape, never relayed with 200.
func TestRelay_NonStreamInvalid(t *testing.T) {
	for _, tt := range []struct {
		name, raw, rawType string
		stream             bool
		wantMsg            string
	}{
		{"ErrTruncatedJSON", `{"id":"x","choices":[{"message":{"content":"hal`, "", false,
			"provider deepinfra sent an answer that is not valid JSON"},
		{"ErrHTML", "<html><body>Bad gateway</body></html>", "text/html", false,
			"provider deepinfra sent an answer that is not valid JSON"},
		{"ErrBlank", " \n", "", false, "provider deepinfra sent an answer that is not valid JSON"},
		{"ErrArray", `[{"choices":[]}]`, "", false, "provider deepinfra sent an answer that is not a chat completion (not a JSON object)"},
		{"ErrNull", `null`, "", false, `provider deepinfra sent an answer that is not a chat completion (no "choices" list)`},
		{"ErrNoChoices", `{"object":"chat.completion","choices":null}`, "", false,
			`provider deepinfra sent an answer that is not a chat completion (no "choices" list)`},
		{"ErrEventStream", "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n", "text/event-stream", false,
			`provider deepinfra answered with an event stream to a request without "stream": true`},
		{"ErrGarbageToStream", "<html>oops</html>", "text/html", true,
			"provider deepinfra sent an answer that is not valid JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{})
			e.up.Enqueue(llmtest.Script{Raw: tt.raw, RawType: tt.rawType})
			body := chatBody
			if tt.stream {
				body = streamBody
			}
			resp := e.post(t, "/v1/chat/completions", body, nil)
			got := readError(t, resp)
			if resp.StatusCode != http.StatusBadGateway || got.Error.Type != "server_error" ||
				*got.Error.Code != "upstream_invalid_response" || got.Error.Message != tt.wantMsg {
				t.Errorf("%d %+v\nwant 502 upstream_invalid_response %q", resp.StatusCode, got.Error, tt.wantMsg)
			}
		})
	}

	// A completion with odd usage is still a completion.
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Raw: `{"choices":[{"index":0,"message":{"content":"ok"}}],"usage":{"prompt_tokens":"n/a"}}`, RawType: "text/plain"})
	resp := e.post(t, "/v1/chat/completions", chatBody, nil)
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(data), `"ok"`) {
		t.Errorf("odd usage: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
}

// An event longer than MaxEvent ends the stream with an error event; it is
// not relayed, and the provider's connection is closed.
func TestRelay_EventTooLarge(t *testing.T) {
	lines := strings.Repeat("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n", 2000) // one event of many lines, 92 KB
	for _, tt := range []struct {
		name     string
		maxEvent int
		script   llmtest.Script
		limit    int
	}{
		{"OneHugeChunk", 0, llmtest.Script{Content: []string{"first", strings.Repeat("x", 10<<20)}}, gateway.DefaultMaxEvent},
		{"ManyLines", 64 << 10, llmtest.Script{RawType: "text/event-stream",
			Raw: "data: {\"choices\":[{\"delta\":{\"content\":\"first\"}}]}\r\n\r\n" + lines + "\n"}, 64 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{MaxEvent: tt.maxEvent})
			e.up.Enqueue(tt.script)
			resp := e.post(t, "/v1/chat/completions", streamBody, nil)
			events := readEvents(t, resp.Body)
			want := `{"error":{"message":"provider deepinfra sent a stream event larger than ` + strconv.Itoa(tt.limit) +
				` bytes; the stream ends here","type":"server_error","param":null,"code":"upstream_event_too_large"}}`
			if len(events) != 2 || !strings.Contains(events[0], `"first"`) || events[1] != want {
				for i := range events {
					events[i] = events[i][:min(len(events[i]), 200)]
				}
				t.Fatalf("events %q\nwant the first chunk, then %s", events, want)
			}
			if !strings.Contains(e.log.String(), "error=\"provider deepinfra sent a stream event larger than") {
				t.Errorf("log:\n%s", e.log.String())
			}
			if tt.script.Raw != "" {
				return // a raw body is written whole before the server looks
			}
			wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := e.up.WaitDisconnect(wctx); err != nil {
				t.Errorf("the provider's stream was not closed: %v", err)
			}
		})
	}

	// An event just within the bound is relayed whole.
	e := newEnv(t, gateway.Options{MaxEvent: 64 << 10})
	big := strings.Repeat("y", 60<<10)
	e.up.Enqueue(llmtest.Script{Content: []string{big}})
	resp := e.post(t, "/v1/chat/completions", streamBody, nil)
	events := readEvents(t, resp.Body)
	if len(events) != 3 || !strings.Contains(events[0], big) || events[2] != "[DONE]" {
		t.Errorf("got %d events, want the big chunk, the finish chunk and [DONE]", len(events))
	}
}
