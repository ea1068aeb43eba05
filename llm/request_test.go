package llm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

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

// TestEncodeRequest_Images checks request bodies with images against the
// golden files testdata/request_NAME.json (go test -run
// TestEncodeRequest_Images -update rewrites them).
func TestEncodeRequest_Images(t *testing.T) {
	jpeg := Image{MIME: "image/jpeg", Data: []byte("\xff\xd8\xff\xe0 not really a JPEG \xff\xd9")}
	png := Image{MIME: "image/png", Data: []byte("\x89PNG\r\n\x1a\n")}
	webp := Image{MIME: "image/webp", Data: []byte("RIFF\x00\x00\x00\x00WEBPVP8 ")}
	tests := []struct {
		name string
		msgs []Message
	}{
		{"text_only", []Message{{Role: RoleUser, Content: "hi", Name: "ann"}}},
		{"text_and_image", []Message{{Role: RoleUser, Content: "What is in this picture?", Images: []Image{jpeg}}}},
		{"image_only", []Message{{Role: RoleUser, Images: []Image{png}}}},
		{"two_images_named", []Message{{Role: RoleUser, Content: "Which is older?", Name: "bob", Images: []Image{png, webp}}}},
		{"history", []Message{
			{Role: RoleSystem, Content: "be brief"},
			{Role: RoleUser, Content: "look", Images: []Image{jpeg}},
			{Role: RoleAssistant, Content: "A cat."},
			{Role: RoleUser, Content: "And its colour?"},
		}},
		{"escaping", []Message{{Role: RoleUser, Content: "\"quoted\" <b>&</b>\n\t\x01 \xff \u2028", Images: []Image{jpeg}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeRequest(Request{Model: "m", Messages: tt.msgs, MaxTokens: 8}, true)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			golden := filepath.Join("testdata", "request_"+tt.name+".json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			checkParts(t, got, tt.msgs)
		})
	}
}

// checkParts decodes body as a server would and compares its messages
// with msgs: text as encoding/json reads it, images byte for byte.
func checkParts(t *testing.T, body []byte, msgs []Message) {
	t.Helper()
	var req struct {
		Messages []struct {
			Role    string          `json:"role"`
			Name    string          `json:"name"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) != len(msgs) {
		t.Fatalf("decoded %d messages, %v; want %d", len(req.Messages), err, len(msgs))
	}
	for i, m := range req.Messages {
		want := msgs[i]
		wantText, _ := json.Marshal(want.Content) // invalid UTF-8 becomes U+FFFD
		var text string
		json.Unmarshal(wantText, &text)
		if m.Role != want.Role || m.Name != want.Name {
			t.Errorf("message %d: role %q name %q, want %q %q", i, m.Role, m.Name, want.Role, want.Name)
		}
		if len(want.Images) == 0 {
			var got string
			if err := json.Unmarshal(m.Content, &got); err != nil || got != text {
				t.Errorf("message %d: content %s, want the string %q", i, m.Content, text)
			}
			continue
		}
		var parts []struct {
			Type     string `json:"type"`
			Text     *string
			ImageURL *struct {
				URL string `json:"url"`
			} `json:"image_url"`
		}
		if err := json.Unmarshal(m.Content, &parts); err != nil {
			t.Fatalf("message %d: content %s is not parts: %v", i, m.Content, err)
		}
		if want.Content != "" {
			if len(parts) == 0 || parts[0].Type != "text" || parts[0].Text == nil || *parts[0].Text != text {
				t.Fatalf("message %d: parts %s, want the text part first", i, m.Content)
			}
			parts = parts[1:]
		}
		if len(parts) != len(want.Images) {
			t.Fatalf("message %d: %d image parts, want %d", i, len(parts), len(want.Images))
		}
		for j, p := range parts {
			im := want.Images[j]
			prefix := "data:" + im.MIME + ";base64,"
			if p.Type != "image_url" || p.ImageURL == nil || !strings.HasPrefix(p.ImageURL.URL, prefix) {
				t.Fatalf("message %d, part %d: %+v, want an image_url with %q", i, j, p, prefix)
			}
			data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(p.ImageURL.URL, prefix))
			if err != nil || !bytes.Equal(data, im.Data) {
				t.Errorf("message %d, image %d: decoded %q, %v; want %q", i, j, data, err, im.Data)
			}
		}
	}
}

func TestEncodeRequest_BadImages(t *testing.T) {
	ok := []byte{1, 2, 3}
	tests := []struct {
		name string
		msg  Message
		want string
	}{
		{"ErrAssistantImage", Message{Role: RoleAssistant, Images: []Image{{MIME: "image/png", Data: ok}}}, "only user messages"},
		{"ErrNotImage", Message{Role: RoleUser, Images: []Image{{MIME: "text/plain", Data: ok}}}, `"text/plain" is not of the form image/TYPE`},
		{"ErrUpperCase", Message{Role: RoleUser, Images: []Image{{MIME: "image/JPEG", Data: ok}}}, "image/TYPE"},
		{"ErrParams", Message{Role: RoleUser, Images: []Image{{MIME: "image/png; q=1", Data: ok}}}, "image/TYPE"},
		{"ErrNoMIME", Message{Role: RoleUser, Images: []Image{{Data: ok}}}, "image/TYPE"},
		{"ErrNoData", Message{Role: RoleUser, Images: []Image{{MIME: "image/png"}}}, "no image data"},
		{"ErrTooLarge", Message{Role: RoleUser, Images: []Image{{MIME: "image/png", Data: make([]byte, MaxImageBytes+1)}}}, "more than the 20 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := []Message{{Role: RoleUser, Content: "first"}, tt.msg}
			body, err := encodeRequest(Request{Model: "m", Messages: msgs}, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "llm: message 1") {
				t.Errorf("err = %v, body %.80s; want an error about message 1 saying %q", err, body, tt.want)
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

// benchMessages is a text-only conversation: a system prompt and 20 turns.
func benchMessages() []Message {
	msgs := []Message{{Role: RoleSystem, Content: "You are a helpful assistant. Answer briefly and cite sources when you can."}}
	for i := range 20 {
		msgs = append(msgs,
			Message{Role: RoleUser, Content: "Tell me about \"topic\" number " + strconv.Itoa(i) + ", please.\nKeep it short.", Name: "ann"},
			Message{Role: RoleAssistant, Content: strings.Repeat("Here is a short answer with <some> markup & quotes \"like this\". ", 8)})
	}
	return msgs
}

func BenchmarkEncodeRequest_Text(b *testing.B) {
	req := Request{Model: "deepseek-ai/DeepSeek-V3-0324-Turbo", Messages: benchMessages(), Temperature: ptr(0.7), MaxTokens: 1024}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeRequest(req, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRequest_Image300KB(b *testing.B) {
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7919 >> 3)
	}
	msgs := append(benchMessages(), Message{Role: RoleUser, Content: "What is in this picture?",
		Images: []Image{{MIME: "image/jpeg", Data: data}}})
	req := Request{Model: "meta-llama/Llama-3.2-90B-Vision-Instruct", Messages: msgs, MaxTokens: 1024}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeRequest(req, true); err != nil {
			b.Fatal(err)
		}
	}
}
