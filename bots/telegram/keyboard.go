package telegram

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// Callback data of the model picker. Telegram allows 64 bytes of data, too
// few for some model names, so a button names its model by a short hash
// and the page buttons by number.
const (
	pickPrefix = "m:"  // m:<hash> chooses a model
	pagePrefix = "mp:" // mp:<page> shows a page of the picker
)

// modelsPerPage is how many models one page of the picker shows.
const modelsPerPage = 10

// modelHash is the short name of a model in callback data.
func modelHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:6])
}

// pickerText is the text above the model picker.
func pickerText(current string) string {
	return fmt.Sprintf("Current model: `%s`\nChoose another:", current)
}

// picker builds one page of the model keyboard, the current model marked.
func picker(models []llm.Model, current string, page int) tgbotapi.InlineKeyboardMarkup {
	pages := max(1, (len(models)+modelsPerPage-1)/modelsPerPage)
	page = min(max(page, 0), pages-1)
	var rows [][]tgbotapi.InlineKeyboardButton
	for _, md := range models[page*modelsPerPage : min(len(models), (page+1)*modelsPerPage)] {
		label := md.Name()
		if label == current {
			label = "✓ " + label
		}
		rows = append(rows, tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData(label, pickPrefix+modelHash(md.Name()))))
	}
	if pages > 1 {
		var nav []tgbotapi.InlineKeyboardButton
		if page > 0 {
			nav = append(nav, tgbotapi.NewInlineKeyboardButtonData("◀ "+strconv.Itoa(page), pagePrefix+strconv.Itoa(page-1)))
		}
		if page < pages-1 {
			nav = append(nav, tgbotapi.NewInlineKeyboardButtonData(strconv.Itoa(page+2)+" ▶", pagePrefix+strconv.Itoa(page+1)))
		}
		rows = append(rows, nav)
	}
	return tgbotapi.InlineKeyboardMarkup{InlineKeyboard: rows}
}

// showModelPicker answers /model without an argument.
func (b *Bot) showModelPicker(ctx context.Context, p place, page int) {
	models, err := b.m.Models(ctx)
	if err != nil {
		b.log.Warn("list models", "error", err)
	}
	current, cerr := b.m.Model(ctx, p.key())
	if len(models) == 0 {
		if err == nil {
			err = cerr
		}
		msg := fmt.Sprintf("Current model: `%s`. No models are available to choose from.", current)
		if notes := sessions.ModelsNotes(err); len(notes) > 0 {
			msg += "\n\n" + strings.Join(notes, "\n")
		}
		b.say(p, msg, nil)
		return
	}
	kb := picker(models, current, page)
	b.say(p, pickerText(current), &kb)
}

// onCallback handles a button press: Stop, Retry, or the model picker.
// The press is acknowledged at once (answerCallbackQuery is not a chat
// message); the picker's message is edited through the chat's schedule.
func (b *Bot) onCallback(ctx context.Context, q *tgbotapi.CallbackQuery, topic int) {
	alert := func(text string, alert bool) {
		if err := b.api.answerCallback(ctx, q.ID, text, alert); err != nil {
			b.log.Warn("answer button", "error", err)
		}
	}
	answer := func(text string) { alert(text, false) }
	if q.Message == nil || q.Message.Chat == nil || q.From == nil {
		answer("")
		return
	}
	p := place{chat: q.Message.Chat.ID, topic: topic, private: q.Message.Chat.IsPrivate(), user: q.From.ID, msgID: q.Message.MessageID}
	if !b.allowed(p.chat, p.user) {
		answer("This bot is not open to you.")
		return
	}
	key := p.key()
	switch {
	case q.Data == stopData:
		if b.stop(ctx, p) {
			answer("Stopping…")
		} else {
			answer("Nothing to stop.")
		}
	case strings.HasPrefix(q.Data, retryPrefix):
		b.onRetry(ctx, p, b.author(q.From), q.Data, alert)
	case strings.HasPrefix(q.Data, pagePrefix):
		page, _ := strconv.Atoi(strings.TrimPrefix(q.Data, pagePrefix))
		models, _ := b.m.Models(ctx)
		current, _ := b.m.Model(ctx, key)
		kb := picker(models, current, page)
		b.m.Notify(b.editNotice(p, p.msgID, &kb), sessions.View{Content: pickerText(current)})
		answer("")
	case strings.HasPrefix(q.Data, pickPrefix):
		if !b.mayChange(ctx, p) {
			answer(refusal)
			return
		}
		hash := strings.TrimPrefix(q.Data, pickPrefix)
		models, err := b.m.Models(ctx)
		if err != nil {
			b.log.Warn("list models", "error", err)
		}
		name := ""
		for _, md := range models {
			if modelHash(md.Name()) == hash {
				name = md.Name()
				break
			}
		}
		if name == "" {
			if err != nil {
				answer(clipUTF16(sessions.Explain(err), 190))
			} else {
				answer("That model is no longer available; send /model again.")
			}
			return
		}
		model, err := b.m.ChooseModel(ctx, key, name, b.author(q.From))
		if err != nil {
			answer(clipUTF16(sessions.Explain(err), 190))
			return
		}
		b.m.Notify(b.editNotice(p, p.msgID, nil), sessions.View{Content: fmt.Sprintf("Model set to `%s`.", model)})
		answer("Model: " + model)
	default:
		answer("")
	}
}
