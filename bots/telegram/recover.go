package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/palaver-bot/palaver/sessions"
)

// recoverAttempts bounds how often an interrupted answer's final view is
// tried when Telegram asks to slow down.
const recoverAttempts = 3

// recoverAnswer finalises an answer that was in progress when Palaver
// stopped: its messages are edited to the last text shown, with the
// Manager's "interrupted" note, or a new message is sent when none had
// been.
func (b *Bot) recoverAnswer(ctx context.Context, p sessions.Progress) error {
	r, err := b.restoreReply(p)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		_, err := r.Show(ctx, p.Shown)
		var rl *sessions.RateLimitError
		switch {
		case err == nil, errors.Is(err, sessions.ErrReplyGone):
			return nil
		case errors.As(err, &rl) && attempt < recoverAttempts:
			if !sleep(ctx, rl.RetryAfter) {
				return ctx.Err()
			}
		default:
			return err
		}
	}
}

// restoreReply rebuilds a reply from its progress record.
func (b *Bot) restoreReply(p sessions.Progress) (*reply, error) {
	var s snapshot
	if len(p.Reply) > 0 {
		if err := json.Unmarshal(p.Reply, &s); err != nil {
			return nil, fmt.Errorf("telegram: read reply record: %w", err)
		}
	}
	if s.Chat == 0 {
		chat, err := strconv.ParseInt(p.Key.Chat, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("telegram: conversation key %q has no chat id", p.Key)
		}
		s.Chat, s.Private = chat, chat > 0
		if p.Key.Thread != "" {
			s.Topic, _ = strconv.Atoi(p.Key.Thread)
		}
	}
	r := &reply{b: b, private: s.Private, chat: s.Chat, topic: s.Topic, replyTo: s.ReplyTo}
	for _, id := range s.Messages {
		r.parts = append(r.parts, sentPart{id: id})
	}
	return r, nil
}
