package sessions

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// BudgetError is a turn or request refused by a limit. Its Error is the
// sentence shown: which limit, and when it resets.
type BudgetError struct {
	// Scope is whose limit: "user", "conversation", "group", "model" or
	// "key".
	Scope string
	// Name is the model's or the key's name, for those scopes; Platform
	// the conversation's platform (a Discord group is a server).
	Name, Platform string
	// Monthly is set for a monthly limit, else it is a daily one.
	Monthly bool
	// Tokens or USD is the limit reached.
	Tokens int64
	USD    float64
	// Reset is when the limit's day or month ends; Now when the turn
	// was refused.
	Reset, Now time.Time
}

func (e *BudgetError) Error() string {
	var who string
	switch e.Scope {
	case scopeUser:
		who = "You have reached your"
	case scopeConversation:
		who = "This conversation has reached its"
	case scopeGroup:
		who = "This " + groupNoun(e.Platform) + " has reached its"
	case scopeModel:
		who = "Model " + e.Name + " has reached its"
	default:
		who = "API key " + e.Name + " has reached its"
	}
	period := "daily"
	if e.Monthly {
		period = "monthly"
	}
	limit := tokensOf(e.Tokens)
	if e.Tokens == 0 {
		limit = formatUSD(e.USD)
	}
	if e.Scope == scopeModel {
		limit += " (everyone together)"
	}
	return fmt.Sprintf("%s %s limit of %s; it resets %s.", who, period, limit, e.resets())
}

// Unwrap makes a BudgetError an ErrOverBudget.
func (e *BudgetError) Unwrap() error { return ErrOverBudget }

// RetryAfter is how long until the limit resets.
func (e *BudgetError) RetryAfter() time.Duration { return max(e.Reset.Sub(e.Now), 0) }

// resets says when the limit resets: "at midnight (UTC), in 3 h 12 min",
// "on 1 July at midnight (Europe/Berlin), in 12 days".
func (e *BudgetError) resets() string {
	at := "at midnight (" + e.Reset.Location().String() + ")"
	if e.Monthly {
		at = "on " + e.Reset.Format("2 January") + " " + at
	}
	return at + ", " + inDuration(e.Reset.Sub(e.Now))
}

// groupNoun is what a platform calls a group.
func groupNoun(platform string) string {
	if platform == "discord" {
		return "server"
	}
	return "group"
}

// inDuration says how far away d is, roughly: "in 3 h 12 min".
func inDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "in less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("in %d min", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("in %d h", h)
		}
		return fmt.Sprintf("in %d h %d min", h, m)
	}
	return fmt.Sprintf("in %d days", int(math.Round(d.Hours()/24)))
}

// limitedScope is a scope with a limit.
type limitedScope struct {
	scope
	limit Limit
	name  string // the model's or the key's name, for sentences
}

// key is the scope's name among the reservations.
func (s scope) key() string { return s.kind + "\x00" + s.id }

// limitsOf lists a's scopes for model that have limits, in the order
// refusals prefer them.
func (l *Ledger) limitsOf(a asker, model string) []limitedScope {
	var out []limitedScope
	add := func(kind, id string, lim Limit, name string) {
		if id != "" && !lim.IsZero() {
			out = append(out, limitedScope{scope{kind, keyPart(id), ""}, lim, name})
		}
	}
	if a.user != "" {
		add(scopeUser, UsageUserID(a.platform, a.user), l.cfg.User, "")
	}
	if a.shared {
		add(scopeConversation, a.conversation, l.cfg.Conversation, "")
	}
	if a.group != "" {
		add(scopeGroup, groupScope(a.platform, a.group), l.cfg.Group, "")
	}
	add(scopeKey, a.key, l.cfg.Key, a.key)
	add(scopeModel, model, l.cfg.Models[model], model)
	return out
}

// reservation is an admitted answer's hold on its limited scopes; release
// ends it (once; a nil reservation holds nothing).
type reservation struct {
	l      *Ledger
	scopes []limitedScope
	once   sync.Once
}

func (r *reservation) release() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		l := r.l
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, s := range r.scopes {
			if l.inflight[s.key()]--; l.inflight[s.key()] <= 0 {
				delete(l.inflight, s.key())
			}
		}
		close(l.changed)
		l.changed = make(chan struct{})
	})
}

// admit admits a's answer from model against the limits (see Ledger), or
// refuses it with a *BudgetError; exempt admits it without a look. It
// calls waiting, if not nil, once, when the answer has to wait for others
// in flight. The reservation returned must be released once the answer's
// usage is recorded (or it ended without any).
func (l *Ledger) admit(ctx context.Context, a asker, model string, exempt bool, waiting func()) (*reservation, error) {
	scopes := l.limitsOf(a, model)
	if exempt || len(scopes) == 0 {
		return nil, nil
	}
	for {
		// The counters are read and the reservations counted under one
		// lock, and a reservation ends (under it) only after its usage is
		// committed: the counters read here include every answer that no
		// longer holds a reservation.
		l.mu.Lock()
		now := l.now()
		keys := make([]UsageKey, 0, 2*len(scopes))
		day, month := now.Format(dayLayout), now.Format(monthLayout)
		for _, s := range scopes {
			keys = append(keys, UsageKey{day, s.kind, s.id, ""}, UsageKey{month, s.kind, s.id, ""})
		}
		tallies, err := l.store.UsageCounters(ctx, keys)
		if err != nil {
			l.mu.Unlock()
			return nil, fmt.Errorf("sessions: check usage limits: %w", err)
		}
		over, busy := l.verdict(now, a.platform, scopes, tallies)
		if over != nil {
			l.mu.Unlock()
			if o := l.obs.BudgetRefused; o != nil {
				o(over.Scope)
			}
			return nil, over
		}
		if !busy {
			for _, s := range scopes {
				l.inflight[s.key()]++
			}
			l.mu.Unlock()
			return &reservation{l: l, scopes: scopes}, nil
		}
		changed := l.changed
		l.mu.Unlock()
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// verdict judges scopes by their day's and month's counters (tallies, in
// pairs): the limit reached that resets last, or whether the answers in
// flight may reach one. l.mu must be held.
func (l *Ledger) verdict(now time.Time, platform string, scopes []limitedScope, tallies []Tally) (over *BudgetError, busy bool) {
	for i, s := range scopes {
		day, month := tallies[2*i], tallies[2*i+1]
		n := int64(l.inflight[s.key()])
		reserveTokens := max(month.MaxTokens, minReserveTokens)
		reserveCost := month.MaxCostNanoUSD
		for _, b := range []struct {
			monthly bool
			used    Tally
			tokens  int64
			usd     float64
		}{
			{false, day, s.limit.DailyTokens, s.limit.DailyUSD},
			{true, month, s.limit.MonthlyTokens, s.limit.MonthlyUSD},
		} {
			reached := func(tokens int64, usd float64) {
				e := &BudgetError{Scope: s.kind, Name: s.name, Platform: platform, Monthly: b.monthly,
					Tokens: tokens, USD: usd, Reset: nextDay(now), Now: now}
				if b.monthly {
					e.Reset = nextMonth(now)
				}
				if over == nil || e.Reset.After(over.Reset) {
					over = e
				}
			}
			if b.tokens > 0 {
				switch used := b.used.Tokens(); {
				case used >= b.tokens:
					reached(b.tokens, 0)
				case n > 0 && used+n*reserveTokens >= b.tokens:
					busy = true
				}
			}
			if b.usd > 0 {
				limit := int64(math.Round(b.usd * 1e9))
				switch used := b.used.CostNanoUSD; {
				case used >= limit:
					reached(0, b.usd)
				case n > 0 && used+n*reserveCost >= limit:
					busy = true
				}
			}
		}
	}
	return over, busy
}

// waitingStatus is shown on a reply that waits for answers in flight near
// a limit.
const waitingStatus = "⏳ Waiting: the answers running now may use up a usage limit; this one starts once they are done."

// turnUsage is what a turn's answer is counted as, once admitted.
type turnUsage struct {
	asker  asker
	model  string
	prompt []llm.Message // for an estimate when the provider sends no usage
	res    *reservation
}

// admit holds t, about to ask model with prompt, to the restricted models
// and the usage limits, refusing it with a *UserError (ErrRestricted,
// ErrOverBudget) that Explain shows. q is the message answered (for a
// retry, the question in the history: its author and group are counted,
// and admins are not exempt there, since a retry does not say who asked
// for it; a retry's conversation counts as shared when it has a group).
func (m *Manager) admit(ctx context.Context, t *Turn, model string, q Entry, prompt []llm.Message) error {
	author, group, shared := t.msg.Author, t.msg.Group, t.msg.Shared
	if t.retry {
		author, group, shared = Author{ID: q.AuthorID, Name: q.AuthorName}, q.Group, q.Group != ""
	}
	if m.restricted(model) && !author.Admin {
		if o := m.cfg.Observer.BudgetRefused; o != nil {
			o("restricted")
		}
		return userErr(ErrRestricted, "Model %s is for admins only here; choose another with /model.", model)
	}
	if m.ledger == nil {
		return nil
	}
	a := asker{platform: t.key.Platform, user: author.ID, name: author.Name, group: group, conversation: t.key.String(),
		shared: shared || group != ""}
	exempt := author.Admin && !m.cfg.Usage.LimitAdmins
	res, err := m.ledger.admit(ctx, a, model, exempt, func() { t.live.Update(View{Status: waitingStatus}) })
	if err != nil {
		if be, ok := err.(*BudgetError); ok {
			return &UserError{Err: be, Msg: be.Error()}
		}
		return err
	}
	t.usage = &turnUsage{asker: a, model: model, prompt: prompt, res: res}
	return nil
}

// usageOf is the usage record of t's answer: the provider's usage, else
// an estimate from its prompt and text; nil when t was not admitted or
// used nothing.
func (m *Manager) usageOf(t *Turn, answer Entry) *UsageRecord {
	u := t.usage
	if u == nil {
		return nil
	}
	usage, estimated := answer.Usage, false
	if usage.IsZero() {
		usage, estimated = estimateUsage(u.prompt, answer.Text, answer.Reasoning), true
	}
	return m.ledger.usageRecord(m.base, u.asker, u.model, usage, estimated)
}

// usageCommitted ends t's reservation once its answer's usage r was
// committed (or failed to be, with err): answers waiting for it may then
// be judged by counters that include it.
func (m *Manager) usageCommitted(t *Turn, r *UsageRecord, err error) {
	if t.usage == nil {
		return
	}
	t.usage.res.release()
	if err == nil && r != nil && m.cfg.Observer.Usage != nil {
		m.cfg.Observer.Usage(r.Model, r.Tally)
	}
}

// endUsage ends t's reservation if it still holds one (an answer that
// ended without a commit) and, once a day, deletes counters past the
// retention. It runs when the turn is over.
func (m *Manager) endUsage(t *Turn) {
	if t.usage == nil {
		return
	}
	t.usage.res.release()
	m.ledger.prune(m.base, m.ledger.now().Format(dayLayout))
}

// restricted reports whether only admins may choose or use model.
func (m *Manager) restricted(model string) bool {
	return len(m.cfg.Usage.Restricted) > 0 && llm.AllowList(m.cfg.Usage.Restricted).Allows(model)
}

// Ledger is the Manager's usage ledger, for the endpoint to share (see
// Ledger.Admit); nil when its store keeps no usage.
func (m *Manager) Ledger() *Ledger { return m.ledger }

// ChooseModel is SetModel for a person: a restricted model
// (UsageConfig.Restricted) is refused, with ErrRestricted, unless by is
// an admin.
func (m *Manager) ChooseModel(ctx context.Context, key Key, name string, by Author) (string, error) {
	if len(m.cfg.Usage.Restricted) > 0 && !by.Admin {
		canonical, err := m.ResolveModel(ctx, name)
		if err != nil {
			return "", err
		}
		if m.restricted(canonical) {
			if o := m.cfg.Observer.BudgetRefused; o != nil {
				o("restricted")
			}
			return "", userErr(ErrRestricted, "Model %s is for admins only here; choose another (see /models).", canonical)
		}
	}
	return m.SetModel(ctx, key, name)
}

// formatTokens writes n with thousands separators: 12,345.
func formatTokens(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// tokensOf says n tokens: "1 token", "12,345 tokens".
func tokensOf(n int64) string {
	if n == 1 {
		return "1 token"
	}
	return formatTokens(n) + " tokens"
}

// formatUSD writes a cost: $1.23, $0.0123, or "<$0.0001" for a speck.
func formatUSD(usd float64) string {
	switch {
	case usd == 0:
		return "$0"
	case usd < 0.0001:
		return "<$0.0001"
	case usd < 1:
		return fmt.Sprintf("$%.4f", usd)
	}
	return fmt.Sprintf("$%.2f", usd)
}
