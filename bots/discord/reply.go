package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/palaver-bot/palaver/sessions"
)

// hookLifetime is how long an answer is shown through its interaction's
// webhook. Discord's interaction tokens live 15 minutes; an answer still
// running after this continues as ordinary channel messages, or where the
// bot is not a member (a user install) ends there with a note.
const hookLifetime = 14 * time.Minute

// originalID names an interaction's original response in webhook routes.
const originalID = "@original"

// maxUserOnlyParts is how many messages an answer shown through a user
// install's interaction may take: its original response and Discord's
// limit of 5 follow-ups.
const maxUserOnlyParts = 1 + 5

// Notes that end an answer cut short where the bot is not a member.
const (
	noteExpired = "✂️ Cut off: Discord lets an app answer a command for 15 minutes. Use Retry or /retry for a new answer."
	noteTooLong = "✂️ Cut off: where Palaver is not a member, an answer may take 6 messages. Ask for a shorter answer, or add Palaver to the server."
)

// reply is one answer in a channel: the messages it has sent so far,
// edited as the answer grows. A slash command's answer starts as the
// interaction's deferred response (edited through the interaction webhook,
// with follow-ups for further parts); a Retry click's answer is a
// follow-up of the click; a mention's, reply's or DM's answer is a channel
// message replying to the user's message. It implements sessions.Reply,
// sessions.Typer (for message answers) and Snapshot.
type reply struct {
	b         *Bot
	channelID string
	replyTo   string // the user's message, answered as a reply
	// question is the id of the question answered (its message, or its
	// /chat interaction), which the Retry button under the finished
	// answer carries; "" shows no Retry button.
	question string
	// userOnly is set where only a user install reaches the channel (the
	// bot is not a member): every message goes through the interaction,
	// and the answer is cut off, with a note, when the interaction can
	// take no more (maxUserOnlyParts, hookLifetime).
	userOnly bool
	// followup makes the answer's first message a follow-up rather than
	// the interaction's original response.
	followup bool

	// ready is closed once the interaction was acknowledged (deferred),
	// so that no edit of the original response runs before it; nil for
	// message answers.
	ready chan struct{}

	mu      sync.Mutex
	hook    *hook     // nil once (or when) the answer uses channel messages
	created time.Time // when the interaction was created
	// frozen parts were sent through a webhook whose token is no longer
	// used; part i ≥ frozen is parts[i-frozen].
	frozen int
	parts  []sentPart
	render renderer // renders the answer, again only where it grew
	// v2 makes the answer's messages Components V2; it is decided by
	// the first message made (or the reply's record) and then kept.
	v2, decided bool
	ran         bool   // a view other than a final one was shown
	cut         string // the note of an answer cut short; "" while it is not
	keep        int    // the parts an answer cut short keeps
	gone        bool   // the answer can show nothing more
}

// sentPart is one message of the answer as last shown.
type sentPart struct {
	id      string // message id, or originalID
	hook    bool   // sent through the interaction webhook
	shown   part
	buttons buttons
	known   bool // false after a restart: what it shows is unknown
}

// Destination is the channel: every answer streaming into a channel (by
// channel messages or interaction webhooks, which Discord charges to the
// channel too) shares its budget.
func (r *reply) Destination() sessions.Destination {
	return sessions.Destination{ID: Platform + ":" + r.channelID, Interval: r.b.opts.EditInterval, Windows: []sessions.Window{r.b.opts.Window}, Budget: Platform}
}

// messageReply is the typing-capable reply of a message answer.
type messageReply struct{ *reply }

// Typing shows "… is typing" in the channel until the first message. A
// 429 is a *sessions.RateLimitError.
func (r messageReply) Typing(ctx context.Context, charge func() bool) error {
	if !charge() {
		return nil
	}
	if err := r.b.s.ChannelTyping(r.channelID, streamOpts(ctx)...); err != nil {
		return r.b.classify(err)
	}
	return nil
}

// snapshot is a reply's record for recovery after a restart.
type snapshot struct {
	Channel  string `json:"channel"`
	ReplyTo  string `json:"reply_to,omitempty"`
	Question string `json:"question,omitempty"`
	AppID    string `json:"app,omitempty"`
	Token    string `json:"token,omitempty"`
	Created  int64  `json:"created,omitempty"` // Unix milliseconds
	UserOnly bool   `json:"user_only,omitempty"`
	Followup bool   `json:"followup,omitempty"`
	// V2 records that the answer's messages are Components V2; records
	// without it (and older ones) are content messages.
	V2     bool `json:"v2,omitempty"`
	Frozen int  `json:"frozen,omitempty"`
	Parts  []struct {
		ID   string `json:"id"`
		Hook bool   `json:"hook,omitempty"`
	} `json:"parts,omitempty"`
}

// Snapshot records where the answer is shown (channel, interaction token,
// message ids, their kind), for the Manager's progress record.
func (r *reply) Snapshot() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{Channel: r.channelID, ReplyTo: r.replyTo, Question: r.question, UserOnly: r.userOnly,
		Followup: r.followup, V2: r.v2 && r.decided, Frozen: r.frozen}
	if r.hook != nil {
		s.AppID, s.Token, s.Created = r.hook.appID, r.hook.token, r.created.UnixMilli()
	}
	for _, p := range r.parts {
		s.Parts = append(s.Parts, struct {
			ID   string `json:"id"`
			Hook bool   `json:"hook,omitempty"`
		}{p.id, p.hook})
	}
	raw, _ := json.Marshal(s) // strings, ints and bools always encode
	return raw
}

// errCut is the cause of an answer that can show no more.
var errCut = fmt.Errorf("%w: the interaction can take no more", sessions.ErrReplyGone)

// Show makes v the visible answer: it renders v into message-sized parts,
// edits the messages whose part changed and sends the new ones, the Stop
// button under the last while the answer runs and the Retry button once
// it ended. It makes one request per call and returns sessions.ErrMore
// while more parts need one. Where only the interaction can show the
// answer (userOnly) and it can take no more, the answer ends with a note
// and Show reports sessions.ErrReplyGone.
func (r *reply) Show(ctx context.Context, v sessions.View) (int, error) {
	if r.ready != nil {
		select {
		case <-r.ready:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return 0, errCut
	}
	if !r.decided {
		r.v2 = r.b.useV2()
	}
	if !v.Final {
		r.ran = true
	}
	limit := MessageLimit
	if r.v2 {
		limit = PartLimitV2
	}
	if r.hook != nil && r.b.now().Sub(r.created) > hookLifetime {
		if r.userOnly {
			r.cutShort(noteExpired, max(r.frozen+len(r.parts), 1))
		} else {
			r.leaveHook()
		}
	}
	parts := r.render.parts(v, limit)
	most := maxUserOnlyParts
	if r.followup {
		most-- // no original response: follow-ups only
	}
	if r.userOnly && len(parts) > most {
		r.cutShort(noteTooLong, most)
	}
	final := v.Final
	if r.cut != "" {
		parts = parts[:min(len(parts), r.keep)]
		if len(parts) == 0 {
			parts = []part{{}}
		}
		parts[len(parts)-1].status = statusLine(r.cut, statusReserve(limit)-1)
		final = true
	}
	if len(parts) == 0 {
		if !final {
			return 0, nil
		}
		parts = []part{{body: "…"}}
	}
	// A queued answer cannot be stopped on its own: no button until it runs.
	stoppable := !final && (v.Content != "" || v.Reasoning != "" || !strings.HasPrefix(v.Status, "⏳"))
	// A notice shown on the reply (a refusal) gets no Retry button: only
	// an answer that ran, or has text, does.
	retry := ""
	if final && (v.Content != "" || r.ran) {
		retry = r.question
	}
	requests := 0
	for i, p := range parts {
		var bt buttons
		if i == len(parts)-1 {
			bt = buttons{stop: stoppable, retry: retry}
		}
		if requests > 0 && r.needsRequest(i, p, bt) {
			return requests, sessions.ErrMore // one request per Show
		}
		n, err := r.showPart(ctx, i, p, bt)
		requests += n
		if err != nil && r.hook != nil && isHookExpired(err) {
			if r.userOnly {
				r.gone = true
				return requests, fmt.Errorf("%w: %w", errCut, err)
			}
			r.b.log.Info("interaction token expired; the answer continues as channel messages", "channel", r.channelID)
			r.leaveHook()
			n, err = r.showPart(ctx, i, p, bt)
			requests += n
		}
		if err != nil && r.v2 && !r.decided && r.b.refusedV2(err) {
			r.v2 = false // the next call shows it as content
			return requests, sessions.ErrMore
		}
		if err != nil {
			return requests, r.b.classify(err)
		}
	}
	// Parts can shrink (an empty final view): delete leftovers.
	for len(r.parts) > 0 && r.frozen+len(r.parts) > len(parts) {
		if requests > 0 {
			return requests, sessions.ErrMore
		}
		last := r.parts[len(r.parts)-1]
		var err error
		if last.hook {
			err = r.b.hookDelete(ctx, *r.hook, last.id)
		} else {
			err = r.b.channelDelete(ctx, r.channelID, last.id)
		}
		requests++
		if err != nil && !isGone(err) {
			return requests, r.b.classify(err)
		}
		r.parts = r.parts[:len(r.parts)-1]
	}
	if r.cut != "" {
		r.gone = true
		return requests, errCut
	}
	return requests, nil
}

// cutShort ends the answer at its first keep parts with note, unless it
// was cut already.
func (r *reply) cutShort(note string, keep int) {
	if r.cut == "" {
		r.cut, r.keep = note, keep
		r.b.log.Info("answer cut off", "channel", r.channelID, "reason", note)
	}
}

// leaveHook stops using the interaction webhook: the parts sent through it
// stay as they are, and the answer continues as channel messages from its
// last part (which the webhook can no longer update) on.
func (r *reply) leaveHook() {
	r.hook = nil
	if n := len(r.parts); n > 0 {
		r.frozen += n - 1
	}
	r.parts = nil
}

// needsRequest reports whether showing p as part i takes a request.
func (r *reply) needsRequest(i int, p part, bt buttons) bool {
	if i < r.frozen {
		return false
	}
	j := i - r.frozen
	if j >= len(r.parts) {
		return true
	}
	sp := r.parts[j]
	if sp.hook && r.hook == nil {
		return false
	}
	return !sp.known || sp.shown != p || sp.buttons != bt
}

// showPart shows p as part i, editing it or sending it when new.
func (r *reply) showPart(ctx context.Context, i int, p part, bt buttons) (int, error) {
	if i < r.frozen {
		return 0, nil
	}
	j := i - r.frozen
	body := newBody(p, bt, r.v2)
	if j < len(r.parts) {
		sp := &r.parts[j]
		if sp.known && sp.shown == p && sp.buttons == bt {
			return 0, nil
		}
		var err error
		if sp.hook {
			if r.hook == nil {
				return 0, nil // frozen by a token that expired meanwhile
			}
			err = r.b.hookEdit(ctx, *r.hook, sp.id, body)
		} else {
			err = r.b.channelEdit(ctx, r.channelID, sp.id, body)
		}
		if err != nil {
			return requestsMade(err), err
		}
		sp.shown, sp.buttons, sp.known = p, bt, true
		return 1, nil
	}
	var (
		id  string
		err error
	)
	switch {
	case r.hook != nil && i == 0 && !r.followup:
		id = originalID
		err = r.b.hookEdit(ctx, *r.hook, id, body)
	case r.hook != nil:
		id, err = r.b.hookFollowup(ctx, *r.hook, body)
	default:
		replyTo := ""
		if i == 0 {
			replyTo = r.replyTo
		}
		id, err = r.b.channelSend(ctx, r.channelID, body, replyTo)
	}
	if err != nil {
		return requestsMade(err), err
	}
	r.decided = true
	r.parts = append(r.parts, sentPart{id: id, hook: r.hook != nil, shown: p, buttons: bt, known: true})
	return 1, nil
}

// requestsMade is how many requests a failed call made: none when it was
// refused before the request (an exhausted bucket).
func requestsMade(err error) int {
	if rl, ok := err.(*sessions.RateLimitError); ok && rl.Err == errBucketEmpty {
		return 0
	}
	return 1
}
