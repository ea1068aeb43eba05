package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// worldGateway is a gateway over the providers of llmtest.ResolveWorld.
func worldGateway(t *testing.T, w *llmtest.ResolveWorld, clientOpts llm.Options) string {
	t.Helper()
	var clients []*llm.Client
	clientOpts.Logger = slog.New(slog.DiscardHandler)
	for _, p := range w.Providers {
		clients = append(clients, llm.NewClient(p, clientOpts))
	}
	def, _, _ := strings.Cut(w.Default, "/")
	router, err := llm.NewRouter(clients, def, w.Aliases)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{Aliases: w.Aliases, Logger: slog.New(slog.DiscardHandler)}, router)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv.URL
}

// apiErrorBody is the error body the gateway sends.
type apiErrorBody struct {
	Error struct {
		Message string `json:"message"`
		Code    string `json:"code"`
	} `json:"error"`
}

// The shared resolution table over HTTP: a program's names (no
// fragments; a bare id nobody lists goes to the default provider, which
// is down).
func TestServer_Chat_ResolveShared(t *testing.T) {
	w, err := llmtest.NewResolveWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	url := worldGateway(t, w, llm.Options{MaxRetries: -1})
	for _, tt := range llmtest.ResolveCases {
		t.Run(tt.Name, func(t *testing.T) {
			served := w.Mark()
			body, _ := json.Marshal(map[string]any{"model": tt.Name, "messages": []map[string]string{{"role": "user", "content": "hi"}}})
			resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got string
			var e apiErrorBody
			json.Unmarshal(data, &e)
			switch {
			case resp.StatusCode == http.StatusOK:
				got = served()
			case resp.StatusCode == http.StatusBadGateway && e.Error.Code == "upstream_unreachable":
				got = llmtest.ResolveUnreachable
			case resp.StatusCode == http.StatusNotFound && e.Error.Code == "model_not_found" && strings.Contains(e.Error.Message, "alias"):
				got = llmtest.ResolveBadAlias
			case resp.StatusCode == http.StatusNotFound && e.Error.Code == "model_not_found":
				got = llmtest.ResolveUnknown
			default:
				got = resp.Status + " " + string(data)
			}
			if got != tt.Program {
				t.Errorf("got %s, want %s (%s)", got, tt.Program, data)
			}
			checkSentence(t, e.Error.Message)
		})
	}
}

// checkSentence fails when msg shows Go's error text.
func checkSentence(t *testing.T, msg string) {
	t.Helper()
	for _, raw := range []string{"dial tcp", "lookup ", "connection refused", "no such host", "llm:", "Post \"", "Get \""} {
		if strings.Contains(msg, raw) {
			t.Errorf("message %q shows Go's error text %q", msg, raw)
		}
	}
}

// Failures to reach a provider are one sentence naming the host, with
// the next step: a refused loopback port ("is it running?"), and a name
// that does not resolve (a resolver that answers "no such host" for
// every name, so no DNS server is asked).
func TestServer_UnreachableMessages(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	noDNS := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}}}
	tests := []struct {
		name    string
		baseURL string
		hc      *http.Client
		want    string
	}{
		{"Refused", refused, nil, "provider p is unreachable: could not reach " + ln.Addr().String() + ": is it running? Check providers.p.base_url"},
		{"DNS", "https://api.deepinfra.invalid/v1/openai", noDNS,
			"provider p is unreachable: could not reach api.deepinfra.invalid; check the network connection and providers.p.base_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := llm.NewClient(llm.Provider{Name: "p", BaseURL: tt.baseURL, APIKey: "k"},
				llm.Options{MaxRetries: -1, HTTPClient: tt.hc, Logger: slog.New(slog.DiscardHandler)})
			router, err := llm.NewRouter([]*llm.Client{c}, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			gw, err := gateway.New(gateway.Options{Logger: slog.New(slog.DiscardHandler)}, router)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(gw)
			t.Cleanup(srv.Close)

			for _, req := range []struct{ method, path, body, wantMsg string }{
				{http.MethodPost, "/v1/chat/completions", `{"model":"p/m","messages":[{"role":"user","content":"hi"}]}`, tt.want},
				{http.MethodGet, "/v1/models", "", "no provider could list its models: " + strings.Replace(strings.TrimPrefix(tt.want, "provider "), " is unreachable", " unreachable", 1)},
			} {
				hreq, _ := http.NewRequestWithContext(t.Context(), req.method, srv.URL+req.path, strings.NewReader(req.body))
				resp, err := http.DefaultClient.Do(hreq)
				if err != nil {
					t.Fatal(err)
				}
				var e apiErrorBody
				json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway || e.Error.Code != "upstream_unreachable" || e.Error.Message != req.wantMsg {
					t.Errorf("%s %s = %d %q %q; want 502 upstream_unreachable %q", req.method, req.path, resp.StatusCode, e.Error.Code, e.Error.Message, req.wantMsg)
				}
				checkSentence(t, e.Error.Message)
			}
		})
	}
}

// GET /v1/models lists the reachable providers' models and the aliases
// whose provider is configured.
func TestServer_Models_SomeDown(t *testing.T) {
	w, err := llmtest.NewResolveWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	url := worldGateway(t, w, llm.Options{})
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/models: %s, %v", resp.Status, err)
	}
	var ids []string
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	got := strings.Join(ids, " ")
	want := "lab/shared lab/mistral-small:24b lab/deepseek-r1:70b local/shared local/qwen3:8b local/deepseek-r1:8b local/llama3.2:3b local/Qwen3-Coder:30b mini qwen r1"
	if got != want {
		t.Errorf("models = %s\nwant %s", got, want)
	}
}
