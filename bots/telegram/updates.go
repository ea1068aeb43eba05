package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// incoming is one decoded update: the library's types plus the fields it
// predates (forum topics).
type incoming struct {
	tgbotapi.Update
	// Topic is the forum topic of Message (or of the message under
	// CallbackQuery), 0 outside forum topics.
	Topic int
	// Stopped is a stopped_message_generation update, which the library
	// predates.
	Stopped *generationStopped
}

// topicFields are the Bot API fields telegram-bot-api v5.5 lacks.
type topicFields struct {
	ThreadID       int  `json:"message_thread_id"`
	IsTopicMessage bool `json:"is_topic_message"`
	Chat           struct {
		IsForum bool `json:"is_forum"`
	} `json:"chat"`
}

// topic is the forum topic a message belongs to: its message_thread_id
// when it is a topic message of a forum. Replies outside forums carry a
// message_thread_id too, which is not a topic.
func (f *topicFields) topic() int {
	if f == nil || !f.IsTopicMessage || !f.Chat.IsForum {
		return 0
	}
	return f.ThreadID
}

// decodeUpdate decodes one raw update.
func decodeUpdate(raw json.RawMessage) (incoming, error) {
	var u incoming
	if err := json.Unmarshal(raw, &u.Update); err != nil {
		return u, fmt.Errorf("telegram: decode update: %w", err)
	}
	var extra struct {
		Message       *topicFields `json:"message"`
		CallbackQuery *struct {
			Message *topicFields `json:"message"`
		} `json:"callback_query"`
		Stopped *generationStopped `json:"stopped_message_generation"`
	}
	if err := json.Unmarshal(raw, &extra); err != nil {
		return u, fmt.Errorf("telegram: decode update: %w", err)
	}
	switch {
	case extra.Message != nil:
		u.Topic = extra.Message.topic()
	case extra.CallbackQuery != nil:
		u.Topic = extra.CallbackQuery.Message.topic()
	}
	u.Stopped = extra.Stopped
	return u, nil
}

// allowedUpdates are the update types the Bot asks for: messages, button
// presses, and the Stop button of drafts (Bot API 10.3), which Telegram
// sends only to a bot that lists it.
const allowedUpdates = `["message","callback_query","stopped_message_generation"]`

// getUpdates long-polls for updates after offset, waiting up to timeout
// seconds. It returns the raw updates so that an update the library cannot
// decode is skipped alone.
func (a *api) getUpdates(ctx context.Context, offset, timeout int) ([]json.RawMessage, error) {
	p := tgbotapi.Params{
		"offset":          strconv.Itoa(offset),
		"timeout":         strconv.Itoa(timeout),
		"allowed_updates": allowedUpdates,
	}
	var raws []json.RawMessage
	if err := a.call(ctx, "getUpdates", p, &raws); err != nil {
		return nil, fmt.Errorf("telegram: get updates: %w", err)
	}
	return raws, nil
}

// updateID reads the update_id of a raw update, -1 when it has none.
func updateID(raw json.RawMessage) int {
	var u struct {
		ID *int `json:"update_id"`
	}
	if json.Unmarshal(raw, &u) != nil || u.ID == nil {
		return -1
	}
	return *u.ID
}
