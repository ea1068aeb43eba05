// Package discordtest is a fake Discord for tests, demos and load tests: a
// REST API over httptest and a gateway websocket, speaking Discord's wire
// format closely enough that the real discordgo client talks to it over real
// sockets.
//
// The fake keeps a small model of users, guilds, roles, channels, threads
// and DMs; the messages every party sent and every edit to them; the
// interactions it dispatched and their tokens; and a record of every REST
// call. Tests push events (a user's message, with files and stickers, a
// slash command, an autocomplete query, a button click) with Server
// methods and observe what the bot did through Messages, Calls, Downloads
// and the Wait helpers, which take a predicate and a context instead of
// sleeping. Files are served on loopback as Discord's CDN serves them,
// with links that expire (attachments.go).
//
// It enforces the limits a bot must live with: message content of at most
// 2000 characters, embed and component limits, Components V2 messages
// (FlagComponentsV2: components only, at most 40 of them and 4000
// characters of text displays, the flag never removed; components.go), a
// rate limit on message creates and edits per channel (shared by channel
// messages and interaction webhooks landing in that channel) and per
// webhook token, the 3-second window for an interaction's first response
// and the 15-minute life of its token, and the MESSAGE_CONTENT intent
// rule. Rejections carry Discord's status codes, JSON error bodies and
// rate-limit headers.
//
// Commands carry integration_types and contexts. With Options.UserInstall
// a user can install the app to their account (InstallApp) and run its
// global commands in guilds without the bot (AddGuildWithoutBot) and
// group DMs (AddGroupDM): the interaction names the user install alone in
// authorizing_integration_owners, the bot is refused those channels (403,
// 50001 Missing Access) and such an interaction takes at most 5
// follow-ups (40094).
//
// The gateway shards as Discord does (shards.go): a session identified
// with shard [id, total] receives the events of its guilds
// ((guild_id >> 22) % total) and shard 0 the DMs; GET /gateway/bot
// recommends Options.Shards and reports a session start limit that each
// IDENTIFY spends; the gateway refuses invalid shards (4010), sessions
// that would serve too many guilds (4011) and, with
// Options.IdentifyWindow, IDENTIFYs faster than max_concurrency allows
// (Invalid Session). AddGuildOnShard places a guild on a shard;
// Identifies and Delivered show what the gateway accepted and delivered.
//
// Non-test code in this package does not import "testing", so a load-test
// binary can run the fake too.
package discordtest
