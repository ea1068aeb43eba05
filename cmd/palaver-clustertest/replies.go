package main

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/cmd/internal/replytext"
)

// shown is a bot message as a user sees it now, on either platform.
type shown struct {
	ref     string    // the message id
	order   int       // on Telegram the id as a number (ids grow in a chat)
	replyTo string    // the message it replies to, "" for none
	text    string    // the whole visible text, for reports
	at      time.Time // when it took its current text
	// content is the answer shown, note the restart or interrupted note
	// under it, status another status line ("⏳ Queued: …").
	content, note, status string
	stop                  bool // it carries the Stop button
}

// final reports whether the reply is settled: no Stop button, no status
// line, a note or some content.
func (s shown) final() bool {
	return !s.stop && s.status == "" && (s.note != "" || s.content != "")
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

// replies are the bot's messages of one conversation, as they stand,
// attributed to the questions they answer.
type replies struct {
	// byQuestion are the replies to each question; retries the replies
	// to the /retry sent after it, by question.
	byQuestion map[int][]shown
	retries    map[int][]shown
	// stray are the bot's messages that answer no question of the
	// harness.
	stray []shown
}

// readReplies reads conversation c's bot messages and attributes them: in
// a Telegram group and on Discord a reply names the message it answers (a
// question, or a /retry); in a private chat an answer carries its tag,
// and a note alone belongs to the user's message before it. qs are c's
// questions, oldest first.
func (w *world) readReplies(c *conv, qs []*question) replies {
	r := replies{byQuestion: map[int][]shown{}, retries: map[int][]shown{}}
	byRef := map[string]*question{}
	byRetry := map[string]*question{}
	for _, q := range qs {
		byRef[q.ref] = q
		if ref := q.retry(); ref != "" {
			byRetry[ref] = q
		}
	}
	attribute := func(s shown, q *question, retry bool) {
		if retry {
			r.retries[q.n] = append(r.retries[q.n], s)
		} else {
			r.byQuestion[q.n] = append(r.byQuestion[q.n], s)
		}
	}
	if c.kind == dcChannel {
		bot := w.dc.BotUser().ID
		for _, m := range w.dc.Messages(c.channel) {
			if m.AuthorID != bot || m.Deleted {
				continue
			}
			s := discordShown(m)
			switch {
			case byRef[s.replyTo] != nil:
				attribute(s, byRef[s.replyTo], false)
			case byRetry[s.replyTo] != nil:
				attribute(s, byRetry[s.replyTo], true)
			default:
				r.stray = append(r.stray, s)
			}
		}
		return r
	}
	// On Telegram a chat's messages come in id order, the user's and the
	// bot's: the last user message seen is the one a note alone follows.
	var last *question
	lastRetry := false
	for _, m := range w.tg.Messages(c.chat) {
		if !m.From.IsBot {
			id := strconv.Itoa(m.ID)
			switch {
			case byRef[id] != nil:
				last, lastRetry = byRef[id], false
			case byRetry[id] != nil:
				last, lastRetry = byRetry[id], true
			}
			continue
		}
		s := telegramShown(m)
		if c.kind == tgGroup {
			switch {
			case byRef[s.replyTo] != nil:
				attribute(s, byRef[s.replyTo], false)
			case byRetry[s.replyTo] != nil:
				attribute(s, byRetry[s.replyTo], true)
			default:
				r.stray = append(r.stray, s)
			}
			continue
		}
		if t := answerTag.FindStringSubmatch(s.content); t != nil {
			n, _ := strconv.Atoi(t[1])
			q := w.question(n)
			if q == nil || q.conv != c {
				r.stray = append(r.stray, s)
				continue
			}
			// The /retry's answer carries the same tag: it comes after
			// the /retry message.
			retry := q.retry() != "" && s.order > q.retryOrder()
			attribute(s, q, retry)
			continue
		}
		if last == nil {
			r.stray = append(r.stray, s)
			continue
		}
		attribute(s, last, lastRetry)
	}
	return r
}

// retry returns the /retry message sent after q, "" for none.
func (q *question) retry() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.retryRef
}

// retryOrder returns the /retry message's id as a number.
func (q *question) retryOrder() int {
	n, _ := strconv.Atoi(q.retry())
	return n
}
