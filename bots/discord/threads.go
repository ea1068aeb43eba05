package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

// Threads (Options.Threads). A question asked in a guild text channel, by
// mention or /chat, opens a public thread named after it and is answered
// there. The thread is a conversation of its own (its key is the thread's
// channel id), starting with the channel's settings, and a rate-limit
// destination of its own, so answers in different threads stream side by
// side at full speed. A mention's thread starts from the user's message.
// /chat has no message to start from, so the bot answers the interaction
// in the channel with the question and starts the thread from that
// answer: the channel then shows each question with its thread under it,
// whichever way it was asked, and the thread's first message is the
// answer. (A thread without a message would leave only a "started a
// thread" notice in the channel, and the question nowhere.) Interaction
// answers and thread creation cost nothing from the channel's message
// budget. Where a thread cannot be opened the question is answered in the
// channel, as without threads.

// maxThreadName is the longest thread name Discord accepts, in characters.
const maxThreadName = 100

// threadArchive is the auto-archive duration of the threads the bot opens,
// in minutes: a day without messages.
const threadArchive = 1440

// threadPause is how long the bot stops trying to open threads in a channel
// that refused one for want of a permission or for its type. Refused
// requests count against Discord's limit of invalid requests per bot, and
// an administrator may grant the permission meanwhile.
const threadPause = 10 * time.Minute

// threadGate remembers the channels where opening a thread failed. Its
// maps hold at most one entry per channel the bot was asked in.
type threadGate struct {
	mu     sync.Mutex
	until  map[string]time.Time // channel → no attempt before
	logged map[string]bool      // channels whose failure was logged
}

// open reports whether a thread may be tried in channelID at now.
func (g *threadGate) open(channelID string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !now.Before(g.until[channelID])
}

// refuse pauses attempts in channelID until the given time and reports
// whether this is the channel's first failure.
func (g *threadGate) refuse(channelID string, until time.Time) (first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.until == nil {
		g.until, g.logged = map[string]time.Time{}, map[string]bool{}
	}
	if until.After(g.until[channelID]) {
		g.until[channelID] = until
	}
	first = !g.logged[channelID]
	g.logged[channelID] = true
	return first
}

// channel returns a copy of a channel from the gateway's state, else from
// REST (and then keeps it in the state).
func (b *Bot) channel(ctx context.Context, id string) (discordgo.Channel, error) {
	if ch, err := b.s.State.Channel(id); err == nil {
		// Gateway events overwrite state channels in place.
		b.s.State.RLock()
		defer b.s.State.RUnlock()
		return *ch, nil
	}
	if err := b.m.Spend(ctx, Platform); err != nil {
		return discordgo.Channel{}, err
	}
	ch, err := b.s.Channel(id, discordgo.WithContext(ctx))
	if err != nil {
		return discordgo.Channel{}, fmt.Errorf("discord: look up channel %s: %w", id, err)
	}
	c := *ch
	_ = b.s.State.ChannelAdd(ch) // fails only for a guild not in the state: looked up again next time
	return c, nil
}

// threadParent reports whether a question asked in channelID opens a
// thread: threads are on, the channel is a guild text channel (not a
// thread, DM, forum or voice channel), and no thread failed there lately.
func (b *Bot) threadParent(ctx context.Context, guildID, channelID string) bool {
	if !b.opts.Threads || guildID == "" || !b.threads.open(channelID, b.now()) {
		return false
	}
	ch, err := b.channel(ctx, channelID)
	if err != nil {
		b.log.Warn("answering in the channel", "channel", channelID, "error", err)
		return false
	}
	return ch.Type == discordgo.ChannelTypeGuildText
}

// followsAll reports whether every message in channelID is meant for the
// bot: Options.ThreadFollowAll is on and the channel is a thread the bot
// created (its owner, as Discord records it).
func (b *Bot) followsAll(ctx context.Context, channelID string) bool {
	if !b.opts.ThreadFollowAll {
		return false
	}
	_, self := b.self()
	ch, err := b.channel(ctx, channelID)
	if err != nil {
		b.log.Warn("ignoring a message in an unknown channel", "channel", channelID, "error", err)
		return false
	}
	return ch.IsThread() && ch.OwnerID == self
}

// messageThread decides where a guild message's question is answered: in
// a new thread started from it when threads are on and it was asked in a
// text channel, else in its channel as a reply to it. A reply to the bot
// continues the channel's conversation, and an empty question (refused)
// opens no thread.
func (b *Bot) messageThread(ctx context.Context, m *discordgo.Message, question string, repliedTo bool) (channelID, replyTo string) {
	if !repliedTo && strings.TrimSpace(question) != "" && b.threadParent(ctx, m.GuildID, m.ChannelID) {
		if th := b.openThread(ctx, m.ChannelID, m.ID, question); th != "" {
			return th, ""
		}
	}
	return m.ChannelID, m.ID
}

// chatThread runs /chat in a new thread when threads are on and the
// command ran in a text channel: it answers the interaction in the channel
// with the question, starts a thread from that answer and answers there
// (in the channel, replying to the question, when the thread cannot be
// opened). The question shown names the command's files (atts), which go
// with the question; it waits for its ticket t before it is handed to the
// Manager. It reports false, having done nothing, when the command is not
// for a thread (or has no prompt, refused as usual) or its interaction
// could not be answered.
func (b *Bot) chatThread(ctx context.Context, i *discordgo.Interaction, prompt string, atts []sessions.Attachment, t *ticket) bool {
	if prompt == "" || !b.threadParent(ctx, i.GuildID, i.ChannelID) {
		return false
	}
	names := attachmentNames(atts)
	question := clipRunes(quote(prompt), MessageLimit-utf8.RuneCountInString(names)) + names
	err := b.interactionRespond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Content: question, AllowedMentions: noMentions()}})
	if isAcknowledged(err) {
		// Another connection of the shard (a shard moving between
		// processes) answered it first, and answers the question.
		b.log.Debug("/chat answered by another connection", "channel", i.ChannelID, "interaction", i.ID)
		return true
	}
	if err != nil {
		b.log.Warn("answer /chat with its question", "channel", i.ChannelID, "error", err)
		return false
	}
	appID, _ := b.self()
	if i.AppID != "" {
		appID = i.AppID
	}
	chID, replyTo := i.ChannelID, ""
	var q *discordgo.Message
	err = b.m.Spend(ctx, Platform)
	if err == nil {
		q, err = b.s.WebhookMessage(appID, i.Token, originalID, discordgo.WithContext(ctx))
	}
	if err != nil {
		b.log.Warn("read /chat's question message; answering in the channel", "channel", i.ChannelID, "error", err)
	} else if th := b.openThread(ctx, i.ChannelID, q.ID, prompt); th != "" {
		chID = th
	} else {
		replyTo = q.ID
	}
	msg := sessions.Message{Key: key(chID), ID: i.ID, Unordered: true, Author: b.interactionAuthor(i, interactionPlace(i)), Text: prompt, Shared: true,
		Group: i.GuildID, Attachments: atts}
	t.wait(ctx)
	_, err = b.m.Handle(ctx, msg, messageReply{&reply{b: b, channelID: chID, replyTo: replyTo, question: i.ID}})
	t.done()
	if err != nil {
		b.logUnexpected(chID, err)
		if sessions.Silent(err) {
			return true
		}
		b.say(chID, replyTo, "⚠️ "+sessions.Explain(err))
	}
	return true
}

// openThread starts a public thread from message messageID in channelID,
// named after question, and gives it the channel's settings. It returns
// the thread's id, or "" when Discord refused; attempts in that channel
// then pause (threadPause, or a 429's retry-after) and the first failure
// is logged as a warning. A thread started from the message already (by
// another connection of the shard, while the shard moves between
// processes) is the question's: its id is the message's, as Discord
// gives a thread started from a message.
func (b *Bot) openThread(ctx context.Context, channelID, messageID, question string) string {
	if err := b.m.Spend(ctx, Platform); err != nil {
		return ""
	}
	th, err := b.s.MessageThreadStartComplex(channelID, messageID,
		&discordgo.ThreadStart{Name: threadName(question), AutoArchiveDuration: threadArchive}, streamOpts(ctx)...)
	var id string
	switch {
	case restCode(err) == discordgo.ErrCodeThreadAlreadyCreatedForThisMessage:
		b.log.Debug("thread started from the question already", "channel", channelID, "message", messageID)
		id = messageID
	case err != nil:
		b.threadFailed(ctx, channelID, err)
		return ""
	default:
		// Known at once, before THREAD_CREATE arrives, for follow-ups.
		// The state owns th from here on.
		id = th.ID
		_ = b.s.State.ChannelAdd(th)
	}
	if err := b.m.Inherit(ctx, key(id), key(channelID)); err != nil {
		b.log.Warn("thread without the channel's settings", "conversation", key(id).String(), "error", err)
	}
	return id
}

// threadFailed pauses thread attempts in channelID after err and logs it.
func (b *Bot) threadFailed(ctx context.Context, channelID string, err error) {
	var pause time.Duration
	var rl *discordgo.RateLimitError
	var re *discordgo.RESTError
	switch {
	case errors.As(err, &rl) && rl.TooManyRequests != nil:
		pause = rl.RetryAfter
	case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusForbidden,
		restCode(err) == discordgo.ErrCodeCannotExecuteActionOnThisChannelType:
		pause = threadPause
	}
	level := slog.LevelDebug
	if b.threads.refuse(channelID, b.now().Add(pause)) {
		level = slog.LevelWarn
	}
	b.log.Log(ctx, level, "cannot open a thread (the bot needs Create Public Threads and Send Messages in Threads); answering in the channel",
		"channel", channelID, "pause", pause, "error", err)
}

var (
	// threadMarkup is what a thread name drops: mentions of users, roles
	// and channels, custom emoji and timestamps.
	threadMarkup = regexp.MustCompile(`<(?:@[!&]?\d+|#\d+|a?:\w+:\d+|t:-?\d+(?::\w)?)>`)
	// threadFormat is Markdown punctuation a thread name drops.
	threadFormat = strings.NewReplacer("*", "", "_", "", "`", "", "~", "", "|", "", ">", "", "#", "")
)

// threadTitle is what names the thread a message opens: its text, else
// its first file's name.
func threadTitle(text string, atts []sessions.Attachment) string {
	if strings.TrimSpace(text) == "" && len(atts) > 0 {
		return atts[0].Name
	}
	return text
}

// threadName is the name of the thread a question opens: its text without
// mentions, Markdown or line breaks, at most 100 characters, else
// "Palaver".
func threadName(question string) string {
	s := threadMarkup.ReplaceAllString(question, " ")
	s = threadFormat.Replace(s)
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "Palaver"
	}
	return truncateEnd(s, maxThreadName)
}
