package telegram

import (
	"context"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/sessions"
)

// notice is a message the bot shows outside an answer: a command's
// answer, a refusal, a note. It is shown once, through the chat's schedule
// like every answer (Manager.Notify), as one or more messages rendered and
// cut like an answer's final view, with an optional inline keyboard under
// the last. It implements sessions.Reply.
type notice struct {
	// r is where the notice goes: the chat, the topic and, in groups, the
	// user's message it replies to. It gives the notice an answer's
	// Destination, so that both share the chat's schedule.
	r        *reply
	keyboard *tgbotapi.InlineKeyboardMarkup
	// edit is the message the first part replaces (a model picker
	// turning a page), 0 to send every part as a new message.
	edit int
	// shown is how many parts are visible; guarded by r.mu.
	shown int
}

// newNotice is a notice to p's chat, replying to p's message in groups,
// with keyboard (nil for none) under its last part.
func (b *Bot) newNotice(p place, keyboard *tgbotapi.InlineKeyboardMarkup) *notice {
	return &notice{r: b.newReply(p), keyboard: keyboard}
}

// editNotice is a notice that replaces the text and keyboard (nil removes
// it) of message id in p's chat.
func (b *Bot) editNotice(p place, id int, keyboard *tgbotapi.InlineKeyboardMarkup) *notice {
	n := b.newNotice(p, keyboard)
	n.edit, n.r.replyTo = id, 0
	return n
}

// say shows a short Markdown message (a command's answer, a refusal) in
// p's chat through its schedule, replying to the user's message in groups.
// It returns at once.
func (b *Bot) say(p place, markdown string, keyboard *tgbotapi.InlineKeyboardMarkup) {
	b.m.Notify(b.newNotice(p, keyboard), sessions.View{Content: markdown, Final: true})
}

// Destination is the chat's, shared with the answers shown there.
func (n *notice) Destination() sessions.Destination { return n.r.Destination() }

// Show shows the next part of v that is not visible yet: one request per
// call (two when Telegram refuses the HTML and the part goes again as
// plain text), returning sessions.ErrMore while parts remain. A 429 is a
// *sessions.RateLimitError; an edited message that is gone wraps
// sessions.ErrReplyGone. A group that became a supergroup gets the notice
// from its start, as a new message.
func (n *notice) Show(ctx context.Context, v sessions.View) (int, error) {
	r := n.r
	r.mu.Lock()
	defer r.mu.Unlock()
	pieces := layout(v, splitMarkdown(v.Content))
	requests, err := n.showNext(ctx, pieces)
	if to := migratedTo(err); to != 0 {
		r.b.log.Info("notice follows a migrated chat", "from", r.chat, "to", to)
		r.chat, r.replyTo, n.edit, n.shown = to, 0, 0, 0
		m, err := n.showNext(ctx, pieces)
		return requests + m, err
	}
	return requests, err
}

// showNext shows pieces[n.shown]. r.mu must be held.
func (n *notice) showNext(ctx context.Context, pieces []piece) (int, error) {
	if n.shown >= len(pieces) {
		return 0, nil
	}
	r, i, p := n.r, n.shown, pieces[n.shown]
	o := outgoing{chat: r.chat, thread: r.topic, text: p.html} // notices are HTML
	if i == len(pieces)-1 {
		o.keyboard = n.keyboard
	}
	send := func() error {
		if i == 0 && n.edit != 0 {
			if err := r.b.api.edit(ctx, n.edit, o); err != nil && !isNotModified(err) {
				return err
			}
			return nil
		}
		if i == 0 {
			o.replyTo = r.replyTo
		}
		_, err := r.b.api.send(ctx, o)
		return err
	}
	err := send()
	requests := 1
	if isParseError(err) {
		r.b.log.Warn("Telegram refused the HTML; sending plain text", "chat", r.chat, "error", err)
		o.text, o.plain = p.plain(), true
		err = send()
		requests++
	}
	if err != nil {
		return requests, r.classify(err)
	}
	n.shown++
	if n.shown < len(pieces) {
		return requests, sessions.ErrMore
	}
	return requests, nil
}
