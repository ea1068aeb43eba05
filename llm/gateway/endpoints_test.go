package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

func TestSDK_Embeddings(t *testing.T) {
	e := newEnv(t, gateway.Options{APIKeys: []string{"sk-1"}})
	c := newSDK(e, "sk-1")
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{"", openai.EmbeddingNewParamsEncodingFormatBase64} {
		t.Run("format="+string(format), func(t *testing.T) {
			resp, err := c.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
				Model:          "deepinfra/BAAI/bge-m3",
				Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first text", "second"}},
				EncodingFormat: format,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 2 || resp.Usage.PromptTokens != 3 || resp.Model != "BAAI/bge-m3" {
				t.Fatalf("answer %s", resp.RawJSON())
			}
			for i, in := range []string{"first text", "second"} {
				want := llmtest.Vector(in, llmtest.DefaultEmbeddingDimensions)
				got := resp.Data[i].Embedding
				if len(got) != len(want) || float32(got[0]) != want[0] || float32(got[len(got)-1]) != want[len(want)-1] {
					t.Errorf("vector %d = %v, want %v", i, got, want)
				}
			}
			up := e.up.Requests()[len(e.up.Requests())-1]
			if up.Path != "/v1/embeddings" || up.Request.Model != "BAAI/bge-m3" || (format != "") != (string(up.Request.Fields["encoding_format"]) == `"base64"`) {
				t.Errorf("upstream %s %s", up.Path, up.Body)
			}
		})
	}
	if log := e.log.String(); !strings.Contains(log, "path=/v1/embeddings status=200 key=key#1 model=deepinfra/BAAI/bge-m3") ||
		!strings.Contains(log, "prompt_tokens=3") {
		t.Errorf("log:\n%s", log)
	}
}

func TestServer_EmbeddingsErrors(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		answer     llmtest.Embedding
		want       int
		wantCode   string
		wantMsg    string // a part of the message
	}{
		{"ErrNoInput", `{"model":"deepinfra/bge"}`, llmtest.Embedding{}, 400, "invalid_request", `"input" is required`},
		{"ErrNoModel", `{"input":"x"}`, llmtest.Embedding{}, 400, "invalid_model", `"model"`},
		{"ErrNotServed", `{"model":"deepinfra/bge","input":"x"}`, llmtest.Embedding{Status: 404}, 404, "model_not_found",
			"provider deepinfra has no embeddings for model deepinfra/bge (HTTP 404"},
		{"ErrLlamaCppWithoutEmbeddings", `{"model":"deepinfra/bge","input":"x"}`, llmtest.Embedding{Status: 501,
			Body: `{"error":{"code":501,"message":"This server does not support embeddings. Start it with --embeddings","type":"not_supported_error"}}`},
			404, "model_not_found", "provider deepinfra has no embeddings for model deepinfra/bge (HTTP 501: This server does not support embeddings."},
		{"ErrRefused", `{"model":"deepinfra/bge","input":"x"}`, llmtest.Embedding{Status: 400, Body: `{"error":{"message":"input too long"}}`},
			400, "", "provider deepinfra: input too long"},
		{"ErrNotAList", `{"model":"deepinfra/bge","input":"x"}`, llmtest.Embedding{Raw: `{"object":"list"}`}, 502, "upstream_invalid_response",
			`not an embedding list (no "data" list)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{})
			e.up.EnqueueEmbedding(tt.answer)
			resp := e.post(t, "/v1/embeddings", tt.body, nil)
			got := readError(t, resp)
			code := ""
			if got.Error.Code != nil {
				code = *got.Error.Code
			}
			if resp.StatusCode != tt.want || code != tt.wantCode || !strings.Contains(got.Error.Message, tt.wantMsg) {
				t.Errorf("%d %s %q\nwant %d %s %q", resp.StatusCode, code, got.Error.Message, tt.want, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestSDK_Transcription(t *testing.T) {
	e := newEnv(t, gateway.Options{APIKeys: []string{"sk-1"}})
	c := newSDK(e, "sk-1")
	audio := bytes.Repeat([]byte{0x4f, 0x67, 0x67, 0x53}, 1000)
	e.up.EnqueueTranscript(llmtest.Transcript{Text: "Hello from the voice note."})
	tr, err := c.Audio.Transcriptions.New(t.Context(), openai.AudioTranscriptionNewParams{
		File:     openai.File(bytes.NewReader(audio), "voice.ogg", "audio/ogg"),
		Model:    "deepinfra/openai/whisper-large-v3-turbo",
		Language: openai.String("en"),
		Prompt:   openai.String("Palaver"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Text != "Hello from the voice note." {
		t.Errorf("text %q", tr.Text)
	}
	up := e.up.Requests()[len(e.up.Requests())-1]
	if a := up.Audio; a == nil || a.Model != "openai/whisper-large-v3-turbo" || !bytes.Equal(a.File, audio) || a.Filename != "voice.ogg" ||
		a.ContentType != "audio/ogg" || a.Language != "en" || a.Prompt != "Palaver" {
		t.Errorf("upstream form %+v", up.Audio)
	}

	// Other answer formats come back as they are.
	for _, format := range []string{"text", "verbose_json"} {
		body, ct := uploadForm(t, map[string]string{"model": "deepinfra/whisper", "response_format": format}, "a.mp3", []byte("ID3"))
		resp := e.postRaw(t, "/v1/audio/transcriptions", ct, body, "sk-1")
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(data), "transcript of a.mp3 (3 bytes)") ||
			(format == "text") != strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %d %s %q", format, resp.StatusCode, resp.Header.Get("Content-Type"), data)
		}
	}
	if log := e.log.String(); !strings.Contains(log, "path=/v1/audio/transcriptions status=200 key=key#1 model=deepinfra/openai/whisper-large-v3-turbo") {
		t.Errorf("log:\n%s", log)
	}
}

// uploadForm builds a transcription form: fields, then the file.
func uploadForm(t *testing.T, fields map[string]string, filename string, data []byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, k := range []string{"model", "language", "response_format"} {
		if v, ok := fields[k]; ok {
			mw.WriteField(k, v)
		}
	}
	if filename != "" {
		fw, _ := mw.CreateFormFile("file", filename)
		fw.Write(data)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// postRaw sends body with contentType to path, with key as a bearer token
// when set.
func (e *env) postRaw(t *testing.T, path, contentType string, body []byte, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestServer_TranscriptionErrors(t *testing.T) {
	good, goodCT := uploadForm(t, map[string]string{"model": "deepinfra/whisper"}, "a.ogg", []byte("OggS"))
	noFile, noFileCT := uploadForm(t, map[string]string{"model": "deepinfra/whisper"}, "", nil)
	noModel, noModelCT := uploadForm(t, map[string]string{"language": "en"}, "a.ogg", []byte("OggS"))
	big, bigCT := uploadForm(t, map[string]string{"model": "deepinfra/whisper"}, "a.ogg", make([]byte, gateway.MaxUpload))
	for _, tt := range []struct {
		name        string
		body        []byte
		contentType string
		answer      llmtest.Transcript
		want        int
		wantCode    string
		wantMsg     string
	}{
		{"ErrTooLarge", big, bigCT, llmtest.Transcript{}, 413, "request_too_large",
			"audio upload larger than " + strconv.Itoa(gateway.MaxUpload) + " bytes (25 MiB), the limit of a transcription request"},
		{"ErrNotMultipart", []byte(`{"model":"deepinfra/whisper"}`), "application/json", llmtest.Transcript{}, 400, "invalid_multipart",
			"must be a multipart/form-data form"},
		{"ErrNoBoundary", good, "multipart/form-data", llmtest.Transcript{}, 400, "invalid_multipart", "with a boundary"},
		{"ErrMalformed", good[:len(good)/2], goodCT, llmtest.Transcript{}, 400, "invalid_multipart", "malformed multipart form"},
		{"ErrWrongBoundary", good, "multipart/form-data; boundary=nope", llmtest.Transcript{}, 400, "invalid_multipart", "malformed multipart form"},
		{"ErrNoFile", noFile, noFileCT, llmtest.Transcript{}, 400, "invalid_multipart", `no "file" part`},
		{"ErrNoModel", noModel, noModelCT, llmtest.Transcript{}, 400, "invalid_model", `"model" field`},
		{"ErrNotServed", good, goodCT, llmtest.Transcript{Status: 404}, 404, "model_not_found",
			"provider deepinfra has no transcription for model deepinfra/whisper (HTTP 404"},
		{"ErrProviderTooLarge", good, goodCT, llmtest.Transcript{Status: 413, Body: `{"error":{"message":"Maximum content size limit exceeded"}}`},
			413, "", "provider deepinfra: Maximum content size limit exceeded"},
		{"ErrErrorIn200", good, goodCT, llmtest.Transcript{Raw: `{"error":{"message":"decoder crashed"}}`}, 502, "upstream_error",
			"provider deepinfra: decoder crashed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gateway.Options{})
			e.up.EnqueueTranscript(tt.answer)
			resp := e.postRaw(t, "/v1/audio/transcriptions", tt.contentType, tt.body, "")
			got := readError(t, resp)
			code := ""
			if got.Error.Code != nil {
				code = *got.Error.Code
			}
			if resp.StatusCode != tt.want || code != tt.wantCode || !strings.Contains(got.Error.Message, tt.wantMsg) {
				t.Errorf("%d %s %q\nwant %d %s %q", resp.StatusCode, code, got.Error.Message, tt.want, tt.wantCode, tt.wantMsg)
			}
			if tt.answer.Status == 0 && tt.answer.Raw == "" && len(e.up.Requests()) != 0 {
				t.Errorf("a refused upload went upstream")
			}
		})
	}
}

func TestSDK_ModelsCapabilities(t *testing.T) {
	e := newEnv(t, gateway.Options{Aliases: map[string]string{"r1": "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo"}})
	e.up.SetModels([]llmtest.ModelInfo{
		{ID: "deepseek-ai/DeepSeek-R1-0528-Turbo", OwnedBy: "deepseek", ContextLength: 163840,
			Pricing: &llm.Pricing{InputTokens: 0.5, OutputTokens: 2.15}, Tools: true, Reasoning: true},
		{ID: "meta-llama/Llama-3.2-11B-Vision-Instruct", ContextLength: 131072, Vision: true},
		{ID: "BAAI/bge-m3"},
	})
	c := newSDK(e, "x")
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Data {
		got = append(got, m.RawJSON())
	}
	want := []string{
		`{"id":"deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo","object":"model","created":0,"owned_by":"deepinfra","context_length":163840,"pricing":{"input_tokens":0.5,"output_tokens":2.15},"capabilities":["tools","reasoning"]}`,
		`{"id":"deepinfra/meta-llama/Llama-3.2-11B-Vision-Instruct","object":"model","created":0,"owned_by":"deepinfra","context_length":131072,"capabilities":["vision"]}`,
		`{"id":"deepinfra/BAAI/bge-m3","object":"model","created":0,"owned_by":"deepinfra"}`,
		`{"id":"r1","object":"model","created":0,"owned_by":"deepinfra","context_length":163840,"pricing":{"input_tokens":0.5,"output_tokens":2.15},"capabilities":["tools","reasoning"]}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("models:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, tt := range []struct{ name, want string }{
		{"deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo", want[0]},
		{"r1", want[3]},
		{"meta-llama/Llama-3.2-11B-Vision-Instruct", strings.Replace(want[1], `"id":"deepinfra/`, `"id":"`, 1)}, // a bare id
	} {
		m, err := c.Models.Get(t.Context(), tt.name)
		if err != nil || m.RawJSON() != tt.want {
			t.Errorf("Get(%q) = %s, %v\nwant %s", tt.name, m.RawJSON(), err, tt.want)
		}
	}
	// The name may also come unescaped, as curl sends it.
	resp, err := http.Get(e.url + "/v1/models/deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo")
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || strings.TrimSpace(string(data)) != want[0] {
		t.Errorf("GET with slashes: %d %s", resp.StatusCode, data)
	}
	resp.Body.Close()
	_, err = c.Models.Get(t.Context(), "deepinfra/no-such-model")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" ||
		apiErr.Message != `model "deepinfra/no-such-model" not found (see GET /v1/models)` {
		t.Errorf("unknown model: %v", err)
	}
}

// Every response of an API route that went upstream says, in
// Server-Timing, how its time to first byte splits between the provider
// and Palaver, and Options.Overhead gets Palaver's share once.
func TestServer_ServerTiming(t *testing.T) {
	seen := make(chan string, 16)
	e := newEnv(t, gateway.Options{Overhead: func(route string, d time.Duration) {
		seen <- fmt.Sprintf("%s:%v", route, d >= 0)
	}})
	form, ct := uploadForm(t, map[string]string{"model": "deepinfra/whisper"}, "a.ogg", []byte("OggS"))
	for _, tt := range []struct {
		name, path, body, contentType string
		route                         string // what Overhead gets; "" for nothing
	}{
		{"ChatStream", "/v1/chat/completions", streamBody, "", "chat"},
		{"Chat", "/v1/chat/completions", chatBody, "", "chat"},
		{"ResponsesStream", "/v1/responses", `{"model":"deepinfra/echo","input":"hi","stream":true}`, "", "responses"},
		{"Responses", "/v1/responses", `{"model":"deepinfra/echo","input":"hi"}`, "", "responses"},
		{"Embeddings", "/v1/embeddings", `{"model":"deepinfra/bge","input":"hi"}`, "", "embeddings"},
		{"Transcriptions", "/v1/audio/transcriptions", string(form), ct, "transcriptions"},
		{"ErrBadRequest", "/v1/responses", `{"model":"deepinfra/echo"}`, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.contentType == "" {
				tt.contentType = "application/json"
			}
			resp := e.postRaw(t, tt.path, tt.contentType, []byte(tt.body), "")
			io.ReadAll(resp.Body)
			resp.Body.Close()
			st := resp.Header.Get("Server-Timing")
			provider, palaver := timingEntry(st, "provider"), timingEntry(st, "palaver")
			if palaver < 0 || (provider >= 0) != (tt.route != "") {
				t.Errorf("Server-Timing %q", st)
			}
			var observed []string
			for len(seen) > 0 {
				observed = append(observed, <-seen)
			}
			if want := []string{tt.route + ":true"}; tt.route == "" && len(observed) != 0 ||
				tt.route != "" && strings.Join(observed, " ") != want[0] {
				t.Errorf("observed %q, want %q", observed, tt.route)
			}
		})
	}
}

// timingEntry returns the dur of a Server-Timing entry in milliseconds,
// or -1 when the header has no such entry or it is malformed.
func timingEntry(header, name string) float64 {
	for _, entry := range strings.Split(header, ",") {
		params := strings.Split(strings.TrimSpace(entry), ";")
		if params[0] != name {
			continue
		}
		for _, p := range params[1:] {
			if v, ok := strings.CutPrefix(p, "dur="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
					return f
				}
			}
		}
	}
	return -1
}
