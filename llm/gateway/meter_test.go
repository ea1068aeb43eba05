package gateway_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// meterEnv is a gateway whose Meter is a sessions.Ledger on a real bbolt
// file, the way palaver serve runs it.
type meterEnv struct {
	*env
	store    *sessions.BoltStore
	recorded chan sessions.Tally
	day      string
}

func newMeterEnv(t *testing.T, limits sessions.UsageConfig) *meterEnv {
	t.Helper()
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	limits.Now = func() time.Time { return now }
	recorded := make(chan sessions.Tally, 16)
	ledger := sessions.NewLedger(store, nil, limits, sessions.TurnObserver{
		Usage: func(model string, t sessions.Tally) { recorded <- t },
	}, nil)
	e := newEnv(t, gateway.Options{APIKeys: []string{"k1", "k2"}, Meter: ledger})
	return &meterEnv{env: e, store: store, recorded: recorded, day: now.Format("2006-01-02")}
}

// ask posts a chat request with key and reads the whole answer.
func (m *meterEnv) ask(t *testing.T, key string, stream bool) (*http.Response, string) {
	t.Helper()
	body := `{"model":"deepinfra/echo","messages":[{"role":"user","content":"one two three"}],"stream":false}`
	if stream {
		body = strings.Replace(body, `"stream":false`, `"stream":true`, 1)
	}
	resp := m.post(t, "/v1/chat/completions", body, map[string]string{"Authorization": "Bearer " + key})
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}

// wait returns the next usage recorded.
func (m *meterEnv) wait(t *testing.T) sessions.Tally {
	t.Helper()
	select {
	case got := <-m.recorded:
		return got
	case <-time.After(10 * time.Second):
		t.Fatal("no usage recorded")
		return sessions.Tally{}
	}
}

func (m *meterEnv) counter(t *testing.T, kind, id string) sessions.Tally {
	t.Helper()
	got, err := m.store.UsageCounters(t.Context(), []sessions.UsageKey{{Period: m.day, Kind: kind, ID: id}})
	if err != nil {
		t.Fatal(err)
	}
	return got[0]
}

func (m *meterEnv) chats() int {
	n := 0
	for _, r := range m.up.Requests() {
		if strings.HasSuffix(r.Path, "/chat/completions") {
			n++
		}
	}
	return n
}

func TestServer_Meter_RecordsPerKey(t *testing.T) {
	m := newMeterEnv(t, sessions.UsageConfig{Prices: map[string]llm.Pricing{"deepinfra/echo": {InputTokens: 1, OutputTokens: 2}}})
	tests := []struct {
		name   string
		key    string
		stream bool
		script llmtest.Script
		want   sessions.Tally
	}{
		{"Stream", "k1", true, llmtest.Script{Content: []string{"a", " b"}, Usage: &llm.Usage{PromptTokens: 30, CompletionTokens: 2, TotalTokens: 32}},
			sessions.Tally{Requests: 1, PromptTokens: 30, CompletionTokens: 2, CostNanoUSD: 34_000, MaxTokens: 32, MaxCostNanoUSD: 34_000}},
		{"Whole", "k2", false, llmtest.Script{Content: []string{"a"}, Usage: &llm.Usage{PromptTokens: 10, CompletionTokens: 1, TotalTokens: 11}},
			sessions.Tally{Requests: 1, PromptTokens: 10, CompletionTokens: 1, CostNanoUSD: 12_000, MaxTokens: 11, MaxCostNanoUSD: 12_000}},
		{"UsageTwice", "k1", true, llmtest.Script{RawType: "text/event-stream", Raw: "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n" +
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\ndata: [DONE]\n\n"},
			sessions.Tally{Requests: 1, PromptTokens: 5, CompletionTokens: 1, ReasoningTokens: 1, CostNanoUSD: 7_000, MaxTokens: 6, MaxCostNanoUSD: 7_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.up.Enqueue(tt.script)
			if resp, body := m.ask(t, tt.key, tt.stream); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := m.wait(t); got != tt.want {
				t.Errorf("recorded %+v\nwant %+v", got, tt.want)
			}
		})
	}
	k1 := m.counter(t, "key", "key#1")
	if k1.Requests != 2 || k1.Tokens() != 32+6 {
		t.Errorf("key#1 = %+v", k1)
	}
	if k2 := m.counter(t, "key", "key#2"); k2.Requests != 1 || k2.Tokens() != 11 {
		t.Errorf("key#2 = %+v", k2)
	}
	if mod := m.counter(t, "model", "deepinfra/echo"); mod.Requests != 3 {
		t.Errorf("model = %+v", mod)
	}
	recs, err := m.store.UsageRecords(t.Context(), m.day, m.day)
	if err != nil || len(recs) != 2 || recs[0].Platform != sessions.EndpointPlatform || recs[0].Key != "key#1" || recs[1].Key != "key#2" {
		t.Errorf("records = %+v %v", recs, err)
	}
}

// TestServer_Meter_Estimated checks a provider that sends no usage: the
// gateway estimates it, marked as estimated.
func TestServer_Meter_Estimated(t *testing.T) {
	m := newMeterEnv(t, sessions.UsageConfig{})
	m.up.Enqueue(llmtest.Script{RawType: "text/event-stream", Raw: "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" two\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"})
	if resp, body := m.ask(t, "k1", true); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := m.wait(t)
	if got.Requests != 1 || got.PromptTokens == 0 || got.CompletionTokens != 3 || got.EstimatedTokens != got.Tokens() || got.UnpricedTokens != got.Tokens() {
		t.Errorf("estimated usage = %+v", got)
	}
}

// TestServer_Meter_OverBudget checks that a key over its budget gets 429
// in OpenAI's shape, with Retry-After, and no upstream request, while
// another key goes on.
func TestServer_Meter_OverBudget(t *testing.T) {
	m := newMeterEnv(t, sessions.UsageConfig{Key: sessions.Limit{DailyTokens: 10}})
	m.up.Enqueue(llmtest.Script{Content: []string{"a"}, Usage: &llm.Usage{PromptTokens: 10, CompletionTokens: 1, TotalTokens: 11}})
	if resp, body := m.ask(t, "k1", true); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	m.wait(t)
	asked := m.chats()
	for _, stream := range []bool{true, false} {
		resp := m.post(t, "/v1/chat/completions", `{"model":"deepinfra/echo","messages":[{"role":"user","content":"x"}],"stream":`+map[bool]string{true: "true", false: "false"}[stream]+`}`,
			map[string]string{"Authorization": "Bearer k1"})
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("stream %v: status %d, want 429", stream, resp.StatusCode)
		}
		if got := resp.Header.Get("Retry-After"); got != "43200" {
			t.Errorf("Retry-After = %q, want 43200 (12 hours, to midnight UTC)", got)
		}
		e := readError(t, resp)
		if e.Error.Type != "insufficient_quota" || e.Error.Code == nil || *e.Error.Code != "insufficient_quota" ||
			e.Error.Message != "API key key#1 has reached its daily limit of 10 tokens; it resets at midnight (UTC), in 12 h." {
			t.Errorf("error = %+v", e.Error)
		}
	}
	if m.chats() != asked {
		t.Error("a refused request went upstream")
	}
	if resp, body := m.ask(t, "k2", false); resp.StatusCode != http.StatusOK {
		t.Errorf("the other key: status %d: %s", resp.StatusCode, body)
	}
	if !strings.Contains(m.log.String(), "status=429") {
		t.Errorf("the refusal is not in the log:\n%s", m.log)
	}
}

// The Responses API, embeddings and transcriptions are metered as chat
// completions are: per key, with the provider's usage (or an estimate,
// which counts a transcript but not its audio).
func TestServer_Meter_OtherRoutes(t *testing.T) {
	m := newMeterEnv(t, sessions.UsageConfig{})
	form, ct := uploadForm(t, map[string]string{"model": "deepinfra/whisper"}, "a.ogg", make([]byte, 40000))
	for _, tt := range []struct {
		name, path, body, contentType string
		prepare                       func()
		want                          func(sessions.Tally) bool
	}{
		{"ResponsesStream", "/v1/responses", `{"model":"deepinfra/echo","input":"hi","stream":true}`, "", func() {
			m.up.Enqueue(llmtest.Script{Dialect: llmtest.VLLM, Content: []string{"a"}, Usage: &llm.Usage{PromptTokens: 9, CompletionTokens: 1, TotalTokens: 10}})
		}, func(got sessions.Tally) bool {
			return got.PromptTokens == 9 && got.CompletionTokens == 1 && got.EstimatedTokens == 0
		}},
		{"Responses", "/v1/responses", `{"model":"deepinfra/echo","input":"hi"}`, "", func() {
			m.up.Enqueue(llmtest.Script{Content: []string{"a"}, Usage: &llm.Usage{PromptTokens: 8, CompletionTokens: 2, TotalTokens: 10}})
		}, func(got sessions.Tally) bool { return got.PromptTokens == 8 && got.CompletionTokens == 2 }},
		{"Embeddings", "/v1/embeddings", `{"model":"deepinfra/bge","input":["a b c","d"]}`, "", func() {},
			func(got sessions.Tally) bool {
				return got.PromptTokens == 4 && got.CompletionTokens == 0 && got.EstimatedTokens == 0
			}},
		{"TranscriptionEstimated", "/v1/audio/transcriptions", string(form), ct, func() {
			m.up.EnqueueTranscript(llmtest.Transcript{Text: strings.Repeat("word ", 20)})
		}, func(got sessions.Tally) bool {
			return got.PromptTokens == 0 && got.CompletionTokens > 0 && got.CompletionTokens < 100 && got.EstimatedTokens == got.Tokens()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.prepare()
			if tt.contentType == "" {
				tt.contentType = "application/json"
			}
			resp := m.postRaw(t, tt.path, tt.contentType, []byte(tt.body), "k2")
			if data, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, data)
			}
			if got := m.wait(t); got.Requests != 1 || !tt.want(got) {
				t.Errorf("recorded %+v", got)
			}
		})
	}
	if k2 := m.counter(t, "key", "key#2"); k2.Requests != 4 {
		t.Errorf("key#2 = %+v", k2)
	}
}
