package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/sessions"
)

// commandList is the menu registered with setMyCommands.
func commandList() []tgbotapi.BotCommand {
	return []tgbotapi.BotCommand{
		{Command: "chat", Description: "Ask something (in groups: /chat question)"},
		{Command: "model", Description: "Show or choose this chat's model"},
		{Command: "models", Description: "List the models you can choose"},
		{Command: "system", Description: "Show or set the system prompt (/system clear)"},
		{Command: "reset", Description: "Forget this chat's history"},
		{Command: "stop", Description: "Stop the answer in progress"},
		{Command: "retry", Description: "Answer the last message again"},
		{Command: "settings", Description: "Show this chat's settings"},
		{Command: "usage", Description: "Your tokens and cost today and this month"},
		{Command: "help", Description: "How to use the bot"},
		{Command: "start", Description: "Start talking"},
	}
}

// refusal is the answer to a settings command from a group member who may
// not change settings.
const refusal = "Only this group's administrators can change its settings."

// command runs a command, reporting whether it was one the bot knows.
// Settings changes happen before command returns; every answer is a
// notice shown through the chat's schedule (say). /model and /models list
// the models in the background first.
func (b *Bot) command(ctx context.Context, p place, author sessions.Author, name, args string) bool {
	key := p.key()
	switch name {
	case "start", "help":
		b.say(p, sessions.Help(), nil)
	case "model":
		if args == "" {
			b.background(func(ctx context.Context) { b.showModelPicker(ctx, p, 0) })
			return true
		}
		if !b.mayChange(ctx, p) {
			b.say(p, refusal, nil)
			return true
		}
		model, err := b.m.ChooseModel(ctx, key, args, author)
		if err != nil {
			b.explain(p, err)
			return true
		}
		b.say(p, fmt.Sprintf("Model set to `%s`.", model), nil)
	case "models":
		b.background(func(ctx context.Context) { b.listModels(ctx, p) })
	case "system":
		b.system(ctx, p, args)
	case "reset":
		if !b.mayChange(ctx, p) {
			b.say(p, refusal, nil)
			return true
		}
		if err := b.m.Reset(ctx, key); err != nil {
			b.explain(p, err)
			return true
		}
		b.say(p, "History forgotten: the next message starts a new conversation.", nil)
	case "stop":
		if !b.stop(ctx, p) {
			b.say(p, "Nothing to stop.", nil)
		}
	case "retry":
		r := b.newReply(p)
		// The new answer's Retry button names the question it answers.
		if q, err := b.m.LatestQuestion(ctx, key); err == nil {
			r.question, _ = strconv.Atoi(q)
		}
		if _, err := b.m.Retry(ctx, key, r); err != nil {
			b.explain(p, err)
		}
	case "settings":
		s, err := b.m.Settings(ctx, key)
		if err != nil {
			b.explain(p, err)
			return true
		}
		b.say(p, s.Markdown(), nil)
	case "usage":
		report, err := b.m.UsageReport(ctx, sessions.UsageRequest{Key: key, Group: p.group(), Shared: !p.private, Author: author})
		if err != nil {
			b.explain(p, err)
			return true
		}
		b.say(p, report, nil)
	default:
		return false
	}
	return true
}

// system shows, sets or clears the system prompt.
func (b *Bot) system(ctx context.Context, p place, args string) {
	key := p.key()
	if args == "" {
		prompt, custom, err := b.m.SystemPrompt(ctx, key)
		if err != nil {
			b.explain(p, err)
			return
		}
		origin := "the default"
		if custom {
			origin = "set for this chat"
		}
		if prompt == "" {
			prompt = "(none)"
		}
		b.say(p, fmt.Sprintf("System prompt (%s):\n\n%s\n\nChange it with `/system your prompt`, or `/system clear` for the default.", origin, quoteMarkdown(prompt)), nil)
		return
	}
	if !b.mayChange(ctx, p) {
		b.say(p, refusal, nil)
		return
	}
	if strings.EqualFold(args, "clear") || strings.EqualFold(args, "default") {
		if err := b.m.ClearSystemPrompt(ctx, key); err != nil {
			b.explain(p, err)
			return
		}
		b.say(p, "System prompt back to the default.", nil)
		return
	}
	if err := b.m.SetSystemPrompt(ctx, key, args); err != nil {
		b.explain(p, err)
		return
	}
	b.say(p, "System prompt set.", nil)
}

// quoteMarkdown makes text a Markdown block quote.
func quoteMarkdown(text string) string {
	return "> " + strings.ReplaceAll(strings.TrimSpace(text), "\n", "\n> ")
}

// mayChange reports whether the author may change the conversation's
// settings: anyone in a private chat; in groups the chat's administrators
// and the configured admins.
func (b *Bot) mayChange(ctx context.Context, p place) bool {
	if p.private || b.admins[p.user] {
		return true
	}
	status, err := b.api.memberStatus(ctx, p.chat, p.user)
	if err != nil {
		b.log.Warn("check administrator", "chat", p.chat, "user", p.user, "error", err)
		return false
	}
	return status == "creator" || status == "administrator"
}

// listModels answers /models.
func (b *Bot) listModels(ctx context.Context, p place) {
	models, err := b.m.Models(ctx)
	if err != nil {
		b.log.Warn("list models", "error", err)
	}
	current, _ := b.m.Model(ctx, p.key())
	var sb strings.Builder
	sb.WriteString("**Models** (choose with `/model name`):\n")
	for _, md := range models {
		mark := "• "
		if md.Name() == current {
			mark = "✓ "
		}
		fmt.Fprintf(&sb, "%s`%s`\n", mark, md.Name())
	}
	if len(models) == 0 {
		sb.WriteString("No models are available.\n")
	}
	// The providers that could not be asked, each with its reason.
	for i, note := range sessions.ModelsNotes(err) {
		if i == 0 {
			sb.WriteString("\n")
		}
		sb.WriteString(note + "\n")
	}
	b.say(p, sb.String(), nil)
}

// explain shows why a request was refused, as a reply to it.
func (b *Bot) explain(p place, err error) {
	var ue *sessions.UserError
	if !errors.As(err, &ue) {
		b.log.Warn("request failed", "conversation", p.key().String(), "error", err)
	}
	b.say(p, "⚠️ "+sessions.Explain(err), nil)
}

// stop stops the answers to the questions p's user asked in p's
// conversation; a user who may change the conversation's settings (a
// group administrator) and has none running stops every answer there.
func (b *Bot) stop(ctx context.Context, p place) bool {
	if b.m.Stop(p.key(), strconv.FormatInt(p.user, 10)) {
		return true
	}
	return !p.private && b.mayChange(ctx, p) && b.m.Stop(p.key(), "")
}
