package discordtest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

func TestServer_StartThreadFromMessage(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	c, _ := rawGateway(t, w.srv, int64(discord.Intents))
	um, err := w.srv.SendMessage(discordtest.UserMessage{ChannelID: w.channel.ID, AuthorID: w.user.ID, Content: "a question"})
	if err != nil {
		t.Fatal(err)
	}
	th, err := w.s.MessageThreadStartComplex(w.channel.ID, um.ID, &discordgo.ThreadStart{Name: "a question", AutoArchiveDuration: 1440})
	if err != nil {
		t.Fatal(err)
	}
	if th.Type != discordgo.ChannelTypeGuildPublicThread || th.ParentID != w.channel.ID || th.OwnerID != w.srv.AppID() ||
		th.Name != "a question" || th.GuildID != w.guild.ID || th.ThreadMetadata == nil {
		t.Errorf("thread %+v, want a public thread of %s owned by the bot", th, w.channel.ID)
	}
	ev := readUntil(t, c, "THREAD_CREATE")
	var got struct {
		ID           string `json:"id"`
		ParentID     string `json:"parent_id"`
		OwnerID      string `json:"owner_id"`
		NewlyCreated bool   `json:"newly_created"`
	}
	json.Unmarshal(ev.D, &got)
	if got.ID != th.ID || got.ParentID != w.channel.ID || got.OwnerID != w.srv.AppID() || !got.NewlyCreated {
		t.Errorf("THREAD_CREATE %s", ev.D)
	}
	list := w.srv.Threads(w.channel.ID)
	if len(list) != 1 || list[0].ID != th.ID || list[0].StarterID != um.ID || list[0].OwnerID != w.srv.AppID() {
		t.Errorf("Threads = %+v", list)
	}

	// A message in the thread carries the thread's id and is charged to
	// the thread's own window.
	sent, err := w.s.ChannelMessageSend(th.ID, "in the thread")
	if err != nil {
		t.Fatal(err)
	}
	if sent.ChannelID != th.ID {
		t.Errorf("message in channel %s, want the thread %s", sent.ChannelID, th.ID)
	}
	um2, err := w.srv.SendMessage(discordtest.UserMessage{ChannelID: th.ID, AuthorID: w.user.ID, Content: discordtest.Mention(w.srv.AppID()) + " more"})
	if err != nil {
		t.Fatal(err)
	}
	ev = readUntil(t, c, "MESSAGE_CREATE")
	for !strings.Contains(string(ev.D), um2.ID) {
		ev = readUntil(t, c, "MESSAGE_CREATE")
	}
	if !strings.Contains(string(ev.D), `"channel_id":"`+th.ID+`"`) {
		t.Errorf("MESSAGE_CREATE of a thread message: %s", ev.D)
	}

	_, err = w.s.MessageThreadStartComplex(w.channel.ID, um.ID, &discordgo.ThreadStart{Name: "again"})
	if status, code := restCode(err); status != http.StatusBadRequest || code != 160004 {
		t.Errorf("second thread from one message: %d %d (%v), want 400 160004", status, code, err)
	}
}

func TestServer_StartThreadWithoutMessage(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	th, err := w.s.ThreadStartComplex(w.channel.ID, &discordgo.ThreadStart{Name: "topic", Type: discordgo.ChannelTypeGuildPublicThread})
	if err != nil {
		t.Fatal(err)
	}
	if th.Type != discordgo.ChannelTypeGuildPublicThread || th.ParentID != w.channel.ID || th.OwnerID != w.srv.AppID() {
		t.Errorf("thread %+v", th)
	}
	ms := w.srv.Messages(w.channel.ID)
	if len(ms) != 1 || ms[0].Type != 18 || ms[0].Content != "topic" {
		t.Errorf("parent's messages %+v, want one thread-created system message", ms)
	}
}

func TestServer_StartThread_Errors(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	um, err := w.srv.SendMessage(discordtest.UserMessage{ChannelID: w.channel.ID, AuthorID: w.user.ID, Content: "q"})
	if err != nil {
		t.Fatal(err)
	}
	thread, err := w.srv.StartThread(w.channel.ID, "users' thread", w.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	inThread, err := w.srv.SendMessage(discordtest.UserMessage{ChannelID: thread.ID, AuthorID: w.user.ID, Content: "q"})
	if err != nil {
		t.Fatal(err)
	}
	denied, err := w.srv.AddChannel(w.guild.ID, "denied")
	if err != nil {
		t.Fatal(err)
	}
	w.srv.DenyThreads(denied.ID)
	deniedMsg, err := w.srv.SendMessage(discordtest.UserMessage{ChannelID: denied.ID, AuthorID: w.user.ID, Content: "q"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                 string
		channel, message     string
		threadName           string
		wantStatus, wantCode int
	}{
		{"UnknownChannel", "1", um.ID, "x", 404, 10003},
		{"UnknownMessage", w.channel.ID, "1", "x", 404, 10008},
		{"InThread", thread.ID, inThread.ID, "x", 400, 50024},
		{"EmptyName", w.channel.ID, um.ID, "", 400, 50035},
		{"LongName", w.channel.ID, um.ID, strings.Repeat("n", 101), 400, 50035},
		{"MissingPermissions", denied.ID, deniedMsg.ID, "x", 403, 50013},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.s.MessageThreadStartComplex(tt.channel, tt.message, &discordgo.ThreadStart{Name: tt.threadName})
			if status, code := restCode(err); status != tt.wantStatus || code != tt.wantCode {
				t.Errorf("got %d %d (%v), want %d %d", status, code, err, tt.wantStatus, tt.wantCode)
			}
		})
	}
	if got := w.srv.Threads(w.channel.ID); len(got) != 1 || got[0].OwnerID != w.user.ID {
		t.Errorf("Threads = %+v, want only the user's", got)
	}
}

func TestServer_LimitThreads(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	w.srv.LimitThreads(2, time.Minute)
	var ids []string
	for range 4 {
		um, err := w.srv.SendMessage(discordtest.UserMessage{ChannelID: w.channel.ID, AuthorID: w.user.ID, Content: "q"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, um.ID)
	}
	for i, id := range ids[:3] {
		_, err := w.s.MessageThreadStartComplex(w.channel.ID, id, &discordgo.ThreadStart{Name: "q"}, discordgo.WithRetryOnRatelimit(false))
		var rl *discordgo.RateLimitError
		switch {
		case i < 2 && err != nil:
			t.Errorf("thread %d: %v", i, err)
		case i == 2 && (!errors.As(err, &rl) || rl.RetryAfter <= 0):
			t.Errorf("thread %d: %v, want a 429 with a retry-after", i, err)
		}
	}
	// discordgo keeps the 429's bucket (this message's route) closed for
	// its retry-after in real time: the next thread starts from another
	// message.
	w.srv.Advance(time.Minute)
	if _, err := w.s.MessageThreadStartComplex(w.channel.ID, ids[3], &discordgo.ThreadStart{Name: "q"}, discordgo.WithRetryOnRatelimit(false)); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestServer_DeleteThread(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	c, _ := rawGateway(t, w.srv, int64(discord.Intents))
	th, err := w.s.ThreadStartComplex(w.channel.ID, &discordgo.ThreadStart{Name: "t", Type: discordgo.ChannelTypeGuildPublicThread})
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.s.ChannelMessageSend(th.ID, "answer")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.srv.DeleteThread(th.ID); err != nil {
		t.Fatal(err)
	}
	if ev := readUntil(t, c, "THREAD_DELETE"); !strings.Contains(string(ev.D), th.ID) {
		t.Errorf("THREAD_DELETE %s", ev.D)
	}
	_, err = w.s.ChannelMessageEdit(th.ID, m.ID, "more")
	if status, code := restCode(err); status != 404 || code != 10003 {
		t.Errorf("edit in a deleted thread: %d %d (%v), want 404 10003", status, code, err)
	}
	_, err = w.s.ChannelMessageSend(th.ID, "more")
	if status, code := restCode(err); status != 404 || code != 10003 {
		t.Errorf("send in a deleted thread: %d %d (%v), want 404 10003", status, code, err)
	}
	if got, _ := w.srv.Message(m.ID); !got.Deleted {
		t.Error("the thread's message is not deleted")
	}
	if err := w.srv.DeleteThread(w.channel.ID); err == nil {
		t.Error("DeleteThread of a text channel succeeded")
	}
}
