package sessions

import (
	"context"
	"fmt"
	"slices"
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
// "provider/model" form. name may be canonical, an alias, a bare model id
// or a fragment that matches exactly one available model; anything else is
// refused with the closest matches.
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

// ResolveModel checks that name is a model users may choose and returns its
// canonical "provider/model" form.
func (m *Manager) ResolveModel(ctx context.Context, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", userErr(ErrUnknownModel, "Name a model: /model provider/model (see /models).")
	}
	available, listErr := m.Models(ctx)
	names := make([]string, len(available))
	for i, md := range available {
		names[i] = md.Name()
	}
	if _, _, canonical, err := m.router.Resolve(ctx, name); err == nil {
		if slices.Contains(names, canonical) || m.explicitlyAllowed(canonical) {
			return canonical, nil
		}
		// The providers could not be asked: trust a well-formed name.
		if len(names) == 0 && listErr != nil && len(m.cfg.Allowed) == 0 {
			return canonical, nil
		}
	}
	lower := strings.ToLower(name)
	var hits []string
	for _, n := range names {
		if strings.Contains(strings.ToLower(n), lower) {
			hits = append(hits, n)
		}
	}
	if len(hits) == 1 {
		return hits[0], nil
	}
	if len(hits) == 0 {
		hits = closest(lower, names, 5)
	}
	if len(hits) > 5 {
		hits = hits[:5]
	}
	if len(hits) == 0 {
		if listErr != nil {
			return "", userErr(ErrUnknownModel, "Model %q is not available, and the providers' model lists could not be fetched: %s", name, Explain(listErr))
		}
		return "", userErr(ErrUnknownModel, "Model %q is not available here. See /models.", name)
	}
	return "", userErr(ErrUnknownModel, "Model %q is not available here. Did you mean: %s?", name, strings.Join(hits, ", "))
}

// explicitlyAllowed reports whether models.allowed names canonical exactly.
func (m *Manager) explicitlyAllowed(canonical string) bool {
	return slices.Contains(m.cfg.Allowed, canonical)
}

// allowed reports whether canonical passes models.allowed.
func (m *Manager) allowed(canonical string) bool {
	return llm.AllowList(m.cfg.Allowed).Allows(canonical)
}

// Models lists the models users may choose, sorted by name. When a
// provider could not be asked, the others' models are returned with an
// error naming it.
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
	for _, a := range m.cfg.Allowed {
		if strings.HasSuffix(a, "/*") || seen[a] {
			continue
		}
		p, id, ok := strings.Cut(a, "/")
		if ok {
			seen[a] = true
			out = append(out, llm.Model{Provider: p, ID: id})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, err
}

// contextLength is the model's context window from its provider's metadata,
// else the configured default.
func (m *Manager) contextLength(ctx context.Context, canonical string) int {
	all, _ := m.router.Models(ctx)
	for _, md := range all {
		if md.Name() == canonical && md.ContextLength > 0 {
			return md.ContextLength
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
		"`/help` — this list",
	}, "\n")
}

// closest returns up to n names nearest to q by edit distance.
func closest(q string, names []string, n int) []string {
	type scored struct {
		name string
		d    int
	}
	var s []scored
	for _, name := range names {
		l := strings.ToLower(name)
		_, id, _ := strings.Cut(l, "/")
		d := min(levenshtein(q, l), levenshtein(q, id))
		last := id[strings.LastIndex(id, "/")+1:]
		d = min(d, levenshtein(q, last))
		if len(last) > len(q) {
			// A prefix of the name counts: "deepseek-v4" is near "deepseek-v3-0324".
			d = min(d, levenshtein(q, last[:len(q)])+1)
		}
		if d <= max(3, len(q)/2) {
			s = append(s, scored{name, d})
		}
	}
	sort.SliceStable(s, func(i, j int) bool { return s[i].d < s[j].d })
	var out []string
	for i := 0; i < len(s) && i < n; i++ {
		out = append(out, s[i].name)
	}
	return out
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Move carries a conversation to a new key (a Telegram group that became a
// supergroup), keeping its settings and history.
func (m *Manager) Move(ctx context.Context, from, to Key) error {
	return m.store.Move(ctx, from, to)
}
