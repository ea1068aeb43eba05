package llm_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// A chunk that is not the JSON it should be is ErrMalformed; cut short by
// the end of the stream it is ErrTruncated as well.
func TestClient_Stream_Malformed(t *testing.T) {
	const good = "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\n"
	for _, tt := range []struct {
		name          string
		raw           string
		wantTruncated bool
	}{
		{"BadEscape", good + "data: {\"choices\":[{\"delta\":{\"content\":\"a\\q\"}}]}\n\n", false},
		{"NotJSON", good + "data: <html>\n\n", false},
		{"BadUsage", good + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"many\"}}\n\n", false},
		{"CutShort", good + "data: {\"choices\":[{\"delta\":{\"content\":\"unfin", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.Enqueue(llmtest.Script{Raw: tt.raw, RawType: "text/event-stream"})
			c := llm.NewClient(s.Provider("fake"), llm.Options{MaxRetries: -1})
			got := collect(t, c, t.Context(), llm.Request{Model: "m"})
			if got.Content != "ok" || !errors.Is(got.Err, llm.ErrMalformed) || errors.Is(got.Err, llm.ErrTruncated) != tt.wantTruncated {
				t.Errorf("content %q, err %v; want \"ok\", ErrMalformed (truncated %v)", got.Content, got.Err, tt.wantTruncated)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	refused := connectRefused(t)
	tlsErr := untrustedTLS(t)
	dnsErr := &net.DNSError{Err: "no such host", Name: "llm.example", IsNotFound: true}
	for _, tt := range []struct {
		name     string
		err      error
		wantHost string
		wantOK   bool
	}{
		{"Refused", refused, "", true}, // the host is checked below: its port varies
		{"UntrustedCertificate", tlsErr, "", true},
		{"DNSInURLError", fmt.Errorf("llm: p: %w", &url.Error{Op: "Post", URL: "https://llm.example/v1/chat/completions", Err: dnsErr}), "llm.example", true},
		{"DNS", fmt.Errorf("wrapped: %w", dnsErr), "llm.example", true},
		{"OpError", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 8080}, Err: errors.New("i/o timeout")}, "10.0.0.7:8080", true},
		{"OpErrorNoAddr", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("reset")}, "", true},
		{"UnknownAuthority", fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), "", true},
		{"ErrTruncatedReadError", fmt.Errorf("llm: p: %w: read: %w", llm.ErrTruncated, &net.OpError{Op: "read", Err: errors.New("reset")}), "", false},
		{"ErrFirstByteTimeout", fmt.Errorf("llm: p: %w", llm.ErrFirstByteTimeout), "", false},
		{"ErrCanceled", fmt.Errorf("llm: p: %w", context.Canceled), "", false},
		{"ErrOther", errors.New("something else"), "", false},
		{"Nil", nil, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host, ok := llm.Unreachable(tt.err)
			if ok != tt.wantOK || tt.wantHost != "" && host != tt.wantHost {
				t.Errorf("Unreachable(%v) = %q, %v; want %q, %v", tt.err, host, ok, tt.wantHost, tt.wantOK)
			}
			if (tt.err == refused || tt.err == tlsErr) && !llm.IsLoopback(host) {
				t.Errorf("Unreachable(%v) = %q, want a loopback host", tt.err, host)
			}
		})
	}
}

// connectRefused is what a Client says when nothing listens at its base URL.
func connectRefused(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := llm.NewClient(llm.Provider{Name: "local", BaseURL: "http://" + addr + "/v1"},
		llm.Options{MaxRetries: -1, Logger: slog.New(slog.DiscardHandler)})
	_, err = c.Do(t.Context(), http.MethodGet, "/models", nil, false)
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	return err
}

// untrustedTLS is what a Client says to a server whose certificate it does
// not trust.
func untrustedTLS(t *testing.T) error {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake error it logs is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := llm.NewClient(llm.Provider{Name: "tls", BaseURL: srv.URL + "/v1"},
		llm.Options{MaxRetries: -1, Logger: slog.New(slog.DiscardHandler)})
	_, err := c.Do(t.Context(), http.MethodGet, "/models", nil, false)
	if err == nil {
		t.Fatal("no error from an untrusted certificate")
	}
	return err
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":         true,
		"LOCALHOST:11434":   true,
		"127.0.0.1":         true,
		"127.0.0.1:8080":    true,
		"[::1]:8000":        true,
		"::1":               true,
		"api.deepinfra.com": false,
		"10.0.0.7:8080":     false,
		"":                  false,
	} {
		if got := llm.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
