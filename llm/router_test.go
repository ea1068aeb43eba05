package llm_test

import (
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

func TestRouter_Resolve(t *testing.T) {
	di, local := newServer(t), newServer(t)
	di.SetModels([]llmtest.ModelInfo{{ID: "deepseek-ai/DeepSeek-V3-0324-Turbo"}, {ID: "shared"}})
	local.SetModels([]llmtest.ModelInfo{{ID: "qwen3:8b"}, {ID: "shared"}})
	clients := []*llm.Client{
		llm.NewClient(di.Provider("deepinfra"), llm.Options{}),
		llm.NewClient(local.Provider("local"), llm.Options{}),
	}
	r, err := llm.NewRouter(clients, "local", map[string]string{
		"r1":   "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo",
		"qwen": "local/qwen3:8b",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                       string
		wantClient, wantID, wantCN string
	}{
		{"r1", "deepinfra", "deepseek-ai/DeepSeek-R1-0528-Turbo", "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo"},
		{"qwen", "local", "qwen3:8b", "local/qwen3:8b"},
		{"deepinfra/meta-llama/Llama-3.3-70B", "deepinfra", "meta-llama/Llama-3.3-70B", "deepinfra/meta-llama/Llama-3.3-70B"},
		{"local/anything", "local", "anything", "local/anything"},
		// Bare ids: the first provider that lists them, else the default.
		{"deepseek-ai/DeepSeek-V3-0324-Turbo", "deepinfra", "deepseek-ai/DeepSeek-V3-0324-Turbo", "deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo"},
		{"qwen3:8b", "local", "qwen3:8b", "local/qwen3:8b"},
		{"shared", "deepinfra", "shared", "deepinfra/shared"},
		{"unknown/model", "local", "unknown/model", "local/unknown/model"},
		{"  nobody  ", "local", "nobody", "local/nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, id, cn, err := r.Resolve(t.Context(), tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name() != tt.wantClient || id != tt.wantID || cn != tt.wantCN {
				t.Errorf("got %s, %q, %q; want %s, %q, %q", c.Name(), id, cn, tt.wantClient, tt.wantID, tt.wantCN)
			}
		})
	}
	for _, bad := range []string{"", "local/"} {
		if _, _, _, err := r.Resolve(t.Context(), bad); err == nil {
			t.Errorf("Resolve(%q): no error", bad)
		}
	}
	if got := strings.Join(r.Providers(), ","); got != "deepinfra,local" {
		t.Errorf("Providers = %s", got)
	}
	if r.Default() != "local" || r.Client("deepinfra") != clients[0] || r.Client("nope") != nil {
		t.Errorf("Default/Client wrong")
	}
}

func TestRouter_Resolve_SkipsFailingProvider(t *testing.T) {
	down, up := newServer(t), newServer(t)
	up.SetModels([]llmtest.ModelInfo{{ID: "m1"}})
	down.Close()
	r, err := llm.NewRouter([]*llm.Client{
		llm.NewClient(down.Provider("down"), llm.Options{MaxRetries: -1}),
		llm.NewClient(up.Provider("up"), llm.Options{}),
	}, "down", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _, cn, err := r.Resolve(t.Context(), "m1")
	if err != nil || c.Name() != "up" || cn != "up/m1" {
		t.Errorf("got %v %q %v", c, cn, err)
	}
}

func TestRouter_Models(t *testing.T) {
	a, b, down := newServer(t), newServer(t), newServer(t)
	a.SetModels([]llmtest.ModelInfo{{ID: "a1"}, {ID: "a2"}})
	b.SetModels([]llmtest.ModelInfo{{ID: "b1"}})
	down.Close()
	r, err := llm.NewRouter([]*llm.Client{
		llm.NewClient(a.Provider("a"), llm.Options{}),
		llm.NewClient(down.Provider("down"), llm.Options{MaxRetries: -1}),
		llm.NewClient(b.Provider("b"), llm.Options{}),
	}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	models, err := r.Models(t.Context())
	var names []string
	for _, m := range models {
		names = append(names, m.Name())
	}
	if got := strings.Join(names, ","); got != "a/a1,a/a2,b/b1" {
		t.Errorf("models = %s", got)
	}
	if err == nil || !strings.Contains(err.Error(), "down") || strings.Contains(err.Error(), "of a,") {
		t.Errorf("err = %v, want one naming only the failed provider", err)
	}
}

func TestNewRouter_Errors(t *testing.T) {
	s := newServer(t)
	c := func(name string) *llm.Client { return llm.NewClient(s.Provider(name), llm.Options{}) }
	tests := []struct {
		name    string
		clients []*llm.Client
		def     string
		aliases map[string]string
	}{
		{"NoProviders", nil, "", nil},
		{"EmptyName", []*llm.Client{c("")}, "", nil},
		{"SlashInName", []*llm.Client{c("a/b")}, "", nil},
		{"Duplicate", []*llm.Client{c("a"), c("a")}, "", nil},
		{"UnknownDefault", []*llm.Client{c("a")}, "b", nil},
		{"AliasNoProvider", []*llm.Client{c("a")}, "", map[string]string{"x": "model"}},
		{"AliasUnknownProvider", []*llm.Client{c("a")}, "", map[string]string{"x": "b/model"}},
		{"AliasNoModel", []*llm.Client{c("a")}, "", map[string]string{"x": "a/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := llm.NewRouter(tt.clients, tt.def, tt.aliases); err == nil {
				t.Error("no error")
			}
		})
	}
	if r, err := llm.NewRouter([]*llm.Client{c("first"), c("second")}, "", nil); err != nil || r.Default() != "first" {
		t.Errorf("default = %v, %v; want first", r, err)
	}
}
