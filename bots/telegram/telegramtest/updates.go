package telegramtest

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// queuedUpdate is an update not yet confirmed by the bot.
type queuedUpdate struct {
	id    int
	kind  string // "message", "callback_query", … as allowed_updates names it
	queue int64  // the chat whose updates a webhook receives one at a time
	raw   json.RawMessage
	sent  bool // returned by a getUpdates or posted to the webhook already

	// Webhook delivery: posting is set while a request is out, failures
	// counts the refused deliveries and retryAt is when the next may go.
	posting  bool
	failures int
	retryAt  time.Time
}

// waitingPoll is a getUpdates call waiting for updates; end is closed,
// with reason set, when another request ends it with 409.
type waitingPoll struct {
	end    chan struct{}
	reason string
}

// endPollLocked ends the waiting getUpdates, if any, with 409 and reason.
// s.mu must be held.
func (s *Server) endPollLocked(reason string) {
	if s.poller != nil {
		s.poller.reason = reason
		close(s.poller.end)
		s.poller = nil
	}
}

// pushLocked queues an update and wakes a waiting getUpdates. s.mu must be
// held.
func (s *Server) pushLocked(u wireUpdate) int {
	u.UpdateID = s.nextUpdateID
	s.nextUpdateID++
	raw, err := json.Marshal(u)
	if err != nil {
		panic("telegramtest: encode update: " + err.Error()) // our own types always encode
	}
	s.updates = append(s.updates, queuedUpdate{id: u.UpdateID, kind: u.kind(), queue: u.queue(), raw: raw})
	s.notifyLocked()
	return u.UpdateID
}

// PendingUpdates is the number of updates not yet confirmed by a getUpdates
// offset or a webhook's 2xx answer.
func (s *Server) PendingUpdates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.updates)
}

// Pollers is the number of getUpdates calls waiting for an update (0 or 1).
func (s *Server) Pollers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poller != nil {
		return 1
	}
	return 0
}

// MessageOption adjusts a message pushed with SendText, SendPhoto and the
// other Send methods.
type MessageOption func(*Message)

// InThread sends the message in a forum topic.
func InThread(threadID int) MessageOption {
	return func(m *Message) { m.ThreadID = threadID }
}

// ReplyTo makes the message a reply to another message of the chat (a
// message of the bot, to address it in a group).
func ReplyTo(messageID int) MessageOption {
	return func(m *Message) { m.ReplyTo = messageID }
}

// SendText pushes an update with a text message from a user to a chat, as
// Telegram would deliver it to the bot, and returns the message. Entities
// for a leading /command and for @mentions are added as Telegram adds
// them. For a private chat, chatID is normally from.ID.
func (s *Server) SendText(chatID int64, from User, text string, opts ...MessageOption) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushUserLocked(chatID, from, &Message{Text: text, Source: text, Entities: autoEntities(text)}, opts)
}

// pushUserLocked records m as a new message of from in a chat and pushes
// its update. s.mu must be held.
func (s *Server) pushUserLocked(chatID int64, from User, m *Message, opts []MessageOption) Message {
	c := s.chatLocked(chatID)
	if c.isPrivate() && c.chat.FirstName == defaultChat(chatID).FirstName && from.ID == chatID {
		c.chat.FirstName, c.chat.LastName, c.chat.Username = from.FirstName, from.LastName, from.Username
	}
	s.users[from.ID] = from
	m.From, m.Date = from, s.now()
	for _, o := range opts {
		o(m)
	}
	c.add(m)
	s.pushLocked(wireUpdate{Message: c.wire(m, true)})
	return copyMessage(m)
}

// PressButton pushes a callback query, as when a user presses an inline
// keyboard button with callback data on a message, and returns the query
// id that answerCallbackQuery must answer.
func (s *Server) PressButton(chatID int64, messageID int, from User, data string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatLocked(chatID)
	s.users[from.ID] = from
	s.callbackSeq++
	id := strconv.FormatInt(from.ID, 10) + "-" + strconv.Itoa(s.callbackSeq)
	q := &wireCallbackQuery{ID: id, From: from, ChatInstance: strconv.FormatInt(chatID, 10), Data: data}
	if m := c.message(messageID); m != nil {
		q.Message = c.wire(m, true)
	}
	s.callbacks[id] = chatID
	s.pushLocked(wireUpdate{CallbackQuery: q})
	return id
}

// autoEntities finds the bot_command and mention entities Telegram marks
// in a user's text.
func autoEntities(text string) []MessageEntity {
	var es []MessageEntity
	offset := 0
	wordStart := true
	for i, r := range text {
		if wordStart && (r == '/' && i == 0 || r == '@') {
			end := i + 1
			for end < len(text) && isWordByte(text[end]) {
				end++
			}
			if r == '/' && end < len(text) && text[end] == '@' {
				end++
				for end < len(text) && isWordByte(text[end]) {
					end++
				}
			}
			if end-i > 1 {
				typ := "mention"
				if r == '/' {
					typ = "bot_command"
				}
				es = append(es, MessageEntity{Type: typ, Offset: offset, Length: UTF16Len(text[i:end])})
			}
		}
		wordStart = strings.ContainsRune(" \t\n(", r)
		offset += utf16.RuneLen(r)
	}
	return es
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// getUpdates answers a (long) poll: it confirms the updates before offset,
// then returns up to limit pending updates, waiting up to timeout seconds
// for one to arrive. A newer getUpdates ends a waiting one with 409, as
// Telegram does, and so does setWebhook; while a webhook is set,
// getUpdates is refused with 409.
func (s *Server) getUpdates(ctx context.Context, p params) (any, *apiError) {
	offset, _, aerr := p.int64Param("offset")
	if aerr != nil {
		return nil, aerr
	}
	limit, aerr := p.intParam("limit")
	if aerr != nil {
		return nil, aerr
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout, aerr := p.intParam("timeout")
	if aerr != nil {
		return nil, aerr
	}
	wait := min(time.Duration(max(timeout, 0))*time.Second, s.maxPoll)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()

	s.mu.Lock()
	if s.hook != nil {
		s.mu.Unlock()
		return nil, &apiError{code: 409, description: conflictWebhookActive}
	}
	// As Telegram: a list sets the types delivered from now on (an empty
	// one every type), and no list keeps the previous setting.
	if aerr := s.setAllowedLocked(p["allowed_updates"]); aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	s.endPollLocked(conflictOtherPoll)
	mine := &waitingPoll{end: make(chan struct{})}
	s.poller = mine
	s.notifyLocked()
	defer func() {
		if s.poller == mine {
			s.poller = nil
		}
		s.mu.Unlock()
	}()
	for {
		switch {
		case offset > 0:
			i := 0
			for i < len(s.updates) && int64(s.updates[i].id) < offset {
				i++
			}
			s.updates = s.updates[i:]
		case offset < 0 && int64(len(s.updates)) > -offset:
			s.updates = s.updates[len(s.updates)+int(offset):]
		}
		if s.allowed != nil {
			// Telegram never delivers the types the bot did not ask for.
			s.updates = slices.DeleteFunc(s.updates, func(u queuedUpdate) bool { return !s.allowed[u.kind] })
		}
		if len(s.updates) > 0 {
			out := make([]json.RawMessage, 0, min(limit, len(s.updates)))
			for i := range min(limit, len(s.updates)) {
				u := &s.updates[i]
				if u.sent {
					s.redeliveries++
				}
				u.sent = true
				s.delivered = max(s.delivered, u.id)
				out = append(out, u.raw)
			}
			return out, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
			s.mu.Lock()
		case <-mine.end:
			s.mu.Lock()
			return nil, &apiError{code: 409, description: mine.reason}
		case <-deadline.C:
			s.mu.Lock()
			return []json.RawMessage{}, nil
		case <-ctx.Done():
			s.mu.Lock()
			return []json.RawMessage{}, nil
		case <-s.closed:
			s.mu.Lock()
			return []json.RawMessage{}, nil
		}
	}
}
