package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxTextLen is Telegram's limit on a message text, in UTF-16 units after
// entity parsing.
const maxTextLen = 4096

// defaultDraftRefusal is the description (after "Bad Request: ") of a
// refused sendMessageDraft. Telegram's exact wording for a draft to a group
// is not documented; this is the MTProto-style error the Bot API relays.
const defaultDraftRefusal = "TEXTDRAFT_PEER_INVALID"

// notModified is the answer to an edit that changes nothing.
func notModified() *apiError {
	return badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
}

func (s *Server) getMe(context.Context, params) (any, *apiError) {
	return s.bot, nil
}

// targetChatLocked resolves chat_id, refusing a migrated group and
// consuming an injected flood refusal.
func (s *Server) targetChatLocked(p params) (*chatState, *apiError) {
	raw := strings.TrimSpace(p["chat_id"])
	if raw == "" {
		return nil, badRequest("chat_id is empty")
	}
	id, _, aerr := p.int64Param("chat_id")
	if aerr != nil || id == 0 {
		return nil, badRequest("chat not found")
	}
	c := s.chatLocked(id)
	if c.migratedTo != 0 {
		return nil, &apiError{code: 400, description: "Bad Request: group chat was upgraded to a supergroup chat", migrateTo: c.migratedTo}
	}
	if aerr := c.flood.takeInjected(); aerr != nil {
		return nil, aerr
	}
	return c, nil
}

// formatted parses a text and its parse_mode or entities as Telegram does,
// trims surrounding whitespace and checks the length.
func formatted(text, parseMode, entitiesJSON string, allowEmpty bool) (string, []MessageEntity, *apiError) {
	if !utf8.ValidString(text) {
		return "", nil, badRequest("text must be encoded in UTF-8")
	}
	var ents []MessageEntity
	switch strings.ToLower(parseMode) {
	case "":
		if e := strings.TrimSpace(entitiesJSON); e != "" && e != "null" {
			if err := json.Unmarshal([]byte(e), &ents); err != nil {
				return "", nil, badRequest("can't parse entities JSON object")
			}
		}
	case "html":
		var err error
		text, ents, err = ParseHTML(text)
		if err != nil {
			return "", nil, badRequest("can't parse entities: " + err.Error())
		}
	case "markdown", "markdownv2":
		// Markdown modes are stored verbatim, without entities.
	default:
		return "", nil, badRequest("unsupported parse_mode")
	}
	text, ents = trimText(text, ents)
	if text == "" && !allowEmpty {
		return "", nil, badRequest("message text is empty")
	}
	if UTF16Len(text) > maxTextLen {
		return "", nil, badRequest("message is too long")
	}
	return text, ents, nil
}

// trimText removes leading and trailing whitespace as Telegram does,
// shifting and clipping the entities.
func trimText(text string, ents []MessageEntity) (string, []MessageEntity) {
	const space = " \t\r\n"
	left := UTF16Len(text) - UTF16Len(strings.TrimLeft(text, space))
	text = strings.Trim(text, space)
	n := UTF16Len(text)
	out := ents[:0:0]
	for _, e := range ents {
		start, end := max(e.Offset-left, 0), min(e.Offset+e.Length-left, n)
		if end > start {
			e.Offset, e.Length = start, end-start
			out = append(out, e)
		}
	}
	return text, out
}

// parseMarkup reads a reply_markup parameter as compact JSON, nil for none
// (an empty inline keyboard is none), checking inline keyboard buttons.
func parseMarkup(raw string) (json.RawMessage, *apiError) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var m struct {
		InlineKeyboard *[][]map[string]json.RawMessage `json:"inline_keyboard"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil || !strings.HasPrefix(raw, "{") {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	if m.InlineKeyboard != nil {
		empty := true
		for _, row := range *m.InlineKeyboard {
			for _, b := range row {
				empty = false
				if aerr := checkButton(b); aerr != nil {
					return nil, aerr
				}
			}
		}
		if empty {
			return nil, nil
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(raw)); err != nil {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	return buf.Bytes(), nil
}

// checkButton validates one inline keyboard button.
func checkButton(b map[string]json.RawMessage) *apiError {
	var text string
	if json.Unmarshal(b["text"], &text) != nil || text == "" {
		return badRequest("can't parse inline keyboard button: Text must be non-empty")
	}
	if raw, ok := b["callback_data"]; ok {
		var data string
		if json.Unmarshal(raw, &data) != nil || data == "" || len(data) > 64 {
			return badRequest("BUTTON_DATA_INVALID")
		}
		return nil
	}
	for _, k := range []string{"url", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
		"switch_inline_query_chosen_chat", "callback_game", "pay", "web_app", "copy_text"} {
		if _, ok := b[k]; ok {
			return nil
		}
	}
	return badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
}

// replyTarget reads reply_to_message_id or reply_parameters.
func replyTarget(p params) (id int, allowWithout bool, aerr *apiError) {
	if raw := strings.TrimSpace(p["reply_parameters"]); raw != "" && raw != "null" {
		var rp struct {
			MessageID                int  `json:"message_id"`
			AllowSendingWithoutReply bool `json:"allow_sending_without_reply"`
		}
		if err := json.Unmarshal([]byte(raw), &rp); err != nil {
			return 0, false, badRequest("can't parse reply parameters JSON object")
		}
		return rp.MessageID, rp.AllowSendingWithoutReply, nil
	}
	id, aerr = p.intParam("reply_to_message_id")
	return id, p.boolParam("allow_sending_without_reply"), aerr
}

func (s *Server) sendMessage(_ context.Context, p params) (any, *apiError) {
	c, aerr := s.targetChatLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	text, ents, aerr := formatted(p["text"], p["parse_mode"], p["entities"], false)
	if aerr != nil {
		return nil, aerr
	}
	return s.postLocked(c, p, &Message{Text: text, Entities: ents, Source: p["text"], ParseMode: p["parse_mode"]})
}

// postLocked adds m, the bot's new message to chat c, with the request's
// reply_markup, message_thread_id and reply target, charging the flood
// limits. s.mu must be held.
func (s *Server) postLocked(c *chatState, p params, m *Message) (any, *apiError) {
	markup, aerr := parseMarkup(p["reply_markup"])
	if aerr != nil {
		return nil, aerr
	}
	thread, aerr := p.intParam("message_thread_id")
	if aerr != nil {
		return nil, aerr
	}
	replyTo, allowWithout, aerr := replyTarget(p)
	if aerr != nil {
		return nil, aerr
	}
	if replyTo != 0 {
		switch r := c.message(replyTo); {
		case r == nil && allowWithout:
			replyTo = 0
		case r == nil:
			return nil, badRequest("message to be replied not found")
		case thread == 0:
			thread = r.ThreadID // a reply stays in its topic
		}
	}
	if aerr := s.chargeLocked(c); aerr != nil {
		return nil, aerr
	}
	m.From, m.ReplyMarkup, m.ReplyTo, m.ThreadID, m.Date = s.bot, markup, replyTo, thread, s.now()
	c.add(m)
	s.notifyLocked()
	return c.wire(m, true), nil
}

// editTarget resolves the chat and the bot message an edit addresses.
func (s *Server) editTarget(p params) (*chatState, *Message, *apiError) {
	if p["inline_message_id"] != "" {
		return nil, nil, badRequest("MESSAGE_ID_INVALID")
	}
	c, aerr := s.targetChatLocked(p)
	if aerr != nil {
		return nil, nil, aerr
	}
	id, aerr := p.intParam("message_id")
	if aerr != nil {
		return nil, nil, aerr
	}
	if id == 0 {
		return nil, nil, badRequest("message identifier is not specified")
	}
	m := c.message(id)
	if m == nil {
		return nil, nil, badRequest("message to edit not found")
	}
	if m.From.ID != s.bot.ID {
		return nil, nil, badRequest("message can't be edited")
	}
	return c, m, nil
}

func (s *Server) editMessageText(_ context.Context, p params) (any, *apiError) {
	c, m, aerr := s.editTarget(p)
	if aerr != nil {
		return nil, aerr
	}
	// A server older than Bot API 10.1 does not know rich_message and
	// ignores it, as it ignores every unknown parameter.
	if raw := strings.TrimSpace(p["rich_message"]); raw != "" && raw != "null" && !s.noRich {
		return s.editRichLocked(c, m, p, raw)
	}
	text, ents, aerr := formatted(p["text"], p["parse_mode"], p["entities"], false)
	if aerr != nil {
		return nil, aerr
	}
	if m.Rich != nil {
		return nil, badRequest(richKindChange)
	}
	markup, aerr := parseMarkup(p["reply_markup"])
	if aerr != nil {
		return nil, aerr
	}
	if text == m.Text && slices.Equal(ents, m.Entities) && bytes.Equal(markup, m.ReplyMarkup) {
		return nil, notModified()
	}
	if aerr := s.chargeLocked(c); aerr != nil {
		return nil, aerr
	}
	m.Text, m.Entities, m.Source, m.ParseMode, m.ReplyMarkup = text, ents, p["text"], p["parse_mode"], markup
	m.EditCount++
	m.Edited = s.now()
	s.notifyLocked()
	return c.wire(m, true), nil
}

func (s *Server) editMessageReplyMarkup(_ context.Context, p params) (any, *apiError) {
	c, m, aerr := s.editTarget(p)
	if aerr != nil {
		return nil, aerr
	}
	markup, aerr := parseMarkup(p["reply_markup"])
	if aerr != nil {
		return nil, aerr
	}
	if bytes.Equal(markup, m.ReplyMarkup) {
		return nil, notModified()
	}
	if aerr := s.chargeLocked(c); aerr != nil {
		return nil, aerr
	}
	m.ReplyMarkup = markup
	m.EditCount++
	m.Edited = s.now()
	s.notifyLocked()
	return c.wire(m, true), nil
}

func (s *Server) deleteMessage(_ context.Context, p params) (any, *apiError) {
	c, aerr := s.targetChatLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	id, aerr := p.intParam("message_id")
	if aerr != nil {
		return nil, aerr
	}
	i := slices.IndexFunc(c.messages, func(m *Message) bool { return m.ID == id })
	if i < 0 {
		return nil, badRequest("message to delete not found")
	}
	c.messages = slices.Delete(c.messages, i, i+1)
	s.notifyLocked()
	return true, nil
}

func (s *Server) sendMessageDraft(_ context.Context, p params) (any, *apiError) {
	c, draftID, thread, aerr := s.draftTargetLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	text, ents, aerr := formatted(p["text"], p["parse_mode"], p["entities"], true)
	if aerr != nil {
		return nil, aerr
	}
	d := c.draft(draftID, thread)
	d.Text, d.Entities, d.Source, d.ParseMode, d.Rich = text, ents, p["text"], p["parse_mode"], nil
	s.updateDraftLocked(d, p)
	return true, nil
}

// draftTargetLocked checks what every draft method requires: a private
// chat, drafts not refused, a non-zero draft_id, a valid
// message_thread_id. s.mu must be held.
func (s *Server) draftTargetLocked(p params) (*chatState, int64, int, *apiError) {
	c, aerr := s.targetChatLocked(p)
	if aerr != nil {
		return nil, 0, 0, aerr
	}
	if s.refuseDrafts != "" {
		return nil, 0, 0, badRequest(s.refuseDrafts)
	}
	if !c.isPrivate() {
		return nil, 0, 0, badRequest(defaultDraftRefusal)
	}
	draftID, _, aerr := p.int64Param("draft_id")
	if aerr != nil {
		return nil, 0, 0, aerr
	}
	if draftID == 0 {
		return nil, 0, 0, badRequest("draft_id must be non-zero")
	}
	thread, aerr := p.intParam("message_thread_id")
	if aerr != nil {
		return nil, 0, 0, aerr
	}
	return c, draftID, thread, nil
}

// draft returns the chat's draft with that id in a thread, adding it when
// it is new.
func (c *chatState) draft(id int64, thread int) *Draft {
	i := slices.IndexFunc(c.drafts, func(d *Draft) bool { return d.DraftID == id && d.ThreadID == thread })
	if i < 0 {
		c.drafts = append(c.drafts, &Draft{ChatID: c.chat.ID, ThreadID: thread, DraftID: id})
		i = len(c.drafts) - 1
	}
	return c.drafts[i]
}

// updateDraftLocked records a draft call's can_stop and keep_on_stop (Bot
// API 10.3) and counts it. s.mu must be held.
func (s *Server) updateDraftLocked(d *Draft, p params) {
	d.CanStop, d.KeepOnStop = p.boolParam("can_stop"), p.boolParam("keep_on_stop")
	d.Updates++
	d.Updated = s.now()
	s.notifyLocked()
}

// validChatAction reports whether sendChatAction accepts an action.
func validChatAction(a string) bool {
	switch a {
	case "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
		"upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note":
		return true
	}
	return false
}

func (s *Server) sendChatAction(_ context.Context, p params) (any, *apiError) {
	c, aerr := s.targetChatLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	if !validChatAction(p["action"]) {
		return nil, badRequest("wrong parameter action in request")
	}
	c.actions = append(c.actions, p["action"])
	s.notifyLocked()
	return true, nil
}

var commandName = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

func (s *Server) setMyCommands(_ context.Context, p params) (any, *apiError) {
	var cmds []BotCommand
	if err := json.Unmarshal([]byte(p["commands"]), &cmds); err != nil {
		return nil, badRequest("can't parse commands JSON object")
	}
	if len(cmds) > 100 {
		return nil, badRequest("too many commands specified")
	}
	for _, c := range cmds {
		if !commandName.MatchString(c.Command) {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if n := utf8.RuneCountInString(c.Description); n < 1 || n > 256 {
			return nil, badRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	scope := "default"
	if raw := strings.TrimSpace(p["scope"]); raw != "" && raw != "null" {
		var sc struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(raw), &sc); err != nil || sc.Type == "" {
			return nil, badRequest("can't parse BotCommandScope JSON object")
		}
		scope = sc.Type
	}
	s.commands[scope] = cmds
	s.notifyLocked()
	return true, nil
}

func (s *Server) answerCallbackQuery(_ context.Context, p params) (any, *apiError) {
	id := p["callback_query_id"]
	if _, ok := s.callbacks[id]; !ok {
		return nil, badRequest("query is too old and response timeout expired or query ID is invalid")
	}
	delete(s.callbacks, id)
	s.answers = append(s.answers, CallbackAnswer{QueryID: id, Text: p["text"], ShowAlert: p.boolParam("show_alert")})
	s.notifyLocked()
	return true, nil
}

func (s *Server) getChatMember(_ context.Context, p params) (any, *apiError) {
	c, aerr := s.targetChatLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	uid, ok, aerr := p.int64Param("user_id")
	if aerr != nil {
		return nil, aerr
	}
	if !ok {
		return nil, badRequest("user_id is empty")
	}
	status := c.members[uid]
	if status == "" {
		status = StatusMember
	}
	user, ok := s.users[uid]
	if !ok {
		user = User{ID: uid, FirstName: "User"}
	}
	return map[string]any{"status": status, "user": user}, nil
}
