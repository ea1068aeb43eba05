package telegramtest_test

import (
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

func TestServer_FloodBotPerSecond(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	srv, bot := newBot(t, telegramtest.Options{Now: clock.Now, Flood: telegramtest.FloodLimits{BotPerSecond: 5}})
	send := func(chat int64) error {
		_, err := bot.Send(tgbotapi.NewMessage(chat, "x"))
		return err
	}
	// Five chats, each well within its own burst, empty the bot's bucket.
	for chat := range int64(5) {
		if err := send(1000 + chat); err != nil {
			t.Fatalf("chat %d: %v", chat, err)
		}
	}
	e := apiError(t, send(2000))
	if e.Code != 429 || e.Message != "Too Many Requests: retry after 1" || e.RetryAfter != 1 {
		t.Errorf("sixth chat: %d %q retry_after %d, want 429 retry after 1", e.Code, e.Message, e.RetryAfter)
	}
	// Chat actions and drafts are not charged.
	if _, err := bot.Request(tgbotapi.NewChatAction(2000, tgbotapi.ChatTyping)); err != nil {
		t.Errorf("sendChatAction with the bucket empty: %v", err)
	}
	if got, want := srv.BotFlood(), (telegramtest.BotFloodStats{Charged: 5, Limited: 1, PeakPerSecond: 5}); got != want {
		t.Errorf("BotFlood = %+v, want %+v", got, want)
	}
	// A sliding window: the first five leave it a second after they came.
	clock.Advance(999 * time.Millisecond)
	if err := send(2000); err == nil {
		t.Error("a call 999 ms after five was accepted")
	}
	clock.Advance(time.Millisecond)
	for chat := range int64(5) {
		if err := send(3000 + chat); err != nil {
			t.Fatalf("a second later, chat %d: %v", chat, err)
		}
	}
	if err := send(4000); err == nil {
		t.Error("a sixth call within the next second was accepted")
	}
	if got, want := srv.BotFlood(), (telegramtest.BotFloodStats{Charged: 10, Limited: 3, PeakPerSecond: 5}); got != want {
		t.Errorf("BotFlood = %+v, want %+v", got, want)
	}
}

func TestServer_FloodBotPerSecond_Default(t *testing.T) {
	tests := []struct {
		name  string
		flood telegramtest.FloodLimits
		want  int // calls at once before the first refusal
	}{
		{"Telegram", telegramtest.FloodLimits{}, 30},
		{"Scaled", telegramtest.FloodLimits{ChatInterval: 100 * time.Millisecond}, 300},
		{"Explicit", telegramtest.FloodLimits{ChatInterval: 100 * time.Millisecond, BotPerSecond: 7}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			srv, bot := newBot(t, telegramtest.Options{Now: clock.Now, Flood: tt.flood})
			for chat := range int64(tt.want) {
				if _, err := bot.Send(tgbotapi.NewMessage(1000+chat, "x")); err != nil {
					t.Fatalf("chat %d: %v", chat, err)
				}
			}
			if _, err := bot.Send(tgbotapi.NewMessage(9999, "x")); err == nil {
				t.Errorf("call %d at once was accepted", tt.want+1)
			}
			if got := srv.BotFlood(); got.PeakPerSecond != tt.want || got.Limited != 1 {
				t.Errorf("BotFlood = %+v, want a peak of %d and 1 limited", got, tt.want)
			}
		})
	}
}

func TestServer_FloodBotPerSecond_Disabled(t *testing.T) {
	tests := []struct {
		name  string
		flood telegramtest.FloodLimits
	}{
		{"BotOnly", telegramtest.FloodLimits{BotPerSecond: -1}},
		{"All", telegramtest.FloodLimits{Disabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			srv, bot := newBot(t, telegramtest.Options{Now: clock.Now, Flood: tt.flood})
			for chat := range int64(40) {
				if _, err := bot.Send(tgbotapi.NewMessage(1000+chat, "x")); err != nil {
					t.Fatalf("chat %d: %v", chat, err)
				}
			}
			if got, want := srv.BotFlood(), (telegramtest.BotFloodStats{Charged: 40, PeakPerSecond: 40}); got != want {
				t.Errorf("BotFlood = %+v, want %+v (the peak is kept without the limit)", got, want)
			}
		})
	}
}
