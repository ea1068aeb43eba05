package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/cmd/internal/replytext"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// Kinds of violation, each a promise Palaver makes about a restart.
const (
	// kindLost: the message is not in the history although the bot took
	// it: it confirmed the Telegram update (Telegram never sends it
	// again), showed a reply to the Discord mention, or ran all along.
	kindLost = "lost"
	// kindDuplicated: the message is in the history more than once.
	kindDuplicated = "duplicated"
	// kindUnanswered: the message is in the history and nothing in the chat
	// answers it: no answer, no note.
	kindUnanswered = "unanswered"
	// kindUnfinalised: the message's reply was left as it was when Palaver
	// died: a Stop button, "⏳ Queued", or an answer cut off with no note.
	kindUnfinalised = "unfinalised"
	// kindWrongAnswer: the reply's final text is not the history's answer
	// (plus the interrupted note when the answer was interrupted).
	kindWrongAnswer = "wrong-answer"
	// kindAnsweredTwice: more than one reply answers the message.
	kindAnsweredTwice = "answered-twice"
	// kindStopButton: a bot message still has its Stop button once
	// everything settled.
	kindStopButton = "stop-button"
	// kindUnexpected: a bot message that answers none of the messages sent
	// (a refusal, an error, a note too many).
	kindUnexpected = "unexpected-message"
	// kindIncomplete: a message of the final phase, with no kill to
	// follow, was not answered in full.
	kindIncomplete = "incomplete"
	// kindNoRestart: Palaver did not start again (the store did not
	// reopen, or it never connected).
	kindNoRestart = "no-restart"
	// kindExited: Palaver exited by itself, or stopped taking updates,
	// while the harness drove it.
	kindExited = "exited"
	// kindUncleanStop: Palaver did not exit cleanly on an interrupt.
	kindUncleanStop = "unclean-stop"
)

// kinds lists the kinds in report order.
var kinds = []string{
	kindLost, kindDuplicated, kindUnanswered, kindUnfinalised, kindWrongAnswer, kindAnsweredTwice,
	kindStopButton, kindUnexpected, kindIncomplete, kindNoRestart, kindExited, kindUncleanStop,
}

// violation is one broken promise about one message.
type violation struct {
	kind    string
	where   string // the conversation, "" for the process
	subject string // "Q0012 (private 1001, cycle 3)" or "message 34 in group -2001"
	detail  string
}

func (v violation) id() string { return v.kind + " " + v.subject }

// shown is a bot message as a user sees it now, on either platform.
type shown struct {
	ref     string // the message id
	order   int    // on Telegram the id as a number (ids grow in a chat); 0 on Discord
	replyTo string // the message it replies to, "" for none
	text    string // the whole visible text, for reports
	// content is the answer shown, note the restart or interrupted note
	// under it, status another status line ("⏳ Queued: …").
	content, note, status string
	stop                  bool      // it carries the Stop button
	at                    time.Time // when it took its current text
}

// telegramShown reads a Telegram message: the status is a paragraph of its
// own under the answer, or the whole text.
func telegramShown(m telegramtest.Message) shown {
	s := shown{ref: strconv.Itoa(m.ID), order: m.ID, text: m.Text,
		stop: strings.Contains(string(m.ReplyMarkup), `"callback_data":"stop"`), at: m.Date}
	if !m.Edited.IsZero() {
		s.at = m.Edited
	}
	if m.ReplyTo != 0 {
		s.replyTo = strconv.Itoa(m.ReplyTo)
	}
	s.content, s.note, s.status = replytext.SplitTelegram(m.Text)
	return s
}

// discordShown reads a Discord message: the status is its last line, in
// subtext ("-# ").
func discordShown(m discordtest.Message) shown {
	text := m.Text() // content, or a Components V2 message's text displays
	s := shown{ref: m.ID, replyTo: m.ReferenceID, text: text,
		stop: slices.ContainsFunc(m.CustomIDs(), func(id string) bool { return strings.HasSuffix(id, "stop") }), at: m.Created}
	if !m.Edited.IsZero() {
		s.at = m.Edited
	}
	s.content, s.note, s.status = replytext.SplitDiscord(text)
	return s
}

// snapshot is what the harness reads once Palaver has stopped: the
// platforms' side (the confirmed updates, the bot's messages) and
// Palaver's store.
type snapshot struct {
	killed    time.Time // when Palaver was last killed; zero after a clean stop
	confirmed int       // newest Telegram update id the bot confirmed
	history   map[*conv][]sessions.Entry
	bot       map[*conv][]shown
}

// readSnapshot reads the fake platforms and the store. Palaver must have
// exited: a store is open in one process at a time. Opening it commits
// nothing (the layout exists, no progress is pending).
func (w *world) readSnapshot(ctx context.Context) (snapshot, error) {
	st := snapshot{
		confirmed: w.tg.ConfirmedUpdateID(),
		history:   map[*conv][]sessions.Entry{},
		bot:       map[*conv][]shown{},
	}
	store, err := sessions.OpenBolt(w.storePath(), sessions.BoltOptions{
		LockTimeout: 5 * time.Second,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return st, fmt.Errorf("open the store: %w", err)
	}
	defer store.Close()
	for _, c := range w.convs {
		h, err := store.History(ctx, c.key(), 0)
		if err != nil {
			return st, fmt.Errorf("read the store: %w", err)
		}
		st.history[c] = h
		if c.platform == discord {
			for _, m := range w.dc.Messages(c.channel) {
				if m.AuthorID == w.dc.BotUser().ID && !m.Deleted {
					st.bot[c] = append(st.bot[c], discordShown(m))
				}
			}
			continue
		}
		for _, m := range w.tg.BotMessages(c.chat) {
			st.bot[c] = append(st.bot[c], telegramShown(m))
		}
	}
	return st, nil
}

// outcome is what one check found.
type outcome struct {
	violations []violation
	answered   int // questions answered in full
	noted      int // questions whose reply is an interrupted or restart note
	dropped    int // Discord mentions sent before a kill that left no trace
	window     int // replies left as they were, changed within commitWindow of a kill
}

// commitWindow bounds the documented window between a platform creating
// (or changing) a reply's message and Palaver committing its id: a kill
// there leaves that message as it was, and recovery sends its note in a
// new one. Wider than the commit itself, for a loaded machine under -race.
const commitWindow = 250 * time.Millisecond

// leftInWindow reports whether s, a reply left as it was, took its text
// within commitWindow before the kill of st, remembering it (the next
// checks come after later kills).
func (w *world) leftInWindow(st snapshot, s shown) bool {
	if w.windowed[s.ref] {
		return true
	}
	if st.killed.IsZero() || s.at.After(st.killed) || st.killed.Sub(s.at) >= commitWindow {
		return false
	}
	w.windowed[s.ref] = true
	return true
}

// check asserts every promise against a snapshot taken after Palaver
// settled and stopped, when every Telegram update sent has been confirmed.
func (w *world) check(st snapshot) outcome {
	var out outcome
	questions := w.sent()
	for _, c := range w.convs {
		add := func(kind, subject, format string, args ...any) {
			out.violations = append(out.violations, violation{kind: kind, where: c.name, subject: subject, detail: fmt.Sprintf(format, args...)})
		}
		// The history: each question's entries, and the answer after it.
		type inHistory struct {
			count  int
			answer *sessions.Entry
		}
		hist := map[int]*inHistory{}
		entries := st.history[c]
		for i, e := range entries {
			if e.Role != llm.RoleUser {
				continue
			}
			m := questionTag.FindStringSubmatch(e.Text)
			if m == nil {
				add(kindUnexpected, "history of "+c.name, "a user entry the harness did not send: %q", e.Text)
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
		}

		// The chat: the bot's replies to each question.
		byRef := map[string]*question{}
		for _, q := range questions {
			if q.conv == c {
				byRef[q.ref] = q
			}
		}
		replies := map[int][]shown{}
		var pool []shown // untagged messages of a private chat
		for _, s := range st.bot[c] {
			subject := fmt.Sprintf("message %s in %s", s.ref, c.name)
			if s.stop && !w.leftInWindow(st, s) {
				add(kindStopButton, subject, "text %q", clip(s.text))
			}
			if c.shared {
				q := byRef[s.replyTo]
				if q == nil {
					add(kindUnexpected, subject, "replies to no question: %q", clip(s.text))
					continue
				}
				replies[q.n] = append(replies[q.n], s)
				continue
			}
			// In a private chat replies quote nothing: an answer is known
			// by its tag; notes alone are matched in order below.
			if t := answerTag.FindStringSubmatch(s.text); t != nil {
				n, _ := strconv.Atoi(t[1])
				if q := w.question(n); q == nil || q.conv != c {
					add(kindUnexpected, subject, "answers a question not asked here: %q", clip(s.text))
					continue
				}
				replies[n] = append(replies[n], s)
				continue
			}
			pool = append(pool, s)
		}

		for _, q := range questions {
			if q.conv != c {
				continue
			}
			subject := fmt.Sprintf("%s (%s, cycle %d)", q.tag(), c.name, q.cycle)
			h := hist[q.n]
			rs := replies[q.n]
			switch {
			case h == nil && c.platform == telegram && q.update <= st.confirmed:
				add(kindLost, subject, "update %d confirmed to Telegram; not in the history (model asked %d×); replies: %s",
					q.update, w.modelRequests(q.n), texts(rs))
				continue
			case h == nil && c.platform == discord && (len(rs) > 0 || q.kill == 0):
				add(kindLost, subject, "not in the history (model asked %d×; sent %s before the kill); replies: %s",
					w.modelRequests(q.n), q.kill.Round(time.Microsecond), texts(rs))
				continue
			case h == nil && c.platform == discord:
				out.dropped++ // Discord never delivers a gateway event again
				continue
			case h == nil:
				continue // not delivered yet: Telegram still has it
			case h.count > 1:
				add(kindDuplicated, subject, "in the history %d times (update %d)", h.count, q.update)
				continue
			}
			if len(rs) == 0 && !c.shared && (h.answer == nil || h.answer.Text == "") {
				if s, ok := w.takeNote(q, pool); ok {
					rs = []shown{s}
				}
			}
			verdicts := map[string]int{}
			var details []string
			// A reply left in the commit window, beside the note recovery
			// sent, is counted apart.
			rs = slices.DeleteFunc(rs, func(s shown) bool {
				v, _ := judge(q, h.answer, s)
				if v == kindUnfinalised && len(rs) > 1 && w.leftInWindow(st, s) {
					out.window++
					return true
				}
				return false
			})
			for _, s := range rs {
				v, why := judge(q, h.answer, s)
				verdicts[v]++
				if why == "" {
					why = fmt.Sprintf("%s, %q", v, clip(s.text))
				}
				details = append(details, fmt.Sprintf("message %s%s: %s", s.ref, sinceKill(st, s), why))
			}
			switch {
			case len(rs) == 0:
				add(kindUnanswered, subject, "no reply in the chat; history: %s", describe(h.answer))
			case verdicts[kindUnfinalised] > 0:
				add(kindUnfinalised, subject, "%s", strings.Join(details, "; "))
			case verdicts[kindWrongAnswer] > 0:
				add(kindWrongAnswer, subject, "%s", strings.Join(details, "; "))
			case len(rs) > 1:
				add(kindAnsweredTwice, subject, "%s (model asked %d×)", strings.Join(details, "; "), w.modelRequests(q.n))
			case verdicts["noted"] > 0 && q.final:
				add(kindIncomplete, subject, "sent with no kill to follow, yet finalised with a note: %q", clip(rs[0].text))
			case verdicts["noted"] > 0:
				out.noted++
			default:
				out.answered++
			}
		}
		for _, s := range pool {
			if n, ok := w.noteOwner(s.ref, c); ok && hist[n] != nil && hist[n].count == 1 {
				continue
			}
			subject := fmt.Sprintf("message %s in %s", s.ref, c.name)
			if (s.status != "" || s.stop) && w.leftInWindow(st, s) {
				out.window++
				continue
			}
			if s.status != "" || s.stop {
				add(kindUnfinalised, subject, "a reply left as it was: %q", clip(s.text))
			} else {
				add(kindUnexpected, subject, "answers no question: %q", clip(s.text))
			}
		}
	}
	return out
}

// sinceKill says when s took its text against the last kill, for a
// violation's detail: " (at the kill -12ms)", "" after a clean stop.
func sinceKill(st snapshot, s shown) string {
	if st.killed.IsZero() {
		return ""
	}
	return fmt.Sprintf(" (at the kill %+v)", s.at.Sub(st.killed).Round(time.Millisecond))
}

// takeNote finds the note that answers q, a question of a private chat
// with no answer of its own: the note an earlier check gave it, else the
// oldest note alone in pool, sent after q, that no other question took.
func (w *world) takeNote(q *question, pool []shown) (shown, bool) {
	if ref, ok := w.noteFor[q.n]; ok {
		i := slices.IndexFunc(pool, func(s shown) bool { return s.ref == ref })
		return pool[max(i, 0)], i >= 0
	}
	if w.noteless[q.n] {
		return shown{}, false
	}
	for _, s := range pool {
		if _, taken := w.noteOwner(s.ref, q.conv); taken || s.order < q.order || s.stop {
			continue
		}
		if s.content == "" && s.note != "" {
			w.noteFor[q.n] = s.ref
			return s, true
		}
	}
	w.noteless[q.n] = true
	return shown{}, false
}

// noteOwner returns the question of conversation c that took the note
// with message id ref, if one did.
func (w *world) noteOwner(ref string, c *conv) (int, bool) {
	for n, r := range w.noteFor {
		if r == ref && w.question(n).conv == c {
			return n, true
		}
	}
	return 0, false
}

// judge compares a reply to question q with the history's answer a (nil
// when the history has none after q). The verdict is "answered" (the
// complete answer, exactly), "noted" (a restart note, under the
// interrupted answer's text exactly), kindUnfinalised or kindWrongAnswer
// with the reason.
func judge(q *question, a *sessions.Entry, s shown) (verdict, why string) {
	if s.stop || s.status != "" {
		return kindUnfinalised, fmt.Sprintf("left showing %q", clip(s.text))
	}
	if a != nil && a.Text != "" && !strings.HasPrefix(a.Text, q.answerTag()) {
		return kindWrongAnswer, fmt.Sprintf("the history's answer after it is another question's: %q", clip(a.Text))
	}
	switch {
	case a != nil && a.Status == "" && s.note == "" && s.content == a.Text:
		return "answered", ""
	case a != nil && a.Status == "interrupted" && s.note != "" && s.content == a.Text:
		return "noted", ""
	case a == nil && s.note != "" && s.content == "":
		return "noted", ""
	case s.note == "" && strings.HasPrefix(q.answer(), s.content):
		return kindUnfinalised, fmt.Sprintf("shows part of the answer with no note, %q; history: %s", clip(s.text), describe(a))
	}
	return kindWrongAnswer, fmt.Sprintf("shows %q; history: %s", clip(s.text), describe(a))
}

// texts lists the visible texts of replies, "none" for none.
func texts(rs []shown) string {
	if len(rs) == 0 {
		return "none"
	}
	var ts []string
	for _, s := range rs {
		ts = append(ts, strconv.Quote(clip(s.text)))
	}
	return strings.Join(ts, ", ")
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
