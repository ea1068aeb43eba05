package llmtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultTranscriptionLimit is the largest transcription request a new
// Server accepts: OpenAI's 25 MiB.
const DefaultTranscriptionLimit = 25 << 20

// maxDrain bounds what the server reads of a request it refused as too
// large, so that the client sees the 413 rather than a reset connection.
const maxDrain = 64 << 20

// audioFormats are the file extensions OpenAI accepts, in its error's words.
var audioFormats = []string{"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"}

// AudioRequest is a decoded transcription request.
type AudioRequest struct {
	// Model, Language, Prompt and ResponseFormat are the form fields of
	// those names ("" when absent).
	Model, Language, Prompt, ResponseFormat string
	// Filename and ContentType are the file part's; File is its bytes.
	Filename, ContentType string
	File                  []byte
	// Fields holds every form field but the file, the first value of each.
	Fields map[string]string
}

// Transcript is how the server answers one transcription request.
type Transcript struct {
	// Text is the transcript; empty means "transcript of NAME (N bytes)",
	// NAME and N being the file's.
	Text string
	// Language and Duration go into a verbose_json answer; Language
	// defaults to "english", as DeepInfra names languages there.
	Language string
	Duration time.Duration

	// Status, when non-zero, refuses the request with that HTTP status and
	// Body (default: an OpenAI-shaped error naming the status), and the
	// Retry-After header when RetryAfter is set.
	Status     int
	Body       string
	RetryAfter string
	// Raw, when not empty, is the whole body of a 200 answer, of type
	// RawType ("application/json" when empty).
	Raw, RawType string

	// Received, when set, is called with the request once it is read and
	// recorded, before the answer. Hold, when not nil, delays the answer
	// until it is closed or the client hangs up: with Received, a test can
	// act while a request is in flight.
	Received func(AudioRequest)
	Hold     <-chan struct{}
}

// EnqueueTranscript adds answers to the next transcription requests, one
// each.
func (s *Server) EnqueueTranscript(ts ...Transcript) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transcripts = append(s.transcripts, ts...)
}

// SetTranscript answers every transcription request (once the queue is
// empty) with t; the zero Transcript restores the default answer.
func (s *Server) SetTranscript(t Transcript) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transcript = t
}

// SetTranscriptionLimit sets the largest transcription request body the
// server accepts (DefaultTranscriptionLimit when n <= 0). A larger one is
// refused with 413 and OpenAI's "Maximum content size limit" message.
func (s *Server) SetTranscriptionLimit(n int64) {
	if n <= 0 {
		n = DefaultTranscriptionLimit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploadLimit = n
}

// transcribe serves POST /v1/audio/transcriptions.
func (s *Server) transcribe(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	limit := s.uploadLimit
	s.mu.Unlock()
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		s.add(rec)
		return
	}
	if int64(len(body)) > limit {
		s.add(rec)
		n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": map[string]any{
			"message": fmt.Sprintf("Maximum content size limit (%d) exceeded (%d bytes read)", limit, int64(len(body))+n),
			"type":    "server_error", "param": nil, "code": nil}})
		return
	}
	ar, formErr := decodeAudioRequest(r.Header.Get("Content-Type"), body)
	rec.Audio = &ar
	s.add(rec)
	if !s.authorized(w, r) {
		return
	}
	if formErr != "" {
		writeError(w, http.StatusBadRequest, formErr)
		return
	}
	t := s.nextTranscript()
	if t.Received != nil {
		t.Received(ar)
	}
	if t.Hold != nil {
		select {
		case <-t.Hold:
		case <-r.Context().Done():
			s.noteDisconnect()
			return
		}
	}
	switch {
	case t.Status != 0:
		body := t.Body
		if body == "" {
			body = Script{Status: t.Status}.refusalBody()
		}
		writeRefusal(w, t.Status, body, t.RetryAfter)
		return
	case t.Raw != "":
		writeRaw(w, t.Raw, t.RawType)
		return
	}
	text := t.Text
	if text == "" {
		text = fmt.Sprintf("transcript of %s (%d bytes)", ar.Filename, len(ar.File))
	}
	switch ar.ResponseFormat {
	case "", "json":
		writeJSON(w, http.StatusOK, map[string]any{"text": text})
	case "text":
		writeRaw(w, text+"\n", "text/plain; charset=utf-8")
	default: // verbose_json
		lang := t.Language
		if lang == "" {
			lang = "english"
		}
		writeJSON(w, http.StatusOK, map[string]any{"task": "transcribe", "language": lang,
			"duration": t.Duration.Seconds(), "text": text, "segments": []any{}})
	}
}

// nextTranscript picks the answer to a transcription request.
func (s *Server) nextTranscript() Transcript {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.transcripts) > 0 {
		t := s.transcripts[0]
		s.transcripts = s.transcripts[1:]
		return t
	}
	return s.transcript
}

// decodeAudioRequest reads a multipart transcription form. problem is the
// message of the 400 the request deserves, "" when it is well formed.
func decodeAudioRequest(contentType string, body []byte) (ar AudioRequest, problem string) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return ar, "Could not parse multipart form"
	}
	ar.Fields = make(map[string]string)
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	hasFile := false
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ar, "Could not parse multipart form"
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return ar, "Could not parse multipart form"
		}
		name := p.FormName()
		switch {
		case name == "file" && !hasFile:
			hasFile = true
			ar.Filename, ar.ContentType, ar.File = p.FileName(), p.Header.Get("Content-Type"), data
		case name != "file":
			if _, dup := ar.Fields[name]; !dup {
				ar.Fields[name] = string(data)
			}
		}
	}
	ar.Model, ar.Language = ar.Fields["model"], ar.Fields["language"]
	ar.Prompt, ar.ResponseFormat = ar.Fields["prompt"], ar.Fields["response_format"]
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(ar.Filename), "."))
	switch {
	case !hasFile:
		return ar, "1 validation error: file: field required"
	case ar.Model == "":
		return ar, "you must provide a model parameter"
	case !slices.Contains(audioFormats, ext):
		return ar, "Invalid file format. Supported formats: ['" + strings.Join(audioFormats, "', '") + "']"
	case len(ar.File) == 0:
		return ar, "Audio file is too short. Minimum audio length is 0.1 seconds."
	case !slices.Contains([]string{"", "json", "text", "verbose_json"}, ar.ResponseFormat):
		return ar, "response_format " + strconv.Quote(ar.ResponseFormat) + " is not served by llmtest"
	}
	return ar, ""
}
