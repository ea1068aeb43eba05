package sessions

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// UsageRequest is who asks for /usage, and where.
type UsageRequest struct {
	// Key is the conversation asked in; Group its group or server
	// (Message.Group), Shared whether several people talk there.
	Key    Key
	Group  string
	Shared bool
	// Author is who asks; an admin in a shared conversation sees its
	// usage and its group's too.
	Author Author
}

// maxTopUsers is how many users the top-users list of /usage names.
const maxTopUsers = 5

// maxReportModels bounds the models /usage lists; the rest are summed
// up in one line.
const maxReportModels = 10

// UsageReport is the /usage answer, in Markdown, the same for every
// platform: the asker's own tokens and cost today and this month, per
// model this month, and the limits that apply to them; for an admin in a
// shared conversation also the conversation's and the group's (or
// server's) totals and its top users this month. Costs of models without
// a price are shown as unknown, estimated tokens as such.
func (m *Manager) UsageReport(ctx context.Context, r UsageRequest) (string, error) {
	l := m.ledger
	if l == nil {
		return "Palaver does not record usage here.", nil
	}
	now := l.now()
	day, month := now.Format(dayLayout), now.Format(monthLayout)
	user := UsageUserID(r.Key.Platform, r.Author.ID)
	conv := keyPart(r.Key.String())
	group := ""
	if r.Group != "" {
		group = groupScope(r.Key.Platform, r.Group)
	}
	admin := r.Author.Admin && r.Shared
	keys := []UsageKey{{day, scopeUser, user, ""}, {month, scopeUser, user, ""}}
	if admin {
		keys = append(keys, UsageKey{day, scopeConversation, conv, ""}, UsageKey{month, scopeConversation, conv, ""})
		if group != "" {
			keys = append(keys, UsageKey{day, scopeGroup, group, ""}, UsageKey{month, scopeGroup, group, ""})
		}
	}
	t, err := l.store.UsageCounters(ctx, keys)
	if err != nil {
		return "", fmt.Errorf("sessions: usage report: %w", err)
	}
	models, err := l.store.UsageList(ctx, month, scopeUser, user)
	if err != nil {
		return "", fmt.Errorf("sessions: usage report: %w", err)
	}

	var b strings.Builder
	b.WriteString("**Your usage**\n")
	fmt.Fprintf(&b, "Today: %s\n", describeTally(t[0]))
	fmt.Fprintf(&b, "This month: %s\n", describeTally(t[1]))
	if len(models) > 0 {
		b.WriteString("\n**By model this month**\n")
		writeModels(&b, models)
	}
	exempt := r.Author.Admin && !m.cfg.Usage.LimitAdmins
	if lim := l.cfg.User; !lim.IsZero() {
		if exempt {
			b.WriteString("\nAs an admin you are exempt from the usage limits.\n")
		} else {
			fmt.Fprintf(&b, "\nYour limits: %s.\n", describeLimits(lim, t[0], t[1]))
		}
	}
	if admin {
		fmt.Fprintf(&b, "\n**This conversation**\nToday: %s\nThis month: %s\n", describeTally(t[2]), describeTally(t[3]))
		if lim := l.cfg.Conversation; !lim.IsZero() {
			fmt.Fprintf(&b, "Limits: %s.\n", describeLimits(lim, t[2], t[3]))
		}
		if group != "" {
			fmt.Fprintf(&b, "\n**This %s**\nToday: %s\nThis month: %s\n", groupNoun(r.Key.Platform), describeTally(t[4]), describeTally(t[5]))
			if lim := l.cfg.Group; !lim.IsZero() {
				fmt.Fprintf(&b, "Limits: %s.\n", describeLimits(lim, t[4], t[5]))
			}
			members, err := l.store.UsageList(ctx, month, scopeGroup, group)
			if err != nil {
				return "", fmt.Errorf("sessions: usage report: %w", err)
			}
			writeTopUsers(&b, members, r.Key.Platform)
		}
	}
	fmt.Fprintf(&b, "\nDays and months end at midnight %s.", l.cfg.Location)
	return b.String(), nil
}

// writeModels lists the asker's models, most tokens first.
func writeModels(b *strings.Builder, models []UsageCounter) {
	slices.SortStableFunc(models, func(x, y UsageCounter) int {
		return cmp.Or(cmp.Compare(y.Tokens(), x.Tokens()), cmp.Compare(x.Sub, y.Sub))
	})
	var rest Tally
	for i, mc := range models {
		if i >= maxReportModels {
			rest.Add(mc.Tally)
			continue
		}
		fmt.Fprintf(b, "- `%s`: %s\n", mc.Sub, describeTally(mc.Tally))
	}
	if n := len(models) - maxReportModels; n > 0 {
		fmt.Fprintf(b, "- %d more: %s\n", n, describeTally(rest))
	}
}

// writeTopUsers lists a group's top users this month by tokens.
func writeTopUsers(b *strings.Builder, members []UsageCounter, platform string) {
	if len(members) == 0 {
		return
	}
	slices.SortStableFunc(members, func(x, y UsageCounter) int {
		return cmp.Or(cmp.Compare(y.Tokens(), x.Tokens()), cmp.Compare(y.CostNanoUSD, x.CostNanoUSD), cmp.Compare(x.Sub, y.Sub))
	})
	b.WriteString("\n**Top users this month**\n")
	for i, mc := range members[:min(len(members), maxTopUsers)] {
		name := mc.Name
		if name == "" {
			name = strings.TrimPrefix(mc.Sub, platform+":")
		}
		fmt.Fprintf(b, "%d. %s — %s\n", i+1, escapeMarkdown(name), describeTally(mc.Tally))
	}
	if n := len(members) - maxTopUsers; n > 0 {
		fmt.Fprintf(b, "and %d more\n", n)
	}
}

// describeTally says what t used: "12,345 tokens (10,000 prompt + 2,345
// answer, 1,000 of it reasoning), $0.0123". Estimated tokens and unknown
// costs are said so.
func describeTally(t Tally) string {
	if t.Requests == 0 && t.Tokens() == 0 {
		return "nothing yet"
	}
	s := fmt.Sprintf("%s (%s prompt + %s answer", tokensOf(t.Tokens()), formatTokens(t.PromptTokens), formatTokens(t.CompletionTokens))
	if t.ReasoningTokens > 0 {
		s += ", " + formatTokens(t.ReasoningTokens) + " of it reasoning"
	}
	s += ")"
	if t.EstimatedTokens > 0 {
		s += ", about " + formatTokens(t.EstimatedTokens) + " of them estimated"
	}
	switch {
	case t.CostKnown():
		s += ", " + formatUSD(t.CostUSD())
	case t.CostNanoUSD == 0:
		s += ", cost unknown"
	default:
		s += ", " + formatUSD(t.CostUSD()) + " + unknown for " + tokensOf(t.UnpricedTokens)
	}
	return s
}

// describeLimits says a scope's limits and how much of each is used:
// "50,000 tokens a day (24% used), $5.00 a month (2% used)".
func describeLimits(lim Limit, day, month Tally) string {
	var parts []string
	used := func(u, of float64) string { return fmt.Sprintf(" (%d%% used)", int(100*u/of)) }
	if lim.DailyTokens > 0 {
		parts = append(parts, tokensOf(lim.DailyTokens)+" a day"+used(float64(day.Tokens()), float64(lim.DailyTokens)))
	}
	if lim.MonthlyTokens > 0 {
		parts = append(parts, tokensOf(lim.MonthlyTokens)+" a month"+used(float64(month.Tokens()), float64(lim.MonthlyTokens)))
	}
	if lim.DailyUSD > 0 {
		parts = append(parts, formatUSD(lim.DailyUSD)+" a day"+used(day.CostUSD(), lim.DailyUSD))
	}
	if lim.MonthlyUSD > 0 {
		parts = append(parts, formatUSD(lim.MonthlyUSD)+" a month"+used(month.CostUSD(), lim.MonthlyUSD))
	}
	return strings.Join(parts, ", ")
}

// escapeMarkdown escapes the characters of a name that Markdown would
// read as formatting.
func escapeMarkdown(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`).Replace(s)
}
