package attach

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingTransport counts the body bytes the client reads.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = countingBody{resp.Body, &c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestFetch(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	mux := http.NewServeMux()
	mux.HandleFunc("/file/bot123:secret/photos/file_1.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(payload)
	})
	mux.HandleFunc("/attachment", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename="report final.pdf"`)
		w.Header().Set("Content-Length", "10000")
		w.Write(payload)
	})
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: chunks until the client goes away.
		for i := 0; i < 10_000; i++ {
			if _, err := w.Write(payload); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t.Run("OK", func(t *testing.T) {
		in, err := Fetch(context.Background(), srv.Client(), srv.URL+"/file/bot123:secret/photos/file_1.jpg", Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if in.Name != "file_1.jpg" || in.MIME != "image/jpeg" || !bytes.Equal(in.Data, payload) {
			t.Errorf("got %q %q %d bytes", in.Name, in.MIME, len(in.Data))
		}
	})
	t.Run("ContentDisposition", func(t *testing.T) {
		in, err := Fetch(context.Background(), nil, srv.URL+"/attachment", Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if in.Name != "report final.pdf" {
			t.Errorf("Name = %q", in.Name)
		}
	})
	t.Run("ExactlyAtLimit", func(t *testing.T) {
		in, err := Fetch(context.Background(), srv.Client(), srv.URL+"/attachment", Limits{MaxFileBytes: int64(len(payload))})
		if err != nil || len(in.Data) != len(payload) {
			t.Fatalf("got %d bytes, %v", len(in.Data), err)
		}
	})
	t.Run("ErrTooLargeDeclared", func(t *testing.T) {
		ct := &countingTransport{}
		_, err := Fetch(context.Background(), &http.Client{Transport: ct}, srv.URL+"/attachment", Limits{MaxFileBytes: 9999})
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Size != 10_000 || tl.Limit != 9999 {
			t.Fatalf("err = %v, want *TooLargeError{10000, 9999}", err)
		}
		if n := ct.n.Load(); n != 0 {
			t.Errorf("read %d body bytes, want 0", n)
		}
	})
	t.Run("ErrTooLargeStreamed", func(t *testing.T) {
		ct := &countingTransport{}
		const limit = 25_000
		_, err := Fetch(context.Background(), &http.Client{Transport: ct}, srv.URL+"/endless", Limits{MaxFileBytes: limit})
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Size != -1 || tl.Limit != limit {
			t.Fatalf("err = %v, want *TooLargeError{-1, %d}", err, limit)
		}
		if n := ct.n.Load(); n != limit+1 {
			t.Errorf("read %d body bytes, want %d", n, limit+1)
		}
		if got, want := UserMessage(err), "This file is larger than 24 KB; Palaver reads files up to 24 KB."; got != want {
			t.Errorf("UserMessage = %q, want %q", got, want)
		}
	})
	t.Run("ErrStatus", func(t *testing.T) {
		_, err := Fetch(context.Background(), srv.Client(), srv.URL+"/missing", Limits{})
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err = %v, want status 404", err)
		}
	})
	t.Run("ErrTimeout", func(t *testing.T) {
		_, err := Fetch(context.Background(), srv.Client(), srv.URL+"/hang", Limits{FetchTimeout: time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not done within 1ms") {
			t.Fatalf("err = %v, want the timeout", err)
		}
	})
	t.Run("ErrCanceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Fetch(ctx, srv.Client(), srv.URL+"/hang", Limits{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("ErrorHidesURL", func(t *testing.T) {
		closed := httptest.NewServer(http.NotFoundHandler())
		url := closed.URL + "/file/bot123:secret/x.jpg"
		closed.Close()
		_, err := Fetch(context.Background(), nil, url, Limits{})
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Fatalf("err = %v, want an error without the URL", err)
		}
		_, err = Fetch(context.Background(), nil, "http://[::1]:namedport/bot123:secret", Limits{})
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Fatalf("err = %v, want an error without the URL", err)
		}
	})
}
