package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/palaver-bot/palaver/sessions"
)

// recoverAttempts bounds how often an interrupted answer's final view is
// tried when Discord asks to slow down.
const recoverAttempts = 3

// recoverAnswer finalises an answer that was in progress when Palaver
// stopped: its messages are edited to the last text shown, with the
// Manager's "interrupted" note (through the interaction webhook while its
// token lives), or a new channel message is sent when none had been.
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
			t := time.NewTimer(max(rl.RetryAfter, b.opts.EditInterval))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
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
			return nil, fmt.Errorf("discord: read reply record: %w", err)
		}
	}
	if s.Channel == "" {
		s.Channel = p.Key.Chat
	}
	r := &reply{b: b, channelID: s.Channel, replyTo: s.ReplyTo, frozen: s.Frozen}
	if s.Token != "" {
		r.hook = &hook{appID: s.AppID, token: s.Token}
		r.created = time.UnixMilli(s.Created)
	}
	for _, sp := range s.Parts {
		r.parts = append(r.parts, sentPart{id: sp.ID, hook: sp.Hook})
	}
	if r.hook == nil && len(r.parts) > 0 && r.parts[len(r.parts)-1].hook {
		// A record without a token cannot edit webhook parts.
		r.leaveHook()
	}
	return r, nil
}
