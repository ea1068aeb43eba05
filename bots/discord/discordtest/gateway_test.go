package discordtest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  int64           `json:"s"`
	T  string          `json:"t"`
}

// rawGateway connects a bare websocket client and identifies with intents.
func rawGateway(t *testing.T, srv *discordtest.Server, intents int64) (*websocket.Conn, frame) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL(), "http")+"/ws/?v=9&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hello := readFrame(t, c)
	if hello.Op != 10 || !strings.Contains(string(hello.D), `"heartbeat_interval":41250`) {
		t.Fatalf("first frame %+v, want HELLO", hello)
	}
	c.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": "Bot " + srv.Token(), "intents": intents}})
	ready := readFrame(t, c)
	if ready.T != "READY" || ready.S != 1 {
		t.Fatalf("frame after IDENTIFY %+v, want READY with s=1", ready)
	}
	return c, ready
}

func readFrame(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f frame
	if err := c.ReadJSON(&f); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f
}

// readUntil reads frames until one of type typ.
func readUntil(t *testing.T, c *websocket.Conn, typ string) frame {
	t.Helper()
	for {
		if f := readFrame(t, c); f.T == typ {
			return f
		}
	}
}

func TestGateway_Handshake(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{})
	t.Cleanup(srv.Close)
	g := srv.AddGuild("g")
	c, ready := rawGateway(t, srv, int64(discord.Intents))
	var r struct {
		SessionID   string `json:"session_id"`
		User        struct{ ID string }
		Application struct{ ID string }
		Guilds      []struct {
			ID          string
			Unavailable bool
		}
	}
	json.Unmarshal(ready.D, &r)
	if r.SessionID == "" || r.User.ID != srv.AppID() || r.Application.ID != srv.AppID() || len(r.Guilds) != 1 || r.Guilds[0].ID != g.ID {
		t.Errorf("READY %s", ready.D)
	}
	gc := readFrame(t, c)
	if gc.T != "GUILD_CREATE" || gc.S != 2 {
		t.Errorf("second dispatch %+v, want GUILD_CREATE s=2", gc)
	}
	c.WriteJSON(map[string]any{"op": 1, "d": 2})
	if ack := readFrame(t, c); ack.Op != 11 {
		t.Errorf("answer to a heartbeat: %+v, want op 11", ack)
	}
	sess, err := srv.WaitConnected(ctxT(t))
	if err != nil || sess.Intents != int64(discord.Intents) {
		t.Errorf("WaitConnected = %+v, %v", sess, err)
	}
}

func TestGateway_BadToken(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{})
	t.Cleanup(srv.Close)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL(), "http")+"/ws/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readFrame(t, c)
	c.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": "Bot wrong"}})
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, 4004) {
		t.Errorf("got %v, want close 4004", err)
	}
}

func TestGateway_MessageContentIntent(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{})
	t.Cleanup(srv.Close)
	g := srv.AddGuild("g")
	ch, _ := srv.AddChannel(g.ID, "general")
	u := srv.AddUser("bob")
	srv.AddMember(g.ID, u.ID, 0)
	dm, _ := srv.DM(u.ID)
	c, _ := rawGateway(t, srv, int64(discord.Intents))

	tests := []struct {
		name    string
		channel string
		content string
		want    string
	}{
		{"Plain", ch.ID, "hello all", ""},
		{"Mention", ch.ID, discordtest.Mention(srv.AppID()) + " hi", discordtest.Mention(srv.AppID()) + " hi"},
		{"DM", dm.ID, "psst", "psst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := srv.SendMessage(discordtest.UserMessage{ChannelID: tt.channel, AuthorID: u.ID, Content: tt.content}); err != nil {
				t.Fatal(err)
			}
			f := readUntil(t, c, "MESSAGE_CREATE")
			var m struct {
				Content string `json:"content"`
			}
			json.Unmarshal(f.D, &m)
			if m.Content != tt.want {
				t.Errorf("content %q, want %q", m.Content, tt.want)
			}
		})
	}
}

func TestGateway_ResumeReplays(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{NoEcho: true})
	t.Cleanup(srv.Close)
	g := srv.AddGuild("g")
	ch, _ := srv.AddChannel(g.ID, "general")
	u := srv.AddUser("bob")
	srv.AddMember(g.ID, u.ID, 0)
	c, ready := rawGateway(t, srv, int64(discord.Intents|discordgo.IntentsMessageContent))
	var r struct {
		SessionID string `json:"session_id"`
	}
	json.Unmarshal(ready.D, &r)
	last := readUntil(t, c, "GUILD_CREATE").S
	c.Close()
	if _, err := srv.WaitGateway(ctxT(t), func(g discordtest.GatewaySession) bool { return !g.Connected }); err != nil {
		t.Fatal(err)
	}
	srv.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: u.ID, Content: "while away"})

	c2, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL(), "http")+"/ws/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	readFrame(t, c2)
	c2.WriteJSON(map[string]any{"op": 6, "d": map[string]any{"token": "Bot " + srv.Token(), "session_id": r.SessionID, "seq": last}})
	f := readFrame(t, c2)
	if f.T != "MESSAGE_CREATE" || f.S != last+1 || !strings.Contains(string(f.D), "while away") {
		t.Errorf("first frame after RESUME %+v, want the missed MESSAGE_CREATE", f)
	}
	if f := readFrame(t, c2); f.T != "RESUMED" {
		t.Errorf("then %+v, want RESUMED", f)
	}
}

// TestGateway_Discordgo drives the real discordgo client through Open, a
// mention, a slash command answered by deferral and edit, an autocomplete
// query and a button click, over real sockets.
func TestGateway_Discordgo(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{})
	t.Cleanup(srv.Close)
	g := srv.AddGuild("g")
	ch, _ := srv.AddChannel(g.ID, "general")
	thread, _ := srv.AddThread(ch.ID, "topic")
	u := srv.AddUser("alice")
	srv.AddMember(g.ID, u.ID, discordtest.PermManageChannels)

	s, err := discord.NewSession(discord.SessionOptions{Token: srv.Token(), APIBase: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *discordgo.MessageCreate, 10)
	s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		if m.Author.ID != s.State.User.ID {
			msgs <- m
		}
	})
	var mu sync.Mutex
	var handlerErrs []error
	fail := func(err error) {
		if err != nil {
			mu.Lock()
			handlerErrs = append(handlerErrs, err)
			mu.Unlock()
		}
	}
	s.AddHandler(func(s *discordgo.Session, ic *discordgo.InteractionCreate) {
		switch ic.Type {
		case discordgo.InteractionApplicationCommand:
			d := ic.ApplicationCommandData()
			if ic.Member == nil || ic.Member.Permissions&discordgo.PermissionManageChannels == 0 {
				fail(fmt.Errorf("member %+v lacks Manage Channels", ic.Member))
			}
			fail(s.InteractionRespond(ic.Interaction, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}))
			content := "you said " + d.GetOption("prompt").StringValue()
			row := []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
				discordgo.Button{Label: "Stop", CustomID: "stop", Style: discordgo.DangerButton}}}}
			_, err := s.InteractionResponseEdit(ic.Interaction, &discordgo.WebhookEdit{Content: &content, Components: &row}, discordgo.WithRetryOnRatelimit(false))
			fail(err)
		case discordgo.InteractionApplicationCommandAutocomplete:
			var focused string
			for _, o := range ic.ApplicationCommandData().Options {
				if o.Focused {
					focused = o.StringValue()
				}
			}
			fail(s.InteractionRespond(ic.Interaction, &discordgo.InteractionResponse{
				Type: discordgo.InteractionApplicationCommandAutocompleteResult,
				Data: &discordgo.InteractionResponseData{Choices: []*discordgo.ApplicationCommandOptionChoice{{Name: focused + "-1", Value: focused + "-1"}}},
			}))
		case discordgo.InteractionMessageComponent:
			fail(s.InteractionRespond(ic.Interaction, &discordgo.InteractionResponse{
				Type: discordgo.InteractionResponseUpdateMessage,
				Data: &discordgo.InteractionResponseData{Content: ic.Message.Content + " (stopped)", Components: []discordgo.MessageComponent{}},
			}))
		}
	})
	if err := s.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if s.State.User == nil || s.State.User.ID != srv.AppID() {
		t.Fatalf("state user %+v after READY", s.State.User)
	}
	if _, err := s.ApplicationCommandBulkOverwrite(srv.AppID(), g.ID, []*discordgo.ApplicationCommand{
		{Name: "chat", Description: "chat", Options: []*discordgo.ApplicationCommandOption{{Type: discordgo.ApplicationCommandOptionString, Name: "prompt", Description: "p"}}},
		{Name: "model", Description: "model", Options: []*discordgo.ApplicationCommandOption{{Type: discordgo.ApplicationCommandOptionString, Name: "name", Description: "n", Autocomplete: true}}},
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("MessageCreate", func(t *testing.T) {
		first, err := srv.SendMessage(discordtest.UserMessage{ChannelID: thread.ID, AuthorID: u.ID, Content: discordtest.Mention(srv.AppID()) + " hello"})
		if err != nil {
			t.Fatal(err)
		}
		m := <-msgs
		if m.ID != first.ID || m.ChannelID != thread.ID || m.GuildID != g.ID || m.Author.ID != u.ID || m.Member == nil ||
			len(m.Mentions) != 1 || m.Mentions[0].ID != srv.AppID() || !strings.HasSuffix(m.Content, " hello") {
			t.Errorf("MESSAGE_CREATE %+v", m.Message)
		}
		bot, err := s.ChannelMessageSendReply(thread.ID, "hi", m.Reference())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.SendMessage(discordtest.UserMessage{ChannelID: thread.ID, AuthorID: u.ID, Content: "and more", ReplyTo: bot.ID}); err != nil {
			t.Fatal(err)
		}
		r := <-msgs
		if r.ReferencedMessage == nil || r.ReferencedMessage.ID != bot.ID || r.MessageReference == nil ||
			len(r.Mentions) != 1 || r.Mentions[0].ID != srv.AppID() || r.Content != "and more" {
			t.Errorf("reply MESSAGE_CREATE %+v", r.Message)
		}
	})
	t.Run("SlashDeferEdit", func(t *testing.T) {
		it, err := srv.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "hi"}}, u.ID, ch.ID)
		if err != nil {
			t.Fatal(err)
		}
		st, err := srv.WaitInteraction(ctxT(t), it.ID, func(st discordtest.InteractionState) bool {
			m, _ := srv.Message(st.OriginalID)
			return m.Edits > 0
		})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := srv.Message(st.OriginalID)
		if m.Content != "you said hi" || st.ResponseType != discordtest.ResponseDeferredMessage {
			t.Fatalf("original %+v, state %+v", m, st)
		}

		click, err := srv.ClickButton(m.ID, "stop", u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.WaitInteraction(ctxT(t), click.ID, func(st discordtest.InteractionState) bool { return st.ResponseType != 0 }); err != nil {
			t.Fatal(err)
		}
		m, _ = srv.Message(m.ID)
		if m.Content != "you said hi (stopped)" || m.Components != nil {
			t.Errorf("after the click: %+v", m)
		}
	})
	t.Run("Autocomplete", func(t *testing.T) {
		got, err := srv.SendAutocomplete(ctxT(t), "model", []discordtest.Option{{Name: "name", Value: "deep", Focused: true}}, u.ID, ch.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Name != "deep-1" {
			t.Errorf("choices %+v", got)
		}
	})
	t.Run("Resume", func(t *testing.T) {
		srv.DropConnections()
		if _, err := srv.WaitGateway(ctxT(t), func(g discordtest.GatewaySession) bool { return g.Resumes == 1 && g.Connected }); err != nil {
			t.Fatalf("discordgo did not resume: %v", err)
		}
		if _, err := srv.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: u.ID, Content: discordtest.Mention(srv.AppID()) + " back?"}); err != nil {
			t.Fatal(err)
		}
		if m := <-msgs; !strings.HasSuffix(m.Content, "back?") {
			t.Errorf("after resume got %q", m.Content)
		}
		if n := len(srv.GatewaySessions()); n != 1 {
			t.Errorf("%d sessions, want the one resumed", n)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	for _, err := range handlerErrs {
		t.Errorf("handler: %v", err)
	}
}
