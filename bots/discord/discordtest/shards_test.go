package discordtest_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

// identifyShard connects a bare websocket client, identifies with shard
// (none when nil) and returns the connection and the first frame after
// the IDENTIFY, or the error that ended the connection.
func identifyShard(t *testing.T, srv *discordtest.Server, shard *[2]int) (*websocket.Conn, frame, error) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL(), "http")+"/ws/?v=9&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	readFrame(t, c) // HELLO
	d := map[string]any{"token": "Bot " + srv.Token(), "intents": int64(discord.Intents)}
	if shard != nil {
		d["shard"] = shard
	}
	c.WriteJSON(map[string]any{"op": 2, "d": d})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f frame
	err = c.ReadJSON(&f)
	return c, f, err
}

func mustReady(t *testing.T, f frame, err error) {
	t.Helper()
	if err != nil || f.T != "READY" {
		t.Fatalf("after IDENTIFY: %+v, %v; want READY", f, err)
	}
}

// frozen is a clock that moves only with Server.Advance.
func frozen() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

func TestServer_AddGuildOnShard(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{Now: frozen})
	t.Cleanup(srv.Close)
	for shard := range 5 {
		g, err := srv.AddGuildOnShard("g", shard, 5)
		if err != nil {
			t.Fatal(err)
		}
		if got := discordtest.ShardOf(g.ID, 5); got != shard {
			t.Errorf("guild %s on shard %d, want %d", g.ID, got, shard)
		}
	}
	if _, err := srv.AddGuildOnShard("g", 2, 2); err == nil {
		t.Error("shard 2 of 2 accepted")
	}
}

// Each shard receives its guilds' events, and shard 0 the DMs too.
func TestGateway_ShardRouting(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{Now: frozen})
	t.Cleanup(srv.Close)
	u := srv.AddUser("bob")
	var chans [2]discordtest.Channel
	for shard := range 2 {
		g, err := srv.AddGuildOnShard("g", shard, 2)
		if err != nil {
			t.Fatal(err)
		}
		srv.AddMember(g.ID, u.ID, 0)
		chans[shard], _ = srv.AddChannel(g.ID, "general")
	}
	dm, _ := srv.DM(u.ID)
	var conns [2]*websocket.Conn
	for shard := range 2 {
		c, ready, err := identifyShard(t, srv, &[2]int{shard, 2})
		mustReady(t, ready, err)
		var r struct {
			Shard  [2]int
			Guilds []struct{ ID string }
		}
		json.Unmarshal(ready.D, &r)
		if r.Shard != [2]int{shard, 2} || len(r.Guilds) != 1 || r.Guilds[0].ID != chans[shard].GuildID {
			t.Errorf("READY of shard %d: %s", shard, ready.D)
		}
		conns[shard] = c
	}

	tests := []struct {
		name    string
		channel string
		shard   int
	}{
		{"Guild0", chans[0].ID, 0},
		{"Guild1", chans[1].ID, 1},
		{"DM", dm.ID, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := srv.SendMessage(discordtest.UserMessage{ChannelID: tt.channel, AuthorID: u.ID,
				Content: discordtest.Mention(srv.AppID()) + " " + tt.name})
			if err != nil {
				t.Fatal(err)
			}
			if got := srv.Delivered(m.ID); got != 1 {
				t.Errorf("delivered to %d connections, want 1", got)
			}
			f := readUntil(t, conns[tt.shard], "MESSAGE_CREATE")
			if !strings.Contains(string(f.D), m.ID) {
				t.Errorf("shard %d received %s, want message %s", tt.shard, f.D, m.ID)
			}
		})
	}
	// Nothing reached the other shard: the next event each shard reads is
	// a new guild's, routed by its id.
	for shard := range 2 {
		g, _ := srv.AddGuildOnShard("late", shard, 2)
		f := readFrame(t, conns[shard])
		if f.T != "GUILD_CREATE" || !strings.Contains(string(f.D), g.ID) {
			t.Errorf("shard %d read %s %s, want GUILD_CREATE of %s", shard, f.T, f.D, g.ID)
		}
	}
	for _, s := range srv.GatewaySessions() {
		if s.Shard[1] != 2 {
			t.Errorf("session %+v, want a shard of 2", s)
		}
	}
}

func TestGateway_IdentifyRefused(t *testing.T) {
	tests := []struct {
		name  string
		shard *[2]int
		code  int
	}{
		{"ShardPastTotal", &[2]int{2, 2}, 4010},
		{"NegativeShard", &[2]int{-1, 2}, 4010},
		{"ZeroTotal", &[2]int{0, 0}, 4010},
		{"ShardingRequired", nil, 4011},
		{"ShardTooBig", &[2]int{0, 1}, 4011},
	}
	srv := discordtest.NewServer(discordtest.Options{Now: frozen, GuildsPerShard: 2})
	t.Cleanup(srv.Close)
	for shard := range 3 {
		if _, err := srv.AddGuildOnShard("g", shard, 3); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f, err := identifyShard(t, srv, tt.shard)
			if !websocket.IsCloseError(err, tt.code) {
				t.Errorf("after IDENTIFY: %+v, %v; want close %d", f, err, tt.code)
			}
		})
	}
	// Two shards serve at most two guilds each.
	for shard := range 2 {
		_, f, err := identifyShard(t, srv, &[2]int{shard, 2})
		mustReady(t, f, err)
	}
	ids := srv.Identifies()
	if len(ids) != len(tests)+2 {
		t.Fatalf("%d identifies recorded, want %d", len(ids), len(tests)+2)
	}
	for i, tt := range tests {
		if ids[i].CloseCode != tt.code || ids[i].Accepted() {
			t.Errorf("identify %d recorded as %+v, want close %d", i, ids[i], tt.code)
		}
	}
}

// An IDENTIFY sooner than IdentifyWindow after another in its bucket is
// answered with Invalid Session; other buckets go at once.
func TestGateway_IdentifyRate(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{Now: frozen, IdentifyWindow: 5 * time.Second,
		SessionStartLimit: discordtest.SessionStartLimit{MaxConcurrency: 2}})
	t.Cleanup(srv.Close)
	_, f, err := identifyShard(t, srv, &[2]int{0, 4})
	mustReady(t, f, err)
	c, f, err := identifyShard(t, srv, &[2]int{2, 4}) // bucket 0 again
	if err != nil || f.Op != 9 || string(f.D) != "false" {
		t.Fatalf("second IDENTIFY in bucket 0: %+v, %v; want Invalid Session (op 9, d false)", f, err)
	}
	_, f, err = identifyShard(t, srv, &[2]int{1, 4}) // bucket 1
	mustReady(t, f, err)

	srv.Advance(discord.IdentifyWindow)
	c.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": "Bot " + srv.Token(), "shard": [2]int{2, 4}}})
	if f := readFrame(t, c); f.T != "READY" {
		t.Fatalf("IDENTIFY after the window: %+v, want READY", f)
	}
	var refused []int
	for _, id := range srv.Identifies() {
		if id.InvalidSession {
			refused = append(refused, id.Shard[0])
		}
	}
	if len(refused) != 1 || refused[0] != 2 {
		t.Errorf("Invalid Session for shards %v, want [2]", refused)
	}
}

// GET /gateway/bot reports the recommended shards and the session start
// limit, which each IDENTIFY spends; past it every connection is closed.
func TestGateway_SessionStartLimit(t *testing.T) {
	srv := discordtest.NewServer(discordtest.Options{Now: frozen, Shards: 3,
		SessionStartLimit: discordtest.SessionStartLimit{Total: 10, Remaining: 2, ResetAfter: time.Hour, MaxConcurrency: 3}})
	t.Cleanup(srv.Close)
	s, err := discord.NewSession(discord.SessionOptions{Token: srv.Token(), APIBase: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	gb, err := s.GatewayBot()
	if err != nil {
		t.Fatal(err)
	}
	l := gb.SessionStartLimit
	if gb.Shards != 3 || l.Total != 10 || l.Remaining != 2 || l.ResetAfter != 3600000 || l.MaxConcurrency != 3 {
		t.Errorf("GET /gateway/bot = %+v", gb)
	}
	first, f, err := identifyShard(t, srv, nil)
	mustReady(t, f, err)
	_, f, err = identifyShard(t, srv, nil)
	mustReady(t, f, err)
	if got := srv.SessionStarts().Remaining; got != 0 {
		t.Errorf("remaining %d after two identifies, want 0", got)
	}
	if _, _, err := identifyShard(t, srv, nil); !websocket.IsCloseError(err, 4004) {
		t.Errorf("IDENTIFY past the limit: %v, want close 4004", err)
	}
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := first.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, 4004) {
				t.Errorf("first session ended with %v, want close 4004", err)
			}
			break
		}
	}
	srv.Advance(time.Hour)
	if got := srv.SessionStarts(); got.Remaining != 10 || got.ResetAfter != 24*time.Hour {
		t.Errorf("after the reset: %+v, want 10 remaining for 24h", got)
	}
}
