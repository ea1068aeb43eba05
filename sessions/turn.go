package sessions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// thinkingTick is how often "Thinking… N s" advances.
const thinkingTick = time.Second

// run answers one turn: commit the user's message, stream the answer into
// the reply, commit the answer, show the final view.
func (m *Manager) run(t *Turn) {
	defer close(t.done)
	ctx, cancel := context.WithCancelCause(m.base)
	defer cancel(nil)
	t.mu.Lock()
	t.cancel = cancel
	t.mu.Unlock()
	defer m.dropQueued(ctx, t)
	if o := m.cfg.Observer.Active; o != nil {
		o(1)
		defer o(-1)
	}

	settings, err := m.store.Settings(ctx, t.key)
	if err != nil {
		m.fail(t, View{}, fmt.Errorf("sessions: load settings: %w", err))
		return
	}
	model := settings.Model
	if model == "" {
		model = m.cfg.DefaultModel
	}
	client, modelID, canonical, err := m.router.Resolve(ctx, model)
	if err != nil {
		m.fail(t, View{}, err)
		return
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

	if t.retry {
		if _, err := m.store.DeleteLast(ctx, t.key, func(e Entry) bool { return e.Role != llm.RoleUser }); err != nil {
			m.fail(t, View{}, fmt.Errorf("sessions: retry: %w", err))
			return
		}
	} else {
		need := estimateTokens(system) + estimateTokens(t.msg.Text) + estimateTokens(t.msg.Author.Name)
		if need > budget {
			m.fail(t, View{}, userErr(ErrTooLong, "Your message is too long for %s: about %d tokens, and it takes %d with the system prompt and room for the answer. Please shorten it.", canonical, need, budget))
			return
		}
		user := Entry{Role: llm.RoleUser, AuthorID: t.msg.Author.ID, AuthorName: t.msg.Author.Name, Text: t.msg.Text, Time: m.now()}
		var err error
		if t.qid != 0 {
			// The message waited: move its record into the history.
			<-t.qsaved
			t.qmu.Lock()
			err = m.store.AppendQueued(ctx, t.key, t.qid, user)
			t.qdone = err == nil
			t.qmu.Unlock()
		} else {
			err = m.store.Append(ctx, t.key, false, user)
		}
		if err != nil {
			m.fail(t, View{}, fmt.Errorf("sessions: save message: %w", err))
			return
		}
	}
	// The answer is now owed: record it so a crash is finalised on restart.
	t.owed.Store(true)
	m.recordProgress(t, View{})

	history, err := m.store.History(ctx, t.key, m.cfg.MaxHistory)
	if err != nil {
		m.fail(t, View{}, fmt.Errorf("sessions: load history: %w", err))
		return
	}
	if len(history) == 0 || history[len(history)-1].Role != llm.RoleUser {
		m.fail(t, View{}, userErr(ErrNothingToRedo, "There is no message to answer again here."))
		return
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
		}),
	}
	a := m.stream(ctx, t, client, req, mode, canonical)
	// The text is complete: the destination's next request is for the
	// final view, which follows once the answer is saved.
	t.live.Hold()

	status, note := "", ""
	cause := context.Cause(ctx)
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
	// Commit even when the conversation's context is gone: the answer is
	// the user's, whatever happened to the request.
	if err := m.store.Append(context.WithoutCancel(ctx), t.key, true, answer); err != nil {
		m.log.Error("save answer", "conversation", t.key.String(), "error", err)
		note = strings.TrimSpace(note + " ⚠️ The answer could not be saved to history.")
	}
	t.answer, t.status, t.err = answer.Text, status, a.err

	if errors.Is(cause, errGone) {
		return // nothing left to show it in
	}
	v := a.view(mode, note)
	if err := t.live.Finish(m.base, v); err != nil {
		m.log.Warn("final view", "conversation", t.key.String(), "error", err)
	}
}

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

// fail ends a turn that produced no answer, showing the reason.
func (m *Manager) fail(t *Turn, v View, err error) {
	t.err, t.status = err, "failed"
	var ue *UserError
	if !errors.As(err, &ue) {
		m.log.Warn("turn failed", "conversation", t.key.String(), "error", err)
	}
	v.Status = "⚠️ " + Explain(err)
	if err := t.live.Finish(m.base, v); err != nil {
		m.log.Warn("final view", "conversation", t.key.String(), "error", err)
	}
	if err := m.store.SetProgress(m.base, t.key, nil); err != nil {
		m.log.Warn("clear progress", "conversation", t.key.String(), "error", err)
	}
}

// answerState accumulates a streamed answer.
type answerState struct {
	content   strings.Builder
	reasoning strings.Builder
	thinking  time.Time // when reasoning started; zero before
	thought   time.Duration
	finish    string
	usage     llm.Usage
	err       error
}

// view is the answer as the user sees it now.
func (a *answerState) view(mode ReasoningMode, status string) View {
	v := View{Content: a.content.String(), ReasoningMode: mode, Status: status}
	if mode != ReasoningHidden {
		v.Reasoning = a.reasoning.String()
	}
	return v
}

func (a *answerState) thinkingStatus(now time.Time) string {
	if a.thinking.IsZero() || a.content.Len() > 0 {
		return ""
	}
	return fmt.Sprintf("💭 Thinking… %d s", int(now.Sub(a.thinking).Seconds()))
}

// stream runs the upstream request, feeding the reply as text arrives.
func (m *Manager) stream(ctx context.Context, t *Turn, client *llm.Client, req llm.Request, mode ReasoningMode, model string) *answerState {
	a := &answerState{}
	start := m.now()
	tick := time.NewTicker(thinkingTick)
	defer tick.Stop()

	// Deltas are read on this goroutine; a small helper goroutine advances
	// the thinking clock and watches for a deleted reply.
	stopAux := make(chan struct{})
	auxDone := make(chan struct{})
	var mu sync.Mutex // guards a between this loop and the helper
	go func() {
		defer close(auxDone)
		ticks := tick.C
		for {
			select {
			case <-ticks:
				mu.Lock()
				if s := a.thinkingStatus(m.now()); s != "" {
					t.live.Update(a.view(mode, s))
				}
				if a.content.Len() > 0 {
					tick.Stop() // the thinking clock has stopped for good
					ticks = nil
				}
				mu.Unlock()
			case <-t.live.Gone():
				t.mu.Lock()
				t.cancel(errGone)
				t.mu.Unlock()
				return
			case <-stopAux:
				return
			}
		}
	}()
	defer func() { close(stopAux); <-auxDone }()

	first := true
	tokens := 0
	// Read the model's stream in step with the reply's updates, from
	// readLead before each on, instead of once per token.
	for d, err := range client.Stream(llm.WithPacing(ctx, readLead, t.live.NextShow), req) {
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
			a.reasoning.WriteString(d.Reasoning)
			tokens++
		}
		if d.Content != "" {
			a.content.WriteString(d.Content)
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
		mu.Unlock()
	}
	if o := m.cfg.Observer.Tokens; o != nil && tokens > 0 {
		o(model, tokens)
	}
	return a
}
