package discord

import (
	"fmt"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
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
