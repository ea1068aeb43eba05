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
	// Rich is the content of a rich message (sendRichMessage) as the bot
	// sent it, nil for a text message; Text is then the text a client
	// shows, without formatting, and Entities is empty.
	Rich *RichMessage
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

// Draft is the latest state of one streamed draft (sendMessageDraft or
// sendRichMessageDraft).
type Draft struct {
	ChatID    int64
	ThreadID  int
	DraftID   int64
	Text      string
	Entities  []MessageEntity
	Source    string
	ParseMode string
	// Rich is the content of a rich draft (sendRichMessageDraft), nil for
	// a text draft; Text is then the text a client shows.
	Rich *RichMessage
	// CanStop and KeepOnStop are the last call's can_stop and
	// keep_on_stop: whether the user sees a Stop button, and whether the
	// draft stays when it is pressed. Stopped is set once the user pressed
	// it (StopGeneration).
	CanStop    bool
	KeepOnStop bool
	Stopped    bool
	// Updates counts the calls that set this draft.
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
	RichMessage       json.RawMessage `json:"rich_message,omitempty"`
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

// wireGenerationStopped is a MessageGenerationStopped as the Bot API
// encodes it (core.telegram.org/bots/api#messagegenerationstopped).
type wireGenerationStopped struct {
	Chat            Chat  `json:"chat"`
	MessageThreadID int   `json:"message_thread_id,omitempty"`
	DraftID         int64 `json:"draft_id"`
}

// wireUpdate is an update as the Bot API encodes it.
type wireUpdate struct {
	UpdateID                 int                    `json:"update_id"`
	Message                  *wireMessage           `json:"message,omitempty"`
	CallbackQuery            *wireCallbackQuery     `json:"callback_query,omitempty"`
	StoppedMessageGeneration *wireGenerationStopped `json:"stopped_message_generation,omitempty"`
}

// kind is the update's type, as allowed_updates names it.
func (u wireUpdate) kind() string {
	switch {
	case u.CallbackQuery != nil:
		return "callback_query"
	case u.StoppedMessageGeneration != nil:
		return "stopped_message_generation"
	}
	return "message"
}
