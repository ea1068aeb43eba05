package telegram

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

// testBot is a Bot for the fake without a Manager, for the request layer.
func testBot(t *testing.T, endpoint, token string) *Bot {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	bot := &tgbotapi.BotAPI{Token: token, Client: client}
	bot.SetAPIEndpoint(endpoint)
	return &Bot{
		opts:   Options{EditInterval: time.Millisecond, GroupEditInterval: time.Millisecond, Drafts: true},
		api:    &api{bot: bot, http: client, token: token},
		log:    slog.New(slog.DiscardHandler),
		drafts: newDraftRegistry(time.Now()),
		format: formatAuto,
	}
}

func TestAPI_TokenNotInErrors(t *testing.T) {
	const token = "987654:SECRET-token-value"
	srv := telegramtest.NewServer(telegramtest.Options{})
	addr := srv.URL()
	srv.Close() // nothing listens there now
	b := testBot(t, addr+"/bot%s/%s", token)
	_, err := b.api.getMe(t.Context())
	if err == nil {
		t.Fatal("getMe on a closed port succeeded")
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q contains the token", err)
	}
}

func TestReply_PlainTextWhenHTMLRefused(t *testing.T) {
	srv := telegramtest.NewServer(telegramtest.Options{Flood: telegramtest.FloodLimits{Disabled: true}})
	t.Cleanup(srv.Close)
	b := testBot(t, srv.Endpoint(), srv.Token())
	r := b.newReply(place{chat: 5, private: true})
	ctx := context.Background()

	if _, err := r.showPart(ctx, 0, plainPiece("<b>broken <i>html", "broken html"), kbStop); err != nil {
		t.Fatalf("send: %v", err)
	}
	ms := srv.BotMessages(5)
	if len(ms) != 1 || ms[0].Text != "broken html" || ms[0].ParseMode != "" {
		t.Fatalf("messages = %+v, want the plain text", ms)
	}
	if _, err := r.showPart(ctx, 0, plainPiece("<b>still broken <i>html", "still broken html"), kbNone); err != nil {
		t.Fatalf("edit: %v", err)
	}
	if m, _ := srv.Message(5, ms[0].ID); m.Text != "still broken html" || m.ReplyMarkup != nil {
		t.Errorf("edited message = %q (markup %s), want the plain text without buttons", m.Text, m.ReplyMarkup)
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct{ in, name, target, args string }{
		{"/model", "model", "", ""},
		{"/Model@Palaver_Bot  fake/echo ", "model", "Palaver_Bot", "fake/echo"},
		{"/system\nBe brief.", "system", "", "Be brief."},
		{"/chat@bot hello world", "chat", "bot", "hello world"},
	} {
		name, target, args := parseCommand(tc.in)
		if name != tc.name || target != tc.target || args != tc.args {
			t.Errorf("parseCommand(%q) = %q, %q, %q; want %q, %q, %q", tc.in, name, target, args, tc.name, tc.target, tc.args)
		}
	}
}

func TestStripMention(t *testing.T) {
	b := &Bot{self: tgbotapi.User{ID: 42, UserName: "palaver_bot"}}
	for _, tc := range []struct {
		text     string
		entities []tgbotapi.MessageEntity
		want     string
		ok       bool
	}{
		{"@palaver_bot hi", []tgbotapi.MessageEntity{{Type: "mention", Offset: 0, Length: 12}}, "hi", true},
		{"😀 @Palaver_Bot what?", []tgbotapi.MessageEntity{{Type: "mention", Offset: 3, Length: 12}}, "😀 what?", true},
		{"ask @palaver_bot", nil, "ask", true},
		{"@palaver_bots hi", nil, "@palaver_bots hi", false},
		{"@someone else", []tgbotapi.MessageEntity{{Type: "mention", Offset: 0, Length: 8}}, "@someone else", false},
	} {
		got, ok := b.stripMention(tc.text, tc.entities)
		if got != tc.want || ok != tc.ok {
			t.Errorf("stripMention(%q) = %q, %v; want %q, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
}
