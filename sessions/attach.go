package sessions

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/attach"
)

// Defaults of the Config fields about attachments.
const (
	DefaultMaxImages          = 5
	DefaultImageMaxSide       = attach.DefaultMaxImageSide // 1568 px
	DefaultMaxFileChars       = attach.DefaultMaxTextChars // 20,000
	DefaultMaxAttachmentBytes = attach.DefaultMaxFileBytes // 20 MiB
)

// Bounds of the work a turn does on its message's files.
const (
	// maxFetches is how many of a turn's files are downloaded (and
	// prepared, and transcribed) at once.
	maxFetches = 3
	// fetchTimeout bounds one download.
	fetchTimeout = attach.DefaultFetchTimeout
	// maxAttachments is how many files of one message are read; a
	// platform's album or message holds at most 10.
	maxAttachments = 10
	// maxShownTranscript is how many characters of a transcript are
	// quoted at the top of the answer; the model reads it all.
	maxShownTranscript = 1000
)

// filesRead is what a turn tells the sender about the files of its
// message, with the answer: the transcripts of voice messages quoted
// above it, one note under it for each file not read as sent.
type filesRead struct {
	transcripts []string
	notes       []string
}

// note adds "📎 label: sentence".
func (r *filesRead) note(label, sentence string) {
	r.notes = append(r.notes, "📎 "+label+": "+sentence)
}

// dress adds the transcripts above v's content and the notes under its
// status line. A nil r leaves v as it is.
func (r *filesRead) dress(v View) View {
	if r == nil {
		return v
	}
	if len(r.transcripts) > 0 {
		var qs []string
		for _, t := range r.transcripts {
			qs = append(qs, quoteTranscript(t))
		}
		q := strings.Join(qs, "\n\n")
		if v.Content == "" {
			v.Content = q
		} else {
			v.Content = q + "\n\n" + v.Content
		}
	}
	if len(r.notes) > 0 {
		// The status first: adapters recognise it by its opening emoji.
		v.Status = strings.TrimSpace(v.Status + "\n" + strings.Join(r.notes, "\n"))
	}
	return v
}

// quoteTranscript is a transcript as a Markdown blockquote, "> 🎤 …", cut
// at maxShownTranscript characters.
func quoteTranscript(t string) string {
	if utf8.RuneCountInString(t) > maxShownTranscript {
		t = clip(t, maxShownTranscript)
	}
	return "> 🎤 " + strings.ReplaceAll(t, "\n", "\n> ")
}

// prepareAttachments reads the files of t's question when its turn starts
// (on the turn's goroutine, so that no download holds up the platform or
// another conversation): images for vision models, text files and PDFs
// for the model to read, voice messages transcribed. For a /retry it
// reads again the files of the last question that were not read, and
// saves what it read in that question's place. What could not be read is
// told in notes with the answer, and stays in the question's Attachments
// for a later /retry.
//
// It reports whether the turn goes on to ask the model: not when nothing
// is left to ask (no text, nothing read, or only images for a model that
// does not see them: the answer is the notes alone, recorded as failed),
// nor when the turn was stopped meanwhile (recorded as stopped); the turn
// has then ended, its question in the history.
func (m *Manager) prepareAttachments(ctx context.Context, t *Turn) bool {
	q, ok := m.filesQuestion(ctx, t)
	if !ok {
		return true
	}
	canonical := m.turnModel(ctx, t.key)
	rd := &filesRead{}
	read := len(q.Attachments) > 0
	if read {
		m.readFiles(ctx, t.key, &q, rd)
	}
	q.read = rd
	if ctx.Err() != nil {
		m.setQuestion(t, q)
		m.conclude(ctx, t, &answerState{}, m.cfg.Reasoning, canonical)
		return false
	}
	sees := true
	if len(q.Images) > 0 && canonical != "" && !m.sees(ctx, canonical) {
		sees = false
		rd.notes = append(rd.notes, m.visionNote(ctx, canonical))
	}
	if t.retry && read {
		// The question takes its new form now, with its images: the
		// answer commits on its own.
		if err := m.store.Commit(ctx, t.key, Commit{Replace: []Entry{q}}); err != nil {
			m.fail(t, View{}, fmt.Errorf("sessions: retry: save the files read: %w", err))
			return false
		}
	}
	m.setQuestion(t, q)
	if q.Text == "" && q.Inline == "" && (len(q.Images) == 0 || !sees) {
		t.err, t.status = ErrUnread, "failed"
		answer := Entry{Role: llm.RoleAssistant, Model: canonical, Status: "failed", Time: m.now()}
		m.finish(ctx, t, answer, rd.dress(View{}), false)
		return false
	}
	if len(rd.transcripts) > 0 || len(rd.notes) > 0 {
		t.live.Update(rd.dress(View{}))
	}
	return true
}

// filesQuestion returns the question whose files t reads: its own, or for
// a /retry the last question of the history; ok is false when it has no
// files to read and no images to check.
func (m *Manager) filesQuestion(ctx context.Context, t *Turn) (q Entry, ok bool) {
	if !t.retry {
		return t.question, len(t.question.Attachments) > 0
	}
	h, err := m.store.History(ctx, t.key, 1)
	if err != nil || len(h) == 0 || h[0].Role != llm.RoleUser {
		return Entry{}, false // request says why
	}
	return h[0], len(h[0].Attachments) > 0 || len(h[0].Images) > 0
}

// setQuestion makes q t's question, as it enters the history.
func (m *Manager) setQuestion(t *Turn, q Entry) {
	t.qmu.Lock()
	defer t.qmu.Unlock()
	t.question = q
}

// turnModel is the canonical name of the conversation's model, "" when it
// cannot be resolved (the turn's request then says why).
func (m *Manager) turnModel(ctx context.Context, key Key) string {
	s, err := m.store.Settings(ctx, key)
	if err != nil {
		return ""
	}
	_, _, canonical, err := m.router.Resolve(ctx, cmp.Or(s.Model, m.cfg.DefaultModel))
	if err != nil {
		return ""
	}
	return canonical
}

// fileResult is what became of one file.
type fileResult struct {
	part       attach.Part // an *attach.Image or *attach.Text
	transcript string      // a voice message's words
	err        error
}

// readFiles reads q.Attachments: at most maxAttachments of them, images
// up to Config.MaxImages in all, maxFetches at a time. What it read goes
// into q's Images and Inline; what it did not stays in q.Attachments,
// with a note in rd.
func (m *Manager) readFiles(ctx context.Context, key Key, q *Entry, rd *filesRead) {
	atts := q.Attachments
	if len(atts) > maxAttachments {
		rd.notes = append(rd.notes, fmt.Sprintf("📎 Only the first %d of %d files were read: Palaver reads at most %d per message.", maxAttachments, len(atts), maxAttachments))
		atts = atts[:maxAttachments]
	}
	room := max(m.cfg.MaxImages, 0) - len(q.Images)
	pictures, dropped := 0, 0
	var todo []Attachment
	for _, a := range atts {
		if a.Kind == KindImage && a.Unsupported == "" {
			if pictures++; pictures > room {
				dropped++
				continue // not even fetched
			}
		}
		todo = append(todo, a)
	}

	lim := attach.Limits{
		MaxFileBytes: m.cfg.MaxAttachmentBytes,
		FetchTimeout: fetchTimeout,
		MaxImageSide: m.cfg.ImageMaxSide,
		MaxTextChars: m.cfg.MaxFileChars,
	}
	f := m.fetcher(key.Platform)
	results := make([]fileResult, len(todo))
	sem := make(chan struct{}, maxFetches)
	var wg sync.WaitGroup
	for i, a := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = m.readFile(ctx, f, a, lim)
		})
	}
	wg.Wait()

	var unread []Attachment
	inline := []string{}
	if q.Inline != "" {
		inline = append(inline, q.Inline)
	}
	for i, a := range todo {
		r, label := results[i], fileLabel(a)
		if r.err != nil {
			unread = append(unread, a)
			rd.note(label, fileSentence(r.err))
			m.logUnread(key, a, r.err)
			continue
		}
		switch p := r.part.(type) {
		case *attach.Image:
			if len(q.Images) >= max(m.cfg.MaxImages, 0) {
				if a.Kind != KindImage {
					pictures++ // a document that was a picture
				}
				dropped++
				continue
			}
			if a.Kind != KindImage {
				pictures++
			}
			q.Images = append(q.Images, Image{SHA256: hex.EncodeToString(p.SHA256[:]), MIME: p.MIME,
				Size: len(p.Data), Width: p.Width, Height: p.Height, Data: p.Data})
		case *attach.Text:
			inline = append(inline, strings.TrimRight(p.Block, "\n"))
			for _, n := range p.Notes {
				rd.note(label, n)
			}
		default:
			words := r.transcript
			if n := utf8.RuneCountInString(words); n > m.cfg.MaxFileChars {
				words = clip(words, m.cfg.MaxFileChars)
				rd.note(label, fmt.Sprintf("The transcript has %d characters; the model read the first %d.", n, m.cfg.MaxFileChars))
			} else if n > maxShownTranscript {
				rd.note(label, "The transcript is shown cut; the model read all of it.")
			}
			inline = append(inline, words)
			rd.transcripts = append(rd.transcripts, r.transcript)
		}
	}
	switch {
	case dropped > 0 && m.cfg.MaxImages <= 0:
		rd.notes = append(rd.notes, "📎 Palaver reads no pictures here.")
	case dropped > 0:
		rd.notes = append(rd.notes, fmt.Sprintf("📎 Only the first %d of %d pictures were read: Palaver reads at most %d per message.", pictures-dropped, pictures, m.cfg.MaxImages))
	}
	q.Attachments = unread
	q.Inline = strings.Join(inline, "\n\n")
}

// readFile fetches, prepares and (a voice message) transcribes one file,
// refusing before any download what the platform's word on it rules out.
func (m *Manager) readFile(ctx context.Context, f Fetcher, a Attachment, lim attach.Limits) fileResult {
	if a.Unsupported != "" {
		return fileResult{err: &attach.UnsupportedError{Kind: a.Unsupported, MIME: a.MIME}}
	}
	voice := a.Kind == KindVoice
	if err := lim.Check(a.Name, a.MIME, a.Size, voice); err != nil {
		return fileResult{err: err}
	}
	if _, _, err := m.transcriber(); voice && err != nil {
		return fileResult{err: err}
	}
	if f == nil {
		return fileResult{err: ErrCannotFetch}
	}
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	data, err := f.Fetch(fctx, a, lim.MaxFileBytes)
	cancel()
	if err != nil {
		return fileResult{err: fmt.Errorf("sessions: fetch %s: %w", fileLabel(a), err)}
	}
	part, err := attach.Prepare(ctx, attach.Input{Name: a.Name, MIME: a.MIME, Data: data, AsAudio: voice}, lim)
	if err != nil {
		return fileResult{err: fmt.Errorf("sessions: read %s: %w", fileLabel(a), err)}
	}
	if au, ok := part.(*attach.Audio); ok {
		words, err := m.transcribe(ctx, au)
		return fileResult{transcript: words, err: err}
	}
	return fileResult{part: part}
}

// transcriptionError is a voice message that could not be transcribed.
type transcriptionError struct{ err error }

func (e *transcriptionError) Error() string { return "transcription: " + e.err.Error() }
func (e *transcriptionError) Unwrap() error { return e.err }

// errNoSpeech is a transcript with no words.
var errNoSpeech = errors.New("no speech heard")

// transcriber returns the client and model id of Config.Transcription,
// or a *transcriptionError wrapping ErrNoTranscription.
func (m *Manager) transcriber() (*llm.Client, string, error) {
	if m.cfg.Transcription == "" {
		return nil, "", &transcriptionError{ErrNoTranscription}
	}
	prov, model, _ := strings.Cut(m.cfg.Transcription, "/")
	c := m.router.Client(prov)
	if c == nil || model == "" {
		return nil, "", &transcriptionError{fmt.Errorf("%w: %q names no configured provider", ErrNoTranscription, m.cfg.Transcription)}
	}
	return c, model, nil
}

// transcribe turns au into words with Config.Transcription.
func (m *Manager) transcribe(ctx context.Context, au *attach.Audio) (string, error) {
	c, model, err := m.transcriber()
	if err != nil {
		return "", err
	}
	tr, err := c.Transcribe(ctx, llm.TranscriptionRequest{Model: model, Data: au.Data, Filename: au.Name, MIME: au.MIME})
	if err != nil {
		return "", &transcriptionError{fmt.Errorf("sessions: transcribe with %s: %w", m.cfg.Transcription, err)}
	}
	words := strings.TrimSpace(strings.ToValidUTF8(tr.Text, "\uFFFD"))
	if words == "" {
		return "", &transcriptionError{errNoSpeech}
	}
	return words, nil
}

// fileSentence is the note's sentence for a file that was not read.
func fileSentence(err error) string {
	var te *transcriptionError
	switch {
	case errors.Is(err, errNoSpeech):
		return "No speech was heard in it."
	case errors.As(err, &te):
		if se, ok := errors.AsType[*llm.StatusError](err); ok && (se.StatusCode == 400 || se.StatusCode == 404 || se.StatusCode == 413) {
			// The request, not the chat model: the sentences of Explain
			// would send the user to /model.
			return fmt.Sprintf("It was not transcribed: %s refused it (%d)%s.", se.Provider, se.StatusCode, providerSays(se.Message))
		}
		return "It was not transcribed. " + Explain(te.err)
	case errors.Is(err, ErrCannotFetch):
		return Explain(err)
	}
	return attach.UserMessage(err)
}

// logUnread logs a file that was not read: a refusal of what was sent at
// Info, a failure at Warn.
func (m *Manager) logUnread(key Key, a Attachment, err error) {
	var (
		tooLarge    *attach.TooLargeError
		tooMany     *attach.TooManyPixelsError
		unsupported *attach.UnsupportedError
	)
	refused := errors.As(err, &tooLarge) || errors.As(err, &tooMany) || errors.As(err, &unsupported) ||
		errors.Is(err, attach.ErrCorrupt) || errors.Is(err, attach.ErrEncrypted) || errors.Is(err, attach.ErrNoText) ||
		errors.Is(err, ErrNoTranscription) || errors.Is(err, errNoSpeech)
	log := m.log.Warn
	if refused {
		log = m.log.Info
	}
	log("attachment not read", "conversation", key.String(), "kind", string(a.Kind), "name", a.Name, "error", err)
}

// fileLabel names a file in a note: its name, else its kind.
func fileLabel(a Attachment) string {
	if a.Name != "" {
		return clip(a.Name, 60)
	}
	switch a.Kind {
	case KindImage:
		return "picture"
	case KindVoice:
		return "voice message"
	}
	return "file"
}

// placeholder is what the model reads for a file of a message that was
// not read.
func placeholder(a Attachment) string {
	switch {
	case a.Unsupported != "":
		return "[" + a.Unsupported + ": not readable]"
	case a.Kind == KindVoice:
		return "[voice message, not transcribed]"
	case a.Kind == KindImage:
		return "[picture, not read]"
	case a.Name != "":
		return "[file " + clip(a.Name, 60) + ", not read]"
	}
	return "[file, not read]"
}

// sees reports whether the model canonical ("provider/model") takes
// images: its name matches a Config.Vision pattern, or its provider's
// model list says so (only that provider is asked, and its list is
// cached).
func (m *Manager) sees(ctx context.Context, canonical string) bool {
	if matchVision(m.cfg.Vision, canonical) {
		return true
	}
	prov, id, _ := strings.Cut(canonical, "/")
	if c := m.router.Client(prov); c != nil {
		models, _ := c.Models(ctx)
		for _, md := range models {
			if md.ID == id {
				return md.Vision
			}
		}
	}
	return false
}

// matchVision reports whether name matches one of globs: path.Match
// patterns compared without regard to case, where '*' and '?' match '/'
// too ("*vision*" matches "deepinfra/meta-llama/Llama-3.2-11B-Vision").
func matchVision(globs []string, name string) bool {
	name = strings.ReplaceAll(strings.ToLower(name), "/", "\x00")
	for _, g := range globs {
		if ok, _ := path.Match(strings.ReplaceAll(strings.ToLower(g), "/", "\x00"), name); ok {
			return true
		}
	}
	return false
}

// visionNote tells the sender that canonical does not see images, naming
// the models here that do (at most maxNamed).
func (m *Manager) visionNote(ctx context.Context, canonical string) string {
	models, _ := m.Models(ctx)
	var names []string
	for _, md := range models {
		if md.Vision || matchVision(m.cfg.Vision, md.Name()) {
			names = append(names, md.Name())
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("📎 %s can't see pictures, and no model here can.", canonical)
	}
	return fmt.Sprintf("📎 %s can't see pictures. Models here that can: %s; choose one with /model, then use /retry.", canonical, namesList(names))
}

// promptImages returns how buildPrompt gets the images of the history
// for the model canonical: the question's from memory, older ones from
// the store; nil when the model does not see images.
func (m *Manager) promptImages(ctx context.Context, canonical string) func(Image) (llm.Image, bool) {
	if m.cfg.MaxImages <= 0 || !m.sees(ctx, canonical) {
		return nil
	}
	return func(im Image) (llm.Image, bool) {
		if im.Data != nil {
			return llm.Image{MIME: im.MIME, Data: im.Data}, true
		}
		data, err := m.store.Blob(ctx, im.SHA256)
		if err != nil {
			m.log.Warn("image of the history not read", "image", im.SHA256, "error", err)
			return llm.Image{}, false
		}
		return llm.Image{MIME: im.MIME, Data: data}, true
	}
}
