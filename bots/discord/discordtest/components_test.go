package discordtest_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

// post sends a raw JSON body to a REST route of the fake with the bot's
// token and returns the status and Discord error body.
func (w *world) send(t *testing.T, method, route, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL()+"/api/v10"+route, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bot "+w.srv.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, out.String()
}

// textDisplays is a V2 body: one container of text displays.
func textDisplays(texts ...string) string {
	var tds []string
	for _, s := range texts {
		b, _ := json.Marshal(s)
		tds = append(tds, `{"type":10,"content":`+string(b)+`}`)
	}
	return `{"flags":32768,"components":[{"type":17,"components":[` + strings.Join(tds, ",") + `]}]}`
}

func TestServer_ComponentsV2(t *testing.T) {
	w := newWorld(t, discordtest.Options{MessageLimit: -1})
	route := "/channels/" + w.channel.ID + "/messages"
	many := strings.Repeat(`{"type":10,"content":"x"},`, 39)
	tests := []struct {
		name   string
		body   string
		status int
		want   string // in the error body
	}{
		{"OK", textDisplays("hello", "world"), 200, ""},
		{"OK4000", textDisplays(strings.Repeat("a", 2500), strings.Repeat("b", 1500)), 200, ""},
		{"OKButtons", `{"flags":32768,"components":[{"type":17,"components":[{"type":10,"content":"x"},` +
			`{"type":1,"components":[{"type":2,"style":2,"label":"Stop","custom_id":"stop"}]}]}]}`, 200, ""},
		{"ErrText", textDisplays(strings.Repeat("a", 2500), strings.Repeat("b", 1501)), 400, "Must be 4000 or fewer in length."},
		{"ErrContent", `{"flags":32768,"content":"hi","components":[{"type":10,"content":"x"}]}`, 400, "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"},
		{"ErrEmbeds", `{"flags":32768,"embeds":[{"title":"t"}],"components":[{"type":10,"content":"x"}]}`, 400, "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"},
		{"ErrTooMany", `{"flags":32768,"components":[{"type":17,"components":[` + many + `{"type":10,"content":"x"}]}]}`, 400, "Must be 40 or fewer in length."},
		{"ErrNested", `{"flags":32768,"components":[{"type":17,"components":[{"type":17,"components":[]}]}]}`, 400, "UNION_TYPE_CHOICES"},
		{"ErrEmptyText", textDisplays(""), 400, "BASE_TYPE_REQUIRED"},
		{"ErrSection", `{"flags":32768,"components":[{"type":9,"components":[{"type":10,"content":"x"}]}]}`, 400, "accessory"},
		{"ErrButtonTopLevel", `{"flags":32768,"components":[{"type":2,"style":2,"custom_id":"x"}]}`, 400, "UNION_TYPE_CHOICES"},
		{"ErrV2TypesWithoutFlag", `{"components":[{"type":10,"content":"x"}]}`, 400, "UNION_TYPE_CHOICES"},
		{"ErrDuplicateID", `{"flags":32768,"components":[{"type":1,"components":[{"type":2,"style":2,"custom_id":"a"},{"type":2,"style":2,"custom_id":"a"}]}]}`,
			400, "COMPONENT_CUSTOM_ID_DUPLICATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := w.send(t, http.MethodPost, route, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("got %d %s, want %d with %q", status, body, tt.status, tt.want)
			}
			if status == 400 && !strings.Contains(body, `"code":50035`) {
				t.Errorf("refusal %s, want code 50035 Invalid Form Body", body)
			}
		})
	}
}

func TestServer_ComponentsV2_Edit(t *testing.T) {
	w := newWorld(t, discordtest.Options{MessageLimit: -1})
	route := "/channels/" + w.channel.ID + "/messages"
	create := func(body string) string {
		status, resp := w.send(t, http.MethodPost, route, body)
		if status != 200 {
			t.Fatalf("create: %d %s", status, resp)
		}
		var m struct{ ID string }
		json.Unmarshal([]byte(resp), &m)
		return m.ID
	}

	v2 := create(textDisplays("first"))
	if status, resp := w.send(t, http.MethodPatch, route+"/"+v2, `{"content":"plain"}`); status != 400 || !strings.Contains(resp, "IS_COMPONENTS_V2") {
		t.Errorf("content edit of a V2 message: %d %s, want refused", status, resp)
	}
	if status, resp := w.send(t, http.MethodPatch, route+"/"+v2, `{"flags":0,"components":[{"type":10,"content":"second"}]}`); status != 200 {
		t.Errorf("V2 edit without the flag: %d %s", status, resp)
	}
	m, _ := w.srv.Message(v2)
	if m.Flags&discordtest.FlagComponentsV2 == 0 || m.Text() != "second" || m.Content != "" {
		t.Errorf("after edits: flags %d, text %q, content %q; want the flag kept and the new text", m.Flags, m.Text(), m.Content)
	}

	legacy := create(`{"content":"old"}`)
	if status, resp := w.send(t, http.MethodPatch, route+"/"+legacy, textDisplays("new")); status != 400 {
		t.Errorf("setting the flag without nulling content: %d %s, want refused", status, resp)
	}
	if status, resp := w.send(t, http.MethodPatch, route+"/"+legacy, `{"content":null,"flags":32768,"components":[{"type":10,"content":"new"}]}`); status != 200 {
		t.Errorf("setting the flag, content nulled: %d %s", status, resp)
	}
	if m, _ := w.srv.Message(legacy); m.Flags&discordtest.FlagComponentsV2 == 0 || m.Text() != "new" {
		t.Errorf("converted message: flags %d, text %q", m.Flags, m.Text())
	}
}

func TestServer_RefuseComponentsV2(t *testing.T) {
	w := newWorld(t, discordtest.Options{MessageLimit: -1, RefuseComponentsV2: true})
	route := "/channels/" + w.channel.ID + "/messages"
	if status, resp := w.send(t, http.MethodPost, route, textDisplays("x")); status != 400 || !strings.Contains(resp, "flags") {
		t.Errorf("V2 create: %d %s, want refused on flags", status, resp)
	}
	if status, resp := w.send(t, http.MethodPost, route, `{"content":"x"}`); status != 200 {
		t.Errorf("content create: %d %s", status, resp)
	}
}

func TestServer_CommandContexts(t *testing.T) {
	tests := []struct {
		name        string
		userInstall bool
		guild       bool
		def         string
		status      int
	}{
		{"OK", true, false, `"integration_types":[0,1],"contexts":[0,1,2]`, 200},
		{"OKGuildOnly", false, false, `"integration_types":[0],"contexts":[0,1]`, 200},
		{"OKGuildScopeIgnored", false, true, `"integration_types":[0,1],"contexts":[0,1,2]`, 200},
		{"ErrUnsupportedInstall", false, false, `"integration_types":[0,1]`, 400},
		{"ErrUnknownType", true, false, `"integration_types":[2]`, 400},
		{"ErrUnknownContext", true, false, `"contexts":[3]`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, discordtest.Options{UserInstall: tt.userInstall})
			route := "/applications/" + w.srv.AppID() + "/commands"
			if tt.guild {
				route = "/applications/" + w.srv.AppID() + "/guilds/" + w.guild.ID + "/commands"
			}
			status, resp := w.send(t, http.MethodPut, route, `[{"name":"chat","description":"Ask",`+tt.def+`}]`)
			if status != tt.status {
				t.Fatalf("got %d %s, want %d", status, resp, tt.status)
			}
			if status == 400 && !strings.Contains(resp, `"code":50035`) {
				t.Errorf("refusal %s, want 50035", resp)
			}
		})
	}
}

// TestServer_UserInstall runs a user-installed command in a guild the bot
// is not in: the interaction names the user install alone, the bot is
// refused the channel, and follow-ups stop at five.
func TestServer_UserInstall(t *testing.T) {
	w := newWorld(t, discordtest.Options{UserInstall: true, MessageLimit: -1, WebhookLimit: -1})
	_, err := w.s.ApplicationCommandBulkOverwrite(w.srv.AppID(), "", []*discordgo.ApplicationCommand{{
		Name: "chat", Description: "Ask",
		IntegrationTypes: &[]discordgo.ApplicationIntegrationType{0, 1},
		Contexts:         &[]discordgo.InteractionContextType{0, 1, 2},
	}, {
		Name: "guildonly", Description: "Server installs only",
		IntegrationTypes: &[]discordgo.ApplicationIntegrationType{0},
	}})
	if err != nil {
		t.Fatal(err)
	}
	other := w.srv.AddGuildWithoutBot("elsewhere")
	ch, err := w.srv.AddChannel(other.ID, "general")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.srv.AddMember(other.ID, w.user.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.srv.SendSlash("chat", nil, w.user.ID, ch.ID); err == nil {
		t.Error("a user without the app ran /chat where the bot is not")
	}
	if err := w.srv.InstallApp(w.user.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.srv.SendSlash("guildonly", nil, w.user.ID, ch.ID); err == nil {
		t.Error("a guild-install command ran where the app is installed by the user alone")
	}
	it, err := w.srv.SendSlash("chat", nil, w.user.ID, ch.ID)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := w.s.ChannelMessageSend(ch.ID, "hi", discordgo.WithRetryOnRatelimit(false)); err == nil {
		t.Error("the bot posted in a channel of a guild it is not in")
	} else if status, code := restCode(err); status != 403 || code != 50001 {
		t.Errorf("channel post: %d %d, want 403 50001 Missing Access", status, code)
	}
	if err := w.s.InteractionRespond(w.interaction(it), &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}); err != nil {
		t.Fatal(err)
	}
	if want := map[int]string{discordtest.InstallUser: w.user.ID}; !maps.Equal(it.Owners, want) || it.Context != discordtest.ContextGuild {
		t.Errorf("owners %v, context %d; want %v in a guild", it.Owners, it.Context, want)
	}
	if _, err := w.s.InteractionResponseEdit(w.interaction(it), &discordgo.WebhookEdit{Content: ptr("answer")}); err != nil {
		t.Fatal(err)
	}
	for i := range discordtest.MaxUserInstallFollowups + 1 {
		_, err := w.s.FollowupMessageCreate(w.interaction(it), true, &discordgo.WebhookParams{Content: fmt.Sprint("part ", i)})
		if i < discordtest.MaxUserInstallFollowups && err != nil {
			t.Fatalf("follow-up %d: %v", i, err)
		}
		if i == discordtest.MaxUserInstallFollowups {
			if status, code := restCode(err); status != 400 || code != 40094 {
				t.Errorf("sixth follow-up: %d %d (%v), want 400 40094", status, code, err)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
