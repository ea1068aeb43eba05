package discord

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/palaver-bot/palaver/sessions"
)

// hookLifetime is how long an answer is shown through its interaction's
// webhook. Discord's interaction tokens live 15 minutes; an answer still
// running after this continues as ordinary channel messages.
const hookLifetime = 14 * time.Minute

// originalID names an interaction's original response in webhook routes.
const originalID = "@original"

// reply is one answer in a channel: the messages it has sent so far,
// edited as the answer grows. A slash command's answer starts as the
// interaction's deferred response (edited through the interaction webhook,
// with follow-ups for further parts); a mention's, reply's or DM's answer
// is a channel message replying to the user's message. It implements
// sessions.Reply, sessions.Typer (for message answers) and Snapshot.
type reply struct {
	b         *Bot
	channelID string
	replyTo   string // the user's message, answered as a reply

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
}

// sentPart is one message of the answer as last shown.
type sentPart struct {
	id      string // message id, or originalID
	hook    bool   // sent through the interaction webhook
	content string
	stop    bool // it carries the Stop button
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
func (r messageReply) Typing(ctx context.Context) error {
	if err := r.b.s.ChannelTyping(r.channelID, streamOpts(ctx)...); err != nil {
		return r.b.classify(err)
	}
	return nil
}

// snapshot is a reply's record for recovery after a restart.
type snapshot struct {
	Channel string `json:"channel"`
	ReplyTo string `json:"reply_to,omitempty"`
	AppID   string `json:"app,omitempty"`
	Token   string `json:"token,omitempty"`
	Created int64  `json:"created,omitempty"` // Unix milliseconds
	Frozen  int    `json:"frozen,omitempty"`
	Parts   []struct {
		ID   string `json:"id"`
		Hook bool   `json:"hook,omitempty"`
	} `json:"parts,omitempty"`
}

// Snapshot records where the answer is shown (channel, interaction token,
// message ids), for the Manager's progress record.
func (r *reply) Snapshot() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{Channel: r.channelID, ReplyTo: r.replyTo, Frozen: r.frozen}
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

// Show makes v the visible answer: it renders v into message-sized parts,
// edits the messages whose part changed and sends the new ones, the Stop
// button under the last while the answer runs. It makes one request per
// call and returns sessions.ErrMore while more parts need one.
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
	texts := r.render.parts(v, MessageLimit)
	if len(texts) == 0 {
		if !v.Final {
			return 0, nil
		}
		texts = []string{"…"}
	}
	// A queued answer cannot be stopped on its own: no button until it runs.
	stoppable := !v.Final && (v.Content != "" || v.Reasoning != "" || !strings.HasPrefix(v.Status, "⏳"))
	if r.hook != nil && r.b.now().Sub(r.created) > hookLifetime {
		r.leaveHook()
	}
	requests := 0
	for i, text := range texts {
		stop := stoppable && i == len(texts)-1
		if requests > 0 && r.needsRequest(i, text, stop) {
			return requests, sessions.ErrMore // one request per Show
		}
		n, err := r.showPart(ctx, i, text, stop)
		requests += n
		if err != nil && r.hook != nil && isHookExpired(err) {
			r.b.log.Info("interaction token expired; the answer continues as channel messages", "channel", r.channelID)
			r.leaveHook()
			n, err = r.showPart(ctx, i, text, stop)
			requests += n
		}
		if err != nil {
			return requests, r.b.classify(err)
		}
	}
	// Parts can shrink (an empty final view): delete leftovers.
	for len(r.parts) > 0 && r.frozen+len(r.parts) > len(texts) {
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
	return requests, nil
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

// needsRequest reports whether showing text as part i takes a request.
func (r *reply) needsRequest(i int, text string, stop bool) bool {
	if i < r.frozen {
		return false
	}
	j := i - r.frozen
	if j >= len(r.parts) {
		return true
	}
	p := r.parts[j]
	if p.hook && r.hook == nil {
		return false
	}
	return !p.known || p.content != text || p.stop != stop
}

// showPart shows text as part i, editing it or sending it when new.
func (r *reply) showPart(ctx context.Context, i int, text string, stop bool) (int, error) {
	if i < r.frozen {
		return 0, nil
	}
	j := i - r.frozen
	if j < len(r.parts) {
		p := &r.parts[j]
		if p.known && p.content == text && p.stop == stop {
			return 0, nil
		}
		var err error
		if p.hook {
			if r.hook == nil {
				return 0, nil // frozen by a token that expired meanwhile
			}
			err = r.b.hookEdit(ctx, *r.hook, p.id, text, stop)
		} else {
			err = r.b.channelEdit(ctx, r.channelID, p.id, text, stop)
		}
		if err != nil {
			return requestsMade(err), err
		}
		p.content, p.stop, p.known = text, stop, true
		return 1, nil
	}
	var (
		id  string
		err error
	)
	switch {
	case r.hook != nil && i == 0:
		id = originalID
		err = r.b.hookEdit(ctx, *r.hook, id, text, stop)
	case r.hook != nil:
		id, err = r.b.hookFollowup(ctx, *r.hook, text, stop, 0)
	default:
		replyTo := ""
		if i == 0 {
			replyTo = r.replyTo
		}
		id, err = r.b.channelSend(ctx, r.channelID, text, stop, replyTo)
	}
	if err != nil {
		return requestsMade(err), err
	}
	r.parts = append(r.parts, sentPart{id: id, hook: r.hook != nil, content: text, stop: stop, known: true})
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
