package discord

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/palaver-bot/palaver/sessions"
)

// restoreReply rebuilds a reply from its progress record.
func (b *Bot) restoreReply(p sessions.Progress) (sessions.Reply, error) {
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
