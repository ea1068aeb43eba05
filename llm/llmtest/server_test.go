package llmtest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

func newServer(t *testing.T) *llmtest.Server {
	t.Helper()
	s := llmtest.NewServer()
	t.Cleanup(s.Close)
	return s
}

func TestTokens(t *testing.T) {
	for _, text := range []string{"", "one", "echo: hello  world\n", " lead", "a b c"} {
		if got := strings.Join(llmtest.Tokens(text), ""); got != text {
			t.Errorf("Tokens(%q) joined = %q", text, got)
		}
	}
	if got := llmtest.Tokens("a b c"); len(got) != 3 {
		t.Errorf("Tokens(\"a b c\") = %q, want 3 tokens", got)
	}
}

func TestServer_EchoAndQueue(t *testing.T) {
	s := newServer(t)
	s.Enqueue(llmtest.Script{Content: []string{"first"}})
	c := llm.NewClient(s.Provider("fake"), llm.Options{})
	req := llm.Request{Model: "echo", Messages: []llm.Message{{Role: llm.RoleUser, Content: "ping pong"}}}
	for i, want := range []string{"first", "echo: ping pong", "echo: ping pong"} {
		var comp llm.Completion
		var err error
		if i < 2 {
			comp, err = c.Complete(t.Context(), req)
		} else {
			// The same answer, streamed.
			for d, e := range c.Stream(t.Context(), req) {
				comp.Content += d.Content
				err = e
			}
		}
		if err != nil || comp.Content != want {
			t.Errorf("answer %d = %q, %v; want %q", i, comp.Content, err, want)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/v1/chat/completions" ||
		reqs[0].Request.Model != "echo" || reqs[0].Request.Messages[0].Content != "ping pong" || reqs[0].Request.Stream ||
		!reqs[2].Request.Stream || !reqs[2].Request.IncludeUsage {
		t.Errorf("recorded %d requests: %+v", len(reqs), reqs)
	}
}

func TestServer_Models(t *testing.T) {
	s := newServer(t)
	resp, err := http.Get(s.URL + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID       string          `json:"id"`
			Object   string          `json:"object"`
			Metadata json.RawMessage `json:"metadata"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 3 || list.Data[0].Object != "model" ||
		string(list.Data[0].Metadata) != `{"context_length":32768,"pricing":{"input_tokens":1,"output_tokens":3}}` ||
		string(list.Data[2].Metadata) != "null" {
		t.Errorf("got %+v", list)
	}
}

func TestServer_RequireKeyAndRoutes(t *testing.T) {
	s := newServer(t)
	s.RequireKey("k")
	for _, tt := range []struct {
		method, path, auth string
		want               int
	}{
		{http.MethodGet, "/models", "", 401},
		{http.MethodGet, "/models", "Bearer k", 200},
		{http.MethodPost, "/chat/completions", "Bearer x", 401},
		{http.MethodGet, "/nowhere", "Bearer k", 404},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, s.URL+tt.path, strings.NewReader(`{}`))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.want)
		}
	}
}

func TestServer_Raw(t *testing.T) {
	s := newServer(t)
	for _, tt := range []struct {
		name, raw, rawType string
		stream             bool
		wantType           string
	}{
		{"NotJSON", `{"choices":[`, "", false, "application/json"},
		{"SSEToNonStream", "data: {}\n\n", "text/event-stream", false, "text/event-stream"},
		{"GarbageToStream", "<html>", "text/html", true, "text/html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.Enqueue(llmtest.Script{Raw: tt.raw, RawType: tt.rawType})
			body := `{"model":"echo","messages":[]}`
			if tt.stream {
				body = `{"model":"echo","messages":[],"stream":true}`
			}
			resp, err := http.Post(s.URL+"/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.wantType || string(got) != tt.raw {
				t.Errorf("%d %q %q, want 200 %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), got, tt.wantType, tt.raw)
			}
		})
	}
}

// testPNG is a 4×3 image whose pixels say where they are.
func testPNG(t *testing.T) ([]byte, *image.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	for y := range 3 {
		for x := range 4 {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(60 * x), G: uint8(100 * y), B: 200, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), img
}

func TestServer_ContentParts(t *testing.T) {
	s := newServer(t)
	data, want := testPNG(t)
	c := llm.NewClient(s.Provider("fake"), llm.Options{})
	req := llm.Request{Model: "echo", Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "be brief"},
		{Role: llm.RoleUser, Content: "what is this?", Images: []llm.Image{{MIME: "image/png", Data: data}}},
	}}
	var answer string
	for d, err := range c.Stream(t.Context(), req) {
		if err != nil {
			t.Fatal(err)
		}
		answer += d.Content
	}
	if answer != "echo: what is this?" {
		t.Errorf("answer %q", answer)
	}
	got := s.Requests()[0].Request
	if len(got.Parts) != 2 || got.Parts[0] != nil || len(got.Parts[1]) != 2 {
		t.Fatalf("parts %+v", got.Parts)
	}
	if p := got.Parts[1][0]; p.Type != "text" || p.Text != "what is this?" {
		t.Errorf("first part %+v, want the text", p)
	}
	if p := got.Parts[1][1]; p.Type != "image_url" || !strings.HasPrefix(p.URL, "data:image/png;base64,") || p.Image.MIME != "image/png" {
		t.Errorf("second part %+v, want the image", p)
	}
	if m := got.Messages[1]; m.Content != "what is this?" || len(m.Images) != 1 || got.Messages[0].Content != "be brief" {
		t.Errorf("messages %+v", got.Messages)
	}
	ims := got.Images()
	if len(ims) != 1 {
		t.Fatalf("%d images, want 1", len(ims))
	}
	img, err := png.Decode(bytes.NewReader(ims[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != want.Bounds() {
		t.Fatalf("bounds %v, want %v", img.Bounds(), want.Bounds())
	}
	for y := range 3 {
		for x := range 4 {
			if g, w := color.NRGBAModel.Convert(img.At(x, y)), want.At(x, y); g != w {
				t.Errorf("pixel (%d,%d) = %v, want %v", x, y, g, w)
			}
		}
	}
}

// Content parts the fake reads without being asked to serve them: remote
// URLs, a bare string image_url, detail, unknown part types; and the data:
// URLs it refuses.
func TestServer_ContentParts_Shapes(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name    string
		content string
		want    int
		check   func(t *testing.T, r llmtest.Request)
	}{
		{"RemoteURLWithDetail", `[{"type":"image_url","image_url":{"url":"https://example.com/cat.jpg","detail":"low"}}]`, 200,
			func(t *testing.T, r llmtest.Request) {
				if p := r.Parts[0][0]; p.URL != "https://example.com/cat.jpg" || p.Detail != "low" || p.Image.Data != nil || len(r.Images()) != 0 {
					t.Errorf("part %+v", p)
				}
			}},
		{"BareStringURL", `[{"type":"text","text":"a"},{"type":"text","text":"b"},{"type":"image_url","image_url":"data:image/gif;base64,R0lGOA=="}]`, 200,
			func(t *testing.T, r llmtest.Request) {
				if m := r.Messages[0]; m.Content != "a\nb" || len(m.Images) != 1 || string(m.Images[0].Data) != "GIF8" || m.Images[0].MIME != "image/gif" {
					t.Errorf("message %+v", m)
				}
			}},
		{"UnknownType", `[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]`, 200,
			func(t *testing.T, r llmtest.Request) {
				if p := r.Parts[0][0]; p.Type != "input_audio" {
					t.Errorf("part %+v", p)
				}
			}},
		{"ErrBadBase64", `[{"type":"image_url","image_url":{"url":"data:image/png;base64,!!!"}}]`, 400, nil},
		{"ErrNotBase64", `[{"type":"image_url","image_url":{"url":"data:image/png,raw"}}]`, 400, nil},
		{"ErrNotImage", `[{"type":"image_url","image_url":{"url":"data:text/plain;base64,aGk="}}]`, 400, nil},
		{"ErrNoURL", `[{"type":"image_url","image_url":{}}]`, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(s.Requests())
			body := `{"model":"echo","messages":[{"role":"user","content":` + tt.content + `}]}`
			resp, err := http.Post(s.URL+"/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, got, tt.want)
			}
			if tt.want == 400 && !strings.Contains(string(got), "Invalid image_url in messages[0].content[0]") {
				t.Errorf("body %s", got)
			}
			if tt.check != nil {
				tt.check(t, s.Requests()[n].Request)
			}
		})
	}
}

func TestServer_RefuseImages(t *testing.T) {
	s := newServer(t)
	s.SetModelScript("text-only", llmtest.RefuseImages)
	c := llm.NewClient(s.Provider("fake"), llm.Options{})
	img := []llm.Image{{MIME: "image/jpeg", Data: []byte{0xff, 0xd8}}}
	for _, tt := range []struct {
		model  string
		images []llm.Image
		want   int // 0: answered
	}{
		{"text-only", img, 400},
		{"text-only", nil, 0},
		{"echo", img, 0},
	} {
		_, err := c.Complete(t.Context(), llm.Request{Model: tt.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi", Images: tt.images}}})
		se, _ := errors.AsType[*llm.StatusError](err)
		switch {
		case tt.want == 0 && err != nil:
			t.Errorf("%s with %d images: %v", tt.model, len(tt.images), err)
		case tt.want != 0 && (se == nil || se.StatusCode != tt.want || !strings.Contains(se.Message, "image_url is only supported by certain models")):
			t.Errorf("%s with %d images: err = %v, want a %d", tt.model, len(tt.images), err, tt.want)
		}
	}
	s.SetModelScript("text-only", nil)
	if _, err := c.Complete(t.Context(), llm.Request{Model: "text-only", Messages: []llm.Message{{Role: llm.RoleUser, Images: img}}}); err != nil {
		t.Errorf("after SetModelScript(nil): %v", err)
	}
}

func TestServer_ModelsVision(t *testing.T) {
	s := newServer(t)
	s.SetModels([]llmtest.ModelInfo{{ID: "meta-llama/Llama-3.2-11B-Vision-Instruct", Vision: true}, {ID: "plain"}})
	c := llm.NewClient(s.Provider("fake"), llm.Options{})
	ms, err := c.Models(t.Context())
	if err != nil || len(ms) != 2 || !ms[0].Vision || ms[1].Vision {
		t.Fatalf("models %+v, %v", ms, err)
	}
	resp, err := http.Get(s.URL + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"metadata":{"tags":["vision"]}`) || !strings.Contains(string(body), `"metadata":null`) {
		t.Errorf("list %s", body)
	}
}

// form is a multipart transcription form; a file with an empty name is
// left out.
func form(t *testing.T, fields map[string]string, filename string, file []byte) (body []byte, contentType string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if filename != "" {
		fw, err := w.CreateFormFile("file", filename)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(file)
	}
	w.Close()
	return b.Bytes(), w.FormDataContentType()
}

func TestServer_Transcriptions(t *testing.T) {
	model := map[string]string{"model": "whisper-1"}
	audio := []byte("ID3 some mp3")
	tests := []struct {
		name       string
		fields     map[string]string
		filename   string
		file       []byte
		notForm    bool
		script     *llmtest.Transcript
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"JSON", model, "a.mp3", audio, false, nil, 200, "application/json", `{"text":"transcript of a.mp3 (12 bytes)"}`},
		{"Text", map[string]string{"model": "m", "response_format": "text"}, "a.MP3", audio, false,
			&llmtest.Transcript{Text: "hello"}, 200, "text/plain; charset=utf-8", "hello\n"},
		{"Verbose", map[string]string{"model": "m", "response_format": "verbose_json"}, "a.wav", audio, false,
			&llmtest.Transcript{Text: "hello", Duration: 8470 * time.Millisecond}, 200, "application/json",
			`{"duration":8.47,"language":"english","segments":[],"task":"transcribe","text":"hello"}`},
		{"Scripted503", model, "a.ogg", audio, false, &llmtest.Transcript{Status: 503, RetryAfter: "2"}, 503, "application/json",
			`{"error":{"message":"Service Unavailable","type":"server_error","param":null,"code":null}}`},
		{"ErrNotMultipart", nil, "", nil, true, nil, 400, "application/json", "Could not parse multipart form"},
		{"ErrNoFile", model, "", nil, false, nil, 400, "application/json", "file: field required"},
		{"ErrNoModel", nil, "a.mp3", audio, false, nil, 400, "application/json", "you must provide a model parameter"},
		{"ErrFormat", model, "a.aac", audio, false, nil, 400, "application/json", "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"},
		{"ErrEmpty", model, "a.mp3", []byte{}, false, nil, 400, "application/json", "Audio file is too short"},
		{"ErrTooLarge", model, "a.mp3", make([]byte, 2048), false, nil, 413, "application/json",
			"Maximum content size limit (2000) exceeded ("},
	}
	s := newServer(t)
	s.SetTranscriptionLimit(2000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := form(t, tt.fields, tt.filename, tt.file)
			if tt.notForm {
				body, ct = []byte(`{"model":"m"}`), "application/json"
			}
			if tt.script != nil {
				s.EnqueueTranscript(*tt.script)
			}
			n := len(s.Requests())
			resp, err := http.Post(s.URL+"/audio/transcriptions", ct, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != tt.wantType || !strings.Contains(string(got), tt.wantBody) {
				t.Errorf("%d %q %s; want %d %q with %s", resp.StatusCode, resp.Header.Get("Content-Type"), got, tt.wantStatus, tt.wantType, tt.wantBody)
			}
			if tt.script != nil && tt.script.RetryAfter != resp.Header.Get("Retry-After") {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			recs := s.Requests()[n:]
			if len(recs) != 1 || recs[0].Path != "/v1/audio/transcriptions" || recs[0].Body != nil {
				t.Fatalf("recorded %+v", recs)
			}
			if a := recs[0].Audio; tt.wantStatus == 200 && (a == nil || a.Filename != tt.filename || !bytes.Equal(a.File, tt.file) || a.Model != tt.fields["model"]) {
				t.Errorf("recorded form %+v", a)
			}
		})
	}
	t.Run("RequireKey", func(t *testing.T) {
		s.RequireKey("k")
		defer s.RequireKey("")
		body, ct := form(t, model, "a.mp3", audio)
		resp, err := http.Post(s.URL+"/audio/transcriptions", ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
}
