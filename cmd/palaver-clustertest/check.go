package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore"
)

// Kinds of violation, each a promise the deployment makes.
const (
	// kindLost: the question is not in the history although the bot took
	// it: every Telegram update is confirmed at the end (Telegram never
	// sends a confirmed one again), and a Discord message was delivered
	// to a process that lived on.
	kindLost = "lost"
	// kindDuplicated: the question is in the history more than once.
	kindDuplicated = "duplicated"
	// kindUnanswered: the question is in the history and nothing in the
	// chat answers it.
	kindUnanswered = "unanswered"
	// kindUnfinalised: its reply was left as it was: a Stop button,
	// "⏳ Queued", an answer cut off with no note.
	kindUnfinalised = "unfinalised"
	// kindWrongAnswer: the reply's final text is not the history's answer
	// (with the note when the answer was interrupted).
	kindWrongAnswer = "wrong-answer"
	// kindAnsweredTwice: more than one reply answers the question.
	kindAnsweredTwice = "answered-twice"
	// kindUnexpected: a bot message that answers no question.
	kindUnexpected = "unexpected-message"
	// kindIncomplete: a question of a phase without kills (load, rolling)
	// was not answered in full.
	kindIncomplete = "incomplete"
	// kindHandoverGap: a Discord question of the rolling phase was
	// written while no connection of its shard was open: a clean stop or
	// restart handed a shard over break-before-make, and Discord
	// delivered the question to nobody.
	kindHandoverGap = "handover-gap"
	// kindRetry: a /retry after a note did not bring the complete answer.
	kindRetry = "retry-failed"
	// kindRecord: a progress or queued record left in the store once every
	// process stopped cleanly.
	kindRecord = "record-left"
	// kindUnconfirmed: Telegram still held updates at the end.
	kindUnconfirmed = "unconfirmed"
	// kindTooMany: a platform answered 429 in the load phase.
	kindTooMany = "rate-limited"
	// kindIdentify: the fake Discord refused an IDENTIFY that came too
	// soon in its bucket (the identify gate failed).
	kindIdentify = "identify-refused"
	// kindNoTakeover: the survivors did not take over a killed process's
	// roles in time.
	kindNoTakeover = "no-takeover"
	// kindNotSettled: the deployment did not settle (one leader, every
	// shard up once) in time.
	kindNotSettled = "not-settled"
	// kindExited, kindUncleanStop: a process exited by itself, or did not
	// exit cleanly on an interrupt.
	kindExited      = "exited"
	kindUncleanStop = "unclean-stop"
)

// kinds lists the kinds in report order.
var kinds = []string{
	kindLost, kindDuplicated, kindUnanswered, kindUnfinalised, kindWrongAnswer, kindAnsweredTwice, kindUnexpected,
	kindIncomplete, kindHandoverGap, kindRetry, kindRecord, kindUnconfirmed, kindTooMany, kindIdentify, kindNoTakeover, kindNotSettled,
	kindExited, kindUncleanStop,
}

// violation is one broken promise.
type violation struct {
	Kind    string
	Subject string // "Q00012 (private 100001, kill)" or "palaver-2"
	Detail  string
}

// commitWindow bounds the documented window between a platform creating
// (or changing) a reply's message and Palaver committing its id: a kill
// there leaves that message as it was, and recovery sends its note in a
// new one (docs/crashtest.md). Wider than the commit itself, for a busy
// machine.
const commitWindow = 250 * time.Millisecond

// storeView is what the check reads from the store once every process
// stopped.
type storeView struct {
	history  map[*conv][]sessions.Entry
	progress int      // progress records left
	queued   int      // queued records left
	left     []string // the first of them, described
}

// readStore reads the conversations' histories with an etcd store client
// of the harness's own (every palaver process has stopped: its member
// record takes no shard from anyone).
func (w *world) readStore(ctx context.Context) (storeView, error) {
	v := storeView{history: map[*conv][]sessions.Entry{}}
	s, err := etcdstore.Open(ctx, etcdstore.Config{Endpoints: w.etcd.Endpoints(), Prefix: etcdPrefix, Member: "clustertest-check",
		Retention: historyLimit, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return v, fmt.Errorf("open the store: %w", err)
	}
	defer s.Close()
	for _, c := range w.convs {
		h, err := s.History(ctx, c.key(), 0)
		if err != nil {
			return v, fmt.Errorf("read the store: %w", err)
		}
		v.history[c] = h
	}
	ps, err := s.Progresses(ctx)
	if err != nil {
		return v, fmt.Errorf("read the store: %w", err)
	}
	qs, err := s.QueuedMessages(ctx)
	if err != nil {
		return v, fmt.Errorf("read the store: %w", err)
	}
	v.progress, v.queued = len(ps), len(qs)
	for _, p := range ps[:min(len(ps), 5)] {
		v.left = append(v.left, fmt.Sprintf("progress %s/%d (committed %t, final %t, shown %q)", p.Key, p.ID, p.Committed, p.Shown.Final, clip(p.Shown.Content+p.Shown.Status)))
	}
	for _, q := range qs[:min(len(qs), 5)] {
		v.left = append(v.left, fmt.Sprintf("queued %s/%d (owner %s, %q)", q.Key, q.ID, q.Owner, clip(q.Question.Text)))
	}
	return v, nil
}

// tally is what the check counted for one phase.
type tally struct {
	answered, noted, retries, retriesAnswered, notDelivered, dropped, window, pruned int
}

// checker judges every question against the store and the chats.
type checker struct {
	w       *world
	since   func(time.Time) string // "2.1s after SIGKILL palaver-2"
	kills   []kill
	phases  map[string]*tally
	found   []violation
	reasked int
}

func (ck *checker) add(kind, subject, format string, args ...any) {
	ck.found = append(ck.found, violation{Kind: kind, Subject: subject, Detail: fmt.Sprintf(format, args...)})
}

// inWindow reports whether s took its text within commitWindow before a
// kill.
func (ck *checker) inWindow(s shown) bool {
	for _, k := range ck.kills {
		if !s.at.After(k.at) && k.at.Sub(s.at) < commitWindow {
			return true
		}
	}
	return false
}

// dropped reports whether Discord question q, without any trace, was
// delivered to a process killed right after: the shard's holder was
// killed within droppedWithin of q being sent.
func (ck *checker) dropped(q *question) bool {
	for _, k := range ck.kills {
		if !k.at.Before(q.sent) && k.at.Sub(q.sent) < droppedWithin && slices.Contains(k.shards, q.conv.shard) {
			return true
		}
	}
	return false
}

// droppedWithin bounds how long before its shard's holder was killed a
// Discord message delivered to it may be lost with it: a live process
// commits a message within milliseconds of taking it.
const droppedWithin = 5 * time.Second

// check judges every conversation.
func (ck *checker) check(v storeView) {
	for _, c := range ck.w.convs {
		ck.checkConv(c, v.history[c])
	}
	if v.progress+v.queued > 0 {
		ck.add(kindRecord, "store", "%d progress and %d queued records left once every process stopped cleanly: %s", v.progress, v.queued, strings.Join(v.left, "; "))
	}
}

// inHistory is a question as the history holds it.
type inHistory struct {
	count   int
	answer  *sessions.Entry // the entry after its first occurrence, if an answer
	entries []string        // each occurrence and the entry after it, for reports
}

func (ck *checker) checkConv(c *conv, entries []sessions.Entry) {
	hist := map[int]*inHistory{}
	for i, e := range entries {
		if e.Role != llm.RoleUser {
			continue
		}
		m := questionTag.FindStringSubmatch(e.Text)
		if m == nil {
			ck.add(kindUnexpected, "history of "+c.name, "a user entry the harness did not send: %q", clip(e.Text))
			continue
		}
		n, _ := strconv.Atoi(m[1])
		h := hist[n]
		if h == nil {
			h = &inHistory{}
			hist[n] = h
			if i+1 < len(entries) && entries[i+1].Role == llm.RoleAssistant {
				h.answer = &entries[i+1]
			}
		}
		h.count++
		e := fmt.Sprintf("entry %d at %s (%s)", i, e.Time.Format("15:04:05.000"), ck.since(e.Time))
		if i+1 < len(entries) && entries[i+1].Role == llm.RoleAssistant {
			e += ", then " + describe(&entries[i+1])
		}
		h.entries = append(h.entries, e)
	}
	// At the limit, retention deleted the oldest entries: questions
	// before the history's first one are not judged against it.
	first := 0
	if len(entries) >= historyLimit-1 {
		for _, e := range entries {
			if m := questionTag.FindStringSubmatch(e.Text); e.Role == llm.RoleUser && m != nil {
				first, _ = strconv.Atoi(m[1])
				break
			}
		}
	}
	qs := ck.w.convQuestions(c)
	r := ck.w.readReplies(c, qs)
	for _, s := range r.stray {
		if ck.inWindow(s) {
			ck.phases[phaseKill].window++
			continue
		}
		ck.add(kindUnexpected, fmt.Sprintf("message %s in %s", s.ref, c.name), "answers no question: %q", clip(s.text))
	}
	for _, q := range qs {
		if q.n < first {
			ck.phases[q.phase].pruned++
			continue
		}
		ck.checkQuestion(q, hist[q.n], r.byQuestion[q.n], r.retries[q.n])
	}
}

// checkQuestion judges one question: h is its place in the history (nil
// when absent), rs the replies to it, retries the replies to the /retry
// sent after it.
func (ck *checker) checkQuestion(q *question, h *inHistory, rs, retries []shown) {
	c := q.conv
	t := ck.phases[q.phase]
	subject := fmt.Sprintf("%s (%s, %s, sent %s)", q.tag(), c.name, q.phase, ck.since(q.sent))
	asked := ck.w.modelRequests(q.n)
	texts := ck.texts
	switch {
	case h == nil && c.kind == dcChannel && len(rs) == 0 && ck.w.dc.Delivered(q.ref) == 0:
		t.notDelivered++ // Discord wrote it to no connection: it never will
		if q.phase == phaseRolling {
			ck.add(kindHandoverGap, subject, "no connection of shard %d was open when it was written", c.shard)
		}
		return
	case h == nil && c.kind == dcChannel && len(rs) == 0 && ck.dropped(q):
		t.dropped++ // delivered to a process killed before it took it
		return
	case h == nil:
		ck.add(kindLost, subject, "not in the history (model asked %d×, driver saw %q); replies: %s", asked, q.result(), texts(rs))
		return
	case h.count > 1:
		ck.add(kindDuplicated, subject, "in the history %d times (model asked %d×): %s; replies: %s", h.count, asked, strings.Join(h.entries, "; "), texts(rs))
		return
	}
	retried := q.retry() != ""
	if asked > 1 && !retried || asked > 2 {
		ck.reasked++
	}
	// A reply left in the commit window, beside what recovery sent (its
	// note, or the final view again in a new message), is counted apart.
	if kept := slices.DeleteFunc(slices.Clone(rs), ck.inWindow); len(kept) > 0 && len(kept) < len(rs) {
		t.window += len(rs) - len(kept)
		rs = kept
	}
	switch {
	case len(rs) == 0:
		ck.add(kindUnanswered, subject, "no reply in the chat; history: %s", describe(h.answer))
		return
	case len(rs) > 1:
		ck.add(kindAnsweredTwice, subject, "%d replies: %s (model asked %d×)", len(rs), texts(rs), asked)
		return
	}
	s := rs[0]
	if !s.final() {
		ck.add(kindUnfinalised, subject, "left showing %q; history: %s", clip(s.text), describe(h.answer))
		return
	}
	a := h.answer
	if retried {
		// The original reply keeps its note; the history's answer is
		// the /retry's.
		if s.note == "" || !strings.HasPrefix(q.answer(), s.content) {
			ck.add(kindWrongAnswer, subject, "retried after %q, which is not a noted part of the answer", clip(s.text))
			return
		}
		t.noted++
		ck.checkRetry(q, a, retries, subject, t)
		return
	}
	switch {
	case a != nil && a.Status == "" && s.note == "" && s.content == a.Text && a.Text == q.answer():
		t.answered++
		return
	case a != nil && a.Status == "interrupted" && s.note != "" && s.content == a.Text:
	case (a == nil || a.Text == "") && s.note != "" && s.content == "":
	default:
		ck.add(kindWrongAnswer, subject, "shows %q (%s); history: %s; %s", clip(s.text), ck.since(s.at), describe(a), differ(s, a))
		return
	}
	t.noted++
	if q.phase != phaseKill {
		ck.add(kindIncomplete, subject, "no process was killed in this phase, yet it shows %q", clip(s.text))
	}
}

// checkRetry judges the /retry sent after q's note: one reply, the
// complete answer (or, when a kill cut the retry off too, its note), and
// the history's answer the same.
func (ck *checker) checkRetry(q *question, a *sessions.Entry, rs []shown, subject string, t *tally) {
	t.retries++
	var final []shown
	for _, s := range rs {
		if s.final() || !ck.inWindow(s) {
			final = append(final, s)
		}
	}
	texts := ck.texts
	switch {
	case len(final) == 0:
		ck.add(kindRetry, subject, "no reply to /retry (driver saw %q); history: %s", q.retriedOutcome(), describe(a))
	case len(final) > 1:
		ck.add(kindRetry, subject, "%d replies to /retry: %s", len(final), texts(final))
	case a != nil && a.Status == "" && final[0].note == "" && final[0].content == q.answer() && a.Text == q.answer():
		t.retriesAnswered++
	case a != nil && a.Status == "interrupted" && final[0].note != "" && final[0].content == a.Text && q.phase == phaseKill:
		// The retry was interrupted by a later kill: noted again.
	default:
		ck.add(kindRetry, subject, "/retry shows %q; history: %s", clip(final[0].text), describe(a))
	}
}

// retriedOutcome is the driver's outcome of the /retry.
func (q *question) retriedOutcome() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.retried
}

// differ says where a reply's content and the history's answer part.
func differ(s shown, a *sessions.Entry) string {
	if a == nil {
		return fmt.Sprintf("the reply's note %q", s.note)
	}
	i := 0
	for i < len(s.content) && i < len(a.Text) && s.content[i] == a.Text[i] {
		i++
	}
	return fmt.Sprintf("they part at byte %d of %d shown and %d kept (%q / %q), note %q, answer status %q",
		i, len(s.content), len(a.Text), clip(s.content[i:]), clip(a.Text[i:]), s.note, a.Status)
}

// describe summarises the history's answer to a question.
func describe(a *sessions.Entry) string {
	if a == nil {
		return "no answer after it"
	}
	status := a.Status
	if status == "" {
		status = "complete"
	}
	return fmt.Sprintf("%s answer %q", status, clip(a.Text))
}

// clip shortens a text for a report line.
func clip(s string) string {
	const max = 80
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + "…"
	}
	return s
}

// texts lists the visible texts of replies and when they took them,
// "none" for none.
func (ck *checker) texts(rs []shown) string {
	if len(rs) == 0 {
		return "none"
	}
	var ts []string
	for _, s := range rs {
		ts = append(ts, fmt.Sprintf("%q (%s)", clip(s.text), ck.since(s.at)))
	}
	return strings.Join(ts, ", ")
}
