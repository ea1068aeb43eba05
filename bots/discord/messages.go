package discord

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

// onMessage starts a turn for a message meant for the bot: in guild
// channels and threads one that mentions the bot or replies to it, in DMs
// every message. Bots, the bot's own messages and system messages are
// ignored.
func (b *Bot) onMessage(ctx context.Context, m *discordgo.Message) {
	_, self := b.self()
	if m.Author == nil || m.Author.Bot || m.Author.ID == self || self == "" {
		return
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return
	}
	p := place{channelID: m.ChannelID, guildID: m.GuildID, userID: m.Author.ID, perms: -1}
	if m.Member != nil {
		p.roles = m.Member.Roles
	}
	text := m.Content
	if m.GuildID != "" {
		mentioned := slices.ContainsFunc(m.Mentions, func(u *discordgo.User) bool { return u.ID == self })
		repliedTo := m.ReferencedMessage != nil && m.ReferencedMessage.Author != nil && m.ReferencedMessage.Author.ID == self
		if !mentioned && !repliedTo {
			return
		}
		if strings.TrimSpace(text) == "" {
			// Discord withholds the content of messages that do not
			// mention the bot (a reply with its ping turned off) from bots
			// without the privileged MESSAGE_CONTENT intent.
			return
		}
		text = stripMention(text, self)
	}
	if !b.allowed(p) {
		return
	}
	r := &reply{b: b, channelID: m.ChannelID, replyTo: m.ID}
	msg := sessions.Message{Key: key(m.ChannelID), Author: memberAuthor(m.Author, m.Member), Text: text, Shared: m.GuildID != ""}
	if _, err := b.m.Handle(ctx, msg, messageReply{r}); err != nil {
		b.logUnexpected(m.ChannelID, err)
		if _, err := b.channelSend(ctx, m.ChannelID, "⚠️ "+clipRunes(sessions.Explain(err), MessageLimit-3), false, m.ID); err != nil {
			b.log.Warn("send refusal", "channel", m.ChannelID, "error", err)
		}
	}
}

// stripMention removes the bot's mentions from a message's text.
func stripMention(text, botID string) string {
	re := regexp.MustCompile(`<@!?` + regexp.QuoteMeta(botID) + `>`)
	return strings.TrimSpace(re.ReplaceAllString(text, " "))
}
