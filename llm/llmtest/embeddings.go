package llmtest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strings"
)

// DefaultEmbeddingDimensions is the length of the vectors the server
// returns unless an Embedding says otherwise.
const DefaultEmbeddingDimensions = 8

// Embedding is how the server answers one POST /v1/embeddings request.
// The zero Embedding answers with a deterministic vector per input, of
// DefaultEmbeddingDimensions floats in [-1, 1] that depend only on the
// input's text, and usage counting the inputs' words.
type Embedding struct {
	// Dimensions is the length of each vector; 0 means
	// DefaultEmbeddingDimensions. A request's "dimensions" field wins.
	Dimensions int

	// Status, when non-zero, refuses the request with that HTTP status and
	// Body (default: an OpenAI-shaped error naming the status), and the
	// Retry-After header when RetryAfter is set: Status 404 plays a server
	// without embeddings.
	Status     int
	Body       string
	RetryAfter string
	// Raw, when not empty, is the whole body of a 200 answer, of type
	// RawType ("application/json" when empty).
	Raw, RawType string
}

// EnqueueEmbedding adds answers to the next embeddings requests, one each.
func (s *Server) EnqueueEmbedding(es ...Embedding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embeddings = append(s.embeddings, es...)
}

// SetEmbedding answers every embeddings request (once the queue is empty)
// with e; the zero Embedding restores the default answer.
func (s *Server) SetEmbedding(e Embedding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embedding = e
}

// nextEmbedding picks the answer to an embeddings request.
func (s *Server) nextEmbedding() Embedding {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.embeddings) > 0 {
		e := s.embeddings[0]
		s.embeddings = s.embeddings[1:]
		return e
	}
	return s.embedding
}

// Vector is the vector the server returns for text, n floats long.
func Vector(text string, n int) []float32 {
	v := make([]float32, n)
	h := fnv.New64a()
	io.WriteString(h, text)
	x := h.Sum64()
	for i := range v {
		x ^= x << 13 // xorshift64: the same numbers on every run
		x ^= x >> 7
		x ^= x << 17
		v[i] = float32(int64(x>>11)-(1<<52)) / (1 << 52)
	}
	return v
}

// embed serves POST /v1/embeddings. "input" may be a string, a list of
// strings, or token arrays (whose text is their numbers); encoding_format
// "base64" returns little-endian float32s in base64, as OpenAI does.
func (s *Server) embed(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req := s.record(r, body)
	if !s.authorized(w, r) {
		return
	}
	e := s.nextEmbedding()
	switch {
	case e.Status != 0:
		b := e.Body
		if b == "" {
			b = Script{Status: e.Status}.refusalBody()
		}
		writeRefusal(w, e.Status, b, e.RetryAfter)
		return
	case e.Raw != "":
		writeRaw(w, e.Raw, e.RawType)
		return
	case req.Fields == nil:
		writeError(w, http.StatusBadRequest, "the body is not a JSON object")
		return
	case req.Model == "":
		writeError(w, http.StatusBadRequest, "you must provide a model parameter")
		return
	}
	inputs, ok := embeddingInputs(req.Fields["input"])
	if !ok {
		writeError(w, http.StatusBadRequest, "'input' must be a string, a list of strings or a list of token lists")
		return
	}
	n := e.Dimensions
	if n <= 0 {
		n = DefaultEmbeddingDimensions
	}
	var dims int
	if json.Unmarshal(req.Fields["dimensions"], &dims) == nil && dims > 0 {
		n = dims
	}
	var format string
	_ = json.Unmarshal(req.Fields["encoding_format"], &format)
	data := make([]any, len(inputs))
	words := 0
	for i, in := range inputs {
		words += max(len(strings.Fields(in)), 1)
		v := Vector(in, n)
		var emb any = v
		if format == "base64" {
			b := make([]byte, 0, 4*n)
			for _, f := range v {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": words, "total_tokens": words},
	})
}

// embeddingInputs reads "input": a string, a list of strings, a list of
// tokens or a list of token lists.
func embeddingInputs(raw json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return many, true
	}
	var tokens []json.Number
	if json.Unmarshal(raw, &tokens) == nil && len(tokens) > 0 {
		return []string{joinNumbers(tokens)}, true
	}
	var lists [][]json.Number
	if json.Unmarshal(raw, &lists) == nil && len(lists) > 0 {
		out := make([]string, len(lists))
		for i, l := range lists {
			out[i] = joinNumbers(l)
		}
		return out, true
	}
	return nil, false
}

func joinNumbers(ns []json.Number) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
	}
	return strings.Join(s, " ")
}
