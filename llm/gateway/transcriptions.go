package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// Bounds of a transcription request and its answer.
const (
	// MaxUpload is the largest POST /v1/audio/transcriptions body
	// accepted: OpenAI's limit on a transcription request (25 MiB).
	MaxUpload = llm.MaxTranscriptionBody
	// maxUploadParts bounds the parts of an upload's form.
	maxUploadParts = 64
	// maxTranscript bounds a transcription answer that is not streamed.
	maxTranscript = 16 << 20
)

// formPart is one part of a multipart form, as sent.
type formPart struct {
	header textproto.MIMEHeader
	name   string
	data   []byte
}

// transcriptions serves POST /v1/audio/transcriptions: the multipart form
// goes to the provider that serves the model, with the provider's model
// id and every other part (the file, language, prompt, response_format,
// stream, …) as the client sent it, and the answer comes back as it is
// (JSON, text, SRT, VTT, or an event stream, relayed as it arrives). Keys,
// limits, usage and logs are those of chat completions; a request's usage
// is the provider's when it reports tokens, else an estimate from the
// transcript alone.
func (s *Server) transcriptions(w http.ResponseWriter, r *http.Request) {
	e := entryFrom(r)
	key, body, release, ok := s.intake(w, r, routeTranscriptions, MaxUpload, func(apiErr *apiError) {
		apiErr.Message = "audio upload larger than " + strconv.Itoa(MaxUpload) + " bytes (25 MiB), the limit of a transcription request"
		apiErr.withParam("file")
	})
	if !ok {
		return
	}
	defer release()
	parts, name, apiErr := parseUpload(r.Header.Get("Content-Type"), body)
	if apiErr != nil {
		writeError(w, r, apiErr)
		return
	}
	e.model = name
	res, ok := s.resolve(w, r, name)
	if !ok {
		return
	}
	record, ok := s.meter(w, r, key, res.Name)
	if !ok {
		return
	}
	defer record(e, 0) // the audio is not prompt text: an estimate counts the transcript only
	out, contentType, err := encodeUpload(parts, res.ID)
	if err != nil {
		writeError(w, r, newError(http.StatusBadRequest, typeInvalidRequest, "invalid_multipart", "cannot re-encode the form: %v", err))
		return
	}
	provider := res.Client.Name()
	resp, err := upstream(r, func(ctx context.Context) (*http.Response, error) {
		return res.Client.DoType(ctx, http.MethodPost, "/audio/transcriptions", contentType, out, false)
	})
	if err != nil {
		failUpstream(w, r, endpointError(r, provider, res.Name, "transcription", err), err)
		return
	}
	defer resp.Body.Close()
	s.relayTranscript(w, r, provider, resp)
}

// parseUpload reads a multipart transcription form: its parts, in order,
// and the model named by its "model" field. It needs a "file" part and a
// "model" field, and at most maxUploadParts parts.
func parseUpload(contentType string, body []byte) (parts []formPart, model string, _ *apiError) {
	bad := func(param, format string, args ...any) *apiError {
		e := newError(http.StatusBadRequest, typeInvalidRequest, "invalid_multipart", format, args...)
		if param != "" {
			e.withParam(param)
		}
		return e
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, "", bad("", "the body must be a multipart/form-data form with a boundary (a \"file\" part and a \"model\" field), not %q", contentType)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	hasFile := false
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", bad("", "malformed multipart form: %v", err)
		}
		if len(parts) == maxUploadParts {
			return nil, "", bad("", "the form has more than %d parts", maxUploadParts)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, "", bad("", "malformed multipart form: %v", err)
		}
		name := p.FormName()
		switch name {
		case "":
			return nil, "", bad("", "part %d of the form has no name (Content-Disposition: form-data; name=…)", len(parts)+1)
		case "file":
			hasFile = true
		case "model":
			model = string(data)
		}
		parts = append(parts, formPart{header: p.Header, name: name, data: data})
	}
	switch {
	case len(parts) == 0:
		return nil, "", bad("", "malformed multipart form: no part delimited by the boundary %q", params["boundary"])
	case !hasFile:
		return nil, "", bad("file", "the form has no \"file\" part (the audio)")
	case model == "":
		return nil, "", newError(http.StatusBadRequest, typeInvalidRequest, "invalid_model",
			"the form's \"model\" field must be a model name such as provider/model (see GET /v1/models)").withParam("model")
	}
	return parts, model, nil
}

// encodeUpload renders parts as a new form, the model field holding
// model, and returns the body and its Content-Type.
func encodeUpload(parts []formPart, model string) ([]byte, string, error) {
	var b bytes.Buffer
	size := 1024
	for _, p := range parts {
		size += len(p.data) + 256
	}
	b.Grow(size)
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		data := p.data
		if p.name == "model" {
			data = []byte(model)
		}
		pw, err := mw.CreatePart(p.header)
		if err != nil {
			return nil, "", err
		}
		if _, err := pw.Write(data); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return b.Bytes(), mw.FormDataContentType(), nil
}

// relayTranscript sends a transcription answer on: an event stream as it
// arrives, anything else whole (up to maxTranscript bytes) with its
// Content-Type. A JSON answer with an error object becomes a 502.
func (s *Server) relayTranscript(w http.ResponseWriter, r *http.Request, provider string, resp *http.Response) {
	e := entryFrom(r)
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "text/event-stream" {
		s.copyStream(w, r, provider, resp.Body)
		return
	}
	t := time.Now()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTranscript+1))
	e.upstream += time.Since(t)
	switch {
	case err != nil:
		failUpstream(w, r, upstreamError(r.Context(), provider, e.model, err), err)
		return
	case len(data) > maxTranscript:
		writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_error",
			"provider %s sent a transcript larger than %d bytes", provider, maxTranscript))
		return
	}
	if mt == "application/json" {
		var tj struct {
			Error json.RawMessage `json:"error"`
			Usage *struct {
				InputTokens  int `json:"input_tokens"`
				OutputTokens int `json:"output_tokens"`
				TotalTokens  int `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(data, &tj); err != nil {
			writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_invalid_response",
				"provider %s sent a transcript that is not valid JSON", provider))
			return
		}
		if len(tj.Error) > 0 && string(tj.Error) != "null" {
			writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_error", "provider %s: %s", provider, errorMessage(tj.Error)))
			return
		}
		if u := tj.Usage; u != nil && u.TotalTokens > 0 {
			e.noteUsage(llm.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens})
		}
	}
	e.answerBytes = len(data)
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(data); err != nil {
		e.gone = true
	}
}

// copyStream relays an event stream byte for byte, flushing as it
// arrives, until the provider ends it or the client hangs up. A stream
// that breaks ends the response there, as it would from the provider.
func (s *Server) copyStream(w http.ResponseWriter, r *http.Request, provider string, body io.Reader) {
	e := entryFrom(r)
	setEventStream(w.Header())
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	started := false
	for {
		t := time.Now()
		n, err := body.Read(buf)
		if !started {
			e.upstream += time.Since(t)
		}
		if n > 0 {
			started = true
			e.answerBytes += n
			if _, err := w.Write(buf[:n]); err != nil {
				e.gone = true
				return
			}
			if err := rc.Flush(); err != nil {
				e.gone = true
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				if r.Context().Err() != nil {
					e.gone = true
				} else {
					e.err = "provider " + provider + " broke the stream: " + err.Error()
				}
			}
			return
		}
	}
}
