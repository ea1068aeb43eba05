package llm_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/palaver-bot/palaver/llm"
)

// A model list's metadata sets the context length and the capabilities,
// whichever dialect says them.
func TestClient_Models_Capabilities(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"object":"list","data":[
			{"id":"di","metadata":{"context_length":131072,"pricing":{"input_tokens":0.5,"output_tokens":2},"tags":["Vision","tool-calling","reasoning_effort","new"]}},
			{"id":"vllm","max_model_len":32768},
			{"id":"other","context_length":8192,"metadata":{"tags":["function_calling","thinking"]}},
			{"id":"plain"}]}`))
	}))
	t.Cleanup(srv.Close)
	ms, err := llm.NewClient(llm.Provider{Name: "p", BaseURL: srv.URL}, llm.Options{}).Models(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	type caps struct {
		ctx                      int
		vision, tools, reasoning bool
	}
	want := map[string]caps{
		"di":    {131072, true, true, true},
		"vllm":  {32768, false, false, false},
		"other": {8192, false, true, true},
		"plain": {},
	}
	if len(ms) != len(want) {
		t.Fatalf("%d models: %+v", len(ms), ms)
	}
	for _, m := range ms {
		if got := (caps{m.ContextLength, m.Vision, m.Tools, m.Reasoning}); got != want[m.ID] {
			t.Errorf("%s: %+v, want %+v", m.ID, got, want[m.ID])
		}
	}
	if p := ms[0].Pricing; p == nil || p.InputTokens != 0.5 || p.OutputTokens != 2 {
		t.Errorf("pricing %+v", p)
	}
}
