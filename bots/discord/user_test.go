package discord_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// userInstallRig is a rig whose app supports user installs and whose
// commands are global.
func userInstallRig(t *testing.T) *rig {
	return newRigWith(t, func(o *discordtest.Options) { o.UserInstall = true }, func(r *rig) { r.opts.Guilds = nil })
}

func TestBot_RegisterCommands_UserInstall(t *testing.T) {
	t.Run("AppWithoutUserInstall", func(t *testing.T) {
		// Discord refuses USER_INSTALL for an app that does not support
		// it: the commands are registered for server installs, with a
		// warning.
		r := newRig(t, func(r *rig) { r.opts.Guilds = nil })
		cmds := r.dc.Commands("")
		if len(cmds) == 0 {
			t.Fatal("no global commands")
		}
		for _, c := range cmds {
			if c.IntegrationTypes != nil || c.Contexts != nil {
				t.Errorf("/%s: integration_types %v, contexts %v; want the app's defaults", c.Name, c.IntegrationTypes, c.Contexts)
			}
		}
		if n := r.logs.count("enable User Install in the Developer Portal"); n != 1 {
			t.Errorf("the warning was logged %d times, want once", n)
		}
	})
	t.Run("GuildCommands", func(t *testing.T) {
		// discord.guilds: commands per guild, where Discord takes no
		// contexts.
		r := newRig(t)
		for _, c := range r.dc.Commands(r.guild.ID) {
			if c.IntegrationTypes != nil || c.Contexts != nil {
				t.Errorf("/%s: integration_types %v, contexts %v in a guild command", c.Name, c.IntegrationTypes, c.Contexts)
			}
		}
	})
}

// TestBot_UserInstall registers the commands for user installs and runs
// /chat where only a user install reaches: a server the bot is not in and
// a group DM. The answer comes through the interaction (its original
// response and follow-ups), never as a channel message; one longer than
// six messages ends at the sixth with a note.
func TestBot_UserInstall(t *testing.T) {
	r := userInstallRig(t)
	cmds := r.dc.Commands("")
	if len(cmds) == 0 {
		t.Fatal("no global commands")
	}
	for _, c := range cmds {
		if !slices.Equal(c.IntegrationTypes, []int{0, 1}) || !slices.Equal(c.Contexts, []int{0, 1, 2}) {
			t.Errorf("/%s: integration_types %v, contexts %v; want [0 1] and [0 1 2]", c.Name, c.IntegrationTypes, c.Contexts)
		}
	}

	stranger := r.dc.AddUser("stranger")
	must(t, r.dc.InstallApp(stranger.ID))
	elsewhere := r.dc.AddGuildWithoutBot("elsewhere")
	ch, err := r.dc.AddChannel(elsewhere.ID, "general")
	must(t, err)
	must(t, r.dc.AddMember(elsewhere.ID, stranger.ID, 0))
	group, err := r.dc.AddGroupDM("friends", stranger.ID, r.user.ID)
	must(t, err)

	for _, tc := range []struct {
		name    string
		channel string
		answer  string
	}{
		{"Guild", ch.ID, essay(5000)},
		{"GroupDM", group.ID, "a short answer for friends"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.up.Enqueue(llmtest.Script{Content: chunks(tc.answer, 200), Interval: time.Millisecond})
			st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "hello from afar"}}, stranger.ID, tc.channel)
			tail := tc.answer[len(tc.answer)-20:]
			r.final(t, tc.channel, tail)
			st, _ = r.dc.InteractionState(st.ID)
			var texts []string
			for _, m := range r.botMessages(tc.channel) {
				if m.InteractionID != st.ID {
					t.Errorf("message %s was not sent through the interaction", m.ID)
				}
				texts = append(texts, m.Text())
			}
			if got := strings.Join(texts, "\n"); strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(tc.answer), " ") {
				t.Errorf("the answer shown differs:\n%.200q…", got)
			}
			for _, c := range r.dc.Calls() {
				if c.ChannelID == tc.channel && strings.HasPrefix(c.Route, "/channels/") {
					t.Errorf("the bot called %s %s in a channel it cannot reach (%d)", c.Method, c.Route, c.Status)
				}
			}
			msg := r.waitHandled(t, "from "+tc.name, func(m sessions.Message) bool { return m.Key.Chat == tc.channel })
			if !msg.Shared || msg.ID != st.ID {
				t.Errorf("handed %+v, want a shared conversation and the interaction's id", msg)
			}
		})
	}

	t.Run("Cut", func(t *testing.T) {
		r.up.Enqueue(llmtest.Script{Content: chunks(essay(30000), 400), Interval: time.Millisecond})
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "write a book"}}, stranger.ID, ch.ID)
		r.waitIdle(t, ch.ID)
		var msgs []discordtest.Message
		for _, m := range r.botMessages(ch.ID) {
			if m.InteractionID == st.ID {
				msgs = append(msgs, m)
			}
		}
		if len(msgs) != 6 {
			t.Fatalf("%d messages, want 6 (the original response and 5 follow-ups)", len(msgs))
		}
		last := msgs[len(msgs)-1]
		if !strings.HasSuffix(last.Text(), "may take 6 messages. Ask for a shorter answer, or add Palaver to the server.") ||
			!slices.Contains(last.CustomIDs(), "palaver:retry:"+st.ID) {
			t.Errorf("last message ends %q with buttons %q, want the note and Retry", last.Text()[max(0, len(last.Text())-200):], last.CustomIDs())
		}
		for _, c := range r.dc.Calls() {
			if c.InteractionID == st.ID && c.Status >= 400 && c.Status != 429 {
				t.Errorf("%s %s refused: %d %s", c.Method, c.Route, c.Status, c.Response)
			}
		}
	})
}
