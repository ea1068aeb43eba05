package sessions

import (
	"context"
	"fmt"

	"github.com/palaver-bot/palaver/llm"
)

// StopReply ends the running answer shown on reply, keeping what was
// written so far, as Stop does: what a platform's own Stop button on one
// answer (Telegram's stopped_message_generation) asks. It reports whether
// that answer was running; it is not once it ended or while it waits in
// the queue, and stopping it twice stops it once.
func (m *Manager) StopReply(key Key, reply Reply) bool {
	m.mu.Lock()
	var t *Turn
	if c := m.convs[key]; c != nil {
		for _, r := range c.running {
			if r.reply == reply {
				t = r
				break
			}
		}
	}
	m.mu.Unlock()
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancel == nil {
		return false
	}
	t.cancel(errStopped)
	return true
}

// LatestQuestion is the platform id (Message.ID) of the conversation's
// latest question, "" when there is none: the question a Retry would
// answer again (see Regenerate), for a platform that labels the answer's
// Retry button with it.
func (m *Manager) LatestQuestion(ctx context.Context, key Key) (string, error) {
	q, err := m.latestQuestion(ctx, key)
	if err != nil || q == nil {
		return "", err
	}
	return q.MsgID, nil
}

// latestQuestion is the conversation's latest user entry, or nil.
func (m *Manager) latestQuestion(ctx context.Context, key Key) (*Entry, error) {
	h, err := m.store.History(ctx, key, 2)
	if err != nil {
		return nil, fmt.Errorf("sessions: load history: %w", err)
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Role == llm.RoleUser {
			return &h[i], nil
		}
	}
	return nil, nil
}
