package telegramtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// richKindChange refuses an edit that would turn a text message into a
// rich one or the reverse. Telegram documents editMessageText as editing
// "text, rich and game messages" without saying whether an edit may change
// a message's kind; the fake assumes it may not, so that a bot that mixes
// them is caught.
const richKindChange = "a message can't change between text and rich content"

// sendRichMessage answers sendRichMessage (Bot API 10.1,
// core.telegram.org/bots/api#sendrichmessage): chat_id, rich_message (an
// InputRichMessage), message_thread_id, reply_parameters and reply_markup,
// charged like sendMessage. The thinking block is refused: it belongs to
// drafts.
func (s *Server) sendRichMessage(_ context.Context, p params) (any, *apiError) {
	if s.noRich {
		return nil, methodNotFound()
	}
	c, aerr := s.targetChatLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	rm, text, aerr := parseRich(p["rich_message"], false)
	if aerr != nil {
		return nil, aerr
	}
	return s.postLocked(c, p, &Message{Text: text, Rich: &rm})
}

// editRichLocked answers editMessageText with rich_message: the new
// content of a rich message. s.mu must be held.
func (s *Server) editRichLocked(c *chatState, m *Message, p params, raw string) (any, *apiError) {
	if p["text"] != "" {
		return nil, badRequest("text and rich_message can't be specified together")
	}
	rm, text, aerr := parseRich(raw, false)
	if aerr != nil {
		return nil, aerr
	}
	if m.Rich == nil {
		return nil, badRequest(richKindChange)
	}
	markup, aerr := parseMarkup(p["reply_markup"])
	if aerr != nil {
		return nil, aerr
	}
	if rm.HTML == m.Rich.HTML && rm.Markdown == m.Rich.Markdown && bytes.Equal(rm.Blocks, m.Rich.Blocks) && bytes.Equal(markup, m.ReplyMarkup) {
		return nil, notModified()
	}
	if aerr := s.chargeLocked(c); aerr != nil {
		return nil, aerr
	}
	m.Text, m.Rich, m.ReplyMarkup = text, &rm, markup
	m.EditCount++
	m.Edited = s.now()
	s.notifyLocked()
	return c.wire(m, true), nil
}

// sendRichMessageDraft answers sendRichMessageDraft (Bot API 10.1,
// core.telegram.org/bots/api#sendrichmessagedraft): a rich draft in a
// private chat, with can_stop and keep_on_stop (Bot API 10.3). Like
// sendMessageDraft it is charged to no limit.
func (s *Server) sendRichMessageDraft(_ context.Context, p params) (any, *apiError) {
	if s.noRich {
		return nil, methodNotFound()
	}
	c, draftID, thread, aerr := s.draftTargetLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	rm, text, aerr := parseRich(p["rich_message"], true)
	if aerr != nil {
		return nil, aerr
	}
	d := c.draft(draftID, thread)
	d.Text, d.Entities, d.Source, d.ParseMode, d.Rich = text, nil, "", "", &rm
	s.updateDraftLocked(d, p)
	return true, nil
}

// SetRichMethods makes the server know the rich methods (on) or answer
// them as a server older than Bot API 10.1 does (see
// Options.NoRichMethods).
func (s *Server) SetRichMethods(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noRich = !on
}

// ErrNotStoppable is returned by StopGeneration for a draft that shows no
// Stop button: there is no such draft, or its last call did not pass
// can_stop.
var ErrNotStoppable = errors.New("telegramtest: the draft has no Stop button")

// StopGeneration presses the Stop button of a draft, as a user does on a
// draft streamed with can_stop (core.telegram.org/bots/api#sendmessagedraft):
// it pushes a stopped_message_generation update with the chat, the draft's
// message_thread_id and draft_id
// (core.telegram.org/bots/api#messagegenerationstopped), and marks the
// draft stopped. Pressing it again pushes another update, as a client that
// still shows the button would.
func (s *Server) StopGeneration(chatID, draftID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chats[chatID]
	if !ok {
		return fmt.Errorf("%w: chat %d has no drafts", ErrNotStoppable, chatID)
	}
	for _, d := range c.drafts {
		if d.DraftID != draftID {
			continue
		}
		if !d.CanStop {
			return fmt.Errorf("%w: draft %d was sent without can_stop", ErrNotStoppable, draftID)
		}
		d.Stopped = true
		s.pushLocked(wireUpdate{StoppedMessageGeneration: &wireGenerationStopped{Chat: c.chat, MessageThreadID: d.ThreadID, DraftID: draftID}})
		return nil
	}
	return fmt.Errorf("%w: chat %d has no draft %d", ErrNotStoppable, chatID, draftID)
}
