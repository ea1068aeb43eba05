package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

// refusal is the answer to a settings command from a member who may not
// change the channel's settings.
const refusal = "Only members who can manage this channel (or Palaver's configured admins) can change its settings."

// notHere is the answer to a command in a channel the bot does not serve.
const notHere = "Palaver is not enabled in this channel."

// commandList is the slash commands registered by bulk overwrite. Global
// commands (userInstall) declare the installation contexts and interaction
// contexts of user.go; Discord takes those for global commands only.
func commandList(userInstall bool) []*discordgo.ApplicationCommand {
	str := func(name, desc string, required, auto bool) *discordgo.ApplicationCommandOption {
		return &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionString,
			Name: name, Description: desc, Required: required, Autocomplete: auto}
	}
	cmd := func(name, desc string, opts ...*discordgo.ApplicationCommandOption) *discordgo.ApplicationCommand {
		c := &discordgo.ApplicationCommand{Name: name, Description: desc, Type: discordgo.ChatApplicationCommand, Options: opts}
		if userInstall {
			types, contexts := slices.Clone(integrationTypes), slices.Clone(interactionContexts)
			c.IntegrationTypes, c.Contexts = &types, &contexts
		}
		return c
	}
	return []*discordgo.ApplicationCommand{
		cmd("chat", "Ask the model something", str("prompt", "What to ask", true, false),
			&discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionAttachment,
				Name: "attachment", Description: "A picture, a file or a voice recording to ask about"}),
		cmd("model", "Show or choose this channel's model", str("name", "The model (provider/model)", false, true)),
		cmd("models", "List the models you can choose"),
		cmd("system", "Show or set this channel's system prompt", str("prompt", `The new system prompt, or "clear" for the default`, false, false)),
		cmd("reset", "Forget this channel's history"),
		cmd("stop", "Stop the answer in progress"),
		cmd("retry", "Answer the last message again"),
		cmd("settings", "Show this channel's settings"),
		cmd("usage", "Show your token usage and limits"),
		cmd("help", "How to use Palaver"),
	}
}

// key is the conversation of a channel, thread or DM.
func key(channelID string) sessions.Key {
	return sessions.Key{Platform: Platform, Chat: channelID}
}

// onInteraction handles a slash command, an autocomplete query or a
// click; t is a command's place in its channel's order.
func (b *Bot) onInteraction(ctx context.Context, i *discordgo.Interaction, t *ticket) {
	p := interactionPlace(i)
	if !b.allowed(p) {
		if i.Type == discordgo.InteractionApplicationCommandAutocomplete {
			b.respond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionApplicationCommandAutocompleteResult,
				Data: &discordgo.InteractionResponseData{Choices: []*discordgo.ApplicationCommandOptionChoice{}}})
			return
		}
		b.ephemeral(ctx, i, notHere)
		return
	}
	switch i.Type {
	case discordgo.InteractionApplicationCommand:
		b.onCommand(ctx, i, p, t)
	case discordgo.InteractionApplicationCommandAutocomplete:
		b.autocomplete(ctx, i)
	case discordgo.InteractionMessageComponent:
		id := i.MessageComponentData().CustomID
		switch {
		case id == stopID:
			b.onStopClick(ctx, i, p)
		case strings.HasPrefix(id, retryPrefix):
			b.onRetryClick(ctx, i, p, strings.TrimPrefix(id, retryPrefix))
		}
	}
}

// onCommand runs a slash command; a question waits for its ticket t
// before it is handed to the Manager.
func (b *Bot) onCommand(ctx context.Context, i *discordgo.Interaction, p place, t *ticket) {
	data := i.ApplicationCommandData()
	arg := func(name string) string {
		if o := data.GetOption(name); o != nil {
			return strings.TrimSpace(o.StringValue())
		}
		return ""
	}
	k := key(i.ChannelID)
	switch data.Name {
	case "chat":
		atts := commandAttachments(data)
		if !userOnly(i) && b.chatThread(ctx, i, arg("prompt"), atts, t) {
			return
		}
		b.turn(ctx, i, i.ID, func(ctx context.Context, r sessions.Reply) error {
			t.wait(ctx)
			defer t.done()
			_, err := b.m.Handle(ctx, sessions.Message{Key: k, ID: i.ID, Unordered: true, Author: b.interactionAuthor(i, p), Text: arg("prompt"),
				Shared: shared(i), Group: i.GuildID, Attachments: atts}, r)
			return err
		})
	case "retry":
		// The question answered again is unknown here: no Retry button.
		b.turn(ctx, i, "", func(ctx context.Context, r sessions.Reply) error {
			_, err := b.m.Retry(ctx, k, r)
			return err
		})
	case "model":
		name := arg("name")
		if name == "" {
			model, err := b.m.Model(ctx, k)
			if err != nil {
				b.explain(ctx, i, err)
				return
			}
			b.ephemeral(ctx, i, fmt.Sprintf("This channel's model is `%s`. Choose another with `/model name`.", model))
			return
		}
		if !b.mayChange(p) {
			b.ephemeral(ctx, i, refusal)
			return
		}
		model, err := b.m.ChooseModel(ctx, k, name, b.interactionAuthor(i, p))
		if err != nil {
			b.explain(ctx, i, err)
			return
		}
		b.public(ctx, i, fmt.Sprintf("Model set to `%s`.", model))
	case "models":
		b.ephemeral(ctx, i, b.modelList(ctx, k))
	case "system":
		b.system(ctx, i, p, arg("prompt"))
	case "reset":
		if !b.mayChange(p) {
			b.ephemeral(ctx, i, refusal)
			return
		}
		if err := b.m.Reset(ctx, k); err != nil {
			b.explain(ctx, i, err)
			return
		}
		b.public(ctx, i, "History forgotten: the next message starts a new conversation.")
	case "stop":
		if b.stop(k, p) {
			b.ephemeral(ctx, i, "Stopped.")
		} else {
			b.ephemeral(ctx, i, "Nothing to stop.")
		}
	case "settings":
		s, err := b.m.Settings(ctx, k)
		if err != nil {
			b.explain(ctx, i, err)
			return
		}
		b.ephemeral(ctx, i, s.Markdown())
	case "usage":
		// Ephemeral: the numbers are the asker's (an admin's include
		// other members').
		report, err := b.m.UsageReport(ctx, sessions.UsageRequest{Key: k, Group: i.GuildID, Shared: shared(i), Author: b.interactionAuthor(i, p)})
		if err != nil {
			b.explain(ctx, i, err)
			return
		}
		b.ephemeral(ctx, i, report)
	case "help":
		b.ephemeral(ctx, i, sessions.Help())
	default:
		b.ephemeral(ctx, i, "Unknown command.")
	}
}

// interactionReply is a reply bound to interaction i, answering the
// question with that id ("" for no Retry button), whose first edit waits
// for the interaction's acknowledgement (acknowledged).
func (b *Bot) interactionReply(i *discordgo.Interaction, question string) *reply {
	appID, _ := b.self()
	if i.AppID != "" {
		appID = i.AppID
	}
	return &reply{b: b, channelID: i.ChannelID, question: question, userOnly: userOnly(i), ready: make(chan struct{}),
		hook: &hook{appID: appID, token: i.Token}, created: b.now()}
}

// acknowledged lets r show the answer after the interaction's response
// (err its failure). Where that failed the interaction can no longer be
// answered: the answer is shown in the channel instead, or where the bot
// is not a member, not at all. A response refused because another
// connection of the shard answered the interaction first (40060, while a
// shard moves between processes) leaves the interaction's message to
// edit, as after a response of this one.
func (b *Bot) acknowledged(r *reply, err error) {
	if isAcknowledged(err) {
		b.log.Debug("interaction answered by another connection; showing the answer there", "channel", r.channelID)
		err = nil
	}
	if err != nil {
		r.mu.Lock()
		if r.userOnly {
			b.log.Warn("answer interaction; the answer cannot be shown", "channel", r.channelID, "error", err)
			r.gone = true
		} else {
			b.log.Warn("answer interaction; answering in the channel", "channel", r.channelID, "error", err)
			r.hook = nil
		}
		r.mu.Unlock()
	}
	close(r.ready)
}

// turn starts an answer to a slash command: start queues it with a reply
// bound to the interaction, whose first edit waits for the deferred
// response. A refused turn gets an ephemeral explanation instead, but for
// a question that is another connection's (see elsewhere): accepted
// already, it gets no response at all; in a conversation another process
// runs, the interaction is deferred (unless that process answered it
// already, 40060) and the question handed to the Manager again until it
// is saved or found accepted, as a message is (whenSaved).
func (b *Bot) turn(ctx context.Context, i *discordgo.Interaction, question string, start func(context.Context, sessions.Reply) error) {
	r := b.interactionReply(i, question)
	err := start(ctx, r)
	switch {
	case err == nil:
	case !b.elsewhere(key(i.ChannelID), err):
		b.explain(ctx, i, err)
		return
	case !errors.Is(err, sessions.ErrNotOwner):
		return
	default:
		ack := b.interactionRespond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource})
		if isAcknowledged(ack) {
			return // the other process took it
		}
		b.acknowledged(r, ack)
		go b.whenSaved(key(i.ChannelID), err, func(ctx context.Context) error { return start(ctx, r) })
		return
	}
	b.acknowledged(r, b.interactionRespond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}))
}

// system shows, sets or clears the system prompt.
func (b *Bot) system(ctx context.Context, i *discordgo.Interaction, p place, prompt string) {
	k := key(i.ChannelID)
	if prompt == "" {
		text, custom, err := b.m.SystemPrompt(ctx, k)
		if err != nil {
			b.explain(ctx, i, err)
			return
		}
		origin := "the default"
		if custom {
			origin = "set for this channel"
		}
		if text == "" {
			text = "(none)"
		}
		b.ephemeral(ctx, i, fmt.Sprintf("System prompt (%s):\n%s\nChange it with `/system prompt:…`, or `/system prompt:clear` for the default.",
			origin, quote(clipRunes(text, 1500))))
		return
	}
	if !b.mayChange(p) {
		b.ephemeral(ctx, i, refusal)
		return
	}
	if strings.EqualFold(prompt, "clear") || strings.EqualFold(prompt, "default") {
		if err := b.m.ClearSystemPrompt(ctx, k); err != nil {
			b.explain(ctx, i, err)
			return
		}
		b.public(ctx, i, "System prompt back to the default.")
		return
	}
	if err := b.m.SetSystemPrompt(ctx, k, prompt); err != nil {
		b.explain(ctx, i, err)
		return
	}
	b.public(ctx, i, "System prompt set.")
}

// modelList is the answer to /models, within one message.
func (b *Bot) modelList(ctx context.Context, k sessions.Key) string {
	models, err := b.m.Models(ctx)
	if err != nil {
		b.log.Warn("list models", "error", err)
	}
	current, _ := b.m.Model(ctx, k)
	var sb strings.Builder
	sb.WriteString("**Models** (choose with `/model name`):\n")
	const room = MessageLimit - 300 // for the "more" line and the warning
	for n, md := range models {
		mark := "• "
		if md.Name() == current {
			mark = "✓ "
		}
		line := fmt.Sprintf("%s`%s`\n", mark, md.Name())
		if utf8.RuneCountInString(sb.String())+utf8.RuneCountInString(line) > room {
			fmt.Fprintf(&sb, "…and %d more: type in `/model` to search them.\n", len(models)-n)
			break
		}
		sb.WriteString(line)
	}
	if len(models) == 0 {
		sb.WriteString("No models are available.\n")
	}
	// The providers that could not be asked, each with its reason, within
	// the room kept for them.
	notes := sessions.ModelsNotes(err)
	for i, note := range notes {
		if i == 0 {
			sb.WriteString("\n")
		}
		sb.WriteString(clipRunes(note, 250/len(notes)) + "\n")
	}
	return sb.String()
}

// maxChoices is the most autocomplete choices Discord accepts; choice
// names and values are at most 100 characters.
const (
	maxChoices    = 25
	maxChoiceName = 100
)

// autocomplete answers the /model name query: the models whose name
// contains what the user typed, the current model first, at most 25.
func (b *Bot) autocomplete(ctx context.Context, i *discordgo.Interaction) {
	// Discord drops answers that take longer than 3 s.
	ctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	typed := ""
	for _, o := range i.ApplicationCommandData().Options {
		if o.Focused {
			typed = strings.ToLower(strings.TrimSpace(o.StringValue()))
		}
	}
	models, err := b.m.Models(ctx)
	if err != nil {
		b.log.Warn("list models for autocomplete", "error", err)
	}
	current, _ := b.m.Model(ctx, key(i.ChannelID))
	names := make([]string, 0, len(models)+1)
	if current != "" && strings.Contains(strings.ToLower(current), typed) {
		names = append(names, current)
	}
	for _, md := range models {
		n := md.Name()
		if n != current && strings.Contains(strings.ToLower(n), typed) {
			names = append(names, n)
		}
	}
	choices := []*discordgo.ApplicationCommandOptionChoice{}
	for _, n := range names {
		if len(choices) == maxChoices {
			break
		}
		if utf8.RuneCountInString(n) > maxChoiceName {
			continue // cannot be a choice's value
		}
		choices = append(choices, &discordgo.ApplicationCommandOptionChoice{Name: n, Value: n})
	}
	b.respond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionApplicationCommandAutocompleteResult,
		Data: &discordgo.InteractionResponseData{Choices: choices}})
}

// onStopClick stops the answer in progress in the button's channel. The
// engine's final view then removes the button; a button left over from an
// answer that already ended is removed at once, the message keeping its
// text and its kind.
func (b *Bot) onStopClick(ctx context.Context, i *discordgo.Interaction, p place) {
	if b.stop(key(i.ChannelID), p) || i.Message == nil {
		b.respond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate})
		return
	}
	body := withoutButtons(i.Message, func(id string) bool { return id == stopID })
	b.respondRaw(ctx, i, discordgo.InteractionResponseUpdateMessage, body)
}

// onRetryClick answers the question of the answer whose Retry button was
// pressed again, replacing that answer in the history
// (Manager.Regenerate): for the person who asked, or a member who may
// change the channel's settings. The new answer is a follow-up of the
// click, and the pressed message loses its Retry button; a refusal (an
// older answer, someone else's) is told to the presser alone, and the
// button comes back.
//
// The click is answered first, and acted on only when Discord took that
// answer: while a shard moves between processes both connections receive
// the click, Discord takes the first response and refuses the other
// (40060), and the question is answered again once.
func (b *Bot) onRetryClick(ctx context.Context, i *discordgo.Interaction, p place, question string) {
	var err error
	if i.Message != nil {
		err = b.interactionRespondRaw(ctx, i, discordgo.InteractionResponseUpdateMessage, withoutButtons(i.Message, ourButton))
	} else {
		err = b.interactionRespond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate})
	}
	if isAcknowledged(err) {
		b.log.Debug("retry click answered by another connection", "channel", i.ChannelID, "interaction", i.ID)
		return
	}
	r := b.interactionReply(i, question)
	r.followup = true
	if _, rerr := b.m.Regenerate(ctx, key(i.ChannelID), question, b.interactionAuthor(i, p), b.isAdmin(p), r); rerr != nil {
		b.refuseClick(ctx, i, err == nil, rerr)
		return
	}
	b.acknowledged(r, err)
}

// refuseClick tells the presser alone why a click answered already
// (answered: its response succeeded) was refused, and gives the pressed
// message its buttons back.
func (b *Bot) refuseClick(ctx context.Context, i *discordgo.Interaction, answered bool, err error) {
	b.logUnexpected(i.ChannelID, err)
	if !answered {
		b.explain(ctx, i, err)
		return
	}
	h := hook{appID: i.AppID, token: i.Token}
	if h.appID == "" {
		h.appID, _ = b.self()
	}
	if i.Message != nil {
		keep := withoutButtons(i.Message, func(string) bool { return false })
		if eerr := patiently(ctx, func() error { return b.hookEdit(ctx, h, "@original", keep) }); eerr != nil {
			b.log.Warn("give the pressed message its buttons back", "channel", i.ChannelID, "error", eerr)
		}
	}
	text := clipRunes("⚠️ "+sessions.Explain(err), MessageLimit)
	body := &messageBody{Content: &text, Flags: discordgo.MessageFlagsEphemeral, AllowedMentions: noMentions()}
	ferr := patiently(ctx, func() error {
		_, err := b.hookFollowup(ctx, h, body)
		return err
	})
	if ferr != nil {
		b.log.Warn("tell why a retry was refused", "channel", i.ChannelID, "error", ferr)
	}
}

// patientWaits bounds the rate limits patiently waits out.
const patientWaits = 4

// patiently makes a request outside any answer's schedule, waiting out up
// to patientWaits rate limits (Discord's 429, or discordgo's bucket
// found empty) within ctx.
func patiently(ctx context.Context, do func() error) error {
	for attempt := 0; ; attempt++ {
		err := do()
		var wait time.Duration
		var ours *sessions.RateLimitError
		var theirs *discordgo.RateLimitError
		switch {
		case errors.As(err, &ours):
			wait = ours.RetryAfter
		case errors.As(err, &theirs) && theirs.TooManyRequests != nil:
			wait = theirs.RetryAfter
		default:
			return err
		}
		if attempt == patientWaits {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// respond answers an interaction, logging a failure.
func (b *Bot) respond(ctx context.Context, i *discordgo.Interaction, resp *discordgo.InteractionResponse) {
	b.responded(i, b.interactionRespond(ctx, i, resp))
}

// respondRaw answers an interaction with a response of type typ carrying
// body, logging a failure.
func (b *Bot) respondRaw(ctx context.Context, i *discordgo.Interaction, typ discordgo.InteractionResponseType, body *messageBody) {
	b.responded(i, b.interactionRespondRaw(ctx, i, typ, body))
}

// responded logs the failure of i's response: at debug level when another
// connection answered i first (isAcknowledged), as a warning otherwise.
func (b *Bot) responded(i *discordgo.Interaction, err error) {
	switch {
	case err == nil:
	case isAcknowledged(err):
		b.log.Debug("interaction answered by another connection", "channel", i.ChannelID, "interaction", i.ID)
	default:
		b.log.Warn("answer interaction", "channel", i.ChannelID, "error", err)
	}
}

// isAcknowledged reports whether err is Discord refusing an interaction's
// response because the interaction was answered already (400, 40060):
// while a shard moves between processes, two connections receive its
// interactions, and the first response wins.
func isAcknowledged(err error) bool {
	return restCode(err) == discordgo.ErrCodeInteractionHasAlreadyBeenAcknowledged
}

// interactionRespondRaw is interactionRespond with a messageBody, which
// can make or update a Components V2 message (discordgo's response data
// always carries content).
func (b *Bot) interactionRespondRaw(ctx context.Context, i *discordgo.Interaction, typ discordgo.InteractionResponseType, body *messageBody) error {
	resp := struct {
		Type discordgo.InteractionResponseType `json:"type"`
		Data *messageBody                      `json:"data,omitempty"`
	}{typ, body}
	uri := discordgo.EndpointInteractionResponse(i.ID, i.Token)
	return oneRetry(ctx, func() error {
		_, err := b.s.RequestWithBucketID(http.MethodPost, uri, resp, uri, streamOpts(ctx)...)
		return err
	})
}

// interactionRespond answers an interaction on the interaction's own
// route, which Discord keeps out of the bot's global limit (so it never
// waits for the bot's budget: Discord wants an answer within 3 s).
func (b *Bot) interactionRespond(ctx context.Context, i *discordgo.Interaction, resp *discordgo.InteractionResponse) error {
	return oneRetry(ctx, func() error { return b.s.InteractionRespond(i, resp, streamOpts(ctx)...) })
}

// oneRetry makes an interaction response; a 429 is waited out once,
// within ctx (discordgo would sleep and retry for as long as 429s come,
// deaf to ctx).
func oneRetry(ctx context.Context, do func() error) error {
	for attempt := 0; ; attempt++ {
		err := do()
		var rl *discordgo.RateLimitError
		if attempt > 0 || !errors.As(err, &rl) || rl.TooManyRequests == nil {
			return err
		}
		t := time.NewTimer(rl.RetryAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// ephemeral answers an interaction with a message only its user sees.
func (b *Bot) ephemeral(ctx context.Context, i *discordgo.Interaction, text string) {
	b.respond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Content: clipRunes(text, MessageLimit), Flags: discordgo.MessageFlagsEphemeral,
			AllowedMentions: noMentions()}})
}

// public answers an interaction with a message the channel sees.
func (b *Bot) public(ctx context.Context, i *discordgo.Interaction, text string) {
	b.respond(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Content: clipRunes(text, MessageLimit), AllowedMentions: noMentions()}})
}

// explain shows why a command was refused, to its user only.
func (b *Bot) explain(ctx context.Context, i *discordgo.Interaction, err error) {
	b.logUnexpected(i.ChannelID, err)
	b.ephemeral(ctx, i, "⚠️ "+sessions.Explain(err))
}

// logUnexpected logs an error that is not a refusal meant for the user.
func (b *Bot) logUnexpected(channelID string, err error) {
	var ue *sessions.UserError
	if !errors.As(err, &ue) {
		b.log.Warn("request failed", "conversation", key(channelID).String(), "error", err)
	}
}

// interactionAuthor is the user who ran a command at p.
func (b *Bot) interactionAuthor(i *discordgo.Interaction, p place) sessions.Author {
	if i.Member != nil && i.Member.User != nil {
		return b.memberAuthor(i.Member.User, i.Member, p)
	}
	if i.User != nil {
		return b.memberAuthor(i.User, nil, p)
	}
	return sessions.Author{}
}

// memberAuthor is a user at p as the model should see them: their server
// nickname, else their display name, else their username. Author.Admin
// (restricted models, no usage limits) follows isAdmin: in a guild a
// member who may change the channel's settings, anywhere a user or role
// in Admins; never the mere user of a DM.
func (b *Bot) memberAuthor(u *discordgo.User, m *discordgo.Member, p place) sessions.Author {
	name := u.Username
	if u.GlobalName != "" {
		name = u.GlobalName
	}
	if m != nil && m.Nick != "" {
		name = m.Nick
	}
	return sessions.Author{ID: u.ID, Name: name, Admin: b.isAdmin(p)}
}

// quote makes text a Markdown block quote.
func quote(text string) string {
	return "> " + strings.ReplaceAll(strings.TrimSpace(text), "\n", "\n> ")
}

// clipRunes shortens s to at most n characters, marking the cut.
func clipRunes(s string, n int) string { return truncateEnd(s, n) }

// stop stops the answers to the questions p's user asked in conversation
// k; a member who may change the channel's settings (Manage Channels, or
// discord.admins) and has none running stops every answer there, as does
// the user of a DM with the bot, who is the only one asking there (an
// answer given again by Retry has no asker of its own).
func (b *Bot) stop(k sessions.Key, p place) bool {
	if b.m.Stop(k, p.userID) {
		return true
	}
	return (p.dm || p.guildID != "" && b.mayChange(p)) && b.m.Stop(k, "")
}

// shared reports whether several people talk to the bot where the
// interaction happened: a guild channel, or a group DM or DM between
// users (a user install's PRIVATE_CHANNEL).
func shared(i *discordgo.Interaction) bool {
	return i.GuildID != "" || i.Context == discordgo.InteractionContextPrivateChannel
}
