package llm_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// quiet discards log lines.
var quiet = slog.New(slog.DiscardHandler)

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
	les := llm.ListErrors(err)
	if len(les) != 1 || les[0].Provider != "down" {
		t.Fatalf("ListErrors(%v) = %v, want down's alone", err, les)
	}
	if host, ok := llm.Unreachable(les[0]); !ok || host == "" {
		t.Errorf("Unreachable(%v) = %q, %v; want the host", les[0], host, ok)
	}
	if !strings.HasPrefix(err.Error(), "llm: down: list models: Get ") {
		t.Errorf("err = %q, want the provider named once", err)
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

// The shared resolution table (the session manager's, palaver ask's and
// the endpoint's tests run it too), against the Router itself.
func TestRouter_Lookup_Shared(t *testing.T) {
	w, err := llmtest.NewResolveWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	var clients []*llm.Client
	for _, p := range w.Providers {
		clients = append(clients, llm.NewClient(p, llm.Options{Logger: quiet}))
	}
	def, _, _ := strings.Cut(w.Default, "/")
	r, err := llm.NewRouter(clients, def, w.Aliases)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range llmtest.ResolveCases {
		t.Run(tt.Name, func(t *testing.T) {
			res, err := r.Lookup(t.Context(), tt.Name, llm.ResolveOptions{Typed: true})
			if got := lookupOutcome(res, err); got != tt.Typed {
				t.Errorf("typed: got %s (%v), want %s", got, err, tt.Typed)
			}
			res, err = r.Lookup(t.Context(), tt.Name, llm.ResolveOptions{})
			got := lookupOutcome(res, err)
			if err == nil && res.Client.Name() == "deepinfra" {
				// The endpoint learns this one when it relays.
				got = llmtest.ResolveUnreachable
			}
			if got != tt.Program {
				t.Errorf("program: got %s (%v), want %s", got, err, tt.Program)
			}
		})
	}
}

// lookupOutcome classifies Lookup's answer as a ResolveCase outcome.
func lookupOutcome(res llm.Resolution, err error) string {
	if err == nil {
		return res.Name
	}
	if _, ok := errors.AsType[*llm.AliasError](err); ok {
		return llmtest.ResolveBadAlias
	}
	if les := llm.ListErrors(err); len(les) == 1 {
		if _, ok := llm.Unreachable(les[0]); ok {
			return llmtest.ResolveUnreachable
		}
	}
	if ue, ok := errors.AsType[*llm.UnknownModelError](err); ok {
		if len(ue.Matches) > 1 {
			return llmtest.ResolveAmbiguous
		}
		return llmtest.ResolveUnknown
	}
	return "unexpected error"
}

// A "provider/model" name from a program asks no provider's list; a typed
// one asks the named provider's only.
func TestRouter_Lookup_AsksOnlyTheNamedProvider(t *testing.T) {
	a, b := newServer(t), newServer(t)
	a.SetModels([]llmtest.ModelInfo{{ID: "m"}})
	r, err := llm.NewRouter([]*llm.Client{
		llm.NewClient(a.Provider("a"), llm.Options{}),
		llm.NewClient(b.Provider("b"), llm.Options{}),
	}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, cn, err := r.Resolve(t.Context(), "a/m"); err != nil || cn != "a/m" {
		t.Fatalf("Resolve(a/m) = %q, %v", cn, err)
	}
	if n := len(a.Requests()) + len(b.Requests()); n != 0 {
		t.Errorf("%d requests to resolve a program's provider/model name, want 0", n)
	}
	if res, err := r.Lookup(t.Context(), "a/m", llm.ResolveOptions{Typed: true}); err != nil || res.Name != "a/m" {
		t.Fatalf("typed Lookup(a/m) = %+v, %v", res, err)
	}
	if na, nb := len(a.Requests()), len(b.Requests()); na != 1 || nb != 0 {
		t.Errorf("typed: %d requests to a, %d to b; want 1 and 0", na, nb)
	}
}

// A provider that is down is asked once, however many names are looked
// up: its failure is remembered (Options.ModelsRetry).
func TestRouter_Lookup_DownProviderAskedOnce(t *testing.T) {
	var hits atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	up := newServer(t)
	up.SetModels([]llmtest.ModelInfo{{ID: "m"}})
	r, err := llm.NewRouter([]*llm.Client{
		llm.NewClient(llm.Provider{Name: "down", BaseURL: down.URL}, llm.Options{Logger: quiet}),
		llm.NewClient(up.Provider("up"), llm.Options{}),
	}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, _, cn, err := r.Resolve(t.Context(), "m"); err != nil || cn != "up/m" {
			t.Fatalf("Resolve(m) = %q, %v", cn, err)
		}
		if _, err := r.Models(t.Context()); len(llm.ListErrors(err)) != 1 {
			t.Fatalf("Models: err = %v, want down's failure", err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the provider that is down was asked %d times, want 1", n)
	}
}

func TestRouter_Lookup_Allowed(t *testing.T) {
	s := newServer(t)
	s.SetModels([]llmtest.ModelInfo{{ID: "echo"}, {ID: "echo-large"}, {ID: "other"}})
	r, err := llm.NewRouter([]*llm.Client{llm.NewClient(s.Provider("p"), llm.Options{})}, "", map[string]string{"o": "p/other"})
	if err != nil {
		t.Fatal(err)
	}
	allowed := llm.AllowList{"p/echo-large", "p/unlisted"}
	tests := []struct {
		name, want string
		typed      bool
	}{
		{"ech", "p/echo-large", true}, // the only allowed match
		{"echo", "not allowed", true}, // not a fragment of another
		{"unlisted", "p/unlisted", true},
		{"p/unlisted", "p/unlisted", true},
		{"p/other", "not allowed", true},
		{"o", "not allowed", true},
		{"other", "not allowed", true},
		{"other", "not allowed", false},
		{"p/echo", "not allowed", false},
		{"p/echo-large", "p/echo-large", false},
	}
	for _, tt := range tests {
		res, err := r.Lookup(t.Context(), tt.name, llm.ResolveOptions{Typed: tt.typed, Allowed: allowed})
		got := res.Name
		if ue, ok := errors.AsType[*llm.UnknownModelError](err); ok && ue.NotAllowed {
			got = "not allowed"
		} else if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Lookup(%q, typed %v) = %s, want %s", tt.name, tt.typed, got, tt.want)
		}
	}
}

func TestRouter_Lookup_Suggestions(t *testing.T) {
	s := newServer(t)
	s.SetModels([]llmtest.ModelInfo{{ID: "deepseek-ai/DeepSeek-V3-0324-Turbo"}, {ID: "deepseek-ai/DeepSeek-R1-0528-Turbo"}, {ID: "qwen3:8b"}})
	r, err := llm.NewRouter([]*llm.Client{llm.NewClient(s.Provider("p"), llm.Options{})}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Lookup(t.Context(), "deepseek-v4", llm.ResolveOptions{Typed: true})
	ue, ok := errors.AsType[*llm.UnknownModelError](err)
	if !ok || len(ue.Suggestions) == 0 || ue.Suggestions[0] != "p/deepseek-ai/DeepSeek-V3-0324-Turbo" {
		t.Fatalf("err = %#v, want suggestions led by the V3 model", err)
	}
	_, err = r.Lookup(t.Context(), "deepseek", llm.ResolveOptions{Typed: true})
	if ue, ok := errors.AsType[*llm.UnknownModelError](err); !ok || len(ue.Matches) != 2 {
		t.Fatalf("err = %#v, want both DeepSeek models as matches", err)
	}
	if _, err := r.Lookup(t.Context(), " ", llm.ResolveOptions{Typed: true}); err == nil {
		t.Error("an empty name resolved")
	}
}

func TestRouter_Lookup_AliasProviderNotConfigured(t *testing.T) {
	s := newServer(t)
	r, err := llm.NewRouter([]*llm.Client{llm.NewClient(s.Provider("local"), llm.Options{})}, "",
		map[string]string{"r1": "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo", "e": "local/echo"})
	if err != nil {
		t.Fatalf("NewRouter refused an alias of a provider that is not configured: %v", err)
	}
	for _, typed := range []bool{false, true} {
		_, err := r.Lookup(t.Context(), "r1", llm.ResolveOptions{Typed: typed})
		ae, ok := errors.AsType[*llm.AliasError](err)
		if !ok || ae.Alias != "r1" || ae.Provider != "deepinfra" || ae.Target != "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo" {
			t.Errorf("typed %v: err = %v, want an *AliasError", typed, err)
		}
		if res, err := r.Lookup(t.Context(), "e", llm.ResolveOptions{Typed: typed}); err != nil || res.Name != "local/echo" {
			t.Errorf("typed %v: the other alias: %+v, %v", typed, res, err)
		}
	}
	if n := len(s.Requests()); n != 1 { // the typed "e" asked local's list
		t.Errorf("%d requests, want 1", n)
	}
}

func TestListError_Reason(t *testing.T) {
	dns := &net.DNSError{Err: "no such host", Name: "api.deepinfra.invalid", IsNotFound: true}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"DNS", &url.Error{Op: "Get", URL: "https://api.deepinfra.invalid/v1/openai/models", Err: &net.OpError{Op: "dial", Net: "tcp", Err: dns}},
			"p unreachable: could not reach api.deepinfra.invalid; check the network connection and providers.p.base_url"},
		{"RefusedLoopback", &url.Error{Op: "Get", URL: "http://127.0.0.1:11434/v1/models", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
			"p unreachable: could not reach 127.0.0.1:11434: is it running? Check providers.p.base_url"},
		{"NeedsKey", &llm.StatusError{Provider: "p", StatusCode: 401, Anonymous: true}, "p unavailable: it refused anonymous access; set providers.p.api_key"},
		{"BadKey", &llm.StatusError{Provider: "p", StatusCode: 403}, "p unavailable: it refused the API key (HTTP 403); check providers.p.api_key"},
		{"RateLimit", &llm.StatusError{Provider: "p", StatusCode: 429}, "p unavailable: it is rate limiting us; try again shortly"},
		{"Server", &llm.StatusError{Provider: "p", StatusCode: 502}, "p unavailable: server error (HTTP 502); try again shortly"},
		{"NotFound", &llm.StatusError{Provider: "p", StatusCode: 404}, "p unavailable: it refused to list its models (HTTP 404); check providers.p.base_url"},
		{"Timeout", fmt.Errorf("llm: p: GET: %w", llm.ErrFirstByteTimeout), "p unavailable: it did not answer in time; try again shortly"},
		{"Malformed", fmt.Errorf("llm: p: decode model list: %w: %w", llm.ErrMalformed, errors.New("invalid character")),
			"p unavailable: its model list could not be read; check providers.p.base_url"},
		{"Other", errors.New("boom"), "p unavailable: its model list could not be fetched (the log has the details)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			le := &llm.ListError{Provider: "p", Err: tt.err}
			if got := le.Reason(); got != tt.want {
				t.Errorf("Reason() = %q, want %q", got, tt.want)
			}
		})
	}
}
