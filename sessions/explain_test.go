package sessions_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/llm/sse"
	"github.com/palaver-bot/palaver/sessions"
)

// Every class of error becomes a sentence of Palaver's own, with what to do
// next, whatever wraps it; the error's text never reaches the chat.
func TestExplain(t *testing.T) {
	pathErr := &fs.PathError{Op: "write", Path: "/var/lib/palaver/palaver.db", Err: syscall.ENOSPC}
	var syntaxErr *json.SyntaxError
	if err := json.Unmarshal([]byte(`{"choices":[`), new(any)); !errors.As(err, &syntaxErr) {
		t.Fatalf("json.Unmarshal = %v, want a *json.SyntaxError", err)
	}
	dnsErr := &net.DNSError{Err: "no such host", Name: "api.deepinfra.com", IsNotFound: true}
	const (
		retry       = "try /retry"
		unreachable = "Palaver could not reach the model provider"
		generic     = "Something went wrong while answering; the details are in Palaver's log."
	)
	tests := []struct {
		name string
		err  error
		want []string // substrings of the sentence
	}{
		{"UserError", fmt.Errorf("set model: %w", &sessions.UserError{Err: sessions.ErrUnknownModel, Msg: "Model \"x\" is not available here."}),
			[]string{"Model \"x\" is not available here."}},
		{"NotSaved", fmt.Errorf("sessions: append: %w: %w", sessions.ErrNotSaved, pathErr),
			[]string{"Palaver can't save messages right now; your message will be answered when it can."}},
		{"Closed", fmt.Errorf("handle: %w", sessions.ErrClosed), []string{"Palaver is restarting"}},
		{"Unread", fmt.Errorf("turn: %w", sessions.ErrUnread), []string{"Palaver could not read what you sent"}},
		{"NoTranscription", fmt.Errorf("transcribe: %w", sessions.ErrNoTranscription), []string{"no transcription model is configured (models.transcription)"}},
		{"CannotFetch", fmt.Errorf("fetch: %w", sessions.ErrCannotFetch), []string{"Palaver can't download files sent here."}},
		{"Status401", fmt.Errorf("llm: %w", &llm.StatusError{Provider: "deepinfra", StatusCode: 401, Message: "Invalid API key"}),
			[]string{"deepinfra refused the API key (Invalid API key): check providers.deepinfra.api_key."}},
		{"Status500", &llm.StatusError{Provider: "local", StatusCode: 503, Message: " "}, []string{"local had a server error (503); try /retry"}},
		{"StreamError", fmt.Errorf("wrapped: %w", &llm.StreamError{Provider: "p", Message: "out of memory"}),
			[]string{"The model provider stopped with an error (out of memory); " + retry + "."}},
		{"FirstByteTimeout", fmt.Errorf("llm: p: POST http://127.0.0.1:1/v1/chat/completions: %w", llm.ErrFirstByteTimeout),
			[]string{"did not start answering in time", "Try /retry."}},
		{"IdleTimeout", fmt.Errorf("llm: p: %w: %w", llm.ErrTruncated, llm.ErrIdleTimeout), []string{"went silent", retry}},
		{"LineTooLong", fmt.Errorf("llm: p: read: %w", sse.ErrLineTooLong), []string{"too large to read", retry}},
		{"TruncatedReset", fmt.Errorf("llm: p: %w: read: %w", llm.ErrTruncated,
			&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), []string{"broke off", retry}},
		{"TruncatedChunk", streamError(t, "data: {\"choices\":[{\"delta\":{\"content\":\"unfin"), []string{"broke off", retry}},
		{"Malformed", streamError(t, "data: {\"choices\":[{\"delta\":{\"content\":\"a\\q\"}}]}\n\n"),
			[]string{"The model provider sent an answer Palaver could not read; try /retry, or another model with /model."}},
		{"Deadline", fmt.Errorf("llm: p: %w", context.DeadlineExceeded), []string{"took too long", retry}},
		{"Canceled", fmt.Errorf("llm: p: %w", context.Canceled), []string{"cancelled", retry}},
		{"RefusedLoopback", connectRefused(t), []string{"Palaver could not reach the model server at 127.0.0.1:", "is it running?", "base_url"}},
		{"UntrustedCertificate", untrustedTLS(t), []string{"Palaver could not reach the model server at 127.0.0.1:", "base_url"}},
		{"DNSInURLError", fmt.Errorf("llm: deepinfra: %w", &url.Error{Op: "Post", URL: "https://api.deepinfra.com/v1/openai/chat/completions",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: dnsErr}}),
			[]string{unreachable + " at api.deepinfra.com; check the network connection and the provider's base_url in the config, then " + retry + "."}},
		{"DNS", dnsErr, []string{unreachable + " at api.deepinfra.com;"}},
		{"OpError", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 8080},
			Err: errors.New("i/o timeout")}, []string{unreachable + " at 10.0.0.7:8080;"}},
		{"X509", fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), []string{unreachable + "; check the network connection"}},
		{"PathError", fmt.Errorf("open store: %w", pathErr), []string{generic}},
		{"JSONSyntax", fmt.Errorf("llm: p: decode completion: %w", syntaxErr), []string{generic}},
		{"ParserMessage", errors.New("invalid JSON: unexpected end, want end of string"), []string{generic}},
		{"Plain", errors.New("boom"), []string{generic}},
	}
	// Text that must never reach a chat: file paths, Go's network and
	// parser messages, package prefixes.
	forbidden := []string{"/var/", "palaver.db", "no space left", "dial tcp", "lookup", "no such host", "connection refused",
		"connection reset", "i/o timeout", "unexpected", "invalid character", "x509", "certificate", "EOF", "llm:", "%!"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sessions.Explain(tt.err)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Explain(%v) = %q, want it to contain %q", tt.err, got, w)
				}
			}
			for _, f := range forbidden {
				if strings.Contains(got, f) {
					t.Errorf("Explain(%v) = %q, which shows %q", tt.err, got, f)
				}
			}
			if _, isUser := errors.AsType[*sessions.UserError](tt.err); !isUser && strings.Contains(got, tt.err.Error()) {
				t.Errorf("Explain(%v) = %q, which shows the error's text", tt.err, got)
			}
			if !strings.HasSuffix(got, ".") && !strings.HasSuffix(got, "?") {
				t.Errorf("Explain(%v) = %q, not a sentence", tt.err, got)
			}
		})
	}
	if got := sessions.Explain(nil); got != "" {
		t.Errorf("Explain(nil) = %q, want \"\"", got)
	}
}

// streamError is the error llm.Client.Stream yields for a server that sends
// body as its event stream.
func streamError(t *testing.T, body string) error {
	t.Helper()
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{Raw: body, RawType: "text/event-stream"})
	c := llm.NewClient(up.Provider("p"), llm.Options{MaxRetries: -1, Logger: slog.New(slog.DiscardHandler)})
	for _, err := range c.Stream(t.Context(), llm.Request{Model: "m"}) {
		if err != nil {
			return err
		}
	}
	t.Fatalf("stream of %q ended without an error", body)
	return nil
}

// connectRefused is what a Client says when nothing listens at its base
// URL.
func connectRefused(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return clientError(t, "http://"+addr+"/v1")
}

// untrustedTLS is what a Client says to a server whose certificate it does
// not trust.
func untrustedTLS(t *testing.T) error {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake error it logs is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return clientError(t, srv.URL+"/v1")
}

// clientError is the error of a model list request to baseURL.
func clientError(t *testing.T, baseURL string) error {
	t.Helper()
	c := llm.NewClient(llm.Provider{Name: "p", BaseURL: baseURL},
		llm.Options{MaxRetries: -1, Logger: slog.New(slog.DiscardHandler)})
	_, err := c.Do(t.Context(), http.MethodGet, "/models", nil, false)
	if err == nil {
		t.Fatalf("GET %s/models: no error", baseURL)
	}
	return err
}

func TestErrorKind(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&llm.StatusError{StatusCode: 401}, "auth"},
		{&llm.StatusError{StatusCode: 429}, "rate_limit"},
		{&llm.StatusError{StatusCode: 502}, "server"},
		{&llm.StatusError{StatusCode: 400}, "client"},
		{&llm.StreamError{}, "stream"},
		{fmt.Errorf("%w: %w", llm.ErrTruncated, llm.ErrMalformed), "truncated"},
		{fmt.Errorf("decode chunk: %w", llm.ErrMalformed), "malformed"},
		{fmt.Errorf("llm: fake: read: %w", sse.ErrLineTooLong), "malformed"},
		{llm.ErrFirstByteTimeout, "timeout"},
		{&net.OpError{Op: "dial"}, "network"},
	} {
		if got := sessions.ErrorKind(tt.err); got != tt.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// Model names that cannot be resolved, and providers whose lists cannot
// be fetched, are sentences worded for where they are read: chat commands
// in a chat, flags and commands at a command line.
func TestExplain_Models(t *testing.T) {
	dns := &url.Error{Op: "Get", URL: "https://api.deepinfra.com/v1/openai/models",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.deepinfra.com", IsNotFound: true}}}
	down := &llm.ListError{Provider: "deepinfra", Err: fmt.Errorf("llm: deepinfra: %w", dns)}
	const reach = "deepinfra unreachable: could not reach api.deepinfra.com; check the network connection and providers.deepinfra.base_url"
	tests := []struct {
		name          string
		err           error
		chat, command string
	}{
		{"Alias", &llm.AliasError{Alias: "r1", Target: "deepinfra/R1", Provider: "deepinfra"},
			`"r1" is a name for deepinfra/R1, but no provider "deepinfra" is configured here; choose another model with /model (see /models).`,
			`"r1" is a name for deepinfra/R1, but no provider "deepinfra" is configured here; choose another model with --model (see palaver models).`},
		{"NoName", &llm.UnknownModelError{},
			"Name a model: /model provider/model (see /models).", "Name a model: --model provider/model (see palaver models)."},
		{"Unknown", &llm.UnknownModelError{Name: "x"},
			`Model "x" is not available here. See /models.`, `Model "x" is not available here. See palaver models.`},
		{"Suggestions", &llm.UnknownModelError{Name: "x", Suggestions: []string{"a/x1", "b/x2"}},
			`Model "x" is not available here. Did you mean: a/x1, b/x2?`, ""},
		{"Matches", &llm.UnknownModelError{Name: "q", Matches: []string{"p/q1", "p/q2", "p/q3", "p/q4", "p/q5", "p/q6", "p/q7"}},
			`"q" matches several models: p/q1, p/q2, p/q3, p/q4, p/q5 and 2 more. Name one of them.`, ""},
		{"NotSearched", &llm.UnknownModelError{Name: "x", Down: []*llm.ListError{down}},
			`Model "x" was not found; not searched: ` + reach + ".", ""},
		{"ProviderDown", fmt.Errorf("llm: resolve %q: %w", "deepinfra/x", down), "Provider " + reach + ".", ""},
		{"InUserError", &sessions.UserError{Err: fmt.Errorf("%w: %w", sessions.ErrUnknownModel, &llm.UnknownModelError{Name: "x"}), Msg: "chat words"},
			`Model "x" is not available here. See /models.`, `Model "x" is not available here. See palaver models.`},
		{"Upstream404", &llm.StatusError{Provider: "local", StatusCode: 404, Message: "model not found"},
			"local does not know this model (model not found): pick another with /model (see /models).",
			"local does not know this model (model not found): pick another with --model (see palaver models)."},
		{"Refused", connectRefused(t), "then try /retry.", "then try again."},
		{"Truncated", llm.ErrTruncated, "; try /retry.", "; try again."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sessions.Explain(tt.err); !strings.HasSuffix(got, tt.chat) {
				t.Errorf("Explain = %q, want it to end %q", got, tt.chat)
			}
			got := sessions.ExplainCommand(tt.err)
			if tt.command != "" && !strings.HasSuffix(got, tt.command) {
				t.Errorf("ExplainCommand = %q, want it to end %q", got, tt.command)
			}
			if strings.Contains(got, " /model") || strings.Contains(got, "/retry") {
				t.Errorf("ExplainCommand = %q names a chat command", got)
			}
		})
	}
}

func TestModelsNotes(t *testing.T) {
	dns := fmt.Errorf("llm: deepinfra: %w", &url.Error{Op: "Get", URL: "https://api.deepinfra.com/v1/openai/models",
		Err: &net.DNSError{Err: "no such host", Name: "api.deepinfra.com", IsNotFound: true}})
	err := errors.Join(&llm.ListError{Provider: "deepinfra", Err: dns},
		&llm.ListError{Provider: "local", Err: &llm.StatusError{Provider: "local", StatusCode: 503}})
	got := sessions.ModelsNotes(err)
	want := []string{
		"(deepinfra unreachable: could not reach api.deepinfra.com; check the network connection and providers.deepinfra.base_url)",
		"(local unavailable: server error (HTTP 503); try again shortly)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ModelsNotes = %q, want %q", got, want)
	}
	if got := sessions.ModelsNotes(nil); got != nil {
		t.Errorf("ModelsNotes(nil) = %q", got)
	}
	if got := sessions.ModelsNotes(context.Canceled); len(got) != 1 || !strings.Contains(got[0], "cancelled") {
		t.Errorf("ModelsNotes(Canceled) = %q, want Explain's sentence", got)
	}
}
