package discord

import (
	"errors"
	"net/http"

	"github.com/bwmarrin/discordgo"
)

// User installs. Palaver's global commands declare both installation
// contexts (integration_types: GUILD_INSTALL, USER_INSTALL) and every
// interaction context (contexts: GUILD, BOT_DM, PRIVATE_CHANNEL), so a
// user who installed Palaver to their account can run them in any server,
// DM or group DM, where the bot is a member or not. Discord takes these
// fields for global commands only: with Options.Guilds the commands are
// registered per guild, without them, and user installs have no commands.
//
// Where only a user install reaches the channel (the interaction's
// authorizing_integration_owners name USER_INSTALL alone), the bot is not
// a member: it cannot post there (Discord answers 403, Missing Access),
// so an answer is the interaction's original response and at most 5
// follow-ups, edited for as long as the interaction token lives (15
// minutes). An answer that needs more messages, or more time, ends with a
// note saying it was cut off; the Retry button and /retry ask again.
// Threads are not opened there. Every command works as elsewhere:
// settings commands check the member's Manage Channels permission, which
// the interaction carries, and in group DMs anyone may change them, as in
// a DM with the bot.

var (
	integrationTypes    = []discordgo.ApplicationIntegrationType{discordgo.ApplicationIntegrationGuildInstall, discordgo.ApplicationIntegrationUserInstall}
	interactionContexts = []discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM, discordgo.InteractionContextPrivateChannel}
)

// userOnly reports whether only a user install authorized interaction i:
// the bot is not a member where it happened. Interactions that name no
// owners (older payloads) come from a guild install.
func userOnly(i *discordgo.Interaction) bool {
	_, guild := i.AuthorizingIntegrationOwners[discordgo.ApplicationIntegrationGuildInstall]
	_, user := i.AuthorizingIntegrationOwners[discordgo.ApplicationIntegrationUserInstall]
	return user && !guild
}

// badRequest reports whether err is Discord answering 400 Bad Request.
func badRequest(err error) bool {
	var re *discordgo.RESTError
	return errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusBadRequest
}
