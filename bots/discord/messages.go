package discord

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

// onMessage starts a turn for a message meant for the bot: in guild
// channels and threads one that mentions the bot or replies to it (with
// Options.ThreadFollowAll, every message in a thread the bot created), in
// DMs every message. Its files and stickers go with it as attachments, and
// a message of files alone (a voice message) is a question too. Bots, the
// bot's own messages and system messages are ignored. With Options.Threads
// a question in a text channel is answered in a thread it opens
// (messageThread). The question waits for its ticket t before it is
// handed to the Manager, and carries the message's id: the answer's Retry
// button names it.
func (b *Bot) onMessage(ctx context.Context, m *discordgo.Message, t *ticket) {
	_, self := b.self()
	if m.Author == nil || m.Author.Bot || m.Author.ID == self || self == "" {
		return
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return
	}
	p := place{channelID: m.ChannelID, guildID: m.GuildID, userID: m.Author.ID, perms: -1, dm: m.GuildID == ""}
	if m.Member != nil {
		p.roles = m.Member.Roles
	}
	text := m.Content
	atts := messageAttachments(m)
	repliedTo := false
	if m.GuildID != "" {
		mentioned := slices.ContainsFunc(m.Mentions, func(u *discordgo.User) bool { return u.ID == self })
		repliedTo = m.ReferencedMessage != nil && m.ReferencedMessage.Author != nil && m.ReferencedMessage.Author.ID == self
		if !mentioned && !repliedTo && !b.followsAll(ctx, m.ChannelID) {
			return
		}
		if strings.TrimSpace(text) == "" && len(atts) == 0 {
			// Discord withholds the content and the files of messages
			// that do not mention the bot (a reply with its ping turned
			// off) from bots without the privileged MESSAGE_CONTENT
			// intent.
			return
		}
		text = stripMention(text, self)
	}
	if !b.allowed(p) {
		return
	}
	b.catch.saw(m, m.GuildID, true, b.now()) // a channel to catch up in
	chID, replyTo := m.ChannelID, m.ID
	if m.GuildID != "" {
		chID, replyTo = b.messageThread(ctx, m, threadTitle(text, atts), repliedTo)
	}
	newReply := func() sessions.Reply {
		return messageReply{&reply{b: b, channelID: chID, replyTo: replyTo, question: m.ID}}
	}
	msg := sessions.Message{Key: key(chID), ID: m.ID, Unordered: true, Author: b.memberAuthor(m.Author, m.Member, p), Text: text, Shared: m.GuildID != "",
		Group: m.GuildID, Attachments: atts}
	t.wait(ctx)
	_, err := b.m.Handle(ctx, msg, newReply())
	t.done()
	if err == nil {
		return
	}
	handle := func(ctx context.Context) error {
		_, err := b.m.Handle(ctx, msg, newReply())
		return err
	}
	if b.elsewhere(msg.Key, err) {
		if errors.Is(err, sessions.ErrNotOwner) {
			go b.whenSaved(msg.Key, err, handle)
		}
		return
	}
	b.logUnexpected(chID, err)
	if sessions.Silent(err) {
		return
	}
	b.say(chID, replyTo, "⚠️ "+sessions.Explain(err))
	if errors.Is(err, sessions.ErrNotSaved) {
		go b.whenSaved(msg.Key, err, handle)
	}
}

// elsewhere reports whether err, from handing a question to the Manager,
// says that the question is another connection's to answer, and logs it
// at debug level: nothing is to be said in the chat. The store refuses a
// question accepted already (sessions.ErrDuplicate), as when Discord
// delivered it to two connections of its shard while the shard moved
// between processes (or a retry of this process found it saved); and a
// write to a conversation another process runs now (sessions.ErrNotOwner,
// inside sessions.ErrNotSaved): that process may have received the
// question too, or be finishing the answers of a shard it handed over, so
// the caller hands the question over again later (whenSaved).
func (b *Bot) elsewhere(k sessions.Key, err error) bool {
	switch {
	case errors.Is(err, sessions.ErrDuplicate):
		b.log.Debug("question accepted already (delivered twice); dropped", "conversation", k.String(), "error", err)
	case errors.Is(err, sessions.ErrNotOwner):
		b.log.Debug("question in a conversation another process runs; trying again later", "conversation", k.String(), "error", err)
	default:
		return false
	}
	return true
}

// Bounds of whenSaved: its first wait and longest wait while the store
// cannot save, and while another process runs the conversation (the
// conversation is free as soon as that process's answers there end).
const (
	unsavedBackoffMin  = time.Second
	unsavedBackoffMax  = 30 * time.Second
	unsavedGiveUp      = time.Hour
	notOwnerBackoffMin = 200 * time.Millisecond
	notOwnerBackoffMax = 5 * time.Second
)

// whenSaved hands a question of conversation k to the Manager again with
// handle, with backoff, while the store cannot save it (Discord does not
// deliver a message twice, so the bot keeps it) or another process runs
// the conversation, until it is taken, found accepted already, refused
// for another reason, the bot closes, or an hour has passed; the question
// is then logged as lost. err is why the first attempt failed.
func (b *Bot) whenSaved(k sessions.Key, err error, handle func(context.Context) error) {
	backoff, most := unsavedBackoffMin, unsavedBackoffMax
	if errors.Is(err, sessions.ErrNotOwner) {
		backoff, most = notOwnerBackoffMin, notOwnerBackoffMax
	}
	for start := b.now(); b.now().Sub(start) < unsavedGiveUp; backoff = min(2*backoff, most) {
		time.Sleep(backoff)
		b.mu.Lock()
		closing := b.closing
		b.mu.Unlock()
		if closing {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		err := handle(ctx)
		cancel()
		if !errors.Is(err, sessions.ErrNotSaved) {
			if err != nil && !b.elsewhere(k, err) {
				b.logUnexpected(k.Chat, err)
			}
			return
		}
	}
	b.log.Error("message lost: the store could not save it", "conversation", k.String())
}

// stripMention removes the bot's mentions from a message's text.
func stripMention(text, botID string) string {
	re := regexp.MustCompile(`<@!?` + regexp.QuoteMeta(botID) + `>`)
	return strings.TrimSpace(re.ReplaceAllString(text, " "))
}
