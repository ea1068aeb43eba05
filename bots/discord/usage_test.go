package discord_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// restrictedModel is the model only admins may choose in these tests.
const restrictedModel = "fake/deepseek-ai/DeepSeek-V3-0324-Turbo"

// usageRig restricts restrictedModel and registers the commands
// globally, so that they run in DMs too.
func usageRig(t *testing.T) *rig {
	return newRig(t, func(r *rig) {
		r.cfg.Usage.Restricted = []string{restrictedModel}
		r.opts.Guilds = nil
	})
}

// TestBot_RegisterCommands_Usage: /usage is registered with the other
// commands, for user installs too, like /chat.
func TestBot_RegisterCommands_Usage(t *testing.T) {
	r := userInstallRig(t)
	cmds := r.dc.Commands("")
	find := func(name string) discordtest.Command {
		i := slices.IndexFunc(cmds, func(c discordtest.Command) bool { return c.Name == name })
		if i < 0 {
			t.Fatalf("/%s is not registered; registered: %+v", name, cmds)
		}
		return cmds[i]
	}
	usage, chat := find("usage"), find("chat")
	if !slices.Equal(usage.IntegrationTypes, chat.IntegrationTypes) || !slices.Equal(usage.Contexts, chat.Contexts) {
		t.Errorf("/usage: integration_types %v, contexts %v; want /chat's %v, %v",
			usage.IntegrationTypes, usage.Contexts, chat.IntegrationTypes, chat.Contexts)
	}
}

// TestBot_Usage: after an answer /usage shows the asker their own
// tokens, to them alone; an admin also sees the channel's and the
// server's.
func TestBot_Usage(t *testing.T) {
	r := usageRig(t)
	ch := r.channel("usage")
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("counted answer"),
		Usage: &llm.Usage{PromptTokens: 1200, CompletionTokens: 34, TotalTokens: 1234}})
	st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "count me"}}, r.user.ID, ch.ID)
	r.original(t, st, func(m discordtest.Message) bool { return done(m) && strings.Contains(m.Text(), "counted answer") })

	m := r.original(t, r.slash(t, "usage", nil, r.user.ID, ch.ID), done)
	if m.Flags&discordtest.FlagEphemeral == 0 {
		t.Errorf("/usage answered with flags %d, want ephemeral", m.Flags)
	}
	for _, want := range []string{"**Your usage**", "Today: 1,234 tokens (1,200 prompt + 34 answer"} {
		if !strings.Contains(m.Text(), want) {
			t.Errorf("/usage: %q lacks %q", m.Text(), want)
		}
	}
	if strings.Contains(m.Text(), "**This conversation**") {
		t.Errorf("/usage for a member without Manage Channels shows the channel's totals: %q", m.Text())
	}
	checkUsageGolden(t, "member.golden", m.Text())

	// The member with Manage Channels is an admin: the channel's and the
	// server's totals, with the asker among its top users.
	m = r.original(t, r.slash(t, "usage", nil, r.mod.ID, ch.ID), done)
	for _, want := range []string{"**This conversation**", "**This server**", "1. alice — 1,234 tokens"} {
		if !strings.Contains(m.Text(), want) {
			t.Errorf("/usage by an admin: %q lacks %q", m.Text(), want)
		}
	}
	checkUsageGolden(t, "admin.golden", m.Text())
}

// checkUsageGolden compares a /usage reply as Discord shows it with
// testdata/usage/name; go test -update rewrites it.
func checkUsageGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "usage", name)
	// -update is the package's golden-file flag (render_test.go).
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("/usage differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestBot_AuthorAdminAndGroup: what the adapter hands over says who is an
// admin (Manage Channels, discord.admins) and the server it happened in.
func TestBot_AuthorAdminAndGroup(t *testing.T) {
	r := usageRig(t)
	ch := r.channel("admins")
	dm, err := r.dc.DM(r.user.ID)
	must(t, err)
	tests := []struct {
		name      string
		user      string
		channel   string
		wantAdmin bool
		wantGroup string
	}{
		{"Member", r.user.ID, ch.ID, false, r.guild.ID},
		{"ManageChannels", r.mod.ID, ch.ID, true, r.guild.ID},
		{"DM", r.user.ID, dm.ID, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prompt := "who am I " + tt.name
			st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: prompt}}, tt.user, tt.channel)
			r.original(t, st, done)
			got := r.waitHandled(t, "for "+tt.name, func(m sessions.Message) bool { return m.Text == prompt })
			if got.Author.Admin != tt.wantAdmin || got.Group != tt.wantGroup {
				t.Errorf("Author.Admin %v, Group %q; want %v, %q", got.Author.Admin, got.Group, tt.wantAdmin, tt.wantGroup)
			}
		})
	}
}

// TestBot_ModelRestricted: in a DM anyone may choose the model, but not a
// restricted one unless they are an admin.
func TestBot_ModelRestricted(t *testing.T) {
	r := usageRig(t)
	dm, err := r.dc.DM(r.user.ID)
	must(t, err)
	ch := r.channel("restricted")
	tests := []struct {
		name    string
		user    string
		channel string
		model   string
		want    string
	}{
		{"NonAdminRefused", r.user.ID, dm.ID, restrictedModel, "for admins only"},
		{"NonAdminOther", r.user.ID, dm.ID, "fake/echo", "Model set to `fake/echo`."},
		{"Admin", r.mod.ID, ch.ID, restrictedModel, "Model set to `" + restrictedModel + "`."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := r.slash(t, "model", []discordtest.Option{{Name: "name", Value: tt.model}}, tt.user, tt.channel)
			m := r.original(t, st, done)
			if !strings.Contains(m.Text(), tt.want) {
				t.Errorf("/model %s: %q, want %q", tt.model, m.Text(), tt.want)
			}
		})
	}
	if got, err := r.m.Model(r.ctx(), sessions.Key{Platform: "discord", Chat: dm.ID}); err != nil || got != "fake/echo" {
		t.Errorf("DM model %q (%v), want fake/echo", got, err)
	}
}
