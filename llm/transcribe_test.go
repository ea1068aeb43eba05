package llm_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// voice is a transcription request for a short Ogg voice note.
func voice() llm.TranscriptionRequest {
	return llm.TranscriptionRequest{
		Model:    "openai/whisper-large-v3-turbo",
		Data:     append([]byte("OggS\x00\x02"), bytes.Repeat([]byte{0x4f, 0x70, 0x75, 0x73}, 1000)...),
		Filename: "voice.ogg",
		MIME:     "audio/ogg",
	}
}

func TestClient_Transcribe(t *testing.T) {
	s := newServer(t)
	s.RequireKey("k")
	s.EnqueueTranscript(llmtest.Transcript{Text: " Hello there. "})
	p := s.Provider("di")
	p.APIKey = "k"
	c := llm.NewClient(p, llm.Options{})
	req := voice()
	req.Language, req.Prompt = "en", "Palaver, DeepInfra."
	got, err := c.Transcribe(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got != (llm.Transcript{Text: "Hello there."}) {
		t.Errorf("got %+v", got)
	}
	recs := s.Requests()
	if len(recs) != 1 || recs[0].Audio == nil {
		t.Fatalf("recorded %+v", recs)
	}
	r, a := recs[0], recs[0].Audio
	if r.Path != "/v1/audio/transcriptions" || r.Header.Get("Authorization") != "Bearer k" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data; boundary=") {
		t.Errorf("request %s with headers %v", r.Path, r.Header)
	}
	if a.Model != req.Model || a.Filename != "voice.ogg" || a.ContentType != "audio/ogg" || !bytes.Equal(a.File, req.Data) ||
		a.Language != "en" || a.Prompt != req.Prompt || a.ResponseFormat != "json" || len(a.Fields) != 4 {
		t.Errorf("form %+v", a)
	}
}

// The form leaves out empty optional fields and names an unknown type
// application/octet-stream.
func TestClient_Transcribe_MinimalForm(t *testing.T) {
	s := newServer(t)
	c := llm.NewClient(s.Provider("local"), llm.Options{})
	req := voice()
	req.MIME = ""
	got, err := c.Transcribe(t.Context(), req)
	if err != nil || got.Text != "transcript of voice.ogg (4006 bytes)" {
		t.Fatalf("got %+v, %v", got, err)
	}
	a := s.Requests()[0].Audio
	if a.ContentType != "application/octet-stream" || len(a.Fields) != 2 || a.Fields["model"] == "" || a.Fields["response_format"] != "json" {
		t.Errorf("form %+v", a)
	}
}

// Answers in the shapes servers use: OpenAI's json, DeepInfra's
// verbose_json, plain text, and the broken ones.
func TestClient_Transcribe_Answers(t *testing.T) {
	tests := []struct {
		name     string
		raw, typ string
		want     llm.Transcript
		wantErr  error
	}{
		{"JSON", `{"text":"Imagine the wildest idea."}`, "", llm.Transcript{Text: "Imagine the wildest idea."}, nil},
		{"VerboseJSON", `{"task":"transcribe","language":"english","duration":8.47,"text":"Imagine.","segments":[{"id":0,"text":"Imagine."}]}`, "",
			llm.Transcript{Text: "Imagine.", Language: "english", Duration: 8470 * time.Millisecond}, nil},
		{"DeepInfraInference", `{"text":"","segments":[],"language":"en","duration":0.0,"request_id":null}`, "", llm.Transcript{Language: "en"}, nil},
		{"PlainText", "Imagine.\n", "text/plain; charset=utf-8", llm.Transcript{Text: "Imagine."}, nil},
		{"ErrNoText", `{"task":"transcribe"}`, "", llm.Transcript{}, llm.ErrMalformed},
		{"ErrNotJSON", `<html>`, "text/html", llm.Transcript{}, llm.ErrMalformed},
	}
	s := newServer(t)
	c := llm.NewClient(s.Provider("local"), llm.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.EnqueueTranscript(llmtest.Transcript{Raw: tt.raw, RawType: tt.typ})
			got, err := c.Transcribe(t.Context(), voice())
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	t.Run("ErrorIn200", func(t *testing.T) {
		s.EnqueueTranscript(llmtest.Transcript{Raw: `{"error":{"message":"model overloaded","code":"busy"}}`})
		_, err := c.Transcribe(t.Context(), voice())
		if se, ok := errors.AsType[*llm.StreamError](err); !ok || se.Message != "model overloaded" {
			t.Errorf("err = %v, want a *StreamError", err)
		}
	})
}

func TestClient_Transcribe_Refused(t *testing.T) {
	t.Run("Unauthorized", func(t *testing.T) {
		s := newServer(t)
		s.RequireKey("right")
		c := deepInfraClient(t, s, "")
		_, err := c.Transcribe(t.Context(), voice())
		se, ok := errors.AsType[*llm.StatusError](err)
		if !ok || se.StatusCode != 401 || se.Message != "Not authenticated" || !se.NeedsKey() {
			t.Fatalf("err = %v, want a 401 that NeedsKey", err)
		}
		// The keyless DeepInfra preset goes with transcriptions too.
		h := s.Requests()[0].Header
		if h.Get("X-Deepinfra-Source") != "web-page" || h.Get("Accept") != "application/json" ||
			!strings.HasPrefix(h.Get("Content-Type"), "multipart/form-data") {
			t.Errorf("headers %v", h)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		s := newServer(t)
		s.SetTranscriptionLimit(1024)
		c := llm.NewClient(s.Provider("local"), fastRetries)
		_, err := c.Transcribe(t.Context(), voice())
		se, ok := errors.AsType[*llm.StatusError](err)
		if !ok || se.StatusCode != 413 || !strings.HasPrefix(se.Message, "Maximum content size limit (1024) exceeded (") {
			t.Fatalf("err = %v, want OpenAI's 413", err)
		}
		if n := len(s.Requests()); n != 1 {
			t.Errorf("%d requests, want 1: a 413 is not retried", n)
		}
	})
	t.Run("BadFormat", func(t *testing.T) {
		s := newServer(t)
		c := llm.NewClient(s.Provider("local"), llm.Options{})
		req := voice()
		req.Filename = "voice.opus"
		_, err := c.Transcribe(t.Context(), req)
		se, ok := errors.AsType[*llm.StatusError](err)
		if !ok || se.StatusCode != 400 || !strings.HasPrefix(se.Message, "Invalid file format. Supported formats: ['flac',") {
			t.Fatalf("err = %v, want a 400 naming the formats", err)
		}
	})
	t.Run("ServerError", func(t *testing.T) {
		s := newServer(t)
		s.SetTranscript(llmtest.Transcript{Status: http.StatusServiceUnavailable})
		opts := fastRetries
		opts.MaxRetries = 2
		c := llm.NewClient(s.Provider("local"), opts)
		_, err := c.Transcribe(t.Context(), voice())
		se, ok := errors.AsType[*llm.StatusError](err)
		if !ok || se.StatusCode != 503 || !se.Temporary() {
			t.Fatalf("err = %v, want a 503", err)
		}
		recs := s.Requests()
		if len(recs) != 3 {
			t.Fatalf("%d requests, want 3 (two retries)", len(recs))
		}
		for i, r := range recs {
			if !bytes.Equal(r.Audio.File, voice().Data) {
				t.Errorf("attempt %d sent %d bytes of audio, want the whole file again", i, len(r.Audio.File))
			}
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c := llm.NewClient(llm.Provider{Name: "local", BaseURL: "http://" + addr + "/v1"}, fastRetries)
		_, err = c.Transcribe(t.Context(), voice())
		if host, ok := llm.Unreachable(err); !ok || host != addr {
			t.Errorf("Unreachable(%v) = %q, %v; want %q, true", err, host, ok, addr)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		s := newServer(t)
		ctx, cancel := context.WithCancel(t.Context())
		s.EnqueueTranscript(llmtest.Transcript{Received: func(llmtest.AudioRequest) { cancel() }, Hold: make(chan struct{})})
		c := llm.NewClient(s.Provider("local"), fastRetries)
		_, err := c.Transcribe(ctx, voice())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if err := s.WaitDisconnect(t.Context()); err != nil {
			t.Error(err)
		}
		if n := len(s.Requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("FirstByteTimeout", func(t *testing.T) {
		s := newServer(t)
		s.EnqueueTranscript(llmtest.Transcript{Hold: make(chan struct{})})
		opts := fastRetries
		opts.Timeouts.FirstByte = 20 * time.Millisecond
		c := llm.NewClient(s.Provider("local"), opts)
		if _, err := c.Transcribe(t.Context(), voice()); !errors.Is(err, llm.ErrFirstByteTimeout) {
			t.Errorf("err = %v, want ErrFirstByteTimeout", err)
		}
	})
}

// Bad input is refused with a clear error before any request.
func TestClient_Transcribe_BadInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(*llm.TranscriptionRequest)
		want string
	}{
		{"ErrNoModel", func(r *llm.TranscriptionRequest) { r.Model = "" }, "has no model"},
		{"ErrNoAudio", func(r *llm.TranscriptionRequest) { r.Data = nil }, "has no audio"},
		{"ErrNoFilename", func(r *llm.TranscriptionRequest) { r.Filename = "" }, "has no file name"},
		{"ErrBadMIME", func(r *llm.TranscriptionRequest) { r.MIME = "audio/ogg\r\nX-Evil: 1" }, "bad media type"},
		{"ErrTooLarge", func(r *llm.TranscriptionRequest) { r.Data = make([]byte, llm.MaxTranscriptionBody+1) }, "more than the 25 MiB"},
		{"ErrTooLargeWithFields", func(r *llm.TranscriptionRequest) {
			r.Data = make([]byte, llm.MaxTranscriptionBody-100)
			r.Prompt = strings.Repeat("p", 200)
		}, "the request would be 25.0 MiB"},
	}
	s := newServer(t)
	c := llm.NewClient(s.Provider("local"), llm.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := voice()
			tt.edit(&req)
			_, err := c.Transcribe(t.Context(), req)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "llm: ") {
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
			if strings.HasPrefix(tt.name, "ErrTooLarge") && !errors.Is(err, llm.ErrAudioTooLarge) {
				t.Errorf("err = %v, want ErrAudioTooLarge", err)
			}
		})
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests sent for bad input", n)
	}
}
