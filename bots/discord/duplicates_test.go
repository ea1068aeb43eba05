package discord_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// Two processes connected to one shard, as while the shard is handed
// over from one to the other, both receive its events. Sharing a store,
// they answer a question once: the one that accepted it first answers,
// the other drops it without a word. Of a command's two responses Discord
// takes the first and refuses the other (40060), which is dropped as
// quietly. With threads on, both try to open the question's thread and
// Discord refuses the second (160004): the question is still answered
// once, in the one thread.
func TestBot_TwoConnections(t *testing.T) {
	t.Parallel()
	type world struct {
		dc   *discordtest.Server
		user discordtest.User
		ch   discordtest.Channel
	}
	tests := []struct {
		name    string
		threads bool
		// ask sends the event and returns the conversation's channel
		// and the bot messages expected in it once both are closed.
		ask func(t *testing.T, w world) (channelID string, want []string)
	}{
		{"Mention", false, func(t *testing.T, w world) (string, []string) {
			q := ask(t, w.dc, w.user, w.ch.ID, "hello there")
			answered(t, w.dc, q, "hello there")
			if d := w.dc.Delivered(q.ID); d != 2 {
				t.Errorf("question delivered to %d connections, want 2", d)
			}
			return w.ch.ID, []string{"hello there"}
		}},
		{"Chat", false, func(t *testing.T, w world) (string, []string) {
			it, err := w.dc.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "slash question"}}, w.user.ID, w.ch.ID)
			must(t, err)
			waitAnswered(t, w.dc, w.ch.ID, "slash question")
			if st, _ := w.dc.InteractionState(it.ID); st.ResponseType != discordtest.ResponseDeferredMessage {
				t.Errorf("response type %d, want a deferred message", st.ResponseType)
			}
			return w.ch.ID, []string{"slash question"}
		}},
		{"Command", false, func(t *testing.T, w world) (string, []string) {
			it, err := w.dc.SendSlash("help", nil, w.user.ID, w.ch.ID)
			must(t, err)
			if _, err := w.dc.WaitCall(testCtx(t), func(c discordtest.Call) bool {
				return c.InteractionID == it.ID && c.Status == 400 && strings.Contains(string(c.Response), "40060")
			}); err != nil {
				t.Errorf("no second response refused with 40060: %v", err)
			}
			return w.ch.ID, []string{"Palaver"} // the ephemeral help
		}},
		{"Retry", false, func(t *testing.T, w world) (string, []string) {
			// Both connections receive the click; the one whose
			// response Discord takes answers again, once.
			q := ask(t, w.dc, w.user, w.ch.ID, "say it again")
			first := answered(t, w.dc, q, "say it again")
			it, err := w.dc.ClickButton(first.ID, "palaver:retry:"+q.ID, w.user.ID)
			must(t, err)
			if _, err := w.dc.WaitCall(testCtx(t), func(c discordtest.Call) bool {
				return c.InteractionID == it.ID && c.Status == 400 && strings.Contains(string(c.Response), "40060")
			}); err != nil {
				t.Errorf("no second response refused with 40060: %v", err)
			}
			if _, err := w.dc.WaitMessage(testCtx(t), func(m discordtest.Message) bool {
				return m.InteractionID == it.ID && done(m) && strings.Contains(m.Text(), "say it again")
			}); err != nil {
				t.Fatalf("the question was not answered again: %v", err)
			}
			return w.ch.ID, []string{"say it again", "say it again"}
		}},
		{"MentionInThread", true, func(t *testing.T, w world) (string, []string) {
			q := ask(t, w.dc, w.user, w.ch.ID, "threaded question")
			waitAnswered(t, w.dc, q.ID, "threaded question") // the thread has the message's id
			return q.ID, []string{"threaded question"}
		}},
		{"ChatInThread", true, func(t *testing.T, w world) (string, []string) {
			it, err := w.dc.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "threaded slash"}}, w.user.ID, w.ch.ID)
			must(t, err)
			st, err := w.dc.WaitInteraction(testCtx(t), it.ID, func(s discordtest.InteractionState) bool { return s.OriginalID != "" })
			must(t, err)
			waitAnswered(t, w.dc, st.OriginalID, "threaded slash")
			return st.OriginalID, []string{"threaded slash"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dc := newShardFake(t, nil)
			up := llmtest.NewServer()
			t.Cleanup(up.Close)
			user := dc.AddUser("alice")
			g := dc.AddGuild("guild")
			must(t, dc.AddMember(g.ID, user.ID, 0))
			ch, err := dc.AddChannel(g.ID, "general")
			must(t, err)
			store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
			must(t, err)
			t.Cleanup(func() { store.Close() })
			a := runShardBotOn(t, dc, up, discord.Options{Threads: tt.threads}, store)
			b := runShardBotOn(t, dc, up, discord.Options{Threads: tt.threads}, store)
			if _, err := dc.WaitSessions(testCtx(t), func(ss []discordtest.GatewaySession) bool {
				n := 0
				for _, s := range ss {
					if s.Connected {
						n++
					}
				}
				return n == 2
			}); err != nil {
				t.Fatalf("two connections not up: %v", err)
			}
			waitRegistered(t, dc, 2)

			chID, want := tt.ask(t, world{dc, user, ch})
			// Closed, both have handled everything they were given.
			var wg sync.WaitGroup
			wg.Go(a.close)
			wg.Go(b.close)
			wg.Wait()
			var got []string
			for _, m := range dc.Messages(chID) {
				if m.AuthorID == dc.AppID() && m.Type != 18 { // not a "thread created" notice
					got = append(got, m.Text())
				}
			}
			if len(got) != len(want) || !strings.Contains(strings.Join(got, "\n"), want[0]) {
				t.Errorf("bot messages %q, want %d containing %q", got, len(want), want[0])
			}
			for _, sb := range []*shardBot{a, b} {
				for _, warn := range []string{"answer interaction", "request failed", "cannot open a thread", "answering in the channel"} {
					if n := sb.logs.count(warn); n != 0 {
						t.Errorf("logged %q %d times, want none (a duplicate is dropped quietly)", warn, n)
					}
				}
			}
		})
	}
}

// waitAnswered waits for a finished bot message in channelID containing
// want.
func waitAnswered(t *testing.T, dc *discordtest.Server, channelID, want string) {
	t.Helper()
	if _, err := dc.WaitMessage(testCtx(t), func(m discordtest.Message) bool {
		return m.ChannelID == channelID && m.AuthorID == dc.AppID() && done(m) && strings.Contains(m.Text(), want)
	}); err != nil {
		t.Fatalf("no finished answer containing %q in %s", want, channelID)
	}
}

// waitCommands waits until the slash commands are registered.
// waitRegistered waits until n bots registered their global commands:
// each has finalised what an earlier run left (Recover runs first), so
// that it cannot take a question asked from now on for a leftover.
func waitRegistered(t *testing.T, dc *discordtest.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		puts := 0
		for _, c := range dc.Calls() {
			if c.Method == "PUT" && c.Route == "/applications/{app}/commands" && c.Status == 200 {
				puts++
			}
		}
		if puts >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("commands registered %d times, want %d", puts, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
