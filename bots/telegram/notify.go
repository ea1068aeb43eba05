package telegram

import (
	"context"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// backgroundTimeout bounds a command answer sent in the background,
// including one wait for a rate limit.
const backgroundTimeout = 90 * time.Second

// background runs fn in its own goroutine, tracked so that Run waits for
// it, with a context bounded by backgroundTimeout that outlives shutdown
// by at most asyncGrace.
func (b *Bot) background(fn func(ctx context.Context)) {
	b.async.Add(1)
	go func() {
		defer b.async.Done()
		ctx, cancel := context.WithTimeout(b.asyncCtx, backgroundTimeout)
		defer cancel()
		fn(ctx)
	}()
}

// say sends a short Markdown message (a command's answer, a refusal) to the
// place in the background, replying to the user's message in groups.
func (b *Bot) say(p place, markdown string, keyboard *tgbotapi.InlineKeyboardMarkup) {
	b.background(func(ctx context.Context) { b.send(ctx, p, markdown, keyboard) })
}

// send sends Markdown as one or more messages, the keyboard under the
// last. A rate limit is waited out (once per part); HTML that Telegram
// refuses goes as plain text. It returns the id of the last message sent,
// 0 when none was.
func (b *Bot) send(ctx context.Context, p place, markdown string, keyboard *tgbotapi.InlineKeyboardMarkup) int {
	parts := splitMarkdown(markdown)
	last := 0
	for i, part := range parts {
		o := outgoing{chat: p.chat, thread: p.topic, text: part.html}
		if i == 0 && !p.private {
			o.replyTo = p.msgID
		}
		if i == len(parts)-1 {
			o.keyboard = keyboard
		}
		id, err := b.api.send(ctx, o)
		if rl := rateLimit(err); rl != nil && sleep(ctx, rl.RetryAfter) {
			id, err = b.api.send(ctx, o)
		}
		if isParseError(err) {
			o.text, o.plain = clipUTF16(PlainText(part.md), MaxMessageLen), true
			id, err = b.api.send(ctx, o)
		}
		if err != nil {
			b.log.Warn("send message", "chat", p.chat, "error", err)
			return last
		}
		last = id
	}
	return last
}
