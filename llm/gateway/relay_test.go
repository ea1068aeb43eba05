package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

const streamBody = `{"model":"deepinfra/echo","messages":[{"role":"user","content":"hi"}],"stream":true}`

func TestRelay_StreamEnds(t *testing.T) {
	for _, tt := range []struct {
		name      string
		script    llmtest.Script
		wantLast  string // the last event, or a prefix of it ending in "…"
		wantCount int    // events, the last included
	}{
		{"OK", llmtest.Script{Content: []string{"a", "b"}}, "[DONE]", 4},
		{"NoDoneAfterFinish", llmtest.Script{Content: []string{"a", "b"}, NoDone: true}, "[DONE]", 4},
		{"KeepAliveAndNoSpace", llmtest.Script{Content: []string{"a"}, KeepAlive: true, NoSpace: true}, "[DONE]", 3},
		{"ErrDrop", llmtest.Script{Content: []string{"a", "b", "c"}, Fail: llmtest.FailDrop, FailAfter: 2},
			`{"error":{"message":"provider deepinfra broke the stream before the answer was finished: unexpected EOF","type":"server_error","param":null,"code":"upstream_truncated"}}`, 3},
		{"ErrErrorChunk", llmtest.Script{Content: []string{"a"}, Fail: llmtest.FailErrorChunk, FailAfter: 1, FailMessage: "out of memory"},
			`{"error":{"message":"out of memory","type":"server_error","param":null,"code":500}}`, 2},
		{"ErrErrorField", llmtest.Script{Content: []string{"a"}, Fail: llmtest.FailErrorField, FailAfter: 1, FailMessage: "slot gone"},
			`{"error":{"message":"provider deepinfra: slot gone","type":"server_error","param":null,"code":"upstream_error"}}`, 2},
		{"ErrErrorEvent", llmtest.Script{Content: []string{"a"}, Fail: llmtest.FailErrorEvent, FailAfter: 1, FailMessage: "boom"},
			`{"error":{"message":"provider deepinfra: boom","type":"server_error","param":null,"code":"upstream_error"}}`, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{})
			e.up.Enqueue(tt.script)
			resp := e.post(t, "/v1/chat/completions", streamBody, nil)
			if tt.script.KeepAlive {
				// Comments are relayed too; check their framing, then drop them.
				data, _ := io.ReadAll(resp.Body)
				if !strings.HasPrefix(string(data), ": keep-alive\n\ndata: {") {
					t.Fatalf("body starts %q", data[:min(len(data), 40)])
				}
				resp.Body = io.NopCloser(strings.NewReader(strings.ReplaceAll(string(data), ": keep-alive\n\n", "")))
			}
			events := readEvents(t, resp.Body)
			if len(events) != tt.wantCount || events[len(events)-1] != tt.wantLast {
				t.Errorf("got %d events ending %q\nwant %d ending %q", len(events), events[len(events)-1], tt.wantCount, tt.wantLast)
			}
		})
	}
}

func TestRelay_PassThrough(t *testing.T) {
	e := newEnv(t, gateway.Options{Aliases: map[string]string{"v3": "deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo"}})
	body := `{"model":"v3","messages":[{"role":"user","content":"<b>hi</b> & \u00e9"}],"temperature":0,` +
		`"top_p":1.0,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],` +
		`"response_format":{"type":"json_object"},"reasoning_effort":"low","x_vendor":{"a":[1,2.50,null]},` +
		`"stream":false,"stream_options":null}`
	resp := e.post(t, "/v1/chat/completions", body, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rec := e.up.Requests()[len(e.up.Requests())-1]
	var sent map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &sent); err != nil {
		t.Fatal(err)
	}
	if len(rec.Request.Fields) != len(sent) {
		t.Errorf("upstream got %d fields, want %d: %s", len(rec.Request.Fields), len(sent), rec.Body)
	}
	for k, v := range sent {
		got := string(rec.Request.Fields[k])
		want := string(v)
		if k == "model" {
			want = `"deepseek-ai/DeepSeek-V3-0324-Turbo"`
		}
		if got != want {
			t.Errorf("field %s = %s, want %s", k, got, want)
		}
	}
	if rec.Request.Temperature == nil || *rec.Request.Temperature != 0 {
		t.Errorf("temperature = %v", rec.Request.Temperature)
	}
}

func TestRelay_ClientDisconnect(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(strings.Repeat("word ", 2000)), Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/chat/completions", strings.NewReader(streamBody))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: {") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel() // hang up mid-stream

	// The provider must see its connection closed at once (within a token
	// interval or two); the generous timeout only keeps a failure from
	// hanging the test.
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	if err := e.up.WaitDisconnect(wctx); err != nil {
		t.Fatalf("llmtest saw no disconnect: %v", err)
	}
	if n := e.up.Disconnects(); n != 1 {
		t.Errorf("disconnects = %d", n)
	}
}

func TestRelay_StreamFalseWithEventStreamAccept(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	resp := e.post(t, "/chat/completions", strings.Replace(streamBody, "true", "false", 1),
		map[string]string{"Accept": "text/event-stream"})
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" ||
		!strings.Contains(string(data), `"object":"chat.completion"`) {
		t.Errorf("%d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
}

func TestRelay_AllowedModels(t *testing.T) {
	e := newEnv(t, gateway.Options{Allowed: llm.AllowList{"deepinfra/echo"}})
	resp := e.post(t, "/v1/chat/completions", `{"model":"deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo","messages":[{"role":"user","content":"hi"}]}`, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status = %d, want 404 for a model outside models.allowed", resp.StatusCode)
	}
	resp = e.post(t, "/v1/chat/completions", `{"model":"echo","messages":[{"role":"user","content":"hi"}]}`, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("allowed model: status = %d, want 200", resp.StatusCode)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/v1/models", nil)
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	body, _ := io.ReadAll(mresp.Body)
	if strings.Contains(string(body), "DeepSeek") || !strings.Contains(string(body), `"deepinfra/echo"`) {
		t.Fatalf("model list = %s, want only the allowed model", body)
	}
}
