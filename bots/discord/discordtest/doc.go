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
// 2000 characters, embed and component limits, a rate limit on message
// creates and edits per channel (shared by channel messages and interaction
// webhooks landing in that channel) and per webhook token, the 3-second
// window for an interaction's first response and the 15-minute life of its
// token, and the MESSAGE_CONTENT intent rule. Rejections carry Discord's
// status codes, JSON error bodies and rate-limit headers.
//
// Non-test code in this package does not import "testing", so a load-test
// binary can run the fake too.
package discordtest
