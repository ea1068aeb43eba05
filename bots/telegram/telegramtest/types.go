package telegramtest

import (
	"encoding/json"
	"time"
)

// User is a Telegram user or bot, as the Bot API encodes it.
type User struct {
	ID                      int64  `json:"id"`
	IsBot                   bool   `json:"is_bot"`
	FirstName               string `json:"first_name"`
	LastName                string `json:"last_name,omitempty"`
	Username                string `json:"username,omitempty"`
	LanguageCode            string `json:"language_code,omitempty"`
	CanJoinGroups           bool   `json:"can_join_groups,omitempty"`
	CanReadAllGroupMessages bool   `json:"can_read_all_group_messages,omitempty"`
	SupportsInlineQueries   bool   `json:"supports_inline_queries,omitempty"`
}

// Chat types.
const (
	ChatPrivate    = "private"
	ChatGroup      = "group"
	ChatSupergroup = "supergroup"
	ChatChannel    = "channel"
)

// Chat is a Telegram chat, as the Bot API encodes it.
type Chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	IsForum   bool   `json:"is_forum,omitempty"`
}

// MessageEntity is one formatting entity of a text, offsets and lengths in
// UTF-16 code units.
type MessageEntity struct {
	Type          string `json:"type"`
	Offset        int    `json:"offset"`
	Length        int    `json:"length"`
	URL           string `json:"url,omitempty"`
	Language      string `json:"language,omitempty"`
	CustomEmojiID string `json:"custom_emoji_id,omitempty"`
}

// Chat member statuses, for SetMember.
const (
	StatusCreator       = "creator"
	StatusAdministrator = "administrator"
	StatusMember        = "member"
	StatusRestricted    = "restricted"
	StatusLeft          = "left"
	StatusKicked        = "kicked"
)

// BotCommand is one entry of setMyCommands.
type BotCommand struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}

// Message is the fake's record of one message in a chat: what a Telegram
// client would show now.
type Message struct {
	ID       int
	ChatID   int64
	ThreadID int // forum topic, 0 for none
	From     User
	// Text is the visible text after entity parsing; Entities its formatting.
	Text     string
	Entities []MessageEntity
	// Source is the text parameter as the bot sent it (HTML for parse_mode
	// HTML); ParseMode is the parse_mode it was sent with.
	Source    string
	ParseMode string
	// ReplyMarkup is the message's reply_markup as compact JSON; nil when it
	// has none.
	ReplyMarkup json.RawMessage
	ReplyTo     int // id of the message this one replies to, 0 for none
	// Media is a user's file, caption and album (SendPhoto, SendAlbum, …).
	Media
	Date time.Time
	// EditCount counts the successful edits (text or markup); Edited is the
	// time of the last.
	EditCount int
	Edited    time.Time
}

// Draft is the latest state of one streamed draft (sendMessageDraft).
type Draft struct {
	ChatID    int64
	ThreadID  int
	DraftID   int64
	Text      string
	Entities  []MessageEntity
	Source    string
	ParseMode string
	// Updates counts the sendMessageDraft calls that set this draft.
	Updates int
	Updated time.Time
}

// Call is one request the fake answered.
type Call struct {
	Time   time.Time
	Method string
	// Params are the request's parameters as strings: form values as sent,
	// JSON body values as their JSON text (strings unquoted).
	Params map[string]string
	// MessageID is the message a successful call answered with: the one
	// sendMessage sent or editMessageText and editMessageReplyMarkup
	// edited; 0 for other calls.
	MessageID int
	// Status is the HTTP status of the answer; ErrorCode, Description and
	// RetryAfter are those of an ok:false answer.
	Status      int
	ErrorCode   int
	Description string
	RetryAfter  int
}

// OK reports whether the call succeeded.
func (c Call) OK() bool { return c.Status == 200 }

// CallbackAnswer records an answerCallbackQuery call.
type CallbackAnswer struct {
	QueryID   string
	Text      string
	ShowAlert bool
}

// wireMessage is a Message as the Bot API encodes it.
type wireMessage struct {
	MessageID         int             `json:"message_id"`
	MessageThreadID   int             `json:"message_thread_id,omitempty"`
	From              *User           `json:"from,omitempty"`
	Chat              Chat            `json:"chat"`
	Date              int64           `json:"date"`
	EditDate          int64           `json:"edit_date,omitempty"`
	IsTopicMessage    bool            `json:"is_topic_message,omitempty"`
	ReplyToMessage    *wireMessage    `json:"reply_to_message,omitempty"`
	Text              string          `json:"text,omitempty"`
	Entities          []MessageEntity `json:"entities,omitempty"`
	ReplyMarkup       json.RawMessage `json:"reply_markup,omitempty"`
	MigrateToChatID   int64           `json:"migrate_to_chat_id,omitempty"`
	MigrateFromChatID int64           `json:"migrate_from_chat_id,omitempty"`
	Media
}

// wireCallbackQuery is a callback query as the Bot API encodes it.
type wireCallbackQuery struct {
	ID           string       `json:"id"`
	From         User         `json:"from"`
	Message      *wireMessage `json:"message,omitempty"`
	ChatInstance string       `json:"chat_instance"`
	Data         string       `json:"data,omitempty"`
}

// wireUpdate is an update as the Bot API encodes it.
type wireUpdate struct {
	UpdateID      int                `json:"update_id"`
	Message       *wireMessage       `json:"message,omitempty"`
	CallbackQuery *wireCallbackQuery `json:"callback_query,omitempty"`
}
