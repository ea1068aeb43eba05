package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// MaxTranscriptionBody is the largest request Transcribe sends: the audio
// plus about a kilobyte of form fields. It is OpenAI's limit on a
// transcription request (25 MiB); DeepInfra documents none lower.
const MaxTranscriptionBody = 25 << 20

// maxTranscriptBody bounds a transcription answer. A JSON transcript of
// 25 MiB of speech is far smaller; a verbose one with timestamps may not be.
const maxTranscriptBody = 8 << 20

// ErrAudioTooLarge reports audio that would make a transcription request
// larger than MaxTranscriptionBody. No request was sent.
var ErrAudioTooLarge = errors.New("audio too large to transcribe")

// TranscriptionRequest is one audio file to transcribe.
type TranscriptionRequest struct {
	// Model is the provider's own model id (without the "provider/"
	// prefix), e.g. "openai/whisper-large-v3-turbo" on DeepInfra or
	// "whisper-1" on OpenAI.
	Model string
	// Data is the whole audio file. With the form fields it must fit in
	// MaxTranscriptionBody.
	Data []byte
	// Filename is the file's name, "voice.ogg". Servers tell the audio
	// format by its extension (flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg,
	// wav, webm), so it must have the right one.
	Filename string
	// MIME is the file's media type, "audio/ogg"; empty means
	// "application/octet-stream".
	MIME string
	// Language is the spoken language as an ISO-639-1 code ("en", "de"),
	// or empty to let the model detect it.
	Language string
	// Prompt is optional text that guides the model: the words before the
	// recording, or names and terms it should spell right.
	Prompt string
}

// Transcript is the text of a recording.
type Transcript struct {
	// Text is what was said; empty when nothing was heard.
	Text string
	// Language is the spoken language when the server says ("english" in
	// DeepInfra's verbose answer, "en" elsewhere), else empty.
	Language string
	// Duration is the recording's length when the server says, else 0.
	Duration time.Duration
}

// Transcribe turns speech into text through the provider's
// OpenAI-compatible POST /audio/transcriptions: a multipart/form-data
// request with the fields file (Filename, MIME), model, language and prompt
// when set, and response_format=json. It reads the "text" of the answer
// (of a verbose_json answer too, with its language and duration) or, for a
// text/plain answer, the whole body.
//
// The request carries the provider's headers as a chat request does: its
// API key, its configured Headers, and for a keyless DeepInfra provider
// the web-page preset, which DeepInfra may refuse for transcription (the
// *StatusError then reports NeedsKey). Errors are typed as for Complete:
// a refused request is a *StatusError with the provider's message (413
// for a file the server finds too large), a server it could not reach is
// reported by Unreachable, no answer within Timeouts.FirstByte (which
// covers the upload and the transcription) wraps ErrFirstByteTimeout, and
// an error object in a 200 answer is a *StreamError. Connect errors, 429
// and 5xx are retried as Options.MaxRetries says, sending the audio again.
//
// Bad input is refused before any request: no model, no data, no file
// name, or audio too large (ErrAudioTooLarge). The request body holds one
// copy of the audio.
func (c *Client) Transcribe(ctx context.Context, req TranscriptionRequest) (Transcript, error) {
	body, contentType, err := encodeTranscription(req)
	if err != nil {
		return Transcript{}, err
	}
	resp, err := c.doType(ctx, http.MethodPost, "/audio/transcriptions", contentType, body, false, c.retries)
	if err != nil {
		return Transcript{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTranscriptBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return Transcript{}, fmt.Errorf("llm: %s: %w", c.p.Name, ctx.Err())
		}
		return Transcript{}, fmt.Errorf("llm: %s: read transcript: %w", c.p.Name, err)
	}
	if len(data) > maxTranscriptBody {
		return Transcript{}, fmt.Errorf("llm: %s: %w: transcript longer than %d MiB", c.p.Name, ErrMalformed, maxTranscriptBody>>20)
	}
	return c.decodeTranscript(resp.Header.Get("Content-Type"), data)
}

// encodeTranscription renders req as a multipart form and returns the body
// and its Content-Type.
func encodeTranscription(req TranscriptionRequest) (body []byte, contentType string, err error) {
	switch {
	case req.Model == "":
		return nil, "", fmt.Errorf("llm: transcription request has no model")
	case len(req.Data) == 0:
		return nil, "", fmt.Errorf("llm: transcription request has no audio")
	case req.Filename == "":
		return nil, "", fmt.Errorf("llm: transcription request has no file name (servers tell the audio format by its extension)")
	case len(req.Data) > MaxTranscriptionBody:
		return nil, "", fmt.Errorf("llm: %w: %.1f MiB of audio, more than the %d MiB a transcription request may have",
			ErrAudioTooLarge, float64(len(req.Data))/(1<<20), MaxTranscriptionBody>>20)
	}
	ct := req.MIME
	if ct == "" {
		ct = "application/octet-stream"
	} else if _, _, err := mime.ParseMediaType(ct); err != nil || strings.ContainsAny(ct, "\r\n") {
		return nil, "", fmt.Errorf("llm: transcription request: bad media type %q", req.MIME)
	}

	var b bytes.Buffer
	b.Grow(len(req.Data) + 1024 + len(req.Prompt) + len(req.Filename))
	w := multipart.NewWriter(&b)
	for _, f := range [][2]string{{"model", req.Model}, {"language", req.Language}, {"prompt", req.Prompt}, {"response_format", "json"}} {
		if f[1] != "" {
			if err := w.WriteField(f[0], f[1]); err != nil {
				return nil, "", fmt.Errorf("llm: encode transcription request: %w", err)
			}
		}
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", multipart.FileContentDisposition("file", req.Filename))
	h.Set("Content-Type", ct)
	part, err := w.CreatePart(h)
	if err == nil {
		_, err = part.Write(req.Data)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, "", fmt.Errorf("llm: encode transcription request: %w", err)
	}
	if b.Len() > MaxTranscriptionBody {
		return nil, "", fmt.Errorf("llm: %w: the request would be %.1f MiB, more than %d MiB",
			ErrAudioTooLarge, float64(b.Len())/(1<<20), MaxTranscriptionBody>>20)
	}
	return b.Bytes(), w.FormDataContentType(), nil
}

// decodeTranscript reads a 200 answer to a transcription request.
func (c *Client) decodeTranscript(contentType string, data []byte) (Transcript, error) {
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "text/plain" {
		return Transcript{Text: strings.TrimSpace(string(data))}, nil
	}
	var tj struct {
		Text     *string         `json:"text"`
		Language string          `json:"language"`
		Duration float64         `json:"duration"`
		Error    json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return Transcript{}, fmt.Errorf("llm: %s: decode transcript: %w: %w", c.p.Name, ErrMalformed, err)
	}
	if len(tj.Error) > 0 && string(tj.Error) != "null" {
		return Transcript{}, newStreamError(c.p.Name, data)
	}
	if tj.Text == nil {
		return Transcript{}, fmt.Errorf("llm: %s: %w: transcript has no text", c.p.Name, ErrMalformed)
	}
	t := Transcript{Text: strings.TrimSpace(*tj.Text), Language: tj.Language}
	if tj.Duration > 0 && tj.Duration < 1e6 {
		t.Duration = time.Duration(tj.Duration * float64(time.Second))
	}
	return t, nil
}
