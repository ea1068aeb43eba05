package telegram

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/palaver-bot/palaver/sessions"
)

// restoreReply rebuilds a reply from its progress record.
func (b *Bot) restoreReply(p sessions.Progress) (sessions.Reply, error) {
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
	r := &reply{b: b, private: s.Private, restored: true, chat: s.Chat, topic: s.Topic, replyTo: s.ReplyTo, question: s.Question}
	for _, id := range s.Messages {
		r.parts = append(r.parts, sentPart{id: id, rich: slices.Contains(s.Rich, id)})
	}
	// The answer keeps the format of its messages: a record of messages
	// that were all sent as HTML (or from before rich messages) stays HTML.
	if len(r.parts) > 0 {
		r.mode = formatHTML
		if len(s.Rich) > 0 {
			r.mode = formatRich
		}
	}
	return r, nil
}
