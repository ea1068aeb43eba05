package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

// restoreReply rebuilds a reply from its progress record.
func (b *Bot) restoreReply(p sessions.Progress) (sessions.Reply, error) {
	var s snapshot
	if len(p.Reply) > 0 {
		if err := json.Unmarshal(p.Reply, &s); err != nil {
			return nil, fmt.Errorf("discord: read reply record: %w", err)
		}
	}
	if s.Channel == "" {
		s.Channel = p.Key.Chat
	}
	// The turn ran (or its question waited): a finished answer gets its
	// Retry button.
	r := &reply{b: b, channelID: s.Channel, replyTo: s.ReplyTo, question: s.Question, userOnly: s.UserOnly,
		followup: s.Followup, frozen: s.Frozen, ran: true}
	if s.Token != "" {
		r.hook = &hook{appID: s.AppID, token: s.Token}
		r.created = time.UnixMilli(s.Created)
	}
	for _, sp := range s.Parts {
		r.parts = append(r.parts, sentPart{id: sp.ID, hook: sp.Hook})
	}
	// Messages are edited the way they were made: records from before
	// Components V2 (no "v2") made content messages.
	r.v2, r.decided = s.V2, s.V2 || s.Frozen+len(s.Parts) > 0
	if len(r.parts) == 0 && r.hook == nil && s.ReplyTo != "" {
		// The record may predate the reply's message: a crash between
		// Discord making it and Palaver committing its id. Find it, so
		// that it is finalised instead of left as it was.
		if m := b.findReply(s.Channel, s.ReplyTo); m != nil {
			r.parts = append(r.parts, sentPart{id: m.ID})
			r.v2, r.decided = isV2(m), true
		}
	}
	if r.hook == nil && len(r.parts) > 0 && r.parts[len(r.parts)-1].hook {
		// A record without a token cannot edit webhook parts.
		r.leaveHook()
	}
	return r, nil
}

// findReplyTimeout bounds the look-up of findReply.
const findReplyTimeout = 5 * time.Second

// findReply returns the bot's message in channel that replies to message
// replyTo, among the 50 that follow it, or nil when there is none (or the
// look-up failed).
func (b *Bot) findReply(channel, replyTo string) *discordgo.Message {
	ctx, cancel := context.WithTimeout(context.Background(), findReplyTimeout)
	defer cancel()
	if err := b.m.Spend(ctx, Platform); err != nil {
		return nil
	}
	msgs, err := b.s.ChannelMessages(channel, 50, "", replyTo, "", streamOpts(ctx)...)
	if err != nil {
		b.log.Debug("look for an unrecorded reply", "channel", channel, "error", err)
		return nil
	}
	_, self := b.self()
	for _, m := range msgs {
		if m.Author != nil && m.Author.ID == self && m.MessageReference != nil && m.MessageReference.MessageID == replyTo {
			return m
		}
	}
	return nil
}
