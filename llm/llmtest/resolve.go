package llmtest

import (
	"net"
	"strings"

	"github.com/palaver-bot/palaver/llm"
)

// Outcomes of a ResolveCase other than a "provider/model" name.
const (
	// ResolveUnreachable: the named provider cannot be reached, and the
	// name goes nowhere else.
	ResolveUnreachable = "error: unreachable"
	// ResolveUnknown: no model by that name (404 at the endpoint).
	ResolveUnknown = "error: unknown"
	// ResolveAmbiguous: a typed fragment matches several models.
	ResolveAmbiguous = "error: ambiguous"
	// ResolveBadAlias: an alias whose provider is not configured.
	ResolveBadAlias = "error: alias"
)

// ResolveCase is one case of the rule that resolves model names
// (llm.Router.Lookup), shared by every caller's test: the session
// manager's /model, palaver ask --model and the endpoint. Each outcome is
// the canonical "provider/model" name the request goes to, or one of the
// Resolve* error outcomes.
type ResolveCase struct {
	Name string
	// Typed is the outcome for a name a person typed (chat's /model,
	// palaver ask --model), Program for one a program sent (the endpoint).
	Typed, Program string
}

// ResolveCases are the cases, in the world of ResolveWorld.
var ResolveCases = []ResolveCase{
	// Aliases.
	{"qwen", "local/qwen3:8b", "local/qwen3:8b"},
	{"mini", "lab/unlisted-model", "lab/unlisted-model"}, // an alias is trusted, listed or not
	{"r1", ResolveUnreachable, ResolveUnreachable},       // its provider is down
	{"ghost", ResolveBadAlias, ResolveBadAlias},          // its provider is not configured
	// provider/model goes to that provider and no other.
	{"local/qwen3:8b", "local/qwen3:8b", "local/qwen3:8b"},
	{"local/not-listed", ResolveUnknown, "local/not-listed"},
	{"lab/deepseek", "lab/deepseek-r1:70b", "lab/deepseek"}, // a fragment of one of lab's models
	{"deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo", ResolveUnreachable, ResolveUnreachable},
	{"local/", ResolveUnknown, ResolveUnknown},
	// Bare ids: the first provider in order that lists them; then, for a
	// program, the default provider (which is down).
	{"qwen3:8b", "local/qwen3:8b", "local/qwen3:8b"},
	{"shared", "lab/shared", "lab/shared"},
	{"nowhere/model", ResolveUnknown, ResolveUnreachable},
	// Fragments, for typed names only.
	{"llama", "local/llama3.2:3b", ResolveUnreachable},
	{"QWEN3:8B", "local/qwen3:8b", ResolveUnreachable},
	{"deepseek-r1", ResolveAmbiguous, ResolveUnreachable},
	{"qwen3", ResolveAmbiguous, ResolveUnreachable},
	{"mistrall", ResolveUnknown, ResolveUnreachable},
}

// ResolveWorld is the providers of ResolveCases, in configured order:
// "deepinfra", the default provider, which refuses connections (a closed
// loopback port); "lab" and "local", two Servers with their own model
// lists. Close it when done.
type ResolveWorld struct {
	Lab, Local *Server
	// DownURL is deepinfra's base URL, where nothing listens.
	DownURL string
	// Providers are the three providers, in configured order.
	Providers []llm.Provider
	// Default is the default model, on deepinfra.
	Default string
	// Aliases are the configured aliases; "ghost" names a provider that is
	// not configured.
	Aliases map[string]string
}

// NewResolveWorld starts the world of ResolveCases.
func NewResolveWorld() (*ResolveWorld, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	down := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	w := &ResolveWorld{Lab: NewServer(), Local: NewServer(), DownURL: down,
		Default: "deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo",
		Aliases: map[string]string{
			"qwen":  "local/qwen3:8b",
			"mini":  "lab/unlisted-model",
			"r1":    "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo",
			"ghost": "nowhere/some-model",
		},
	}
	w.Lab.SetModels([]ModelInfo{{ID: "shared"}, {ID: "mistral-small:24b"}, {ID: "deepseek-r1:70b"}})
	w.Local.SetModels([]ModelInfo{{ID: "shared"}, {ID: "qwen3:8b"}, {ID: "deepseek-r1:8b"},
		{ID: "llama3.2:3b"}, {ID: "Qwen3-Coder:30b"}})
	w.Providers = []llm.Provider{{Name: "deepinfra", BaseURL: down}, w.Lab.Provider("lab"), w.Local.Provider("local")}
	return w, nil
}

// Close stops the servers.
func (w *ResolveWorld) Close() {
	w.Lab.Close()
	w.Local.Close()
}

// Mark notes the chat requests lab and local have received so far. The
// function it returns gives the "provider/model" name of the first chat
// request received since, or "" when there was none.
func (w *ResolveWorld) Mark() (served func() string) {
	type server struct {
		name string
		srv  *Server
		seen int
	}
	servers := []*server{{name: "lab", srv: w.Lab}, {name: "local", srv: w.Local}}
	for _, s := range servers {
		s.seen = len(s.srv.Requests())
	}
	return func() string {
		for _, s := range servers {
			for _, r := range s.srv.Requests()[s.seen:] {
				if strings.HasSuffix(r.Path, "/chat/completions") {
					return s.name + "/" + r.Request.Model
				}
			}
		}
		return ""
	}
}
