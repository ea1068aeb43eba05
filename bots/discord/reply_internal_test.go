package discord

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/sessions"
)

// TestReply_UserOnly_TokenLifetime shows an answer through a user
// install's interaction on a clock that passes the token's lifetime: the
// answer ends there with a note (the bot cannot post in the channel), and
// the reply reports that it can show nothing more.
func TestReply_UserOnly_TokenLifetime(t *testing.T) {
	dc := discordtest.NewServer(discordtest.Options{UserInstall: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(dc.Close)
	s, err := NewSession(SessionOptions{Token: dc.Token(), APIBase: dc.URL(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplicationCommandBulkOverwrite(dc.AppID(), "", commandList(true)); err != nil {
		t.Fatal(err)
	}
	far := dc.AddGuildWithoutBot("far")
	ch, err := dc.AddChannel(far.ID, "general")
	if err != nil {
		t.Fatal(err)
	}
	u := dc.AddUser("stranger")
	if err := dc.AddMember(far.ID, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := dc.InstallApp(u.ID); err != nil {
		t.Fatal(err)
	}
	it, err := dc.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "take your time"}}, u.ID, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	err = s.InteractionRespond(&discordgo.Interaction{ID: it.ID, Token: it.Token},
		&discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource})
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	b := &Bot{opts: Options{Components: ComponentsAuto}, s: s, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		now: func() time.Time { return now }}
	r := &reply{b: b, channelID: ch.ID, question: it.ID, userOnly: true,
		hook: &hook{appID: dc.AppID(), token: it.Token}, created: now}
	ctx := context.Background()
	if _, err := r.Show(ctx, sessions.View{Content: "a slow start", Status: "Writing…"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(hookLifetime + time.Second)
	n, err := r.Show(ctx, sessions.View{Content: "a slow start, and more", Status: "Writing…"})
	if !errors.Is(err, sessions.ErrReplyGone) || n != 1 {
		t.Fatalf("Show after the lifetime: %d requests, %v; want 1 and ErrReplyGone", n, err)
	}
	st, _ := dc.InteractionState(it.ID)
	m, _ := dc.Message(st.OriginalID)
	if want := "a slow start, and more\n-# " + noteExpired; m.Text() != want || len(m.CustomIDs()) != 1 {
		t.Errorf("original response %q, buttons %q; want %q and Retry", m.Text(), m.CustomIDs(), want)
	}
	if n, err := r.Show(ctx, sessions.View{Content: "even more", Final: true}); n != 0 || !errors.Is(err, sessions.ErrReplyGone) {
		t.Errorf("Show once cut: %d requests, %v; want none and ErrReplyGone", n, err)
	}
	for _, c := range dc.Calls() {
		if strings.HasPrefix(c.Route, "/channels/") {
			t.Errorf("the reply called %s %s", c.Method, c.Route)
		}
	}
}
