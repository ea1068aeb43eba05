package sessions

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/llm"
)

// thinkingTick is how often "Thinking… N s" advances.
const thinkingTick = time.Second

// run answers one turn: record where its answer goes, stream the answer
// into the reply, commit the question and the answer, show the final
// view.
func (m *Manager) run(t *Turn) {
	defer close(t.done)
	<-t.saved
	if t.saveErr != nil {
		return // Handle refused it
	}
	ctx, cancel := context.WithCancelCause(m.base)
	defer cancel(nil)
	t.mu.Lock()
	t.cancel = cancel
	t.mu.Unlock()
	// On a store shared by several processes the conversation is this
	// process's while the turn writes to it (claim.go); released last.
	lost, unclaim, err := m.claim(ctx, t.key, t.reply.Destination())
	if err != nil {
		m.fail(t, View{}, fmt.Errorf("sessions: hold the conversation: %w", err))
		return
	}
	defer unclaim()
	watchClaim(ctx, lost, cancel)
	defer m.dropQueued(ctx, t)
	defer m.endUsage(t) // usage_limits.go
	if o := m.cfg.Observer.Active; o != nil {
		o(1)
		defer o(-1)
	}

	if t.retry {
		if _, err := m.store.DeleteLast(ctx, t.key, func(e Entry) bool { return e.Role != llm.RoleUser }); err != nil {
			m.fail(t, View{}, fmt.Errorf("sessions: retry: %w", err))
			return
		}
	}
	// The answer is owed from here on: its progress record says where it
	// goes (the question waits in its queued record until it enters the
	// history with the answer).
	if !m.start(ctx, t) {
		return
	}
	// The message's files (attach.go).
	if !m.prepareAttachments(ctx, t) {
		return
	}
	// The turn's goroutine waits on the model's stream with the frames
	// of run and stream below it: what builds the request and what
	// concludes the answer have frames of their own, so that it waits on
	// a small stack.
	p, ok := m.request(ctx, t)
	if !ok {
		return
	}
	a := m.stream(ctx, t, p.client, p.req, p.mode, p.model)
	// The text is complete: the destination's next request is for the
	// final view, which follows once the answer is saved.
	t.live.Hold()
	m.conclude(ctx, t, a, p.mode, p.model)
}

// turnRequest is what a turn asks the model, and how its answer is shown.
type turnRequest struct {
	client *llm.Client
	req    llm.Request
	mode   ReasoningMode
	model  string // canonical "provider/model"
}

// request builds t's request from the conversation's settings and
// history, or fails the turn (reporting false).
func (m *Manager) request(ctx context.Context, t *Turn) (*turnRequest, bool) {
	settings, err := m.store.Settings(ctx, t.key)
	if err != nil {
		m.fail(t, View{}, fmt.Errorf("sessions: load settings: %w", err))
		return nil, false
	}
	model := settings.Model
	if model == "" {
		model = m.cfg.DefaultModel
	}
	client, modelID, canonical, err := m.router.Resolve(ctx, model)
	if err != nil {
		m.fail(t, View{}, err)
		return nil, false
	}
	mode := settings.Reasoning
	if mode == "" {
		mode = m.cfg.Reasoning
	}
	maxTokens := settings.MaxTokens
	if maxTokens == 0 {
		maxTokens = m.cfg.MaxTokens
	}
	temperature := settings.Temperature
	if temperature == nil {
		temperature = m.cfg.Temperature
	}
	system := m.cfg.SystemPrompt
	if settings.SystemPrompt != nil {
		system = *settings.SystemPrompt
	}
	system = expandPrompt(system, m.now(), canonical, t.key.Platform)

	contextLen := m.contextLength(ctx, canonical)
	reserve := maxTokens
	if reserve == 0 {
		reserve = min(4096, contextLen/4)
	}
	budget := contextLen - reserve
	if !t.retry {
		need := estimateTokens(system) + questionTokens(t.question, m.cfg.MaxImages) + estimateTokens(t.msg.Author.Name)
		if need > budget {
			m.fail(t, View{}, userErr(ErrTooLong, "Your message is too long for %s: about %d tokens, and it takes %d with the system prompt and room for the answer. Please shorten it.", canonical, need, budget))
			return nil, false
		}
	}

	history, err := m.store.History(ctx, t.key, m.cfg.MaxHistory)
	if err != nil {
		m.fail(t, View{}, fmt.Errorf("sessions: load history: %w", err))
		return nil, false
	}
	if !t.retry {
		history = append(history, t.question)
	} else if len(history) == 0 || history[len(history)-1].Role != llm.RoleUser {
		m.fail(t, View{}, userErr(ErrNothingToRedo, "There is no message to answer again here."))
		return nil, false
	}

	req := llm.Request{
		Model:       modelID,
		Temperature: temperature,
		MaxTokens:   maxTokens,
		Messages: buildPrompt(promptInput{
			system:     system,
			history:    history,
			shared:     t.msg.Shared || sharedHistory(history),
			budget:     budget,
			maxEntries: m.cfg.MaxHistory,
			images:     m.promptImages(ctx, canonical),
			maxImages:  m.cfg.MaxImages,
		}),
	}
	// Restricted models and usage limits (usage_limits.go), before any
	// upstream request.
	if err := m.admit(ctx, t, canonical, history[len(history)-1], req.Messages); err != nil {
		m.fail(t, View{}, err)
		return nil, false
	}
	return &turnRequest{client: client, req: req, mode: mode, model: canonical}, true
}

// conclude commits the answer a streamed for t (the model canonical) and
// shows its final view, with a note when it was stopped, failed or cut.
func (m *Manager) conclude(ctx context.Context, t *Turn, a *answerState, mode ReasoningMode, canonical string) {
	status, note := "", ""
	cause := context.Cause(ctx)
	if errors.Is(cause, ErrNotOwner) {
		// Another process holds the conversation now: nothing of the
		// answer may be committed here (the store would refuse it), and
		// that process finalises the record of what was shown.
		t.answer, t.status, t.err = a.content.String(), "interrupted", ErrNotOwner
		if o := m.cfg.Observer.Finished; o != nil {
			o(canonical, "interrupted")
		}
		m.log.Warn("answer stopped: the conversation's claim was lost", "conversation", t.key.String())
		v := a.view(mode, "⚠️ "+Explain(ErrNotOwner))
		v.Final = true
		if err := t.live.Finish(m.base, v); err != nil {
			m.log.Warn("final view", "conversation", t.key.String(), "error", err)
		}
		return
	}
	switch {
	case errors.Is(cause, errStopped), errors.Is(cause, errGone):
		status, note = "stopped", "(stopped)"
	case errors.Is(cause, errShutdown):
		status, note = "interrupted", "⚠️ Interrupted: Palaver is restarting. Use /retry for a new answer."
	case a.err != nil:
		status, note = "failed", "⚠️ "+Explain(a.err)
		if o := m.cfg.Observer.UpstreamError; o != nil {
			o(canonical, ErrorKind(a.err))
		}
		m.log.Warn("answer failed", "conversation", t.key.String(), "model", canonical, "error", a.err)
	case a.capped:
		note = fmt.Sprintf("✂️ Cut off: the answer reached Palaver's limit of %d characters (chat.max_answer_chars).", m.cfg.MaxAnswer)
	case a.finish == "length":
		note = "✂️ Cut off at the answer length limit (max_tokens)."
	case a.content.Len() == 0:
		note = "The model returned an empty answer."
	}
	if o := m.cfg.Observer.Finished; o != nil {
		o(canonical, cmp.Or(status, "ok"))
	}

	answer := Entry{
		Role: llm.RoleAssistant, Text: a.content.String(), Reasoning: a.reasoning.String(),
		Model: canonical, Usage: a.usage, Status: status, Time: m.now(),
	}
	t.answer, t.status, t.err = answer.Text, status, a.err
	m.finish(ctx, t, answer, a.view(mode, note), errors.Is(cause, errGone))
}

// finish commits t's question (when it is not a retry) and answer and
// shows v as its final view. They enter the history together with a
// progress record holding the final view, so that a crash before the view
// is shown shows it again on restart; the record is then cleared (durably
// when the final view made a new message, which a second showing would
// repeat). A gone reply is only committed.
func (m *Manager) finish(ctx context.Context, t *Turn, answer Entry, v View, gone bool) {
	ctx = context.WithoutCancel(ctx) // the answer is the user's, whatever happened to the request
	c := Commit{Entries: []Entry{answer}, QueuedID: t.qid, ProgressID: t.id, Usage: m.usageOf(t, answer)}
	if !t.retry {
		c.Entries = []Entry{t.question, answer}
	}
	v.Final = true
	p := m.progress(t, v)
	p.Committed = true
	if gone {
		c.DropProgress = true // nothing left to show it in
	} else {
		c.Progress = p
	}
	t.qmu.Lock()
	err := m.store.Commit(ctx, t.key, c)
	t.qdone = t.qdone || err == nil
	t.qmu.Unlock()
	m.usageCommitted(t, c.Usage, err) // usage_limits.go
	if err != nil {
		m.storeFailed(t.key, "answer", err)
		v.Status = strings.TrimSpace(v.Status + " ⚠️ The answer could not be saved to history.")
		p = nil // the records on disk still say what is owed
	}
	if gone {
		return
	}
	if err := t.live.Finish(m.base, v); err != nil {
		m.log.Warn("final view", "conversation", t.key.String(), "error", err)
		return // the record stays: the next start shows it
	}
	if p == nil {
		return
	}
	_, shared := m.store.(Claimer)
	if s := m.progress(t, v); bytes.Equal(s.Reply, p.Reply) && !shared {
		// Showing it again changes nothing: cleared behind. On a
		// store several processes share it is cleared now, under the
		// claim, or another's Recover would show it again.
		err = m.store.SetProgress(ctx, t.key, t.id, nil)
	} else {
		err = m.store.Commit(ctx, t.key, Commit{ProgressID: t.id, DropProgress: true})
	}
	if err != nil {
		m.log.Warn("clear progress", "conversation", t.key.String(), "error", err)
	}
}

// start records, durably, where t's answer goes: from then on the answer
// is owed, and a crash finalises it on restart. While the store cannot
// save, it says so on the reply and tries again with backoff until it can
// or the turn is stopped (the queued record then stays for the next
// start). It reports whether the turn may go on.
func (m *Manager) start(ctx context.Context, t *Turn) bool {
	backoff := 500 * time.Millisecond
	for {
		p := m.progress(t, View{})
		err := m.store.SaveProgress(ctx, t.key, t.id, *p)
		if err == nil {
			t.mu.Lock()
			t.psnap = p.Reply
			t.mu.Unlock()
			t.owed.Store(true)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		m.storeFailed(t.key, "progress", err)
		t.live.Update(View{Status: "⚠️ " + Explain(ErrNotSaved)})
		t0 := time.NewTimer(backoff)
		select {
		case <-t0.C:
		case <-ctx.Done():
			t0.Stop()
			return false
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// readLag bounds how long read tokens may wait in the socket while a
// reply's next update is further away: the end of an answer is noticed
// within it, and its final view goes out at once.
const readLag = 20 * time.Millisecond

// readLead is how long before a reply's next update its stream is read
// again (llm.WithPacing): time enough to read and parse a second of tokens
// on a busy machine.
const readLead = 100 * time.Millisecond

// sharedHistory reports whether more than one person wrote in the history.
func sharedHistory(h []Entry) bool {
	first := ""
	for _, e := range h {
		if e.Role != llm.RoleUser || e.AuthorID == "" {
			continue
		}
		if first == "" {
			first = e.AuthorID
		} else if e.AuthorID != first {
			return true
		}
	}
	return false
}

// fail ends a turn that produced no answer, showing the reason. An owed
// answer is recorded as failed, so that the question has its answer in
// the history and /retry can answer it again.
func (m *Manager) fail(t *Turn, v View, err error) {
	t.err, t.status = err, "failed"
	var ue *UserError
	if !errors.As(err, &ue) {
		m.log.Warn("turn failed", "conversation", t.key.String(), "error", err)
	}
	v.Status = "⚠️ " + Explain(err)
	if t.owed.Load() && !errors.Is(err, ErrNothingToRedo) {
		m.finish(context.Background(), t, Entry{Role: llm.RoleAssistant, Status: "failed", Time: m.now()}, v, false)
		return
	}
	if err := t.live.Finish(m.base, v); err != nil {
		m.log.Warn("final view", "conversation", t.key.String(), "error", err)
	}
	if t.owed.Load() {
		if err := m.store.Commit(context.Background(), t.key, Commit{ProgressID: t.id, DropProgress: true}); err != nil {
			m.log.Warn("clear progress", "conversation", t.key.String(), "error", err)
		}
	}
}

// answerState accumulates a streamed answer.
type answerState struct {
	content   strings.Builder
	reasoning strings.Builder
	thinking  time.Time // when reasoning started; zero before
	finish    string
	usage     llm.Usage
	err       error
	chars     int  // characters of content and reasoning so far
	capped    bool // the answer reached Config.MaxAnswer

	files *filesRead // shown with the answer (attach.go); nil for none
}

// add appends text to b, at most room characters of it, and reports
// whether all of it fitted.
func (a *answerState) add(b *strings.Builder, text string, room int) bool {
	n := utf8.RuneCountInString(text)
	if n <= room {
		b.WriteString(text)
		a.chars += n
		return true
	}
	i := 0
	for range room {
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	b.WriteString(text[:i])
	a.chars += room
	return false
}

// view is the answer as the user sees it now.
func (a *answerState) view(mode ReasoningMode, status string) View {
	v := View{Content: a.content.String(), ReasoningMode: mode, Status: status}
	if mode != ReasoningHidden {
		v.Reasoning = a.reasoning.String()
	}
	return a.files.dress(v)
}

func (a *answerState) thinkingStatus(now time.Time) string {
	if a.thinking.IsZero() || a.content.Len() > 0 {
		return ""
	}
	return fmt.Sprintf("💭 Thinking… %d s", int(now.Sub(a.thinking).Seconds()))
}

// stream runs the upstream request, feeding the reply as text arrives.
func (m *Manager) stream(ctx context.Context, t *Turn, client *llm.Client, req llm.Request, mode ReasoningMode, model string) *answerState {
	a := &answerState{files: t.question.read}
	start := m.now()
	var mu sync.Mutex // guards a between this loop and the thinking clock

	// The thinking clock advances once a second while the model reasons
	// and writes no content; it stops for good when the stream ends.
	var (
		tick    *time.Timer
		stopped bool
	)
	mu.Lock() // the callback reads tick
	tick = time.AfterFunc(thinkingTick, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if s := a.thinkingStatus(m.now()); s != "" {
			t.live.Update(a.view(mode, s))
		}
		if a.content.Len() == 0 {
			tick.Reset(thinkingTick)
		}
	})
	mu.Unlock()
	defer func() {
		mu.Lock()
		stopped = true
		tick.Stop()
		mu.Unlock()
	}()
	// A deleted reply stops the answer.
	defer t.live.afterGone(func() {
		t.mu.Lock()
		t.cancel(errGone)
		t.mu.Unlock()
	})()

	first := true
	tokens := 0
	// Read the model's stream in step with the reply's updates, from
	// readLead before each on, instead of once per token.
	next := func() time.Time {
		n, limit := t.live.NextShow(), time.Now().Add(readLead+readLag)
		if n.After(limit) {
			return limit
		}
		return n
	}
	for d, err := range client.Stream(llm.WithPacing(ctx, readLead, next), req) {
		if err != nil {
			if ctx.Err() == nil {
				a.err = err
			}
			break
		}
		mu.Lock()
		if first && (d.Content != "" || d.Reasoning != "") {
			first = false
			if o := m.cfg.Observer.FirstToken; o != nil {
				o(model, m.now().Sub(start))
			}
		}
		if d.Reasoning != "" {
			if a.thinking.IsZero() {
				a.thinking = m.now()
			}
			a.capped = !a.add(&a.reasoning, d.Reasoning, m.cfg.MaxAnswer-a.chars)
			tokens++
		}
		if d.Content != "" && !a.capped {
			a.capped = !a.add(&a.content, d.Content, m.cfg.MaxAnswer-a.chars)
			tokens++
		}
		if d.FinishReason != "" {
			a.finish = d.FinishReason
		}
		if d.Usage != nil {
			a.usage = *d.Usage
		}
		if d.Content != "" || (d.Reasoning != "" && mode != ReasoningHidden) || (d.Reasoning != "" && a.reasoning.Len() == len(d.Reasoning)) {
			t.live.Update(a.view(mode, a.thinkingStatus(m.now())))
		}
		capped := a.capped
		mu.Unlock()
		if capped {
			break // leaving the loop closes the model's stream
		}
	}
	if o := m.cfg.Observer.Tokens; o != nil && tokens > 0 {
		o(model, tokens)
	}
	return a
}
