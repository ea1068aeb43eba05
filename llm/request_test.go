package llm

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func ptr(f float64) *float64 { return &f }

func TestEncodeRequest(t *testing.T) {
	msgs := []Message{{Role: RoleSystem, Content: "be brief"}, {Role: RoleUser, Content: "hi", Name: "ann"}}
	tests := []struct {
		name    string
		req     Request
		stream  bool
		want    string
		wantErr bool
	}{
		{"Stream", Request{Model: "m", Messages: msgs}, true,
			`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi","name":"ann"}],"stream":true,"stream_options":{"include_usage":true}}`, false},
		{"NoStreamAllFields", Request{Model: "m", Temperature: ptr(0), TopP: ptr(0.9), MaxTokens: 64}, false,
			`{"model":"m","messages":[],"stream":false,"temperature":0,"top_p":0.9,"max_tokens":64}`, false},
		{"ExtraSortedAndOverriding", Request{Model: "m", Temperature: ptr(1), Extra: map[string]json.RawMessage{
			"temperature": json.RawMessage(`0.3`), "reasoning_effort": json.RawMessage(` "low" `),
			"stream_options": json.RawMessage(`{"include_usage":true,"continuous_usage_stats":false}`)}}, true,
			`{"model":"m","messages":[],"stream":true,"reasoning_effort":"low","stream_options":{"include_usage":true,"continuous_usage_stats":false},"temperature":0.3}`, false},
		{"NoModel", Request{}, true, "", true},
		{"ExtraModel", Request{Model: "m", Extra: map[string]json.RawMessage{"model": json.RawMessage(`"x"`)}}, true, "", true},
		{"ExtraInvalid", Request{Model: "m", Extra: map[string]json.RawMessage{"x": json.RawMessage(`{`)}}, true, "", true},
		{"NaN", Request{Model: "m", Temperature: ptr(math.NaN())}, true, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeRequest(tt.req, tt.stream)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if err == nil && !json.Valid(got) {
				t.Errorf("invalid JSON")
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		" 1.5 ":                         1500 * time.Millisecond,
		"0":                             0,
		"-4":                            0,
		"Fri, 01 May 2026 12:00:30 GMT": 30 * time.Second,
		"Fri, 01 May 2026 11:00:00 GMT": 0,
		"later":                         0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestClient_Models_TTL(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/models" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"object":"list","data":[{"id":"a","object":"model","owned_by":"o","metadata":null},{"id":""}]}`))
	}))
	t.Cleanup(srv.Close)
	c := NewClient(Provider{Name: "p", BaseURL: srv.URL + "/"}, Options{ModelsTTL: time.Minute})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	for i, step := range []struct {
		advance  time.Duration
		wantHits int32
	}{{0, 1}, {30 * time.Second, 1}, {31 * time.Second, 2}, {time.Second, 2}} {
		now = now.Add(step.advance)
		ms, err := c.Models(t.Context())
		if err != nil || len(ms) != 1 || ms[0].ID != "a" || ms[0].OwnedBy != "o" || ms[0].ContextLength != 0 || ms[0].Pricing != nil {
			t.Fatalf("step %d: %+v, %v", i, ms, err)
		}
		if hits.Load() != step.wantHits {
			t.Errorf("step %d: %d fetches, want %d", i, hits.Load(), step.wantHits)
		}
	}
}

// A failed list is remembered: asked again after 5 s, then 10 s, 20 s …
// up to 5 min; while remembered the error comes back without a request;
// a success forgets the failures.
func TestClient_Models_Backoff(t *testing.T) {
	var hits atomic.Int32
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !up.Load() {
			http.Error(w, "nope", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"data":[{"id":"a"}]}`))
	}))
	t.Cleanup(srv.Close)
	c := NewClient(Provider{Name: "p", BaseURL: srv.URL}, Options{ModelsTTL: time.Hour})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	steps := []struct {
		advance  time.Duration
		up       bool
		wantHits int32 // requests so far
		wantErr  bool
	}{
		{0, false, 1, true},                // fails: wait 5 s
		{4 * time.Second, false, 1, true},  // remembered
		{time.Second, false, 2, true},      // asked again, fails: wait 10 s
		{9 * time.Second, false, 2, true},  // remembered
		{time.Second, false, 3, true},      // fails: 20 s
		{20 * time.Second, false, 4, true}, // fails: 40 s
		{40 * time.Second, false, 5, true}, // fails: 80 s
		{80 * time.Second, false, 6, true}, // fails: 160 s
		{160 * time.Second, false, 7, true},
		{5 * time.Minute, false, 8, true},    // 320 s capped at 5 min
		{5 * time.Minute, true, 9, false},    // capped again; now up
		{time.Second, true, 9, false},        // cached
		{time.Hour, false, 10, true},         // the cache expired, down again:
		{5*time.Second - 1, false, 10, true}, // back to 5 s
		{1, false, 11, true},
	}
	for i, step := range steps {
		now = now.Add(step.advance)
		up.Store(step.up)
		ms, err := c.Models(t.Context())
		if (err != nil) != step.wantErr {
			t.Fatalf("step %d: %v, %v", i, ms, err)
		}
		if got := hits.Load(); got != step.wantHits {
			t.Fatalf("step %d: %d requests, want %d", i, got, step.wantHits)
		}
		if err != nil {
			le, ok := errors.AsType[*ListError](err)
			if !ok || le.Provider != "p" || !le.Until.After(now) {
				t.Fatalf("step %d: err = %#v, want a *ListError with a future Until", i, err)
			}
			if se, ok := errors.AsType[*StatusError](err); !ok || se.StatusCode != 503 {
				t.Errorf("step %d: err = %v, want the 503 inside", i, err)
			}
		}
	}
}

// Model lists are asked once, never retried: a caller may be a chat
// message waiting for its answer.
func TestClient_Models_NotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c := NewClient(Provider{Name: "p", BaseURL: srv.URL}, Options{MaxRetries: 5})
	if _, err := c.Models(t.Context()); err == nil {
		t.Fatal("no error from a 503")
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
