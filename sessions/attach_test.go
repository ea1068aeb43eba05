package sessions_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/attach"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// files is a sessions.Fetcher serving files from memory by Ref, as an
// adapter serves them from its platform: within the limit, honouring ctx.
type files struct {
	mu      sync.Mutex
	data    map[string][]byte
	hold    map[string]chan struct{} // a fetch of the ref waits for it
	fetched []string                 // refs asked for, in order
}

func newFiles() *files {
	return &files{data: make(map[string][]byte), hold: make(map[string]chan struct{})}
}

func (f *files) Fetch(ctx context.Context, a sessions.Attachment, limit int64) ([]byte, error) {
	f.mu.Lock()
	f.fetched = append(f.fetched, a.Ref)
	data, ok := f.data[a.Ref]
	hold := f.hold[a.Ref]
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, fmt.Errorf("files: fetch %s: %w", a.Ref, ctx.Err())
		}
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("files: fetch %s: 404 not found", a.Ref)
	case int64(len(data)) > limit:
		return nil, fmt.Errorf("files: fetch %s: %w", a.Ref, &attach.TooLargeError{Size: int64(len(data)), Limit: limit})
	}
	return bytes.Clone(data), nil
}

// add serves data as ref and returns the attachment a platform would
// send for it.
func (f *files) add(ref string, kind sessions.AttachmentKind, name, mime string, data []byte) sessions.Attachment {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[ref] = data
	return sessions.Attachment{Kind: kind, Name: name, MIME: mime, Size: int64(len(data)), Ref: ref}
}

func (f *files) refs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fetched)
}

// fileRig is a Manager on a real bbolt file, an llmtest upstream for
// chats (provider "fake") and one for transcriptions (provider "speech",
// model "whisper"), with no retries, and files served from memory.
type fileRig struct {
	t      *testing.T
	up     *llmtest.Server
	speech *llmtest.Server
	path   string
	cfg    sessions.Config
	files  *files
	store  *sessions.BoltStore
	m      *sessions.Manager
}

func newFileRig(t *testing.T, cfg sessions.Config) *fileRig {
	t.Helper()
	up, speech := llmtest.NewServer(), llmtest.NewServer()
	t.Cleanup(up.Close)
	t.Cleanup(speech.Close)
	speech.SetModels(nil)
	if cfg.DefaultModel == "" {
		cfg.DefaultModel = "fake/echo"
	}
	r := &fileRig{t: t, up: up, speech: speech, path: filepath.Join(t.TempDir(), "palaver.db"), cfg: cfg, files: newFiles()}
	r.open()
	t.Cleanup(r.close)
	return r
}

func (r *fileRig) open() {
	r.t.Helper()
	store, err := sessions.OpenBolt(r.path, sessions.BoltOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	opts := llm.Options{MaxRetries: -1}
	clients := []*llm.Client{llm.NewClient(r.up.Provider("fake"), opts), llm.NewClient(r.speech.Provider("speech"), opts)}
	router, err := llm.NewRouter(clients, "fake", nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.store = store
	r.m = sessions.NewManager(r.cfg, store, router, nil, nil)
	r.m.SetFetcher(key.Platform, r.files)
}

func (r *fileRig) close() {
	if r.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.m.Close(ctx)
	r.store.Close()
	r.m = nil
}

// send hands a message to the Manager and waits for its answer.
func (r *fileRig) send(text string, atts ...sessions.Attachment) (*reply, *sessions.Turn) {
	r.t.Helper()
	rep := &reply{}
	turn, err := r.m.Handle(r.t.Context(), sessions.Message{Key: key, Author: alice, Text: text, Attachments: atts}, rep)
	if err != nil {
		r.t.Fatalf("Handle(%q): %v", text, err)
	}
	wait(r.t, turn)
	return rep, turn
}

func (r *fileRig) retry() *reply {
	r.t.Helper()
	rep := &reply{}
	turn, err := r.m.Retry(r.t.Context(), key, rep)
	if err != nil {
		r.t.Fatal(err)
	}
	wait(r.t, turn)
	return rep
}

// chats returns the chat requests the upstream received.
func (r *fileRig) chats() []llmtest.Request {
	var out []llmtest.Request
	for _, rec := range r.up.Requests() {
		if strings.HasSuffix(rec.Path, "/chat/completions") {
			out = append(out, rec.Request)
		}
	}
	return out
}

// transcriptions returns the transcription requests the upstream received.
func (r *fileRig) transcriptions() []llmtest.AudioRequest {
	var out []llmtest.AudioRequest
	for _, rec := range r.speech.Requests() {
		if rec.Audio != nil {
			out = append(out, *rec.Audio)
		}
	}
	return out
}

// lastUser is the last user message of the last chat request.
func (r *fileRig) lastUser() llm.Message {
	r.t.Helper()
	chats := r.chats()
	if len(chats) == 0 {
		r.t.Fatal("no chat request")
	}
	msgs := chats[len(chats)-1].Messages
	return msgs[len(msgs)-1]
}

func (r *fileRig) history() []sessions.Entry {
	r.t.Helper()
	h, err := r.store.History(r.t.Context(), key, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

// gradient is a w×h PNG whose red grows left to right and green top to
// bottom: smooth, so that any good scaling keeps each pixel's colour.
func gradient(t *testing.T, w, h int) []byte {
	t.Helper()
	im := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			im.Set(x, y, color.NRGBA{R: uint8(x * 255 / (w - 1)), G: uint8(y * 255 / (h - 1)), B: 100, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, im); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// assertGradient checks that data is gradient(w, h) as it was sent,
// scaled to w×h.
func assertGradient(t *testing.T, data []byte, w, h int) {
	t.Helper()
	im, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode the image sent upstream: %v", err)
	}
	if b := im.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("image sent upstream is %v, want %d×%d", b.Size(), w, h)
	}
	var sum, n, worst int
	for y := 0; y < h; y += 7 {
		for x := 0; x < w; x += 7 {
			r, g, b, _ := im.At(x, y).RGBA()
			want := [3]int{x * 255 / (w - 1), y * 255 / (h - 1), 100}
			for i, got := range [3]int{int(r >> 8), int(g >> 8), int(b >> 8)} {
				d := max(got-want[i], want[i]-got)
				sum += d
				worst = max(worst, d)
				n++
			}
		}
	}
	if mean := float64(sum) / float64(n); mean > 3 || worst > 24 {
		t.Errorf("pixels sent upstream differ from the picture scaled: mean %.2f, worst %d (want ≤ 3 and ≤ 24)", mean, worst)
	}
}

// wavSilence is a 16-bit mono 8 kHz WAV file of d of silence.
func wavSilence(d time.Duration) []byte {
	data := make([]byte, int(d.Seconds()*16000))
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(36+len(data)))
	out = append(out, "WAVEfmt "...)
	out = binary.LittleEndian.AppendUint32(out, 16)
	out = binary.LittleEndian.AppendUint16(out, 1)     // PCM
	out = binary.LittleEndian.AppendUint16(out, 1)     // mono
	out = binary.LittleEndian.AppendUint32(out, 8000)  // samples a second
	out = binary.LittleEndian.AppendUint32(out, 16000) // bytes a second
	out = binary.LittleEndian.AppendUint16(out, 2)
	out = binary.LittleEndian.AppendUint16(out, 16)
	out = append(out, "data"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	return append(out, data...)
}

// pdfDoc is a one-page PDF holding lines, written with fpdf.
func pdfDoc(t *testing.T, lines ...string) []byte {
	t.Helper()
	doc := fpdf.New("P", "mm", "A4", "")
	doc.AddPage()
	doc.SetFont("Helvetica", "", 12)
	for _, l := range lines {
		doc.Cell(0, 8, l)
		doc.Ln(8)
	}
	var b bytes.Buffer
	if err := doc.Output(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageParts counts the image_url parts of a request.
func imageParts(req llmtest.Request) int {
	n := 0
	for _, parts := range req.Parts {
		for _, p := range parts {
			if p.Type == "image_url" {
				n++
			}
		}
	}
	return n
}

func TestManager_Photo(t *testing.T) {
	r := newFileRig(t, sessions.Config{Vision: []string{"fake/ECHO"}})
	photo := r.files.add("photo-1", sessions.KindImage, "", "image/png", gradient(t, 2000, 1000))
	rep, _ := r.send("what is this?", photo)

	last := r.lastUser()
	if last.Content != "what is this?" || len(last.Images) != 1 {
		t.Fatalf("upstream got %q with %d images, want the question and the picture", last.Content, len(last.Images))
	}
	chats := r.chats()
	parts := chats[len(chats)-1].Parts
	if p := parts[len(parts)-1]; len(p) != 2 || p[0].Type != "text" || p[1].Type != "image_url" || !strings.HasPrefix(p[1].URL, "data:image/jpeg;base64,") {
		t.Fatalf("parts = %+v, want a text part and an image_url part with a JPEG data: URL", p)
	}
	assertGradient(t, last.Images[0].Data, 1568, 784)
	if v := rep.last(); v.Content != "echo: what is this?" || v.Status != "" {
		t.Errorf("answer shown = %+v", v)
	}

	// The picture is in the history, stored once, and read back for the
	// next question.
	h := r.history()
	if len(h) != 2 || len(h[0].Images) != 1 || h[0].Images[0].Width != 1568 || len(h[0].Attachments) != 0 {
		t.Fatalf("history = %+v", h)
	}
	stored, err := r.store.Blob(t.Context(), h[0].Images[0].SHA256)
	if err != nil || !bytes.Equal(stored, last.Images[0].Data) {
		t.Fatalf("stored picture: %d bytes, %v; want what was sent", len(stored), err)
	}
	r.send("and the colours?")
	req := r.chats()[1]
	if n := imageParts(req); n != 1 || !bytes.Equal(req.Messages[len(req.Messages)-3].Images[0].Data, stored) {
		t.Errorf("second request has %d images, want the first question's picture from the store", n)
	}
}

func TestManager_TextFiles(t *testing.T) {
	r := newFileRig(t, sessions.Config{})
	pdf := r.files.add("doc", sessions.KindFile, "minutes.pdf", "application/pdf", pdfDoc(t, "The budget was approved.", "Next meeting on Friday."))
	code := r.files.add("src", sessions.KindFile, "main.go", "text/plain", []byte("package main\n\nfunc main() { println(\"hi\") }\n"))
	rep, _ := r.send("", pdf, code)

	got := r.lastUser().Content
	for _, want := range []string{"minutes.pdf", "PDF", "The budget was approved.", "Next meeting on Friday.", "main.go", "Go source", `println("hi")`} {
		if !strings.Contains(got, want) {
			t.Errorf("the model read %q, want it to contain %q", got, want)
		}
	}
	if v := rep.last(); !strings.HasPrefix(v.Content, "echo: File: minutes.pdf") {
		t.Errorf("answer shown = %+v", v)
	}
	h := r.history()
	if h[0].Text != "" || !strings.Contains(h[0].Inline, "The budget was approved.") || len(h[0].Attachments) != 0 {
		t.Errorf("question in the history = %+v, want the files' text in Inline", h[0])
	}
}

func TestManager_Voice(t *testing.T) {
	r := newFileRig(t, sessions.Config{Transcription: "speech/whisper"})
	r.speech.EnqueueTranscript(llmtest.Transcript{Text: "What is the capital of France?"})
	voice := r.files.add("voice-1", sessions.KindVoice, "", "audio/wav", wavSilence(time.Second))
	rep, _ := r.send("", voice)

	ts := r.transcriptions()
	if len(ts) != 1 || ts[0].Model != "whisper" || !strings.HasSuffix(ts[0].Filename, ".wav") || len(ts[0].File) != len(wavSilence(time.Second)) {
		t.Fatalf("transcription requests = %+v, want one of the voice message", ts)
	}
	if got := r.lastUser().Content; got != "What is the capital of France?" {
		t.Errorf("the model read %q, want the transcript", got)
	}
	v := rep.last()
	if want := "> 🎤 What is the capital of France?\n\necho: What is the capital of France?"; v.Content != want || !v.Final {
		t.Errorf("answer shown = %q, want %q", v.Content, want)
	}
	h := r.history()
	if len(h) != 2 || h[0].Inline != "What is the capital of France?" || h[1].Text != "echo: What is the capital of France?" {
		t.Errorf("history = %+v, want the transcript read and the answer without the quote", h)
	}
}

func TestManager_VoiceTranscriptionDown(t *testing.T) {
	r := newFileRig(t, sessions.Config{Transcription: "speech/whisper"})
	r.speech.SetTranscript(llmtest.Transcript{Status: 503})
	voice := r.files.add("voice-1", sessions.KindVoice, "voice.wav", "audio/wav", wavSilence(time.Second))
	rep, turn := r.send("", voice)

	if n := len(r.chats()); n != 0 {
		t.Errorf("%d chat requests for a voice message that was not transcribed, want none", n)
	}
	v := rep.last()
	if !v.Final || !strings.Contains(v.Status, "📎 voice.wav: It was not transcribed.") || !strings.Contains(v.Status, "server error (503)") {
		t.Errorf("view = %+v, want a note saying the provider failed", v)
	}
	if _, status, err := turn.Result(); status != "failed" || err != sessions.ErrUnread {
		t.Errorf("Result = %q, %v", status, err)
	}
	h := r.history()
	if len(h) != 2 || len(h[0].Attachments) != 1 || h[0].Attachments[0].Ref != "voice-1" {
		t.Fatalf("history = %+v, want the voice message kept for /retry", h)
	}
	// Later questions read it as not transcribed.
	r.send("hello?")
	if msgs := r.chats()[0].Messages; msgs[0].Content != "[voice message, not transcribed]" {
		t.Errorf("the model read the voice message as %q", msgs[0].Content)
	}

	// The provider is back: /retry of the last question; then of the
	// voice message, once the question after it is gone.
	r.speech.SetTranscript(llmtest.Transcript{Text: "Remind me to call Bob."})
	if _, err := r.store.DeleteLast(t.Context(), key, func(e sessions.Entry) bool { return strings.Contains(e.Text, "hello?") }); err != nil {
		t.Fatal(err)
	}
	v = r.retry().last()
	if want := "> 🎤 Remind me to call Bob.\n\necho: Remind me to call Bob."; v.Content != want || v.Status != "" {
		t.Errorf("retry shows %+v, want %q", v, want)
	}
	h = r.history()
	if len(h) != 2 || len(h[0].Attachments) != 0 || h[0].Inline != "Remind me to call Bob." || h[1].Text != "echo: Remind me to call Bob." {
		t.Errorf("history after retry = %+v", h)
	}
	if got := r.files.refs(); !slices.Equal(got, []string{"voice-1", "voice-1"}) {
		t.Errorf("fetched %v, want the voice message twice", got)
	}
}

func TestManager_AttachmentNotes(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name    string
		cfg     sessions.Config
		noFetch bool // no Fetcher registered
		text    string
		files   func(f *files) []sessions.Attachment
		note    string   // in the final view's status
		read    string   // what the model read; "" for no request
		fetched []string // refs downloaded
	}{
		{name: "TooLargeDeclared", text: "summarise this",
			files: func(f *files) []sessions.Attachment {
				a := f.add("big", sessions.KindFile, "dump.txt", "text/plain", []byte("small really"))
				a.Size = 50 * mb
				return []sessions.Attachment{a}
			},
			note: "📎 dump.txt: This file is 50 MB; Palaver reads files up to 20 MB.",
			read: "summarise this\n\n[file dump.txt, not read]"},
		{name: "TooLargeDownload", cfg: sessions.Config{MaxAttachmentBytes: 1024},
			files: func(f *files) []sessions.Attachment {
				a := f.add("big", sessions.KindFile, "log.txt", "text/plain", bytes.Repeat([]byte("x"), 4096))
				a.Size = 0 // not declared
				return []sessions.Attachment{a}
			},
			note: "📎 log.txt: This file is 4 KB; Palaver reads files up to 1 KB.", fetched: []string{"big"}},
		{name: "CorruptImage", text: "",
			files: func(f *files) []sessions.Attachment {
				return []sessions.Attachment{f.add("bad", sessions.KindImage, "", "image/jpeg", append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), bytes.Repeat([]byte{0x42}, 300)...))}
			},
			note: "📎 picture: This file could not be read: it looks damaged or incomplete.", fetched: []string{"bad"}},
		{name: "Sticker", text: "look",
			files: func(f *files) []sessions.Attachment {
				return []sessions.Attachment{{Kind: sessions.KindImage, Ref: "sticker-1", Unsupported: "stickers"}}
			},
			note: "📎 picture: Palaver can't read this file (stickers).", read: "look\n\n[stickers: not readable]"},
		{name: "NoTranscriptionModel",
			files: func(f *files) []sessions.Attachment {
				return []sessions.Attachment{f.add("v", sessions.KindVoice, "", "audio/ogg", wavSilence(time.Second))}
			},
			note: "📎 voice message: It was not transcribed. Palaver can't turn voice messages into text here: no transcription model is configured (models.transcription)."},
		{name: "TranscriptionProviderMissing", cfg: sessions.Config{Transcription: "nowhere/whisper"}, text: "listen",
			files: func(f *files) []sessions.Attachment {
				return []sessions.Attachment{f.add("v", sessions.KindVoice, "", "audio/ogg", wavSilence(time.Second))}
			},
			note: "📎 voice message: It was not transcribed. Palaver can't turn voice messages into text here", read: "listen\n\n[voice message, not transcribed]"},
		{name: "NoFetcher", noFetch: true, text: "see attached",
			files: func(f *files) []sessions.Attachment {
				return []sessions.Attachment{f.add("doc", sessions.KindFile, "a.txt", "text/plain", []byte("hello"))}
			},
			note: "📎 a.txt: Palaver can't download files sent here.", read: "see attached\n\n[file a.txt, not read]"},
		{name: "FetchFails", text: "read it",
			files: func(f *files) []sessions.Attachment {
				return []sessions.Attachment{{Kind: sessions.KindFile, Name: "gone.txt", Ref: "expired-link"}}
			},
			note: "📎 gone.txt: This file could not be downloaded or read.", read: "read it\n\n[file gone.txt, not read]", fetched: []string{"expired-link"}},
		{name: "TextCut", cfg: sessions.Config{MaxFileChars: 100},
			files: func(f *files) []sessions.Attachment {
				return []sessions.Attachment{f.add("long", sessions.KindFile, "long.txt", "text/plain", bytes.Repeat([]byte("abcd "), 100))}
			},
			note: "📎 long.txt: ", read: "File: long.txt", fetched: []string{"long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newFileRig(t, tt.cfg)
			if tt.noFetch {
				r.m.SetFetcher(key.Platform, nil)
			}
			rep, _ := r.send(tt.text, tt.files(r.files)...)
			v := rep.last()
			if !v.Final || !strings.Contains(v.Status, tt.note) {
				t.Errorf("final view = %+v, want a note %q", v, tt.note)
			}
			switch chats := r.chats(); {
			case tt.read == "" && len(chats) != 0:
				t.Errorf("%d chat requests, want none (nothing to ask)", len(chats))
			case tt.read != "" && (len(chats) != 1 || !strings.HasPrefix(r.lastUser().Content, tt.read)):
				t.Errorf("the model read %+v, want %q", chats, tt.read)
			}
			if got := r.files.refs(); !slices.Equal(got, tt.fetched) {
				t.Errorf("fetched %q, want %q", got, tt.fetched)
			}
			if h := r.history(); len(h) != 2 || h[0].Role != llm.RoleUser {
				t.Errorf("history = %+v, want the question and its answer", h)
			}
		})
	}
}

func TestManager_ImagesToNonVisionModel(t *testing.T) {
	r := newFileRig(t, sessions.Config{Vision: []string{"*pixtral*"}})
	r.up.SetModels(append(llmtest.DefaultModels(),
		llmtest.ModelInfo{ID: "meta-llama/Llama-3.2-11B-Vision-Instruct", Vision: true},
		llmtest.ModelInfo{ID: "mistralai/Pixtral-12B"}))
	r.up.SetModelScript("echo", llmtest.RefuseImages)
	photo := r.files.add("p", sessions.KindImage, "", "image/png", gradient(t, 64, 32))

	// With text: asked without the picture, and told which models see.
	rep, _ := r.send("describe it", photo)
	if req := r.chats()[0]; imageParts(req) != 0 || r.lastUser().Content != "describe it\n\n[image]" {
		t.Errorf("the model read %q with %d images, want the text and \"[image]\"", r.lastUser().Content, imageParts(req))
	}
	v := rep.last()
	if !strings.Contains(v.Status, "📎 fake/echo can't see pictures. Models here that can: fake/meta-llama/Llama-3.2-11B-Vision-Instruct, fake/mistralai/Pixtral-12B; choose one with /model") ||
		v.Content != "echo: describe it\n\n[image]" {
		t.Errorf("view = %+v, want the answer and a note naming the vision models", v)
	}

	// Without text: nothing asked.
	rep, _ = r.send("", photo)
	if n := len(r.chats()); n != 1 {
		t.Errorf("%d chat requests, want none for a picture alone", n-1)
	}
	if v := rep.last(); v.Content != "" || !strings.Contains(v.Status, "can't see pictures") {
		t.Errorf("view = %+v, want the note alone", v)
	}

	// Another model and /retry: the picture, from the store.
	if _, err := r.m.SetModel(t.Context(), key, "fake/mistralai/Pixtral-12B"); err != nil {
		t.Fatal(err)
	}
	v = r.retry().last()
	if req := r.chats()[1]; imageParts(req) != 2 || req.Model != "mistralai/Pixtral-12B" {
		t.Errorf("retry with a vision model sent %d images to %s, want both questions' pictures", imageParts(req), req.Model)
	}
	if v.Status != "" || !strings.HasPrefix(v.Content, "echo:") {
		t.Errorf("retry shows %+v", v)
	}
}

func TestManager_MaxImages(t *testing.T) {
	r := newFileRig(t, sessions.Config{Vision: []string{"*"}, MaxImages: 5})
	var atts []sessions.Attachment
	for i := range 10 {
		atts = append(atts, r.files.add(fmt.Sprint("p", i), sessions.KindImage, "", "image/png", gradient(t, 16+i, 16)))
	}
	rep, _ := r.send("an album", atts...)
	if got, want := r.files.refs(), []string{"p0", "p1", "p2", "p3", "p4"}; !slices.Equal(sortedCopy(got), want) {
		t.Errorf("fetched %v, want the first 5 pictures only", got)
	}
	last := r.lastUser()
	if len(last.Images) != 5 || last.Content != "an album" {
		t.Errorf("the model got %q and %d images, want 5", last.Content, len(last.Images))
	}
	for i, im := range last.Images {
		if b := decodeSize(t, im.Data); b.X != 16+i {
			t.Errorf("image %d is %v wide, want picture %d (%d px)", i, b, i, 16+i)
		}
	}
	if v := rep.last(); !strings.Contains(v.Status, "📎 Only the first 5 of 10 pictures were read: Palaver reads at most 5 per message.") {
		t.Errorf("view = %+v, want a note about the 5 pictures dropped", v)
	}
}

func TestManager_HistoryImagesBeyondMax(t *testing.T) {
	r := newFileRig(t, sessions.Config{Vision: []string{"fake/echo"}, MaxImages: 2})
	for i := range 3 {
		p := r.files.add(fmt.Sprint("p", i), sessions.KindImage, "", "image/png", gradient(t, 20+i, 16))
		r.send(fmt.Sprint("picture ", i), p)
	}
	req := r.chats()[2]
	var users []llm.Message
	for _, m := range req.Messages {
		if m.Role == llm.RoleUser {
			users = append(users, m)
		}
	}
	if len(users) != 3 || users[0].Content != "picture 0\n\n[image]" || len(users[0].Images) != 0 ||
		len(users[1].Images) != 1 || len(users[2].Images) != 1 {
		t.Fatalf("third request's user messages = %+v, want the oldest picture as \"[image]\"", users)
	}
	if w := decodeSize(t, users[1].Images[0].Data).X; w != 21 {
		t.Errorf("second message's picture is %d wide, want picture 1", w)
	}
}

func TestManager_StopWhileFetching(t *testing.T) {
	r := newFileRig(t, sessions.Config{})
	a := r.files.add("slow", sessions.KindFile, "slow.txt", "text/plain", []byte("text"))
	r.files.hold["slow"] = make(chan struct{})
	rep := &reply{}
	turn, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "read this", Attachments: []sessions.Attachment{a}}, rep)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return len(r.files.refs()) == 1 }, func() string { return "the file was not fetched" })
	if !r.m.Stop(key, "") {
		t.Fatal("Stop found no answer")
	}
	wait(t, turn)
	if _, status, _ := turn.Result(); status != "stopped" {
		t.Errorf("status = %q, want stopped", status)
	}
	if v := rep.last(); !v.Final || !strings.Contains(v.Status, "(stopped)") {
		t.Errorf("view = %+v", v)
	}
	if h := r.history(); len(h) != 2 || h[0].Text != "read this" || len(h[0].Attachments) != 1 || h[1].Status != "stopped" {
		t.Errorf("history = %+v, want the question, its file unread, and a stopped answer", h)
	}
	if n := len(r.chats()); n != 0 {
		t.Errorf("%d chat requests after a stop", n)
	}
}

func TestManager_QueuedAttachmentsSurviveCrash(t *testing.T) {
	r := newFileRig(t, sessions.Config{Vision: []string{"fake/echo"}})
	release := make(chan struct{})
	r.up.Enqueue(llmtest.Script{Content: []string{"slow", " answer"}, Sent: func(n, _ int) {
		if n == 1 {
			<-release
		}
	}})
	first, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Text: "one"}, &reply{})
	if err != nil {
		t.Fatal(err)
	}
	photo := r.files.add("photo", sessions.KindImage, "cat.png", "image/png", gradient(t, 40, 30))
	// A message with attachments and no text is accepted, and durable,
	// refs and all, when Handle returns.
	second, err := r.m.Handle(t.Context(), sessions.Message{Key: key, Author: alice, Attachments: []sessions.Attachment{photo}}, &reply{})
	if err != nil {
		close(release)
		t.Fatalf("Handle(attachments, no text): %v", err)
	}
	qs, err := r.store.QueuedMessages(t.Context())
	close(release)
	if err != nil || len(qs) != 2 || !slices.Equal(qs[1].Question.Attachments, []sessions.Attachment{photo}) {
		t.Fatalf("queued records = %+v, %v; want the second with its attachment", qs, err)
	}
	wait(t, first)
	wait(t, second)

	// A crash leaves a queued message with a picture: the next start
	// keeps it in the history, and /retry reads the picture.
	q := sessions.Queued{Key: key, ID: 77, Destination: "test",
		Question: sessions.Entry{Role: llm.RoleUser, Text: "and this one?", Attachments: []sessions.Attachment{photo}, Time: time.Now()}}
	if err := r.store.SetQueued(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	r.close()
	r.open()
	if err := r.m.Recover(t.Context(), key.Platform, func(sessions.Progress) (sessions.Reply, error) { return &reply{}, nil }); err != nil {
		t.Fatal(err)
	}
	h := r.history()
	if q := h[len(h)-2]; q.Text != "and this one?" || len(q.Attachments) != 1 || q.Attachments[0].Ref != "photo" {
		t.Fatalf("recovered question = %+v, want its attachment", q)
	}
	v := r.retry().last()
	if last := r.lastUser(); last.Content != "and this one?" || len(last.Images) != 1 || v.Content != "echo: and this one?" {
		t.Errorf("retry after recovery: the model got %q with %d images; shown %+v", last.Content, len(last.Images), v)
	}
	h = r.history()
	if q := h[len(h)-2]; len(q.Attachments) != 0 || len(q.Images) != 1 {
		t.Errorf("question after retry = %+v, want its picture read and stored", q)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func decodeSize(t *testing.T, data []byte) image.Point {
	t.Helper()
	c, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return image.Point{X: c.Width, Y: c.Height}
}
