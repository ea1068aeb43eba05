package telegramtest_test

import (
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

func TestServer_ConfirmedUpdateID(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	if got := srv.LastUpdateID(); got != 0 {
		t.Errorf("LastUpdateID = %d before any update, want 0", got)
	}
	for _, text := range []string{"one", "two", "three"} {
		srv.SendText(userID, alice, text)
	}
	check := func(wantLast, wantConfirmed, wantRedeliveries int) {
		t.Helper()
		if got := srv.LastUpdateID(); got != wantLast {
			t.Errorf("LastUpdateID = %d, want %d", got, wantLast)
		}
		if got := srv.ConfirmedUpdateID(); got != wantConfirmed {
			t.Errorf("ConfirmedUpdateID = %d, want %d", got, wantConfirmed)
		}
		if got := srv.Redeliveries(); got != wantRedeliveries {
			t.Errorf("Redeliveries = %d, want %d", got, wantRedeliveries)
		}
	}
	check(3, 0, 0)

	// Fetched, not confirmed: fetching again is a redelivery of each.
	for range 2 {
		if ups, err := bot.GetUpdates(tgbotapi.UpdateConfig{Limit: 2}); err != nil || len(ups) != 2 {
			t.Fatalf("GetUpdates = %d updates, %v; want 2", len(ups), err)
		}
	}
	check(3, 0, 2)

	// An offset confirms every update before it.
	if ups, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: 3}); err != nil || len(ups) != 1 {
		t.Fatalf("GetUpdates(offset 3) = %d updates, %v; want 1", len(ups), err)
	}
	check(3, 2, 2)
	if _, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: 4}); err != nil {
		t.Fatal(err)
	}
	check(3, 3, 2)
}
