package main

import (
	"slices"
	"strings"
	"time"
)

// Palaver's per-bot budgets (its config defaults, which the generated
// config keeps): Telegram 30 charged messages a second, Discord 45
// requests. A fifth of each is kept for finals, first appearances and
// notices; growing text, status changes and typing share the rest, the
// text pool.
const (
	palaverTelegramBudget = 30
	palaverDiscordBudget  = 45
)

// textPool is what a budget of n requests a second leaves for growing
// text, status and typing (sessions keeps max(1, n/5)).
func textPool(n int) int { return max(1, n-max(1, n/5)) }

// binWidth is the resolution at which the load test follows the demand on
// the per-bot budgets.
const binWidth = 100 * time.Millisecond

// budgetModel follows, bin by bin, what each bot's budget could give
// growing text and what the answers streaming into destinations that draw
// on it wanted. Growing text may have the budget's text pool less all that
// the finals, first appearances and first texts took: the engine keeps
// the window's last fifth free for them at all times, so that one never
// waits long behind text (sessions.budget). That is what was left. Each
// destination wanted as much as its window sustains (windowRate). Where
// they wanted more than was left, the budget bound, and each
// destination's fair share is its window's rate scaled down to what was
// left.
type budgetModel struct {
	start  time.Time
	demand map[string][]float64 // platform → requests a second wanted, by bin
	left   map[string][]float64 // platform → requests a second left for them, by bin
	spent  map[string][]float64 // platform → requests a second charged in the second up to each bin (noteSpent)
}

// urgentSpan is the span over which the urgent requests' rate is taken.
const urgentSpan = time.Second

// platformOf names the budget a kind of conversation draws on.
func platformOf(k kind) string {
	if k.telegram() {
		return "telegram"
	}
	return "discord"
}

// budgetOf is Palaver's budget for platform, requests a second.
func budgetOf(platform string) int {
	if platform == "telegram" {
		return palaverTelegramBudget
	}
	return palaverDiscordBudget
}

// drawsOnBudget reports whether growing text at a destination of kind k
// is charged to the bot's budget: everything but a Telegram private
// chat's drafts.
func (w *world) drawsOnBudget(k kind) bool { return !(k == tgPrivate && w.opts.drafts) }

// newBudgetModel computes the demand from every destination's streaming
// spans, and what was left from the urgent requests the platforms
// received (urgent, by platform), between start and end.
func (w *world) newBudgetModel(an *analysis, obs map[*answer]*observed, urgent map[string][]time.Time, start, end time.Time) *budgetModel {
	n := 0
	if !start.IsZero() && end.After(start) {
		n = int(end.Sub(start)/binWidth) + 1
	}
	m := &budgetModel{start: start, demand: map[string][]float64{}, left: map[string][]float64{}, spent: map[string][]float64{}}
	for _, p := range []string{"telegram", "discord"} {
		m.demand[p] = make([]float64, n)
		// The urgent requests' rate around each bin, and what it left.
		half := int(urgentSpan / binWidth / 2)
		left := rateOver(urgent[p], start, n, -half, half)
		for i, rate := range left {
			left[i] = max(0, float64(textPool(budgetOf(p)))-rate)
		}
		m.left[p] = left
	}
	for _, d := range an.dests {
		if !w.drawsOnBudget(d.kind) {
			continue
		}
		dem := m.demand[platformOf(d.kind)]
		for _, s := range d.streaming(obs) {
			m.each(s, func(i int, overlap time.Duration) {
				if i >= 0 && i < len(dem) {
					dem[i] += windowRate(d.kind) * overlap.Seconds() / binWidth.Seconds()
				}
			})
		}
	}
	return m
}

// noteSpent records every request charged to platform's budget (times),
// for crowded: by bin, the rate over the budget's span up to the end of
// the bin, the requests that still count when one more asks.
func (m *budgetModel) noteSpent(platform string, times []time.Time) {
	bins := int(urgentSpan / binWidth)
	m.spent[platform] = rateOver(times, m.start, len(m.left[platform]), 1-bins, 1)
}

// rateOver is, for each of n bins from start, the rate a second of times
// over the bins from i+lo up to i+hi (not included), urgentSpan's worth.
func rateOver(times []time.Time, start time.Time, n, lo, hi int) []float64 {
	per := make([]float64, n)
	for _, t := range times {
		if i := int(t.Sub(start) / binWidth); t.After(start) && i < n {
			per[i]++
		}
	}
	rates := make([]float64, n)
	for i := range n {
		sum := 0.0
		for j := max(0, i+lo); j < min(n, i+hi); j++ {
			sum += per[j]
		}
		rates[i] = sum / urgentSpan.Seconds()
	}
	return rates
}

// crowded reports whether the platform's budget was spent to the full
// (crowdedShare of it, requests of every urgency, over the second before)
// at some moment from when a request was wanted until it went out: it
// then waited its place in the bot's line, whatever its destination
// allowed.
func (m *budgetModel) crowded(platform string, from, to time.Time) bool {
	r := m.spent[platform]
	for i := int(from.Sub(m.start) / binWidth); i <= int(to.Sub(m.start)/binWidth); i++ {
		if i >= 0 && i < len(r) && r[i] >= crowdedShare*float64(budgetOf(platform)) {
			return true
		}
	}
	return false
}

// crowdedShare is the share of a bot's budget spent at which the load test
// calls it crowded.
const crowdedShare = 0.85

// each calls f for every bin span overlaps, with the overlap.
func (m *budgetModel) each(span [2]time.Time, f func(bin int, overlap time.Duration)) {
	for i := int(span[0].Sub(m.start) / binWidth); ; i++ {
		lo := m.start.Add(time.Duration(i) * binWidth)
		hi := lo.Add(binWidth)
		if !lo.Before(span[1]) {
			return
		}
		end := span[1]
		if hi.Before(end) {
			end = hi
		}
		if o := end.Sub(later(lo, span[0])); o > 0 {
			f(i, o)
		}
	}
}

// bound reports whether the platform's budget bound in bin i: growing
// text wanted more than was left for it.
func (m *budgetModel) bound(platform string, i int) bool {
	dem := m.demand[platform]
	return i >= 0 && i < len(dem) && dem[i] > m.left[platform][i]
}

// fair is the share of its window's rate a destination of platform could
// have in bin i: 1 while the budget does not bind, else what was left,
// shared in proportion to the windows.
func (m *budgetModel) fair(platform string, i int) float64 {
	if !m.bound(platform, i) {
		return 1
	}
	return m.left[platform][i] / m.demand[platform][i]
}

// allowed is how many writes a destination of kind k could receive during
// span, where urgent were the answers' first appearances, first texts and
// finals there (they go first), and growing text is sent as soon as the
// destination's rules allow (simulated: see windowAllows), each request
// counted at the destination's fair share of the bot's budget at its
// time: a request the budget would give the finals instead counts for
// nothing.
func (w *world) allowed(m *budgetModel, k kind, span [2]time.Time, urgent []urgentWrite, interval time.Duration) float64 {
	texts := windowAllows(k, !w.drawsOnBudget(k), span, urgent, interval)
	if !w.drawsOnBudget(k) {
		return float64(len(urgent) + len(texts))
	}
	text := 0.0
	for _, t := range texts {
		text += m.fair(platformOf(k), int(t.Sub(m.start)/binWidth))
	}
	return float64(len(urgent)) + text
}

// urgentWrite is a write that showed an answer's first appearance, first
// text or final view: sent when the platform received it, wanted when
// the answer first needed it (the question, the first token, the last).
type urgentWrite struct{ wanted, sent time.Time }

// withMargin is a window's span d with the margin the engine adds for
// network jitter (sessions' spanOf).
func withMargin(d time.Duration) time.Duration { return d + min(d/50, 100*time.Millisecond) }

// unixMS is t in milliseconds since the Unix epoch, for -details.
func unixMS(t time.Time) float64 { return float64(t.UnixMicro()) / 1000 }

// engineWindows are the windows Palaver's engine keeps to at a
// destination of kind k, as config.yaml sets them: Telegram's 3 per 3 s per
// chat, and a group's (all its topics') 20 per minute besides; Discord's 5
// per 5 s per channel.
func engineWindows(k kind) [][2]int64 {
	switch k {
	case tgPrivate:
		return [][2]int64{{3, int64(3 * time.Second)}}
	case tgGroup, tgTopic:
		return [][2]int64{{3, int64(3 * time.Second)}, {20, int64(time.Minute)}}
	default:
		return [][2]int64{{5, int64(5 * time.Second)}}
	}
}

// windowAllows is when a destination of kind k admits requests of
// growing text during span besides the urgent ones (sent at their times,
// sorted by them), sent each as soon as its rules allow: each of its
// windows (engineWindows) less the slot kept for a final (when the window
// holds two or more), and the interval since the destination's last
// request; with drafts (a Telegram private chat's growing text) the
// interval alone. Growing text never goes while an urgent request is
// wanted and not yet sent (it would go first), and comes only after the
// span's first urgent request: the span begins with an answer's first
// token, which becomes its first text. It is what the engine aims at.
func windowAllows(k kind, drafts bool, span [2]time.Time, urgent []urgentWrite, interval time.Duration) []time.Time {
	windows := engineWindows(k)
	if drafts {
		windows = nil // drafts are not charged: only the interval paces them
	}
	var sent []time.Time
	fits := func(t time.Time) bool {
		for _, w := range windows {
			free, per := int(w[0]), time.Duration(w[1])
			if free >= 2 {
				free--
			}
			per = withMargin(per)
			n := 0
			for _, s := range sent {
				if s.After(t.Add(-per)) && !s.After(t) {
					n++
				}
			}
			if n >= free {
				return false
			}
		}
		return true
	}
	// pending reports whether an urgent request not sent by t (from the
	// u-th on) was wanted by then.
	pending := func(u int, t time.Time) bool {
		for _, r := range urgent[u:] {
			if !r.wanted.After(t) {
				return true
			}
		}
		return false
	}
	var texts []time.Time
	u := 0
	last := time.Time{}
	for t := span[0]; !t.After(span[1]); {
		if u < len(urgent) && !urgent[u].sent.After(t) {
			sent = append(sent, urgent[u].sent)
			last = later(last, urgent[u].sent)
			u++
			continue
		}
		next := t.Add(10 * time.Millisecond)
		if !last.IsZero() && !t.Before(last.Add(interval)) && !pending(u, t) && fits(t) {
			sent = append(sent, t)
			last = t
			texts = append(texts, t)
			next = t.Add(interval)
		}
		if u < len(urgent) && urgent[u].sent.Before(next) {
			next = urgent[u].sent
		}
		t = next
	}
	return texts
}

// urgentWrites are the writes at d that showed an answer's first
// appearance, first text or final view, by the time they were sent, with
// when each was wanted: the requests that do not wait for growing text's
// share of the budget.
func (d *destLog) urgentWrites(obs map[*answer]*observed) map[time.Time]time.Time {
	urgent := map[time.Time]time.Time{}
	note := func(sent, wanted time.Time) {
		if w, ok := urgent[sent]; !ok || wanted.Before(w) {
			urgent[sent] = earlier(wanted, sent)
		}
	}
	for _, a := range d.shown {
		o := obs[a]
		if o == nil || len(o.writes) == 0 {
			continue
		}
		note(o.writes[0].at, o.asked)
		note(o.firstVisible, o.first)
		note(o.final, o.last)
	}
	return urgent
}

// earlier is the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// budgetRequests are the requests Palaver charged to one bot's budget, as
// the platform received them: urgent ones (first appearances, first texts,
// finals, threads), growing text and status changes, typing indicators.
type budgetRequests struct {
	urgent, text, typing []time.Time
}

// budgetRequests sorts the requests of every answer and the typing
// indicators by the budget they drew on and their urgency.
func (w *world) budgetRequests(an *analysis) map[string]*budgetRequests {
	rs := map[string]*budgetRequests{"telegram": {}, "discord": {}}
	for _, o := range an.answers {
		r := rs[platformOf(o.a.conv.kind)]
		seenText := false
		for i, v := range o.writes {
			m := leadingTag.FindStringSubmatch(v.text)
			firstText := m != nil && m[1] == o.a.tag && !seenText
			seenText = seenText || firstText
			switch {
			case v.draft:
				// Drafts draw on no budget.
			case i == 0, i == len(o.writes)-1, firstText:
				r.urgent = append(r.urgent, v.at)
			default:
				r.text = append(r.text, v.at)
			}
		}
	}
	for _, c := range w.tg.Calls() {
		if strings.EqualFold(c.Method, "sendChatAction") {
			rs["telegram"].typing = append(rs["telegram"].typing, c.Time)
		}
	}
	for _, c := range w.dc.Calls() {
		switch {
		case strings.HasSuffix(c.Route, "/typing"):
			rs["discord"].typing = append(rs["discord"].typing, c.Time)
		case c.Method == "POST" && strings.HasSuffix(c.Route, "/threads"):
			// Engine.Spend; interaction callbacks draw on no budget.
			rs["discord"].urgent = append(rs["discord"].urgent, c.Time)
		}
	}
	return rs
}

// budgetUse is what one bot's budget was spent on while it bound.
func budgetUse(m *budgetModel, r *budgetRequests, platform string) BudgetUse {
	u := BudgetUse{Budget: budgetOf(platform), Pool: textPool(budgetOf(platform))}
	bin := func(t time.Time) int { return int(t.Sub(m.start) / binWidth) }
	var times []time.Time // of every request while the budget bound
	count := func(ts []time.Time) int {
		n := 0
		for _, t := range ts {
			if !t.Before(m.start) && m.bound(platform, bin(t)) {
				times = append(times, t)
				n++
			}
		}
		return n
	}
	urgent, text, typing := count(r.urgent), count(r.text), count(r.typing)
	left := 0.0
	for i := range m.demand[platform] {
		if m.bound(platform, i) {
			u.BoundS += binWidth.Seconds()
			left += m.left[platform][i] * binWidth.Seconds()
		}
	}
	if u.BoundS == 0 {
		return u
	}
	u.Urgent = float64(urgent) / u.BoundS
	u.Text = float64(text) / u.BoundS
	u.Typing = float64(typing) / u.BoundS
	u.Left = left / u.BoundS
	u.Share = (u.Urgent + u.Text + u.Typing) / float64(u.Budget)
	if u.Left > 0 {
		u.TextShare = (u.Text + u.Typing) / u.Left
	}
	u.HeldS = heldFor(times, u.Budget, m, platform)
	return u
}

// heldFor is how long a request held its place in the budget while the
// budget bound: the median time between a request and the one a whole
// budget later, both in the same run of bins where the budget bound. A
// budget always wanted turns over once a window and a round trip.
func heldFor(times []time.Time, budget int, m *budgetModel, platform string) float64 {
	slices.SortFunc(times, time.Time.Compare)
	run := func(t time.Time) int { // the first bin of t's run of bound bins
		i := int(t.Sub(m.start) / binWidth)
		for i > 0 && m.bound(platform, i-1) {
			i--
		}
		return i
	}
	var gaps []float64
	for j := budget; j < len(times); j++ {
		if run(times[j]) == run(times[j-budget]) {
			gaps = append(gaps, times[j].Sub(times[j-budget]).Seconds())
		}
	}
	if len(gaps) == 0 {
		return 0
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}
