package discord

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

func TestShardOf(t *testing.T) {
	for _, tt := range []struct {
		guild string
		total int
		want  int
	}{
		{"", 4, 0},                    // a DM
		{"197038439483310086", 1, 0},  // one shard
		{"197038439483310086", 16, 2}, // (id >> 22) % 16
		{"41771983423143937", 4, 2},
		{"not a number", 4, 0},
	} {
		if got := shardOf(tt.guild, tt.total); got != tt.want {
			t.Errorf("shardOf(%q, %d) = %d, want %d", tt.guild, tt.total, got, tt.want)
		}
	}
}

func TestNewer(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"1000", "999", true},
		{"999", "1000", false},
		{"1579068292893507585", "1579068292893507584", true},
		{"1579068292893507584", "1579068292893507584", false},
	} {
		if got := newer(tt.a, tt.b); got != tt.want {
			t.Errorf("newer(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// A channel is remembered once a message there was meant for the bot;
// its mark only moves forward; the least recently active channels go
// beyond catchUpChannels.
func TestCatchUp_Saw(t *testing.T) {
	var c catchUp
	c.setTotal(1)
	now := time.Now()
	msg := func(ch, id string) *discordgo.Message { return &discordgo.Message{ID: id, ChannelID: ch} }
	c.saw(msg("a", "10"), "", false, now)
	if got := c.channels(0); len(got) != 0 {
		t.Fatalf("a channel never asked in is remembered: %v", got)
	}
	c.saw(msg("a", "10"), "", true, now)
	c.saw(msg("a", "12"), "", false, now)
	c.saw(msg("a", "11"), "", false, now)
	if got := c.channels(0)["a"].Last; got != "12" {
		t.Errorf("mark %s, want the newest message seen, 12", got)
	}
	for i := range catchUpChannels {
		c.saw(msg(fmt.Sprint("c", i), "20"), "", true, now.Add(time.Duration(i+1)*time.Second))
	}
	got := c.channels(0)
	if len(got) != catchUpChannels {
		t.Errorf("%d channels remembered, want %d", len(got), catchUpChannels)
	}
	if _, ok := got["a"]; ok {
		t.Error("the least recently active channel was kept past the bound")
	}
}

// What was seen is written only once the shard's kept channels were read
// (a message can arrive before the READY's catching up reads them), and
// then with them.
func TestCatchUp_FlushAfterLoad(t *testing.T) {
	st, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	now := time.Now()
	kept, _ := json.Marshal(map[string]seenChannel{"old": {Last: "5", At: now.Add(-time.Hour)}, "stale": {Last: "1", At: now.Add(-48 * time.Hour)}})
	if err := st.SetValue(ctx, stateName(0, 1), kept); err != nil {
		t.Fatal(err)
	}
	var c catchUp
	c.setTotal(1)
	c.saw(&discordgo.Message{ID: "9", ChannelID: "new"}, "", true, now)
	if err := c.flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	if raw, _ := st.Value(ctx, stateName(0, 1)); string(raw) != string(kept) {
		t.Fatalf("written before the kept channels were read: %s", raw)
	}
	if err := c.load(ctx, st, 0, now); err != nil {
		t.Fatal(err)
	}
	if err := c.flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	raw, _ := st.Value(ctx, stateName(0, 1))
	var got map[string]seenChannel
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["stale"]; ok || got["old"].Last != "5" || got["new"].Last != "9" || len(got) != 2 {
		t.Errorf("written %v, want the kept channel and the new one, the one quiet for a day forgotten", got)
	}
}
