package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

// The analysis reads what the fakes recorded — every request Palaver made
// and every state of every message — and rebuilds each answer as its user
// saw it. Nothing here asks Palaver: the platform's record is the truth.

// version is one visible state of a message or draft, after a write.
type version struct {
	at    time.Time
	text  string // the visible text
	stop  bool   // it carries the Stop button
	draft bool   // a Telegram draft
}

// unit is one message (or Telegram draft) of the bot.
type unit struct {
	draft    bool
	versions []version
	answer   *answer
}

// write is one accepted request that changed what a destination shows.
type write struct {
	at      time.Time
	charged bool // counted by the platform's rate limit (not a draft)
}

// refusal is a 429 the platform answered.
type refusal struct {
	at         time.Time
	retryAfter time.Duration
}

// destLog is what one destination (a Telegram chat, a Discord channel)
// received.
type destLog struct {
	dest     string
	kind     kind
	interval time.Duration
	convs    []*conversation
	writes   []write
	refusals []refusal
	errors   []string // other refused writes
	units    map[string]*unit
	order    []string // unit keys in order of their first write
}

func (d *destLog) unit(key string, draft bool) *unit {
	u := d.units[key]
	if u == nil {
		u = &unit{draft: draft}
		d.units[key] = u
		d.order = append(d.order, key)
	}
	return u
}

// observed is the answer as its user saw it.
type observed struct {
	a *answer

	asked, first, last time.Time // question pushed; model's first and last token
	sent               int       // tokens the model sent

	updates      int       // writes that showed this answer
	firstVisible time.Time // first write showing the answer's text
	final        time.Time // the answer's last write
	finalText    string    // normalized text of its messages after the last write
	stopLeft     bool      // its last message still has the Stop button
	scheduled    time.Time // when the destination's schedule allowed the final write
	writes       []version // the answer's writes, in time order
	// finalRequests is how many writes the final view took: more than one
	// when the answer outgrew a message in its last moments.
	finalRequests int
	budgetFree    bool // the destination was idle for an interval before the first token

	complete bool   // shown in full (or, when dropped, what came plus the error)
	problem  string // why not complete
}

// analysis is the whole run as the platforms saw it.
type analysis struct {
	dests   map[string]*destLog
	answers []*observed
	stray   int // bot messages that belong to no answer
}

// analyze reads the fakes' records.
func (w *world) analyze() *analysis {
	an := &analysis{dests: map[string]*destLog{}}
	for _, c := range w.convs {
		d := an.dests[c.dest]
		if d == nil {
			d = &destLog{dest: c.dest, kind: c.kind, interval: c.interval, units: map[string]*unit{}}
			an.dests[c.dest] = d
		}
		d.convs = append(d.convs, c)
	}
	w.readTelegram(an)
	w.readDiscord(an)
	for _, d := range an.dests {
		slices.SortFunc(d.writes, func(a, b write) int { return a.at.Compare(b.at) })
		an.stray += d.assign()
		for _, c := range d.convs {
			for _, a := range c.answers {
				an.answers = append(an.answers, d.observe(a))
			}
		}
	}
	slices.SortFunc(an.answers, func(a, b *observed) int { return strings.Compare(a.a.tag, b.a.tag) })
	return an
}

// readTelegram turns the Telegram fake's calls into units and writes.
func (w *world) readTelegram(an *analysis) {
	for _, c := range w.tg.Calls() {
		d := an.dests["telegram:"+c.Params["chat_id"]]
		if d == nil {
			continue
		}
		if c.Status == 429 { // whatever the method: the limit is the chat's
			d.refusals = append(d.refusals, refusal{at: c.Time, retryAfter: time.Duration(c.RetryAfter) * time.Second})
			continue
		}
		method := strings.ToLower(c.Method)
		draft := method == "sendmessagedraft"
		switch method {
		case "sendmessage", "editmessagetext", "editmessagereplymarkup", "sendmessagedraft":
		default:
			continue
		}
		switch {
		case !c.OK():
			d.errors = append(d.errors, c.Method+": "+c.Description)
			continue
		}
		d.writes = append(d.writes, write{at: c.Time, charged: !draft})
		key := "m" + strconv.Itoa(c.MessageID)
		if draft {
			key = "d" + c.Params["draft_id"] + "/" + c.Params["message_thread_id"]
		}
		u := d.unit(key, draft)
		v := version{at: c.Time, stop: strings.Contains(c.Params["reply_markup"], `"stop"`), draft: draft}
		if method == "editmessagereplymarkup" {
			if n := len(u.versions); n > 0 {
				v.text = u.versions[n-1].text
			}
		} else {
			v.text = visibleTelegram(c.Params["text"], c.Params["parse_mode"])
		}
		u.versions = append(u.versions, v)
	}
}

// visibleTelegram is the text a Telegram user sees for a text parameter.
func visibleTelegram(text, parseMode string) string {
	if !strings.EqualFold(parseMode, "HTML") {
		return text
	}
	plain, _, err := telegramtest.ParseHTML(text)
	if err != nil {
		return text
	}
	return plain
}

// readDiscord turns the Discord fake's messages and calls into units,
// writes and refusals.
func (w *world) readDiscord(an *analysis) {
	users := map[string]bool{}
	for _, u := range w.dcUsers {
		users[u.ID] = true
	}
	for _, m := range w.dc.Messages("") {
		d := an.dests["discord:"+m.ChannelID]
		if d == nil || users[m.AuthorID] {
			continue
		}
		u := d.unit("m"+m.ID, false)
		for _, v := range m.Versions {
			if v.Flags&discordtest.FlagLoading != 0 {
				continue // the deferred "thinking" state: an interaction callback, not a write
			}
			u.versions = append(u.versions, version{at: v.Time, text: v.Content,
				stop: strings.Contains(string(v.Components), `"palaver:stop"`)})
			d.writes = append(d.writes, write{at: v.Time, charged: true})
		}
	}
	for _, c := range w.dc.Calls() {
		d := an.dests["discord:"+c.ChannelID]
		if d == nil || c.Status < 400 || (!c.Write && c.Status != 429) {
			continue
		}
		if c.Status != 429 {
			d.errors = append(d.errors, c.Method+" "+c.Route+": "+string(c.Response))
			continue
		}
		var body struct {
			RetryAfter float64 `json:"retry_after"`
		}
		_ = json.Unmarshal(c.Response, &body)
		d.refusals = append(d.refusals, refusal{at: c.Time, retryAfter: time.Duration(body.RetryAfter * float64(time.Second))})
	}
}

// leadingTag matches an answer's tag at the start of a text.
var leadingTag = regexp.MustCompile(`^(A\d+-\d+-\d+)(\s|$)`)

// assign gives each unit to its answer: by the tag its text starts with,
// else (a continuation message) by the answer whose text contains it.
// It returns the number of units that belong to none.
func (d *destLog) assign() (stray int) {
	byTag := map[string]*answer{}
	for _, c := range d.convs {
		for _, a := range c.answers {
			byTag[a.tag] = a
		}
	}
	for _, key := range d.order {
		u := d.units[key]
		for _, v := range u.versions {
			if m := leadingTag.FindStringSubmatch(v.text); m != nil && byTag[m[1]] != nil {
				u.answer = byTag[m[1]]
				break
			}
		}
		if u.answer != nil || len(u.versions) == 0 {
			continue
		}
		last := normalize(u.versions[len(u.versions)-1].text)
		var found []*answer
		for _, a := range byTag {
			if last != "" && strings.Contains(normalize(a.text()), last) {
				found = append(found, a)
			}
		}
		if len(found) == 1 {
			u.answer = found[0]
		} else {
			stray++
		}
	}
	return stray
}

// normalize collapses white space, which splitting and rendering may
// change without changing what a reader sees.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// observe rebuilds answer a from the destination's units.
func (d *destLog) observe(a *answer) *observed {
	o := &observed{a: a}
	o.asked, o.first, o.last, o.sent = a.timing()
	var units []*unit
	var all []version
	for _, key := range d.order {
		if u := d.units[key]; u.answer == a {
			units = append(units, u)
			all = append(all, u.versions...)
		}
	}
	slices.SortFunc(all, func(x, y version) int { return x.at.Compare(y.at) })
	o.updates = len(all)
	o.writes = all
	for _, v := range all {
		if m := leadingTag.FindStringSubmatch(v.text); m != nil && m[1] == a.tag {
			o.firstVisible = v.at
			break
		}
	}
	if len(all) > 0 {
		o.final = all[len(all)-1].at
	}
	var parts []string
	var lastMsg *unit
	for _, u := range units {
		if u.draft || len(u.versions) == 0 {
			continue
		}
		parts = append(parts, u.versions[len(u.versions)-1].text)
		lastMsg = u
	}
	o.finalText = normalize(strings.Join(parts, "\n"))
	// The final view's writes are the last ones without a Stop button
	// (while an answer runs, its last message carries one).
	var msgs []version
	for _, u := range units {
		if !u.draft {
			msgs = append(msgs, u.versions...)
		}
	}
	slices.SortFunc(msgs, func(x, y version) int { return x.at.Compare(y.at) })
	for i := len(msgs) - 1; i >= 0 && !msgs[i].stop; i-- {
		o.finalRequests++
	}
	if lastMsg != nil {
		o.stopLeft = lastMsg.versions[len(lastMsg.versions)-1].stop
	}
	want := normalize(a.text())
	switch {
	case o.sent == 0:
		o.problem = "the model was never asked"
		if a.served {
			o.problem = "the model sent nothing"
		}
	case lastMsg == nil:
		o.problem = "no message shows the answer"
	case o.stopLeft:
		o.problem = "the Stop button is still there"
	case a.dropAfter > 0 && !(strings.HasPrefix(o.finalText, want) && strings.Contains(o.finalText, "⚠️")):
		o.problem = "the partial answer and the error are not both shown"
	case a.dropAfter == 0 && o.finalText != want:
		o.problem = "the final text differs from the model's"
	default:
		o.complete = true
	}
	if !o.complete {
		return o
	}
	// The schedule: when could the final write go out, given the writes
	// before it (each charging one interval) and the last token?
	next := time.Time{}
	for _, w := range d.writes {
		if !w.at.Before(o.final) {
			break
		}
		next = later(next, w.at).Add(d.interval)
	}
	for _, r := range d.refusals { // a 429 pauses the destination
		if r.at.Before(o.final) {
			next = later(next, r.at.Add(r.retryAfter))
		}
	}
	o.scheduled = later(o.last, next)
	// Budget-free: nothing was written to the destination within an
	// interval before the first token and until the answer appeared.
	o.budgetFree = true
	for _, w := range d.writes {
		if !w.at.Before(o.firstVisible) {
			break
		}
		if w.at.After(o.first.Add(-d.interval)) {
			o.budgetFree = false
		}
	}
	return o
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// busy are the spans during which the destination had an answer to show
// (from its first token to its last write), merged.
func (d *destLog) busy(obs map[*answer]*observed) [][2]time.Time {
	var spans [][2]time.Time
	for _, c := range d.convs {
		for _, a := range c.answers {
			o := obs[a]
			if o == nil || o.first.IsZero() || o.final.IsZero() {
				continue
			}
			spans = append(spans, [2]time.Time{o.first, o.final})
		}
	}
	slices.SortFunc(spans, func(x, y [2]time.Time) int { return x[0].Compare(y[0]) })
	var merged [][2]time.Time
	for _, s := range spans {
		if n := len(merged); n > 0 && !s[0].After(merged[n-1][1]) {
			merged[n-1][1] = later(merged[n-1][1], s[1])
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// maxInWindow is the largest number of writes (charged ones only, when
// charged) within any span of length win.
func (d *destLog) maxInWindow(win time.Duration, charged bool) int {
	var ts []time.Time
	for _, w := range d.writes {
		if !charged || w.charged {
			ts = append(ts, w.at)
		}
	}
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= win {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// writesDuringPause counts writes made while a 429's retry_after ran.
func (d *destLog) writesDuringPause() int {
	n := 0
	for _, r := range d.refusals {
		end := r.at.Add(r.retryAfter)
		for _, w := range d.writes {
			if w.at.After(r.at) && w.at.Before(end) {
				n++
			}
		}
	}
	return n
}
