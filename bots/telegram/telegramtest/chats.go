package telegramtest

import (
	"encoding/json"
	"slices"
	"strconv"
)

// chatState is everything the fake knows about one chat.
type chatState struct {
	chat       Chat
	migratedTo int64
	nextID     int
	messages   []*Message // in order, deleted ones removed
	drafts     []*Draft
	members    map[int64]string
	actions    []string // sendChatAction actions, in order
	flood      chatFlood
}

// defaultChat is the chat an id denotes until SetChat says otherwise:
// positive ids are private chats, ids below -10^12 supergroups ("-100…"),
// other negative ids basic groups.
func defaultChat(id int64) Chat {
	switch {
	case id > 0:
		return Chat{ID: id, Type: ChatPrivate, FirstName: "User " + strconv.FormatInt(id, 10)}
	case id < -1_000_000_000_000:
		return Chat{ID: id, Type: ChatSupergroup, Title: "Supergroup " + strconv.FormatInt(id, 10)}
	default:
		return Chat{ID: id, Type: ChatGroup, Title: "Group " + strconv.FormatInt(id, 10)}
	}
}

// chatLocked returns the state of a chat, creating it on first use. s.mu
// must be held.
func (s *Server) chatLocked(id int64) *chatState {
	c, ok := s.chats[id]
	if !ok {
		c = &chatState{chat: defaultChat(id), members: map[int64]string{}}
		s.chats[id] = c
	}
	return c
}

// isPrivate reports whether the chat is a one-to-one chat with a user.
func (c *chatState) isPrivate() bool { return c.chat.Type == ChatPrivate }

// message returns a message by id, or nil.
func (c *chatState) message(id int) *Message {
	for _, m := range c.messages {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// add stores a new message, assigning its id.
func (c *chatState) add(m *Message) {
	c.nextID++
	m.ID = c.nextID
	m.ChatID = c.chat.ID
	c.messages = append(c.messages, m)
}

// SetChat sets a chat's type, title and forum flag (a forum is a
// supergroup with topics). Chats not set are private for positive ids,
// supergroups for ids below -10^12 and basic groups otherwise.
func (s *Server) SetChat(chat Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatLocked(chat.ID).chat = chat
	s.notifyLocked()
}

// Chat returns what the server knows of a chat.
func (s *Server) Chat(id int64) Chat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chatLocked(id).chat
}

// SetMember sets a user's status in a chat, as getChatMember reports it
// (StatusAdministrator, StatusMember, …). Users not set are members.
func (s *Server) SetMember(chatID, userID int64, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatLocked(chatID).members[userID] = status
	s.notifyLocked()
}

// MigrateChat upgrades the basic group oldID to the supergroup newID, as
// Telegram does when a group grows: the old chat gets a service message with
// migrate_to_chat_id, the new one a message with migrate_from_chat_id (both
// as updates), and from then on every request to oldID fails with 400
// "Bad Request: group chat was upgraded to a supergroup chat" and
// parameters.migrate_to_chat_id.
func (s *Server) MigrateChat(oldID, newID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.chatLocked(oldID)
	old.migratedTo = newID
	nc := s.chatLocked(newID)
	nc.chat.Type = ChatSupergroup
	if old.chat.Title != "" {
		nc.chat.Title = old.chat.Title
	}
	for u, st := range old.members {
		nc.members[u] = st
	}
	date := s.now().Unix()
	s.pushLocked(wireUpdate{Message: &wireMessage{Chat: old.chat, Date: date, MigrateToChatID: newID, From: &s.bot}})
	s.pushLocked(wireUpdate{Message: &wireMessage{Chat: nc.chat, Date: date, MigrateFromChatID: oldID, From: &s.bot}})
}

// Messages returns the current state of every message in a chat that has
// not been deleted, oldest first: the users' messages pushed with SendText
// and the bot's.
func (s *Server) Messages(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chats[chatID]
	if !ok {
		return nil
	}
	out := make([]Message, len(c.messages))
	for i, m := range c.messages {
		out[i] = copyMessage(m)
	}
	return out
}

// BotMessages returns Messages(chatID) sent by the bot.
func (s *Server) BotMessages(chatID int64) []Message {
	return slices.DeleteFunc(s.Messages(chatID), func(m Message) bool { return m.From.ID != s.bot.ID })
}

// Message returns one message of a chat, if it exists.
func (s *Server) Message(chatID int64, id int) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chats[chatID]
	if !ok {
		return Message{}, false
	}
	m := c.message(id)
	if m == nil {
		return Message{}, false
	}
	return copyMessage(m), true
}

// Drafts returns the latest state of every draft streamed to a chat, in the
// order they started.
func (s *Server) Drafts(chatID int64) []Draft {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chats[chatID]
	if !ok {
		return nil
	}
	out := make([]Draft, len(c.drafts))
	for i, d := range c.drafts {
		out[i] = *d
		out[i].Entities = slices.Clone(d.Entities)
		out[i].Rich = cloneRich(d.Rich)
	}
	return out
}

// ChatActions returns the actions sent to a chat with sendChatAction.
func (s *Server) ChatActions(chatID int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.chats[chatID]; ok {
		return slices.Clone(c.actions)
	}
	return nil
}

// Commands returns the commands set with setMyCommands for a scope type
// ("default", "all_private_chats", "all_group_chats", …).
func (s *Server) Commands(scope string) []BotCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands[scope])
}

// CallbackAnswers returns the answerCallbackQuery calls, in order.
func (s *Server) CallbackAnswers() []CallbackAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.answers)
}

// SetRefuseDrafts makes sendMessageDraft fail with 400 and the given
// description after "Bad Request: " (empty: a default), to test the
// fallback to sendMessage; refuse false accepts drafts again.
func (s *Server) SetRefuseDrafts(refuse bool, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !refuse:
		s.refuseDrafts = ""
	case description == "":
		s.refuseDrafts = defaultDraftRefusal
	default:
		s.refuseDrafts = description
	}
}

func copyMessage(m *Message) Message {
	c := *m
	c.Rich = cloneRich(m.Rich)
	c.Entities = slices.Clone(m.Entities)
	c.ReplyMarkup = slices.Clone(m.ReplyMarkup)
	c.Photo = slices.Clone(m.Photo)
	c.CaptionEntities = slices.Clone(m.CaptionEntities)
	return c
}

// wire encodes a message as the Bot API does, with the message it replies
// to (one level deep, like Telegram).
func (c *chatState) wire(m *Message, withReply bool) *wireMessage {
	w := &wireMessage{
		MessageID:       m.ID,
		MessageThreadID: m.ThreadID,
		Chat:            c.chat,
		Date:            m.Date.Unix(),
		Text:            m.Text,
		Entities:        m.Entities,
		ReplyMarkup:     m.ReplyMarkup,
		IsTopicMessage:  m.ThreadID != 0 && c.chat.IsForum,
		Media:           m.Media,
	}
	if m.Rich != nil {
		// A rich message has no text: clients get its blocks. The fake
		// sends its visible text as one paragraph.
		w.Text, w.Entities = "", nil
		w.RichMessage, _ = json.Marshal(map[string]any{"blocks": []any{map[string]string{"type": "paragraph", "text": m.Text}}})
	}
	from := m.From
	w.From = &from
	if !m.Edited.IsZero() {
		w.EditDate = m.Edited.Unix()
	}
	if withReply && m.ReplyTo != 0 {
		if r := c.message(m.ReplyTo); r != nil {
			w.ReplyToMessage = c.wire(r, false)
		}
	}
	return w
}
