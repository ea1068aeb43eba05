package telegram

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/sessions"
)

// place is where a message came from and where its answers go.
type place struct {
	chat    int64
	topic   int // forum topic, 0 for none
	private bool
	user    int64 // the author
	msgID   int   // the message being answered (replied to in groups)
}

// group is the place's group for usage (sessions.Message.Group): the
// chat's id in a group or supergroup, empty in a private chat.
func (p place) group() string {
	if p.private {
		return ""
	}
	return strconv.FormatInt(p.chat, 10)
}

// msgKey identifies the message of a place.
func (p place) msgKey() [2]int64 { return [2]int64{p.chat, int64(p.msgID)} }

// key is the conversation of a place: the chat, or the forum topic.
func (p place) key() sessions.Key {
	return chatKey(p.chat, p.topic)
}

func chatKey(chat int64, topic int) sessions.Key {
	k := sessions.Key{Platform: Platform, Chat: strconv.FormatInt(chat, 10)}
	if topic != 0 {
		k.Thread = strconv.Itoa(topic)
	}
	return k
}

// allowed reports whether a user in a chat may use the bot.
func (b *Bot) allowed(chat, user int64) bool {
	if len(b.allowedChats) == 0 && len(b.allowedUsers) == 0 {
		return true
	}
	return b.allowedChats[chat] || b.allowedUsers[user]
}

// onMessage routes a message: a migration, a command, or a turn when it is
// meant for the bot (always in private chats; in groups when it mentions
// the bot or replies to it, in its text or in the caption of a file).
// files are the message's attachments (an album's, for the merged items
// of an album); a message with files and no text is a turn too. It returns
// an error wrapping sessions.ErrNotSaved when the message could not be
// saved: the update must not be confirmed.
func (b *Bot) onMessage(ctx context.Context, msg *tgbotapi.Message, topic int, files []sessions.Attachment) error {
	if msg.Chat == nil {
		return nil
	}
	if msg.MigrateToChatID != 0 {
		b.migrate(ctx, msg.Chat.ID, msg.MigrateToChatID)
		return nil
	}
	if msg.From == nil || msg.From.IsBot {
		return nil
	}
	text, entities := msg.Text, msg.Entities
	if text == "" {
		text, entities = msg.Caption, msg.CaptionEntities
	}
	if strings.TrimSpace(text) == "" && len(files) == 0 {
		return nil
	}
	p := place{chat: msg.Chat.ID, topic: topic, private: msg.Chat.IsPrivate(), user: msg.From.ID, msgID: msg.MessageID}
	if !b.allowed(p.chat, p.user) {
		if p.private {
			b.say(p, "This bot is private: your account is not on its list of allowed users.", nil)
		}
		return nil
	}
	author := b.author(msg.From)

	if strings.HasPrefix(text, "/") {
		name, target, args := parseCommand(text)
		if target != "" && !strings.EqualFold(target, b.self.UserName) {
			return nil // a command for another bot
		}
		if name == "chat" {
			return b.turn(ctx, p, author, args, files)
		}
		if b.command(ctx, p, author, name, args) {
			return nil
		}
		if p.private || target != "" {
			b.say(p, "Unknown command /"+name+". /help lists the commands.", nil)
		}
		return nil
	}
	if p.private {
		return b.turn(ctx, p, author, text, files)
	}
	stripped, mentioned := b.stripMention(text, entities)
	repliedToBot := msg.ReplyToMessage != nil && msg.ReplyToMessage.From != nil &&
		msg.ReplyToMessage.From.ID == b.self.ID && msg.ReplyToMessage.MessageID != topic
	if !mentioned && !repliedToBot {
		return nil
	}
	if mentioned && !repliedToBot {
		stripped = quoteReply(msg.ReplyToMessage, topic) + stripped
		if r := msg.ReplyToMessage; r != nil && r.MessageID != topic {
			// "@bot what is this?" in reply to someone's photo asks about it.
			files = append(b.attachments(r), files...)
		}
	}
	return b.turn(ctx, p, author, stripped, files)
}

// turn hands text and files to the Manager for an answer shown in a new
// reply. A message delivered again after a restart is ignored; one the
// store could not save is explained once and its error returned.
func (b *Bot) turn(ctx context.Context, p place, author sessions.Author, text string, files []sessions.Attachment) error {
	msg := sessions.Message{Key: p.key(), ID: strconv.Itoa(p.msgID), Author: author, Text: text, Shared: !p.private,
		Group: p.group(), Attachments: files}
	_, err := b.m.Handle(ctx, msg, b.newAnswer(p))
	switch {
	case err == nil, sessions.Silent(err):
		return nil
	case errors.Is(err, sessions.ErrNotSaved):
		if !b.unsaved[p.msgKey()] {
			b.unsaved[p.msgKey()] = true
			b.explain(p, err)
		}
		return err
	}
	b.explain(p, err)
	return nil
}

// migrate carries a basic group's conversation to the supergroup it
// became.
func (b *Bot) migrate(ctx context.Context, from, to int64) {
	if err := b.m.Move(ctx, chatKey(from, 0), chatKey(to, 0)); err != nil {
		b.log.Error("move migrated chat", "from", from, "to", to, "error", err)
		return
	}
	b.log.Info("chat migrated to a supergroup", "from", from, "to", to)
}

// authorOf names a user for the conversation history.
func authorOf(u *tgbotapi.User) sessions.Author {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" {
		name = u.UserName
	}
	return sessions.Author{ID: strconv.FormatInt(u.ID, 10), Name: name}
}

// author is authorOf(u) with Admin set for the configured admins
// (Options.Admins) alone. Not for private chats, where anyone may change
// settings: that would exempt everyone writing to the bot directly from
// usage limits and restricted models. Nor for a group's administrators:
// anyone can create a group, and asking Telegram (getChatMember) for
// every message would cost a request each.
func (b *Bot) author(u *tgbotapi.User) sessions.Author {
	a := authorOf(u)
	a.Admin = b.admins[u.ID]
	return a
}

// parseCommand splits "/name@target args" into its parts; name is lower
// case.
func parseCommand(text string) (name, target, args string) {
	head, args, _ := strings.Cut(strings.TrimPrefix(text, "/"), " ")
	if i := strings.IndexAny(head, "\n\t"); i >= 0 {
		args = head[i+1:] + " " + args
		head = head[:i]
	}
	name, target, _ = strings.Cut(head, "@")
	return strings.ToLower(name), target, strings.TrimSpace(args)
}

// stripMention removes mentions of the bot from text and reports whether
// there was one. Telegram marks mentions as entities (offsets in UTF-16
// units); "@name" written without an entity counts too.
func (b *Bot) stripMention(text string, entities []tgbotapi.MessageEntity) (string, bool) {
	if b.self.UserName == "" {
		return text, false
	}
	handle := "@" + b.self.UserName
	u := utf16.Encode([]rune(text))
	found := false
	// Remove from the end so earlier offsets stay valid.
	for i := len(entities) - 1; i >= 0; i-- {
		e := entities[i]
		if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > len(u) {
			continue
		}
		seg := string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
		mine := e.Type == "mention" && strings.EqualFold(seg, handle) ||
			e.Type == "text_mention" && e.User != nil && e.User.ID == b.self.ID
		if !mine {
			continue
		}
		found = true
		if e.Type == "mention" {
			u = append(u[:e.Offset:e.Offset], u[e.Offset+e.Length:]...)
		}
	}
	if found {
		return strings.Join(strings.Fields(string(utf16.Decode(u))), " "), true
	}
	if i := strings.Index(strings.ToLower(text), strings.ToLower(handle)); i >= 0 {
		end := i + len(handle)
		if end == len(text) || !isNameByte(text[end]) {
			return strings.TrimSpace(text[:i] + text[end:]), true
		}
	}
	return text, false
}

func isNameByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// quoteReply quotes the message a mention replies to, so that "@bot
// translate this" in reply to someone's message has its subject.
func quoteReply(r *tgbotapi.Message, topic int) string {
	if r == nil || r.MessageID == topic {
		return ""
	}
	text := r.Text
	if text == "" {
		text = r.Caption
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return ""
	}
	who := ""
	if r.From != nil {
		who = authorOf(r.From).Name + " wrote:\n"
	}
	return who + "> " + strings.ReplaceAll(text, "\n", "\n> ") + "\n\n"
}
