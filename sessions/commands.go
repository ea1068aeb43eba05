package sessions

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/llm"
)

// Model returns the conversation's model ("provider/model").
func (m *Manager) Model(ctx context.Context, key Key) (string, error) {
	s, err := m.store.Settings(ctx, key)
	if err != nil {
		return "", fmt.Errorf("sessions: load settings: %w", err)
	}
	if s.Model != "" {
		return s.Model, nil
	}
	return m.cfg.DefaultModel, nil
}

// SetModel makes name the conversation's model and returns its canonical
// "provider/model" form. name is resolved as ResolveModel does.
func (m *Manager) SetModel(ctx context.Context, key Key, name string) (string, error) {
	canonical, err := m.ResolveModel(ctx, name)
	if err != nil {
		return "", err
	}
	s, err := m.store.Settings(ctx, key)
	if err != nil {
		return "", fmt.Errorf("sessions: load settings: %w", err)
	}
	s.Model = canonical
	if err := m.store.SaveSettings(ctx, key, s); err != nil {
		return "", fmt.Errorf("sessions: save settings: %w", err)
	}
	return canonical, nil
}

// ResolveModel resolves a model name a person typed, by the rule of
// llm.Router.Lookup for typed names (an alias, "provider/model", a bare
// model id, a fragment of exactly one model's name), among the models
// users may choose (Config.Allowed), and returns its canonical
// "provider/model" form. A name it refuses is a *UserError wrapping
// ErrUnknownModel and the router's error (an *llm.UnknownModelError with
// the nearest names, an *llm.AliasError, or the *llm.ListError of a named
// provider that cannot be reached), with Explain's sentence.
func (m *Manager) ResolveModel(ctx context.Context, name string) (string, error) {
	res, err := m.router.Lookup(ctx, name, llm.ResolveOptions{Typed: true, Allowed: m.cfg.Allowed})
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("sessions: resolve model: %w", err)
		}
		return "", &UserError{Err: fmt.Errorf("%w: %w", ErrUnknownModel, err), Msg: Explain(err)}
	}
	return res.Name, nil
}

// allowed reports whether canonical passes models.allowed.
func (m *Manager) allowed(canonical string) bool {
	return llm.AllowList(m.cfg.Allowed).Allows(canonical)
}

// Models lists the models users may choose, sorted by name: those the
// providers list that models.allowed allows, and its exact entries. When
// some providers could not be asked, the others' models are returned
// with their *llm.ListError values joined (ModelsNotes shows them). A
// provider that failed lately answers at once with its failure (see
// llm.Options.ModelsRetry).
func (m *Manager) Models(ctx context.Context) ([]llm.Model, error) {
	all, err := m.router.Models(ctx)
	var out []llm.Model
	seen := make(map[string]bool)
	for _, md := range all {
		if m.allowed(md.Name()) && !seen[md.Name()] {
			seen[md.Name()] = true
			out = append(out, md)
		}
	}
	down := make(map[string]bool)
	for _, le := range llm.ListErrors(err) {
		down[le.Provider] = true
	}
	for _, a := range m.cfg.Allowed {
		if strings.HasSuffix(a, "/*") || seen[a] {
			continue
		}
		p, id, ok := strings.Cut(a, "/")
		if ok && m.router.Client(p) != nil && !down[p] {
			seen[a] = true
			out = append(out, llm.Model{Provider: p, ID: id})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, err
}

// contextLength is the model's context window from its provider's metadata,
// else the configured default. Only the model's own provider is asked (its
// list is cached, and a failure remembered), so a turn never waits on
// another provider.
func (m *Manager) contextLength(ctx context.Context, canonical string) int {
	prov, id, _ := strings.Cut(canonical, "/")
	if c := m.router.Client(prov); c != nil {
		models, _ := c.Models(ctx)
		for _, md := range models {
			if md.ID == id && md.ContextLength > 0 {
				return md.ContextLength
			}
		}
	}
	return m.cfg.ContextLength
}

// SystemPrompt returns the conversation's system prompt and whether it is
// the conversation's own (rather than the configured default).
func (m *Manager) SystemPrompt(ctx context.Context, key Key) (string, bool, error) {
	s, err := m.store.Settings(ctx, key)
	if err != nil {
		return "", false, fmt.Errorf("sessions: load settings: %w", err)
	}
	if s.SystemPrompt != nil {
		return *s.SystemPrompt, true, nil
	}
	return m.cfg.SystemPrompt, false, nil
}

// SetSystemPrompt replaces the conversation's system prompt; an empty
// prompt is kept as "no system prompt". ClearSystemPrompt returns to the
// default.
func (m *Manager) SetSystemPrompt(ctx context.Context, key Key, prompt string) error {
	prompt = strings.TrimSpace(strings.ToValidUTF8(prompt, "\uFFFD"))
	if n := utf8.RuneCountInString(prompt); n > m.cfg.MaxSystemPrompt {
		return userErr(ErrPromptTooLong, "That system prompt is %d characters long; the limit is %d.", n, m.cfg.MaxSystemPrompt)
	}
	return m.updateSettings(ctx, key, func(s *Settings) { s.SystemPrompt = &prompt })
}

// ClearSystemPrompt returns the conversation to the configured system prompt.
func (m *Manager) ClearSystemPrompt(ctx context.Context, key Key) error {
	return m.updateSettings(ctx, key, func(s *Settings) { s.SystemPrompt = nil })
}

func (m *Manager) updateSettings(ctx context.Context, key Key, f func(*Settings)) error {
	s, err := m.store.Settings(ctx, key)
	if err != nil {
		return fmt.Errorf("sessions: load settings: %w", err)
	}
	f(&s)
	if err := m.store.SaveSettings(ctx, key, s); err != nil {
		return fmt.Errorf("sessions: save settings: %w", err)
	}
	return nil
}

// Reset forgets the conversation's history; its settings stay.
func (m *Manager) Reset(ctx context.Context, key Key) error {
	if err := m.store.Reset(ctx, key); err != nil {
		return fmt.Errorf("sessions: reset: %w", err)
	}
	return nil
}

// Summary is a conversation's effective settings, for /settings.
type Summary struct {
	Model        string
	SystemPrompt string
	CustomPrompt bool
	Temperature  *float64
	MaxTokens    int
	Reasoning    ReasoningMode
	Messages     int // history messages kept
	Busy         bool
}

// Settings returns the conversation's effective settings.
func (m *Manager) Settings(ctx context.Context, key Key) (Summary, error) {
	s, err := m.store.Settings(ctx, key)
	if err != nil {
		return Summary{}, fmt.Errorf("sessions: load settings: %w", err)
	}
	sum := Summary{
		Model: s.Model, SystemPrompt: m.cfg.SystemPrompt, Temperature: s.Temperature,
		MaxTokens: s.MaxTokens, Reasoning: s.Reasoning, Busy: m.Busy(key),
	}
	if sum.Model == "" {
		sum.Model = m.cfg.DefaultModel
	}
	if s.SystemPrompt != nil {
		sum.SystemPrompt, sum.CustomPrompt = *s.SystemPrompt, true
	}
	if sum.Temperature == nil {
		sum.Temperature = m.cfg.Temperature
	}
	if sum.MaxTokens == 0 {
		sum.MaxTokens = m.cfg.MaxTokens
	}
	if sum.Reasoning == "" {
		sum.Reasoning = m.cfg.Reasoning
	}
	h, err := m.store.History(ctx, key, m.cfg.MaxHistory)
	if err != nil {
		return Summary{}, fmt.Errorf("sessions: load history: %w", err)
	}
	sum.Messages = len(h)
	return sum, nil
}

// Markdown renders the summary for a chat.
func (s Summary) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Model:** `%s`\n", s.Model)
	prompt := s.SystemPrompt
	if prompt == "" {
		prompt = "(none)"
	}
	origin := "default"
	if s.CustomPrompt {
		origin = "set here"
	}
	fmt.Fprintf(&b, "**System prompt** (%s): %s\n", origin, clip(prompt, 300))
	if s.Temperature != nil {
		fmt.Fprintf(&b, "**Temperature:** %g\n", *s.Temperature)
	} else {
		b.WriteString("**Temperature:** provider default\n")
	}
	if s.MaxTokens > 0 {
		fmt.Fprintf(&b, "**Max tokens:** %d\n", s.MaxTokens)
	}
	fmt.Fprintf(&b, "**Reasoning:** %s\n", s.Reasoning)
	fmt.Fprintf(&b, "**History:** %d recent messages", s.Messages)
	if s.Busy {
		b.WriteString("\n**Answering now** (/stop to end it)")
	}
	return b.String()
}

// Help is the command list, in Markdown, shared by every platform.
func Help() string {
	return strings.Join([]string{
		"**Palaver** answers with a large language model. Talk to it directly; in groups, mention it or reply to it.",
		"",
		"`/chat text` — ask something",
		"`/model [name]` — show or choose this conversation's model",
		"`/models` — list the models you can choose",
		"`/system [prompt]` — show or set the system prompt (`/system clear` for the default)",
		"`/reset` — forget this conversation's history",
		"`/stop` — stop the answer in progress",
		"`/retry` — answer the last message again",
		"`/settings` — show this conversation's settings",
		"`/usage` — your tokens and cost today and this month",
		"`/help` — this list",
	}, "\n")
}

// Move carries a conversation to a new key (a Telegram group that became a
// supergroup), keeping its settings and history.
func (m *Manager) Move(ctx context.Context, from, to Key) error {
	return m.store.Move(ctx, from, to)
}
