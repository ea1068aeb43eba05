package discord

import (
	"github.com/bwmarrin/discordgo"
)

// place is where an event happened and who caused it.
type place struct {
	channelID string // the conversation's channel, thread or DM
	guildID   string // empty in DMs
	userID    string
	roles     []string
	// perms are the member's permissions in the channel, from the
	// interaction; -1 when unknown (messages carry none).
	perms int64
	// dm is set in a DM between the user and the bot, where the user is
	// the only person talking to it.
	dm bool
}

// allowed reports whether the bot serves this place (AllowedGuilds,
// AllowedChannels; both empty serves everyone).
func (b *Bot) allowed(p place) bool {
	if len(b.allowedGuilds) == 0 && len(b.allowedChannels) == 0 {
		return true
	}
	if b.allowedChannels[p.channelID] {
		return true
	}
	if p.guildID == "" {
		return b.admins[p.userID]
	}
	if b.allowedGuilds[p.guildID] {
		return true
	}
	// A thread is allowed where its parent channel is.
	if ch, err := b.s.State.Channel(p.channelID); err == nil && ch.IsThread() && b.allowedChannels[ch.ParentID] {
		return true
	}
	return false
}

// mayChange reports whether the author may change the conversation's
// settings: anyone in a DM; in a guild members with Manage Channels (or
// Administrator) in the channel, and the users and roles in Admins.
func (b *Bot) mayChange(p place) bool {
	if p.guildID == "" || b.admins[p.userID] {
		return true
	}
	for _, r := range p.roles {
		if b.admins[r] {
			return true
		}
	}
	return p.perms >= 0 && p.perms&(discordgo.PermissionManageChannels|discordgo.PermissionAdministrator) != 0
}

// interactionPlace describes where an interaction happened.
func interactionPlace(i *discordgo.Interaction) place {
	p := place{channelID: i.ChannelID, guildID: i.GuildID, perms: -1,
		dm: i.GuildID == "" && i.Context != discordgo.InteractionContextPrivateChannel}
	switch {
	case i.Member != nil:
		p.perms = i.Member.Permissions
		p.roles = i.Member.Roles
		if i.Member.User != nil {
			p.userID = i.Member.User.ID
		}
	case i.User != nil:
		p.userID = i.User.ID
	}
	return p
}

// isAdmin reports whether the author may act on other people's answers (a
// Retry button): in a guild a member who may change the channel's
// settings, anywhere a user or role in Admins.
func (b *Bot) isAdmin(p place) bool {
	return p.guildID != "" && b.mayChange(p) || b.admins[p.userID]
}
