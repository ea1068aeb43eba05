package telegram

import (
	"context"
	"errors"
	"strconv"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/sessions"
)

// retryPrefix starts the callback data of the Retry button under a
// finished answer: retry:<id of the question it answers>.
const retryPrefix = "retry:"

// retryKeyboard is the Retry button of the answer to question.
func retryKeyboard(question int) *tgbotapi.InlineKeyboardMarkup {
	kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData("🔄 Retry", retryPrefix+strconv.Itoa(question))))
	return &kb
}

// onRetry answers a press of the Retry button under an answer (p.msgID,
// its last message) to question: the Manager answers the question again
// in a new message, replacing the answer in the history, and the pressed
// message loses its button. Only the asker, a group's administrators and
// the configured admins may (Manager.Regenerate; in a private chat the
// asker is the only person there), and only under the latest answer. A
// refusal is the button's acknowledgement: an alert for someone else's
// answer, a toast otherwise. answer acknowledges the press.
func (b *Bot) onRetry(ctx context.Context, p place, by sessions.Author, data string, answer func(text string, alert bool)) {
	question, err := strconv.Atoi(strings.TrimPrefix(data, retryPrefix))
	if err != nil || question <= 0 {
		answer("", false)
		return
	}
	newAnswer := func() *reply {
		r := b.newReply(p)
		r.question = question
		if !p.private {
			r.replyTo = question
		}
		return r
	}
	key, id := p.key(), strconv.Itoa(question)
	admin := p.private || b.admins[p.user]
	_, err = b.m.Regenerate(ctx, key, id, by, admin, newAnswer())
	if errors.Is(err, sessions.ErrNotYours) && !admin && b.mayChange(ctx, p) {
		// A group's administrator (asked only when the asker is not the
		// one pressing).
		_, err = b.m.Regenerate(ctx, key, id, by, true, newAnswer())
	}
	switch {
	case err == nil:
		answer("Answering again…", false)
		b.m.Notify(&unbutton{r: b.newReply(p), id: p.msgID}, sessions.View{Final: true})
	case errors.Is(err, sessions.ErrNotYours):
		answer(clipUTF16(sessions.Explain(err), 190), true)
	default:
		answer(clipUTF16(sessions.Explain(err), 190), false)
	}
}

// unbutton removes the inline keyboard of a message (an answer's Retry
// button, once pressed), through the chat's schedule like every request to
// the chat. It implements sessions.Reply.
type unbutton struct {
	r  *reply // the chat
	id int
}

// Destination is the chat's.
func (u *unbutton) Destination() sessions.Destination { return u.r.Destination() }

// Show removes the keyboard with one request; a message without one, or
// gone, is done with.
func (u *unbutton) Show(ctx context.Context, _ sessions.View) (int, error) {
	u.r.mu.Lock()
	chat := u.r.chat
	u.r.mu.Unlock()
	err := u.r.b.api.editMarkup(ctx, chat, u.id, nil)
	if err == nil || isNotModified(err) {
		return 1, nil
	}
	return 1, u.r.classify(err)
}
