package main

import (
	"encoding/json"
	"fmt"
	"maps"
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
	at      time.Time
	text    string // the visible text
	stop    bool   // it carries the Stop button
	draft   bool   // a Telegram draft
	loading bool   // a deferred interaction's "thinking" state: no write
}

// unit is one message (or Telegram draft) of the bot.
type unit struct {
	dest     *destLog
	draft    bool
	versions []version
	answer   *answer
	// pointer is the thread this message points to ("<#id>") when it is
	// not the answer itself: a sign of life for the thread's answer.
	pointer string
}

// write is one accepted request that changed what a destination shows.
type write struct {
	at      time.Time
	charged bool // counted by the platform's rate limit (not a draft)
	// callback is a message an interaction callback created (Discord's
	// response to a slash command): no rate limit charges it, and a bot
	// may send it outside its schedule.
	callback bool
}

// refusal is a 429 the platform answered.
type refusal struct {
	at         time.Time
	retryAfter time.Duration
}

// destLog is what one destination (a Telegram chat, a Discord channel or
// thread) received.
type destLog struct {
	dest     string
	kind     kind
	interval time.Duration
	convs    []*conversation
	// parent is the channel of a Discord thread Palaver opened; a thread
	// has no conversations of its own: its answers are its parent's.
	parent   *destLog
	shown    []*answer // answers whose text it shows
	writes   []write
	refusals []refusal
	errors   []string // other refused writes
	units    map[string]*unit
	order    []string // unit keys in order of their first write
}

func (d *destLog) unit(key string, draft bool) *unit {
	u := d.units[key]
	if u == nil {
		u = &unit{dest: d, draft: draft}
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
	// firstSign is the first sign of life the asker saw: a placeholder,
	// the interaction's "thinking" state, a pointer to the answer's
	// thread, or the first text.
	firstSign time.Time
	// home is where the answer's text is shown (its conversation's
	// destination, or the thread Palaver opened for it).
	home *destLog
	// alone is true when no other answer shown at its destination had
	// been asked and was not yet final when the model finished this one.
	alone     bool
	final     time.Time // the answer's last write
	finalText string    // normalized text of its messages after the last write
	stopLeft  bool      // its last message still has the Stop button
	scheduled time.Time // when the destination's schedule allowed the final write
	writes    []version // the answer's writes, in time order
	// finalRequests is how many writes the final view took: more than one
	// when the answer outgrew a message in its last moments.
	finalRequests int
	budgetFree    bool // the destination was idle for an interval before the first token

	complete bool   // shown in full (or, when dropped, what came plus the error)
	problem  string // why not complete
}

// analysis is the whole run as the platforms saw it.
type analysis struct {
	dests    map[string]*destLog
	threads  map[string]string // Discord thread id → parent channel id
	starters map[string]string // message id → the thread started from it
	answers  []*observed
	stray    int      // bot messages that belong to no answer
	strays   []string // the first maxStrays of them: destination and text
}

// maxStrays is how many stray messages the analysis describes.
const maxStrays = 5

// addStray counts a bot message that belongs to no answer.
func (an *analysis) addStray(u *unit) {
	an.stray++
	if len(an.strays) >= maxStrays {
		return
	}
	text := ""
	if n := len(u.versions); n > 0 {
		text = u.versions[n-1].text
	}
	if r := []rune(text); len(r) > 80 {
		text = string(r[:80]) + "…"
	}
	an.strays = append(an.strays, fmt.Sprintf("%s: %q", u.dest.dest, text))
}

// analyze reads the fakes' records.
func (w *world) analyze() *analysis {
	an := &analysis{dests: map[string]*destLog{}, threads: map[string]string{}, starters: map[string]string{}}
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
	texts := map[*answer][]*unit{}
	pointers := map[*answer][]*unit{}
	inThread := map[string]*answer{} // thread id → the first answer shown there
	var pointing []*unit
	for _, key := range slices.Sorted(maps.Keys(an.dests)) {
		d := an.dests[key]
		slices.SortFunc(d.writes, func(a, b write) int { return a.at.Compare(b.at) })
		for _, u := range d.assign(an.threads, an.starters) {
			an.addStray(u)
		}
		for _, k := range d.order {
			switch u := d.units[k]; {
			case u.answer != nil:
				texts[u.answer] = append(texts[u.answer], u)
				if id := strings.TrimPrefix(d.dest, "discord:"); d.parent != nil && inThread[id] == nil {
					inThread[id] = u.answer
				}
			case u.pointer != "":
				pointing = append(pointing, u)
			}
		}
	}
	for _, u := range pointing {
		if a := inThread[u.pointer]; a != nil {
			pointers[a] = append(pointers[a], u)
		} else {
			an.addStray(u) // a pointer to a thread that shows no answer
		}
	}
	var all []*observed
	for _, key := range slices.Sorted(maps.Keys(an.dests)) {
		d := an.dests[key]
		for _, c := range d.convs {
			for _, a := range c.answers {
				home := d
				if us := texts[a]; len(us) > 0 {
					slices.SortStableFunc(us, func(x, y *unit) int { return x.versions[0].at.Compare(y.versions[0].at) })
					home = us[len(us)-1].dest
				}
				o := home.observe(a, texts[a], pointers[a])
				if len(texts[a]) > 0 {
					home.shown = append(home.shown, a)
				}
				all = append(all, o)
			}
		}
	}
	markAlone(all)
	slices.SortFunc(all, func(a, b *observed) int { return strings.Compare(a.a.tag, b.a.tag) })
	an.answers = all
	return an
}

// markAlone sets alone on the answers that had their destination to
// themselves when they ended: no other answer there was still to be shown
// in full, and none had its final shown within the window before (it took
// the slot the engine keeps for a final, one per window).
func markAlone(all []*observed) {
	byHome := map[*destLog][]*observed{}
	for _, o := range all {
		if o.complete {
			byHome[o.home] = append(byHome[o.home], o)
		}
	}
	for _, os := range byHome {
		for _, o := range os {
			o.alone = true
			for _, b := range os {
				if b == o || !b.asked.Before(o.last) {
					continue
				}
				_, win, _ := platformWindow(o.a.conv.kind)
				if b.final.After(o.last) || b.final.After(o.last.Add(-win)) {
					o.alone = false
					break
				}
			}
		}
	}
}

// discordDest is the destination of a Discord channel: a conversation's
// channel, or a thread Palaver opened under one; nil for others.
func (an *analysis) discordDest(channelID string) *destLog {
	if d := an.dests["discord:"+channelID]; d != nil {
		return d
	}
	parent := an.dests["discord:"+an.threads[channelID]]
	if parent == nil {
		return nil
	}
	d := &destLog{dest: "discord:" + channelID, kind: parent.kind, interval: parent.interval,
		units: map[string]*unit{}, parent: parent}
	an.dests[d.dest] = d
	return d
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
		case draft && c.Params["text"] == "":
			// The "Thinking…" placeholder, shown before the first token
			// the way typing is: no view of the answer.
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
// writes and refusals. Threads are known by the answers to the requests
// that opened them.
func (w *world) readDiscord(an *analysis) {
	calls := w.dc.Calls()
	for _, c := range calls {
		if c.Method != "POST" || c.Status/100 != 2 || !strings.HasSuffix(c.Route, "/threads") {
			continue
		}
		var th struct {
			ID       string `json:"id"`
			ParentID string `json:"parent_id"`
		}
		if json.Unmarshal(c.Response, &th) == nil && th.ID != "" {
			an.threads[th.ID] = th.ParentID
			// POST /channels/{channel}/messages/{message}/threads
			if parts := strings.Split(c.Path, "/"); len(parts) >= 3 && parts[len(parts)-3] == "messages" {
				an.starters[parts[len(parts)-2]] = th.ID
			}
		}
	}
	bot := w.dc.BotUser().ID
	for _, m := range w.dc.Messages("") {
		d := an.discordDest(m.ChannelID)
		if d == nil || m.AuthorID != bot || !answerType[m.Type] {
			continue
		}
		u := d.unit("m"+m.ID, false)
		// A slash command's response is created by the interaction
		// callback, which no rate limit charges; its edits are charged.
		callback := m.InteractionID != "" && m.Type == messageChatInput
		for i, v := range m.Versions {
			if v.Flags&discordtest.FlagLoading != 0 {
				// The deferred "thinking" state: a sign of life, no write.
				u.versions = append(u.versions, version{at: v.Time, loading: true})
				continue
			}
			u.versions = append(u.versions, version{at: v.Time, text: v.Text(),
				stop: strings.Contains(string(v.Components), `"palaver:stop"`)})
			created := callback && i == 0
			d.writes = append(d.writes, write{at: v.Time, charged: !created, callback: created})
		}
	}
	for _, c := range calls {
		d := an.discordDest(c.ChannelID)
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

// Discord message types: an answer's messages are default ones, replies
// and a slash command's response. Others (a thread's "created" notice,
// its starter) are Discord's own.
const (
	messageDefault   = 0
	messageReply     = 19
	messageChatInput = 20
)

var answerType = map[int]bool{messageDefault: true, messageReply: true, messageChatInput: true}

// leadingTag matches an answer's tag at the start of a text.
var leadingTag = regexp.MustCompile(`^(A\d+-\d+-\d+)(\s|$)`)

// threadMention matches a Discord channel mention.
var threadMention = regexp.MustCompile(`<#(\d+)>`)

// assign gives each unit to its answer: by the tag its text starts with,
// else (a continuation message) by the answer whose text contains it. A
// message pointing to a thread opened under this channel (threads: thread
// id → parent), or one a thread was started from (starters: message id →
// thread), is a pointer to that thread. It returns the units that belong
// to none.
func (d *destLog) assign(threads, starters map[string]string) (stray []*unit) {
	byTag := map[string]*answer{}
	owner := d
	if d.parent != nil {
		owner = d.parent
	}
	for _, c := range owner.convs {
		for _, a := range c.answers {
			byTag[a.tag] = a
		}
	}
	channel := strings.TrimPrefix(d.dest, "discord:")
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
		if d.kind == discordChannel {
			u.pointer = starters[strings.TrimPrefix(key, "m")]
		}
		for _, v := range u.versions {
			if m := threadMention.FindStringSubmatch(v.text); m != nil && threads[m[1]] == channel {
				u.pointer = m[1]
			}
		}
		if u.pointer != "" {
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
			stray = append(stray, u)
		}
	}
	return stray
}

// normalize collapses white space, which splitting and rendering may
// change without changing what a reader sees.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// observe rebuilds answer a from the units showing its text (in the order
// of their first write, each at the destination it was written to) and
// the pointers to its thread; d is the destination showing its text.
func (d *destLog) observe(a *answer, units, pointers []*unit) *observed {
	o := &observed{a: a, home: d}
	o.asked, o.first, o.last, o.sent = a.timing()
	var all, seen []version
	for _, u := range units {
		for _, v := range u.versions {
			if !v.loading {
				all = append(all, v)
			}
		}
		seen = append(seen, u.versions...)
	}
	for _, u := range pointers {
		seen = append(seen, u.versions...)
	}
	slices.SortFunc(all, func(x, y version) int { return x.at.Compare(y.at) })
	slices.SortFunc(seen, func(x, y version) int { return x.at.Compare(y.at) })
	if len(seen) > 0 {
		o.firstSign = seen[0].at
	}
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
			for _, v := range u.versions {
				if !v.loading {
					msgs = append(msgs, v)
				}
			}
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
		a.mu.Lock()
		served := a.served
		a.mu.Unlock()
		if served {
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

// pausedWithin reports whether a 429 the platform answered at d asked it
// to pause at some time between from and to: a final shown then waited
// for the platform, not for Palaver.
func (d *destLog) pausedWithin(from, to time.Time) bool {
	for _, r := range d.refusals {
		if r.at.Before(to) && r.at.Add(r.retryAfter).After(from) {
			return true
		}
	}
	return false
}

// busy are the spans during which the destination had an answer to show
// (from its first token to its last write), merged.
func (d *destLog) busy(obs map[*answer]*observed) [][2]time.Time {
	var spans [][2]time.Time
	for _, a := range d.shown {
		o := obs[a]
		if o == nil || o.first.IsZero() || o.final.IsZero() {
			continue
		}
		spans = append(spans, [2]time.Time{o.first, o.final})
	}
	return merge(spans)
}

// streaming are the spans during which the destination had an answer
// streaming (from its first token to its last), merged.
func (d *destLog) streaming(obs map[*answer]*observed) [][2]time.Time {
	var spans [][2]time.Time
	for _, a := range d.shown {
		o := obs[a]
		if o == nil || o.first.IsZero() || !o.last.After(o.first) {
			continue
		}
		spans = append(spans, [2]time.Time{o.first, o.last})
	}
	return merge(spans)
}

// merge sorts spans and merges those that overlap.
func merge(spans [][2]time.Time) [][2]time.Time {
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
