package discordtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

// world is a fake with one guild, a channel, a member and a REST-only
// discordgo session (no gateway) pointed at it.
type world struct {
	srv     *discordtest.Server
	s       *discordgo.Session
	guild   discordtest.Guild
	channel discordtest.Channel
	user    discordtest.User
}

func newWorld(t *testing.T, opts discordtest.Options) *world {
	t.Helper()
	srv := discordtest.NewServer(opts)
	t.Cleanup(srv.Close)
	s, err := discord.NewSession(discord.SessionOptions{Token: srv.Token(), APIBase: srv.URL(), RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{srv: srv, s: s}
	w.guild = srv.AddGuild("guild")
	if w.channel, err = srv.AddChannel(w.guild.ID, "general"); err != nil {
		t.Fatal(err)
	}
	w.user = srv.AddUser("alice")
	if err := srv.AddMember(w.guild.ID, w.user.ID, 0); err != nil {
		t.Fatal(err)
	}
	return w
}

// registerChat registers a global /chat command through discordgo.
func (w *world) registerChat(t *testing.T) {
	t.Helper()
	_, err := w.s.ApplicationCommandBulkOverwrite(w.srv.AppID(), "", []*discordgo.ApplicationCommand{{
		Name: "chat", Description: "Talk to the model",
		Options: []*discordgo.ApplicationCommandOption{{
			Type: discordgo.ApplicationCommandOptionString, Name: "prompt", Description: "what to say", Required: true,
		}},
	}, {
		Name: "model", Description: "Pick a model",
		Options: []*discordgo.ApplicationCommandOption{{
			Type: discordgo.ApplicationCommandOptionString, Name: "name", Description: "model", Autocomplete: true,
		}},
	}})
	if err != nil {
		t.Fatalf("ApplicationCommandBulkOverwrite: %v", err)
	}
}

func (w *world) interaction(it discordtest.Interaction) *discordgo.Interaction {
	return &discordgo.Interaction{ID: it.ID, AppID: w.srv.AppID(), Token: it.Token, ChannelID: it.ChannelID}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func restCode(err error) (status, code int) {
	var re *discordgo.RESTError
	if !errors.As(err, &re) {
		return 0, 0
	}
	status = re.Response.StatusCode
	if re.Message != nil {
		code = re.Message.Code
	}
	return status, code
}

func TestServer_UsersMe(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	u, err := w.s.User("@me")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != w.srv.AppID() || !u.Bot || u.Username != "palaver" {
		t.Errorf("got %+v, want the bot user %s", u, w.srv.AppID())
	}
}

func TestServer_Unauthorized(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	bad, err := discord.NewSession(discord.SessionOptions{Token: "wrong", APIBase: w.srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.User("@me")
	if status, _ := restCode(err); status != http.StatusUnauthorized {
		t.Fatalf("got %v, want a 401 RESTError", err)
	}
}

func TestServer_ChannelMessage(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	m, err := w.s.ChannelMessageSend(w.channel.ID, "hello **world**")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID == "" || m.ChannelID != w.channel.ID || m.Author == nil || m.Author.ID != w.srv.AppID() {
		t.Fatalf("created message %+v lacks ids or author", m)
	}
	content := "hello again"
	row := []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
		discordgo.Button{Label: "Stop", CustomID: "stop:1", Style: discordgo.DangerButton},
	}}}
	edited, err := w.s.ChannelMessageEditComplex(&discordgo.MessageEdit{ID: m.ID, Channel: w.channel.ID, Content: &content, Components: &row})
	if err != nil {
		t.Fatal(err)
	}
	if edited.Content != content || edited.EditedTimestamp == nil || len(edited.Components) != 1 {
		t.Errorf("edit answer %+v, want content, edited_timestamp and one row", edited)
	}
	got, ok := w.srv.Message(m.ID)
	if !ok {
		t.Fatal("message not recorded")
	}
	if got.Content != content || got.Edits != 1 || len(got.Versions) != 2 || got.Versions[0].Content != "hello **world**" {
		t.Errorf("recorded %+v", got)
	}
	if ids := got.CustomIDs(); len(ids) != 1 || ids[0] != "stop:1" {
		t.Errorf("CustomIDs = %v, want [stop:1]", ids)
	}
	// Clearing the components leaves the content.
	none := []discordgo.MessageComponent{}
	if _, err := w.s.ChannelMessageEditComplex(&discordgo.MessageEdit{ID: m.ID, Channel: w.channel.ID, Components: &none}); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.srv.Message(m.ID); got.Components != nil || got.Content != content {
		t.Errorf("after clearing components: %+v", got)
	}
	if err := w.s.ChannelTyping(w.channel.ID); err != nil {
		t.Errorf("ChannelTyping: %v", err)
	}
	if err := w.s.ChannelMessageDelete(w.channel.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	_, err = w.s.ChannelMessageEdit(w.channel.ID, m.ID, "too late")
	if _, code := restCode(err); code != 10008 {
		t.Errorf("edit of a deleted message: %v, want Unknown Message", err)
	}
}

func TestServer_ContentLimit(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	tests := []struct {
		name    string
		content string
		code    int
	}{
		{"OK2000Runes", strings.Repeat("é", 2000), 0},
		{"ErrTooLong", strings.Repeat("a", 2001), 50035},
		{"ErrEmpty", "", 50006},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.s.ChannelMessageSendComplex(w.channel.ID, &discordgo.MessageSend{Content: tt.content})
			status, code := restCode(err)
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			if status != http.StatusBadRequest || code != tt.code {
				t.Fatalf("got %v, want 400 code %d", err, tt.code)
			}
		})
	}
	// The error body names the field, as Discord's does.
	_, err := w.s.ChannelMessageSend(w.channel.ID, strings.Repeat("x", 2001))
	var re *discordgo.RESTError
	if !errors.As(err, &re) || !strings.Contains(string(re.ResponseBody), `"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH"`) {
		t.Errorf("body %s lacks the content error", re.ResponseBody)
	}
}

func TestServer_EmbedLimits(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	tests := []struct {
		name   string
		embeds []*discordgo.MessageEmbed
		ok     bool
	}{
		{"OK", []*discordgo.MessageEmbed{{Description: strings.Repeat("d", 4096)}}, true},
		{"ErrDescription", []*discordgo.MessageEmbed{{Description: strings.Repeat("d", 4097)}}, false},
		{"ErrTotal", []*discordgo.MessageEmbed{{Description: strings.Repeat("d", 4000)}, {Description: strings.Repeat("d", 2001)}}, false},
		{"ErrCount", make([]*discordgo.MessageEmbed, 11), false},
	}
	for i := range tests[3].embeds {
		tests[3].embeds[i] = &discordgo.MessageEmbed{Title: "t"}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.s.ChannelMessageSendComplex(w.channel.ID, &discordgo.MessageSend{Embeds: tt.embeds})
			if tt.ok != (err == nil) {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestServer_RateLimitWindow(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := newWorld(t, discordtest.Options{Now: clock})
	m, err := w.s.ChannelMessageSend(w.channel.ID, "0")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 5; i++ {
		if _, err := w.s.ChannelMessageEdit(w.channel.ID, m.ID, "edit", discordgo.WithRetryOnRatelimit(false)); err != nil {
			t.Fatalf("edit %d: %v", i, err)
		}
	}
	// The sixth write within 5 s is refused; the fake clock has not moved,
	// so retry_after is the whole window. discordgo itself would wait for
	// the reset it was told of (Remaining 0) before sending: a fresh
	// limiter stands for a client that ignored the headers.
	w.s.Ratelimiter = discordgo.NewRatelimiter()
	_, err = w.s.ChannelMessageEdit(w.channel.ID, m.ID, "sixth", discordgo.WithRetryOnRatelimit(false))
	var rl *discordgo.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("sixth edit: got %v, want *discordgo.RateLimitError", err)
	}
	if rl.RetryAfter != 5*time.Second {
		t.Errorf("RetryAfter = %v, want 5s", rl.RetryAfter)
	}
	last := w.srv.Calls()[len(w.srv.Calls())-1]
	if last.Status != http.StatusTooManyRequests || !last.Write || last.ChannelID != w.channel.ID {
		t.Errorf("last call %+v, want a recorded 429 write", last)
	}
	if ch, n := w.srv.MaxWritesInWindow(5 * time.Second); n != 5 || ch != w.channel.ID {
		t.Errorf("MaxWritesInWindow = %s, %d; want %s, 5", ch, n, w.channel.ID)
	}
	if _, n := w.srv.MaxWritesInWindow(time.Nanosecond); n != 5 {
		t.Errorf("MaxWritesInWindow(1ns) = %d; the five writes share one instant", n)
	}
}

func TestServer_RateLimitHeaders(t *testing.T) {
	w := newWorld(t, discordtest.Options{MessageLimit: 2, MessageWindow: time.Second})
	req := func() *http.Response {
		r, _ := http.NewRequest("POST", w.srv.URL()+"/api/v9/channels/"+w.channel.ID+"/messages", strings.NewReader(`{"content":"x"}`))
		r.Header.Set("Authorization", "Bot "+w.srv.Token())
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	r1 := req()
	if got := r1.Header.Get("X-RateLimit-Remaining"); got != "1" || r1.Header.Get("X-RateLimit-Limit") != "2" {
		t.Errorf("first: Remaining %q Limit %q, want 1 and 2", got, r1.Header.Get("X-RateLimit-Limit"))
	}
	for _, h := range []string{"X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"} {
		if r1.Header.Get(h) == "" {
			t.Errorf("missing %s", h)
		}
	}
	req()
	r3 := req()
	if r3.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third: status %d, want 429", r3.StatusCode)
	}
	var body struct {
		Message    string  `json:"message"`
		RetryAfter float64 `json:"retry_after"`
		Global     *bool   `json:"global"`
	}
	if err := json.NewDecoder(r3.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Message != "You are being rate limited." || body.RetryAfter <= 0 || body.RetryAfter > 1 || body.Global == nil || *body.Global {
		t.Errorf("429 body %+v", body)
	}
	if r3.Header.Get("Retry-After") != "1" || r3.Header.Get("X-RateLimit-Scope") != "user" || r3.Header.Get("X-RateLimit-Global") != "" {
		t.Errorf("429 headers %v", r3.Header)
	}
}

func TestServer_InjectRateLimit(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	w.srv.InjectRateLimit(w.channel.ID, 1, 300*time.Millisecond)
	_, err := w.s.ChannelMessageSend(w.channel.ID, "x", discordgo.WithRetryOnRatelimit(false))
	var rl *discordgo.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 300*time.Millisecond {
		t.Fatalf("got %v, want a RateLimitError with 300ms", err)
	}
	// discordgo now holds the bucket until the reset; the next call waits
	// for it and succeeds.
	if _, err := w.s.ChannelMessageSend(w.channel.ID, "x", discordgo.WithRetryOnRatelimit(false)); err != nil {
		t.Fatalf("after the injected 429: %v", err)
	}
}

func TestServer_SlashDeferEdit(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	w.registerChat(t)
	it, err := w.srv.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "hi"}}, w.user.ID, w.channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	di := w.interaction(it)
	if err := w.s.InteractionRespond(di, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}); err != nil {
		t.Fatal(err)
	}
	orig, err := w.s.InteractionResponse(di)
	if err != nil {
		t.Fatal(err)
	}
	if orig.Flags&discordgo.MessageFlagsLoading == 0 {
		t.Errorf("deferred original flags %b, want loading", orig.Flags)
	}
	content := "answer"
	if _, err := w.s.InteractionResponseEdit(di, &discordgo.WebhookEdit{Content: &content}, discordgo.WithRetryOnRatelimit(false)); err != nil {
		t.Fatal(err)
	}
	st, _ := w.srv.InteractionState(it.ID)
	m, _ := w.srv.Message(st.OriginalID)
	if st.ResponseType != discordtest.ResponseDeferredMessage || m.Content != "answer" || m.Flags&discordtest.FlagLoading != 0 || m.InteractionID != it.ID {
		t.Errorf("state %+v, original %+v", st, m)
	}
	// A second initial response is refused.
	err = w.s.InteractionRespond(di, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource})
	if _, code := restCode(err); code != 40060 {
		t.Errorf("second response: %v, want 40060", err)
	}
	// Follow-ups are their own messages.
	f, err := w.s.FollowupMessageCreate(di, true, &discordgo.WebhookParams{Content: "more"})
	if err != nil {
		t.Fatal(err)
	}
	more := "more, edited"
	if _, err := w.s.FollowupMessageEdit(di, f.ID, &discordgo.WebhookEdit{Content: &more}); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.srv.Message(f.ID); got.Content != more || got.ChannelID != w.channel.ID {
		t.Errorf("follow-up %+v", got)
	}
	// An over-long edit through the webhook is refused like a channel edit.
	long := strings.Repeat("a", 2001)
	_, err = w.s.InteractionResponseEdit(di, &discordgo.WebhookEdit{Content: &long})
	if _, code := restCode(err); code != 50035 {
		t.Errorf("over-long webhook edit: %v, want 50035", err)
	}
}

func TestServer_FirstFollowupFillsDeferred(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	w.registerChat(t)
	it, err := w.srv.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "hi"}}, w.user.ID, w.channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	di := w.interaction(it)
	if err := w.s.InteractionRespond(di, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}); err != nil {
		t.Fatal(err)
	}
	f, err := w.s.FollowupMessageCreate(di, true, &discordgo.WebhookParams{Content: "first"})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := w.srv.InteractionState(it.ID)
	if f.ID != st.OriginalID {
		t.Errorf("first follow-up id %s, want the deferred original %s", f.ID, st.OriginalID)
	}
}

func TestServer_InteractionDeadlines(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	w.registerChat(t)
	send := func() *discordgo.Interaction {
		it, err := w.srv.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "hi"}}, w.user.ID, w.channel.ID)
		if err != nil {
			t.Fatal(err)
		}
		return w.interaction(it)
	}
	defer_ := &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}

	t.Run("ErrLateCallback", func(t *testing.T) {
		di := send()
		w.srv.Advance(3*time.Second + time.Millisecond)
		err := w.s.InteractionRespond(di, defer_)
		if status, code := restCode(err); status != http.StatusNotFound || code != 10062 {
			t.Fatalf("got %v, want 404 Unknown interaction", err)
		}
	})
	t.Run("ErrExpiredToken", func(t *testing.T) {
		di := send()
		if err := w.s.InteractionRespond(di, defer_); err != nil {
			t.Fatal(err)
		}
		content := "still here"
		if _, err := w.s.InteractionResponseEdit(di, &discordgo.WebhookEdit{Content: &content}); err != nil {
			t.Fatal(err)
		}
		w.srv.Advance(15*time.Minute + time.Second)
		_, err := w.s.InteractionResponseEdit(di, &discordgo.WebhookEdit{Content: &content})
		if status, code := restCode(err); status != http.StatusUnauthorized || code != 50027 {
			t.Fatalf("got %v, want 401 Invalid Webhook Token", err)
		}
	})
	t.Run("ErrWrongToken", func(t *testing.T) {
		di := send()
		di.Token = "nope"
		if _, code := restCode(w.s.InteractionRespond(di, defer_)); code != 10062 {
			t.Fatal("a wrong token was accepted")
		}
	})
}

func TestServer_WebhookEditsShareChannelLimit(t *testing.T) {
	w := newWorld(t, discordtest.Options{WebhookLimit: -1})
	w.registerChat(t)
	it, err := w.srv.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "hi"}}, w.user.ID, w.channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	di := w.interaction(it)
	if err := w.s.InteractionRespond(di, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := w.s.ChannelMessageSend(w.channel.ID, "busy", discordgo.WithRetryOnRatelimit(false)); err != nil {
			t.Fatal(err)
		}
	}
	c := "x"
	for i := 0; i < 2; i++ {
		if _, err := w.s.InteractionResponseEdit(di, &discordgo.WebhookEdit{Content: &c}, discordgo.WithRetryOnRatelimit(false)); err != nil {
			t.Fatalf("edit %d: %v", i, err)
		}
	}
	_, err = w.s.InteractionResponseEdit(di, &discordgo.WebhookEdit{Content: &c}, discordgo.WithRetryOnRatelimit(false))
	var rl *discordgo.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("sixth write to the channel: %v, want a RateLimitError", err)
	}
	last := w.srv.Calls()[len(w.srv.Calls())-1]
	if last.Status != http.StatusTooManyRequests || last.InteractionID != it.ID {
		t.Errorf("last call %+v, want the refused webhook edit", last)
	}
}

func TestServer_Commands(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	w.registerChat(t)
	first := w.srv.Commands("")
	if len(first) != 2 || first[0].Name != "chat" || first[1].Name != "model" {
		t.Fatalf("Commands = %+v", first)
	}
	// Overwriting keeps the id of a command whose name stays.
	cmds, err := w.s.ApplicationCommandBulkOverwrite(w.srv.AppID(), w.guild.ID, []*discordgo.ApplicationCommand{{Name: "chat", Description: "d"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 || cmds[0].GuildID != w.guild.ID || cmds[0].ID == "" {
		t.Errorf("guild overwrite answered %+v", cmds)
	}
	_, err = w.s.ApplicationCommandBulkOverwrite(w.srv.AppID(), "", []*discordgo.ApplicationCommand{{Name: "Bad Name", Description: "d"}})
	if _, code := restCode(err); code != 50035 {
		t.Errorf("invalid name: %v, want 50035", err)
	}
	if _, err := w.srv.SendSlash("nope", nil, w.user.ID, w.channel.ID); err == nil {
		t.Error("SendSlash of an unregistered command succeeded")
	}
}

func TestServer_GuildModel(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	admin := w.srv.AddUser("admin")
	if err := w.srv.AddMember(w.guild.ID, admin.ID, discordtest.PermManageChannels); err != nil {
		t.Fatal(err)
	}
	if p := w.srv.Permissions(w.guild.ID, admin.ID); p&discordtest.PermManageChannels == 0 {
		t.Errorf("admin permissions %b lack Manage Channels", p)
	}
	if p := w.srv.Permissions(w.guild.ID, w.user.ID); p&discordtest.PermManageChannels != 0 {
		t.Errorf("member permissions %b have Manage Channels", p)
	}
	ch, err := w.s.Channel(w.channel.ID)
	if err != nil || ch.GuildID != w.guild.ID || ch.Type != discordgo.ChannelTypeGuildText {
		t.Errorf("Channel = %+v, %v", ch, err)
	}
	mem, err := w.s.GuildMember(w.guild.ID, admin.ID)
	if err != nil || mem.User.ID != admin.ID || len(mem.Roles) != 1 {
		t.Errorf("GuildMember = %+v, %v", mem, err)
	}
	roles, err := w.s.GuildRoles(w.guild.ID)
	if err != nil || len(roles) < 3 {
		t.Errorf("GuildRoles = %v, %v", roles, err)
	}
}
