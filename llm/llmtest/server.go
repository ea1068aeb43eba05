// Package llmtest is a fake OpenAI-compatible server for tests, benchmarks
// and load tests: scripted answers in the dialects of DeepInfra, vLLM,
// Ollama and llama.cpp, at a set token rate, with tool calls, refusals,
// mid-stream errors, dropped connections and raw bodies (invalid JSON, a
// stream where JSON was asked for); every request is recorded, content
// parts and their images decoded, and a client that hangs up mid-stream
// is noticed. It also transcribes audio (POST /v1/audio/transcriptions)
// with scripted transcripts, within OpenAI's upload limit, and embeds text
// (POST /v1/embeddings) with deterministic vectors; it can play a server
// that refuses "stream_options" (RejectStreamOptions).
package llmtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"

	"github.com/palaver-bot/palaver/llm"
)

// Request is a decoded chat-completion request.
type Request struct {
	Model        string
	Messages     []llm.Message
	Stream       bool
	IncludeUsage bool // stream_options.include_usage
	Temperature  *float64
	TopP         *float64
	MaxTokens    int
	// Fields holds every top-level field of the body, verbatim.
	Fields map[string]json.RawMessage
	// Parts holds, for each message whose content was an array of parts,
	// the parts as sent; Parts[i] belongs to Messages[i] and is nil when
	// that content was a string (and Parts is nil when all were). Such a
	// message's Content is its text parts joined by "\n", and its Images
	// the images of its image_url parts with data: URLs.
	Parts [][]Part

	// badPart says why a content part cannot be served, "" when all can.
	badPart string
}

// Images returns the decoded images of every message, in order.
func (r Request) Images() []llm.Image {
	var ims []llm.Image
	for _, m := range r.Messages {
		ims = append(ims, m.Images...)
	}
	return ims
}

// Recorded is one request the server received.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// Request is the decoded body of a JSON request: a chat completion
	// (or, as far as its fields go, an embeddings request).
	Request Request
	// Audio is the decoded form of a transcription request; nil for other
	// requests, and for one refused as too large. Body is nil for
	// transcription requests: Audio holds what they carried.
	Audio *AudioRequest
}

// ModelInfo is one entry of the server's model list.
type ModelInfo struct {
	ID      string
	OwnedBy string
	// ContextLength, Pricing, Vision, Tools and Reasoning go into
	// DeepInfra's "metadata" object (the last three as "tags": "vision",
	// "tools", "reasoning"), which is null when all are zero. Vision is
	// only what the list says: whether the model accepts images is
	// scripted (see RefuseImages).
	ContextLength int
	Pricing       *llm.Pricing
	Vision        bool
	Tools         bool
	Reasoning     bool
}

// DefaultModels is the model list of a new Server.
func DefaultModels() []ModelInfo {
	return []ModelInfo{
		{ID: "deepseek-ai/DeepSeek-R1-0528-Turbo", OwnedBy: "deepinfra", ContextLength: 32768,
			Pricing: &llm.Pricing{InputTokens: 1, OutputTokens: 3}},
		{ID: "deepseek-ai/DeepSeek-V3-0324-Turbo", OwnedBy: "deepinfra", ContextLength: 32768,
			Pricing: &llm.Pricing{InputTokens: 1, OutputTokens: 3}},
		{ID: "echo", OwnedBy: "llmtest"},
	}
}

// Server is a fake OpenAI-compatible API on a local port, serving
// POST /v1/chat/completions, POST /v1/audio/transcriptions,
// POST /v1/embeddings and GET /v1/models. It is safe for concurrent use.
//
// The answer to a chat request is the first queued Script (see Enqueue),
// else the script function of the request's model (SetModelScript), else
// the server's (SetScriptFunc; Echo by default). A request whose image_url
// part has a data: URL that does not decode is refused with a 400 before
// any script is asked.
type Server struct {
	// URL is the API base, "http://127.0.0.1:PORT/v1".
	URL string

	srv *httptest.Server

	mu          sync.Mutex
	queue       []Script
	scriptFunc  func(Request) Script
	modelFuncs  map[string]func(Request) Script
	models      []ModelInfo
	apiKey      string
	requests    []Recorded
	transcripts []Transcript // queued answers to transcription requests
	transcript  Transcript   // the answer once the queue is empty
	uploadLimit int64
	embeddings  []Embedding // queued answers to embeddings requests
	embedding   Embedding   // the answer once the queue is empty
	// noStreamOptions refuses chat requests with "stream_options"
	// (RejectStreamOptions).
	noStreamOptions bool

	ids             atomic.Int64 // numbers the answers
	disconnects     chan struct{}
	disconnectCount atomic.Int64
}

// NewServer starts a Server. Close it when done.
func NewServer() *Server {
	s := &Server{
		scriptFunc:  Echo,
		models:      DefaultModels(),
		uploadLimit: DefaultTranscriptionLimit,
		disconnects: make(chan struct{}, 1<<16),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /v1/audio/transcriptions", s.transcribe)
	mux.HandleFunc("POST /v1/embeddings", s.embed)
	mux.HandleFunc("GET /v1/models", s.listModels)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.record(r, nil)
		writeError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/v1"
	return s
}

// Close shuts the server down, breaking open streams.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Provider is an llm.Provider named name for this server.
func (s *Server) Provider(name string) llm.Provider {
	return llm.Provider{Name: name, BaseURL: s.URL}
}

// Enqueue adds scripts that answer the next chat requests, one each.
func (s *Server) Enqueue(scripts ...Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, scripts...)
}

// SetScript answers every request (once the queue is empty) with sc.
func (s *Server) SetScript(sc Script) {
	s.SetScriptFunc(func(Request) Script { return sc })
}

// SetScriptFunc answers requests (once the queue is empty) with f's
// script; nil restores Echo. f may be called concurrently.
func (s *Server) SetScriptFunc(f func(Request) Script) {
	if f == nil {
		f = Echo
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scriptFunc = f
}

// SetModelScript answers requests for model (once the queue is empty) with
// f's script, ahead of the server's script function; nil removes it. f may
// be called concurrently. RefuseImages makes a model that cannot see.
func (s *Server) SetModelScript(model string, f func(Request) Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		delete(s.modelFuncs, model)
		return
	}
	if s.modelFuncs == nil {
		s.modelFuncs = make(map[string]func(Request) Script)
	}
	s.modelFuncs[model] = f
}

// SetModels replaces the model list.
func (s *Server) SetModels(models []ModelInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models = append([]ModelInfo(nil), models...)
}

// RequireKey makes the server refuse, with DeepInfra's 401 "Not
// authenticated", requests without "Authorization: Bearer key". An empty
// key accepts every request again.
func (s *Server) RequireKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.requests...)
}

// Disconnects is how many streams the client abandoned before their end.
func (s *Server) Disconnects() int { return int(s.disconnectCount.Load()) }

// WaitDisconnect waits until a client abandons a stream before its end,
// each abandoned stream satisfying one call. It returns ctx's error if
// ctx ends first.
func (s *Server) WaitDisconnect(ctx context.Context) error {
	select {
	case <-s.disconnects:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) noteDisconnect() {
	s.disconnectCount.Add(1)
	select {
	case s.disconnects <- struct{}{}:
	default:
	}
}

// record stores a request; body is nil for requests without one.
func (s *Server) record(r *http.Request, body []byte) Request {
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	if body != nil {
		rec.Request = decodeRequest(body)
	}
	s.add(rec)
	return rec.Request
}

// add stores a recorded request.
func (s *Server) add(rec Recorded) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rec)
}

// decodeRequest reads what it can of a chat-completion body.
func decodeRequest(body []byte) Request {
	var req Request
	if json.Unmarshal(body, &req.Fields) != nil {
		return req
	}
	get := func(k string, v any) { _ = json.Unmarshal(req.Fields[k], v) }
	get("model", &req.Model)
	decodeMessages(&req)
	get("stream", &req.Stream)
	get("temperature", &req.Temperature)
	get("top_p", &req.TopP)
	get("max_tokens", &req.MaxTokens)
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	get("stream_options", &so)
	req.IncludeUsage = so.IncludeUsage
	return req
}

// authorized checks the API key, answering 401 when it is wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	key := s.apiKey
	s.mu.Unlock()
	if key == "" || r.Header.Get("Authorization") == "Bearer "+key {
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, `{"error":{"message":"Not authenticated","type":"invalid_request_error","param":null,"code":null}}`)
	return false
}

// script picks the answer to req.
func (s *Server) script(req Request) Script {
	s.mu.Lock()
	if len(s.queue) > 0 {
		sc := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		return sc
	}
	f := s.modelFuncs[req.Model]
	if f == nil {
		f = s.scriptFunc
	}
	s.mu.Unlock()
	return f(req)
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req := s.record(r, body)
	if !s.authorized(w, r) {
		return
	}
	if req.Fields == nil {
		writeError(w, http.StatusBadRequest, "the body is not a JSON object")
		return
	}
	if req.badPart != "" {
		writeError(w, http.StatusBadRequest, req.badPart)
		return
	}
	if s.refusesStreamOptions(req) {
		writeError(w, http.StatusBadRequest, StreamOptionsRefusal)
		return
	}
	sc := s.script(req)
	if sc.Status != 0 {
		writeRefusal(w, sc.Status, sc.refusalBody(), sc.RetryAfter)
		return
	}
	if sc.Raw != "" {
		writeRaw(w, sc.Raw, sc.RawType)
		return
	}
	if req.Stream {
		s.stream(w, r, req, sc)
		return
	}
	s.complete(w, r, req, sc)
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	s.record(r, nil)
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	models := s.models
	s.mu.Unlock()
	type metadata struct {
		ContextLength int          `json:"context_length,omitempty"`
		Pricing       *llm.Pricing `json:"pricing,omitempty"`
		Tags          []string     `json:"tags,omitempty"`
	}
	type entry struct {
		ID       string    `json:"id"`
		Object   string    `json:"object"`
		Created  int64     `json:"created"`
		OwnedBy  string    `json:"owned_by"`
		Metadata *metadata `json:"metadata"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []entry `json:"data"`
	}{Object: "list", Data: []entry{}}
	for _, m := range models {
		e := entry{ID: m.ID, Object: "model", Created: created, OwnedBy: m.OwnedBy}
		if m.ContextLength != 0 || m.Pricing != nil || m.Vision || m.Tools || m.Reasoning {
			e.Metadata = &metadata{ContextLength: m.ContextLength, Pricing: m.Pricing}
			for _, t := range []struct {
				on  bool
				tag string
			}{{m.Vision, "vision"}, {m.Tools, "tools"}, {m.Reasoning, "reasoning"}} {
				if t.on {
					e.Metadata.Tags = append(e.Metadata.Tags, t.tag)
				}
			}
		}
		list.Data = append(list.Data, e)
	}
	writeJSON(w, http.StatusOK, list)
}

// writeJSON sends v as a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}

// writeRefusal sends a scripted refusal: status, a JSON body and the
// Retry-After header when retryAfter is set.
func writeRefusal(w http.ResponseWriter, status int, body, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// writeRaw sends a scripted 200 body as it is, of type ct
// ("application/json" when empty).
func writeRaw(w http.ResponseWriter, body, ct string) {
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	io.WriteString(w, body)
}

// writeError sends an OpenAI-shaped error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, `{"error":{"message":`+quote(msg)+`,"type":"invalid_request_error","param":null,"code":null}}`)
}
