package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/sessions"
)

// api sends Bot API requests through telegram-bot-api's MakeRequest, with
// a context per call and the token kept out of every error.
type api struct {
	bot   *tgbotapi.BotAPI
	http  *http.Client
	token string
}

// ctxClient is the HTTP client MakeRequest uses for one call: it attaches
// the call's context to the request the library builds without one.
type ctxClient struct {
	ctx context.Context
	c   *http.Client
}

func (c ctxClient) Do(req *http.Request) (*http.Response, error) {
	return c.c.Do(req.WithContext(c.ctx))
}

// call makes one request and decodes its result into out (unless out is
// nil). Errors are *tgbotapi.Error for ok:false answers, else transport
// errors with the token redacted.
func (a *api) call(ctx context.Context, method string, params tgbotapi.Params, out any) error {
	// A shallow copy of the BotAPI carries the per-call client; the
	// library keeps no other per-call state in it.
	b := *a.bot
	b.Client = ctxClient{ctx: ctx, c: a.http}
	resp, err := b.MakeRequest(method, params)
	if err != nil {
		return a.redact(err)
	}
	if out != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("decode %s result: %w", method, err)
		}
	}
	return nil
}

// redact removes the token from transport errors, whose URL contains it.
func (a *api) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.URL, a.token) {
		return &url.Error{Op: ue.Op, URL: strings.ReplaceAll(ue.URL, a.token, "<token>"), Err: ue.Err}
	}
	if a.token != "" && strings.Contains(err.Error(), a.token) {
		return errors.New(strings.ReplaceAll(err.Error(), a.token, "<token>"))
	}
	return err
}

// apiError returns the Bot API's ok:false answer inside err, if any.
func apiError(err error) *tgbotapi.Error {
	var e *tgbotapi.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Classes of Bot API refusals the adapter treats specially.
func isNotModified(err error) bool {
	e := apiError(err)
	return e != nil && strings.Contains(e.Message, "message is not modified")
}

func isMessageGone(err error) bool {
	e := apiError(err)
	return e != nil && (strings.Contains(e.Message, "message to edit not found") ||
		strings.Contains(e.Message, "MESSAGE_ID_INVALID"))
}

func isParseError(err error) bool {
	e := apiError(err)
	return e != nil && strings.Contains(e.Message, "can't parse entities")
}

// rateLimit turns a 429 answer into the engine's *sessions.RateLimitError,
// returning nil for any other error.
func rateLimit(err error) *sessions.RateLimitError {
	e := apiError(err)
	if e == nil || (e.Code != http.StatusTooManyRequests && e.RetryAfter == 0) {
		return nil
	}
	return &sessions.RateLimitError{RetryAfter: time.Duration(max(e.RetryAfter, 1)) * time.Second, Err: err}
}

// migratedTo is the supergroup a basic group became, from a refusal.
func migratedTo(err error) int64 {
	if e := apiError(err); e != nil {
		return e.MigrateToChatID
	}
	return 0
}

// isMethodMissing reports a Bot API server that does not know the method:
// telegram-bot-api answers 404 "Not Found: method not found", as an older
// self-hosted server does to the rich methods of Bot API 10.1.
func isMethodMissing(err error) bool {
	e := apiError(err)
	return e != nil && e.Code == http.StatusNotFound
}

// isRefused reports a request Telegram refused as a bad request, other
// than for the classes handled apart (an unchanged edit, a message gone, a
// migrated group): for a rich message, its content was refused. Telegram
// documents no description for that ("can't parse rich message…" is what
// it has been seen to say), so any such 400 counts.
func isRefused(err error) bool {
	e := apiError(err)
	return e != nil && e.Code == http.StatusBadRequest && !isNotModified(err) && !isMessageGone(err) && e.MigrateToChatID == 0
}

// sentMessage is the part of a sent message the adapter reads back.
type sentMessage struct {
	MessageID int `json:"message_id"`
}

// outgoing is one message to send or edit, or one draft.
type outgoing struct {
	chat    int64
	thread  int
	replyTo int // message to reply to, 0 for none
	// text is HTML; or, with rich, rich Markdown (an InputRichMessage's
	// markdown). With plain it has no markup: a text message without
	// parse_mode, or a rich message of one paragraph block.
	text     string
	plain    bool
	rich     bool
	keyboard *tgbotapi.InlineKeyboardMarkup
}

// richMessage is an InputRichMessage (core.telegram.org/bots/api#inputrichmessage):
// Markdown, or for plain text one paragraph block, which Telegram has
// nothing to parse in.
type richMessage struct {
	Markdown string      `json:"markdown,omitempty"`
	Blocks   []richBlock `json:"blocks,omitempty"`
}

// richBlock is an InputRichBlockParagraph.
type richBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func (o outgoing) params() tgbotapi.Params {
	p := tgbotapi.Params{"chat_id": strconv.FormatInt(o.chat, 10)}
	switch {
	case o.rich:
		rm := richMessage{Markdown: o.text}
		if o.plain {
			rm = richMessage{Blocks: []richBlock{{Type: "paragraph", Text: o.text}}}
		}
		raw, _ := json.Marshal(rm) // strings always encode
		p["rich_message"] = string(raw)
	default:
		p["text"] = o.text
		p["link_preview_options"] = `{"is_disabled":true}`
		if !o.plain {
			p["parse_mode"] = tgbotapi.ModeHTML
		}
	}
	if o.keyboard != nil {
		raw, _ := json.Marshal(o.keyboard) // plain structs of strings always encode
		p["reply_markup"] = string(raw)
	}
	return p
}

// send posts a new message (sendMessage, or sendRichMessage for a rich
// one) and returns its id.
func (a *api) send(ctx context.Context, o outgoing) (int, error) {
	p := o.params()
	if o.thread != 0 {
		p["message_thread_id"] = strconv.Itoa(o.thread)
	}
	if o.replyTo != 0 {
		p["reply_parameters"] = `{"message_id":` + strconv.Itoa(o.replyTo) + `,"allow_sending_without_reply":true}`
	}
	method := "sendMessage"
	if o.rich {
		method = "sendRichMessage"
	}
	var m sentMessage
	if err := a.call(ctx, method, p, &m); err != nil {
		return 0, fmt.Errorf("telegram: send message: %w", err)
	}
	return m.MessageID, nil
}

// edit replaces a message's text (or rich content) and inline keyboard
// (none when nil).
func (a *api) edit(ctx context.Context, id int, o outgoing) error {
	p := o.params()
	p["message_id"] = strconv.Itoa(id)
	if err := a.call(ctx, "editMessageText", p, nil); err != nil {
		return fmt.Errorf("telegram: edit message: %w", err)
	}
	return nil
}

// editMarkup replaces a message's inline keyboard (nil removes it).
func (a *api) editMarkup(ctx context.Context, chat int64, id int, keyboard *tgbotapi.InlineKeyboardMarkup) error {
	p := tgbotapi.Params{"chat_id": strconv.FormatInt(chat, 10), "message_id": strconv.Itoa(id)}
	if keyboard != nil {
		raw, _ := json.Marshal(keyboard) // plain structs of strings always encode
		p["reply_markup"] = string(raw)
	}
	if err := a.call(ctx, "editMessageReplyMarkup", p, nil); err != nil {
		return fmt.Errorf("telegram: edit reply markup: %w", err)
	}
	return nil
}

// draft streams a preview of a message being written (private chats):
// sendMessageDraft, or sendRichMessageDraft for a rich one. An empty text
// message shows Telegram's "Thinking…" placeholder. With stop the draft
// has a Stop button that keeps the draft when pressed (can_stop and
// keep_on_stop, Bot API 10.3); pressing it sends the bot a
// stopped_message_generation update.
func (a *api) draft(ctx context.Context, draftID int64, o outgoing, stop bool) error {
	p := o.params()
	delete(p, "link_preview_options")
	p["draft_id"] = strconv.FormatInt(draftID, 10)
	if o.thread != 0 {
		p["message_thread_id"] = strconv.Itoa(o.thread)
	}
	if stop {
		p["can_stop"], p["keep_on_stop"] = "true", "true"
	}
	method := "sendMessageDraft"
	if o.rich {
		method = "sendRichMessageDraft"
	}
	if err := a.call(ctx, method, p, nil); err != nil {
		return fmt.Errorf("telegram: send draft: %w", err)
	}
	return nil
}

// delete removes a message.
func (a *api) delete(ctx context.Context, chat int64, id int) error {
	p := tgbotapi.Params{"chat_id": strconv.FormatInt(chat, 10), "message_id": strconv.Itoa(id)}
	if err := a.call(ctx, "deleteMessage", p, nil); err != nil {
		return fmt.Errorf("telegram: delete message: %w", err)
	}
	return nil
}

// typing shows "typing…" in a chat or topic.
func (a *api) typing(ctx context.Context, chat int64, thread int) error {
	p := tgbotapi.Params{"chat_id": strconv.FormatInt(chat, 10), "action": tgbotapi.ChatTyping}
	if thread != 0 {
		p["message_thread_id"] = strconv.Itoa(thread)
	}
	if err := a.call(ctx, "sendChatAction", p, nil); err != nil {
		return fmt.Errorf("telegram: send chat action: %w", err)
	}
	return nil
}

// answerCallback acknowledges a button press, with an optional toast, or
// with alert an alert the user dismisses.
func (a *api) answerCallback(ctx context.Context, id, text string, alert bool) error {
	p := tgbotapi.Params{"callback_query_id": id}
	if text != "" {
		p["text"] = text
	}
	if alert {
		p["show_alert"] = "true"
	}
	if err := a.call(ctx, "answerCallbackQuery", p, nil); err != nil {
		return fmt.Errorf("telegram: answer callback query: %w", err)
	}
	return nil
}

// memberStatus is a user's status in a chat ("creator", "administrator", …).
func (a *api) memberStatus(ctx context.Context, chat, user int64) (string, error) {
	p := tgbotapi.Params{"chat_id": strconv.FormatInt(chat, 10), "user_id": strconv.FormatInt(user, 10)}
	var m struct {
		Status string `json:"status"`
	}
	if err := a.call(ctx, "getChatMember", p, &m); err != nil {
		return "", fmt.Errorf("telegram: get chat member: %w", err)
	}
	return m.Status, nil
}

// getMe returns the bot's own user.
func (a *api) getMe(ctx context.Context) (tgbotapi.User, error) {
	var u tgbotapi.User
	if err := a.call(ctx, "getMe", nil, &u); err != nil {
		return u, fmt.Errorf("telegram: get me: %w", err)
	}
	return u, nil
}

// setCommands registers the command menu.
func (a *api) setCommands(ctx context.Context, cmds []tgbotapi.BotCommand) error {
	raw, _ := json.Marshal(cmds) // plain structs of strings always encode
	if err := a.call(ctx, "setMyCommands", tgbotapi.Params{"commands": string(raw)}, nil); err != nil {
		return fmt.Errorf("telegram: set commands: %w", err)
	}
	return nil
}
