package discord

import (
	"github.com/palaver-bot/palaver/sessions"
)

// newNotice is a notice in a channel (a refusal, a note): a message the
// bot posts outside an answer, replying to replyTo when it is not empty.
// It is an answer's reply shown once with a final view, so that it is
// rendered, cut and sent like an answer's last view, one request per Show,
// and shares the channel's Destination (and schedule) with the answers
// streaming there. It shows no typing indicator.
func (b *Bot) newNotice(channelID, replyTo string) sessions.Reply {
	return &reply{b: b, channelID: channelID, replyTo: replyTo}
}

// say posts markdown in channelID as a notice through the channel's
// schedule, replying to replyTo when it is not empty, clipped to what one
// message holds (1800 characters: a part keeps room for a status line).
// It returns at once.
func (b *Bot) say(channelID, replyTo, markdown string) {
	text := clipRunes(markdown, MessageLimit-statusReserve(MessageLimit))
	b.m.Notify(b.newNotice(channelID, replyTo), sessions.View{Content: text, Final: true})
}
