package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
)

// Catching up. Discord writes a gateway event once, to the connections of
// its shard open at that moment, and replays it only to a RESUME of the
// same session. A message written while no connection of its shard was
// open (the process restarting, a dead process's shards not yet taken
// over, a connection re-identifying) or delivered to a process that died
// before it took the message is never delivered again. So the bot
// remembers, per shard, the channels where it was asked something lately
// and the newest message it saw in each; when a shard's connection is
// READY it reads the messages written there since, and handles those
// meant for it as if they had just arrived. The store's record of the
// messages it accepted answers each once, whichever process or connection
// saw it first.
const (
	// catchUpChannels bounds the channels remembered per shard: the most
	// recently active.
	catchUpChannels = 100
	// catchUpPage is the most messages read per channel (one request).
	catchUpPage = 50
	// catchUpAge is the oldest a missed message may be to be answered:
	// an answer to an hour-old question would surprise more than help.
	catchUpAge = 15 * time.Minute
	// catchUpForget is how long a quiet channel is remembered.
	catchUpForget = 24 * time.Hour
	// catchUpFlush is how often what was seen is written to the State.
	catchUpFlush = 5 * time.Second
)

// State keeps the adapter's own small state (the channels to catch up
// in); sessions.Store satisfies it.
type State interface {
	Value(ctx context.Context, name string) ([]byte, error)
	SetValue(ctx context.Context, name string, v []byte) error
}

// seenChannel is a channel where the bot was asked something lately.
type seenChannel struct {
	Guild string    `json:"guild,omitempty"` // "" for a DM
	Last  string    `json:"last"`            // the newest message seen
	At    time.Time `json:"at"`              // when it was seen
}

// catchUp is what the Bot saw, per shard (of total), by channel.
type catchUp struct {
	mu     sync.Mutex
	total  int
	shards map[int]map[string]seenChannel
	dirty  map[int]bool
	loaded map[int]bool  // shards whose kept channels were read (load): written only then
	added  chan struct{} // a channel was added: written at once, not in catchUpFlush; nil while nothing writes
}

// stateName is the State value of shard n's channels.
func stateName(n, total int) string { return fmt.Sprintf("discord/seen/%d/%d", total, n) }

// shardOf is the shard of total that carries the events of guild (DMs:
// shard 0).
func shardOf(guild string, total int) int {
	id, err := strconv.ParseUint(guild, 10, 64)
	if err != nil || total <= 1 {
		return 0
	}
	return int((id >> 22) % uint64(total))
}

// newer reports whether snowflake a is newer than b.
func newer(a, b string) bool {
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

// saw records message m, written in a channel of guild. A channel is
// remembered once a message there was meant for the bot (track); after
// that every message seen there moves its mark.
func (c *catchUp) saw(m *discordgo.Message, guild string, track bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total == 0 {
		return
	}
	n := shardOf(guild, c.total)
	chans := c.shards[n]
	s, ok := chans[m.ChannelID]
	if !ok && !track {
		return
	}
	if ok && !newer(m.ID, s.Last) {
		return
	}
	if chans == nil {
		chans = make(map[string]seenChannel)
		c.shards[n] = chans
	}
	if !ok {
		select {
		case c.added <- struct{}{}:
		default:
		}
	}
	chans[m.ChannelID] = seenChannel{Guild: guild, Last: m.ID, At: now}
	if len(chans) > catchUpChannels {
		oldest := slices.MinFunc(slices.Collect(maps.Keys(chans)), func(a, b string) int { return chans[a].At.Compare(chans[b].At) })
		delete(chans, oldest)
	}
	c.dirty[n] = true
}

// setTotal starts remembering for a Run with total shards.
func (c *catchUp) setTotal(total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total != total {
		c.total, c.shards = total, make(map[int]map[string]seenChannel)
		c.dirty, c.loaded = make(map[int]bool), make(map[int]bool)
	}
}

// addedCh receives when a channel was added (saw), so that it is written
// at once: a kill within catchUpFlush of a channel's first question would
// otherwise leave nothing to catch up in.
func (c *catchUp) addedCh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.added == nil {
		c.added = make(chan struct{}, 1)
	}
	return c.added
}

// load merges shard n's channels as st last kept them; from then on the
// shard's channels are written (flush). A kept value that cannot be read
// is reported and written anew.
func (c *catchUp) load(ctx context.Context, st State, n int, now time.Time) error {
	c.mu.Lock()
	total := c.total
	c.mu.Unlock()
	raw, err := st.Value(ctx, stateName(n, total))
	if err != nil {
		return err
	}
	var kept map[string]seenChannel
	if raw != nil {
		if uerr := json.Unmarshal(raw, &kept); uerr != nil {
			kept, err = nil, fmt.Errorf("read %s: %w", stateName(n, total), uerr)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total != total {
		return err
	}
	c.loaded[n] = true
	c.dirty[n] = c.dirty[n] || err != nil
	chans := c.shards[n]
	if chans == nil {
		chans = make(map[string]seenChannel)
		c.shards[n] = chans
	}
	for id, s := range kept {
		if now.Sub(s.At) > catchUpForget {
			continue
		}
		if cur, ok := chans[id]; !ok || newer(s.Last, cur.Last) {
			chans[id] = s
		}
	}
	return err
}

// channels are a copy of shard n's channels.
func (c *catchUp) channels(n int) map[string]seenChannel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.shards[n])
}

// flush writes the shards whose channels changed to st.
func (c *catchUp) flush(ctx context.Context, st State) error {
	c.mu.Lock()
	total := c.total
	out := make(map[int][]byte)
	for n := range c.dirty {
		if !c.loaded[n] {
			continue // written once what was kept is read, not over it
		}
		raw, err := json.Marshal(c.shards[n])
		if err != nil {
			c.mu.Unlock()
			return err
		}
		out[n] = raw
		delete(c.dirty, n)
	}
	c.mu.Unlock()
	var first error
	for n, raw := range out {
		if err := st.SetValue(ctx, stateName(n, total), raw); err != nil {
			c.mu.Lock()
			c.dirty[n] = true // tried again at the next flush
			c.mu.Unlock()
			if first == nil {
				first = fmt.Errorf("discord: keep the channels seen: %w", err)
			}
		}
	}
	return first
}

// keepSeen writes what the Bot saw to Options.State every catchUpFlush,
// at once when a channel was added, until ctx ends, and once more then.
func (b *Bot) keepSeen(ctx context.Context) {
	if b.opts.State == nil {
		return
	}
	t := time.NewTicker(catchUpFlush)
	defer t.Stop()
	added := b.catch.addedCh()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := b.catch.flush(fctx, b.opts.State); err != nil {
				b.log.Warn("keep the channels to catch up in", "error", err)
			}
			return
		case <-t.C:
		case <-added:
		}
		if err := b.catch.flush(ctx, b.opts.State); err != nil && ctx.Err() == nil {
			b.log.Warn("keep the channels to catch up in", "error", err)
		}
	}
}

// catchUpShard reads, in the channels of shard n where the bot was asked
// something lately, the messages written after the newest it saw, and
// handles those less than catchUpAge old as if they had just arrived (the
// store refuses a message accepted before). It runs as an event handler
// (track), within its timeout.
func (b *Bot) catchUpShard(ctx context.Context, n int) {
	now := b.now()
	if b.opts.State != nil {
		if err := b.catch.load(ctx, b.opts.State, n, now); err != nil {
			b.log.Warn("read the channels to catch up in", "shard", n, "error", err)
		}
	}
	chans := b.catch.channels(n)
	ids := slices.SortedFunc(maps.Keys(chans), func(a, b string) int { return chans[b].At.Compare(chans[a].At) })
	caught := 0
	for _, id := range ids {
		s := chans[id]
		if now.Sub(s.At) > catchUpForget {
			continue
		}
		if err := b.m.Spend(ctx, Platform); err != nil {
			return
		}
		msgs, err := b.s.ChannelMessages(id, catchUpPage, "", s.Last, "", streamOpts(ctx)...)
		if err != nil {
			b.log.Debug("catch up in a channel", "channel", id, "error", err)
			continue
		}
		slices.SortFunc(msgs, func(x, y *discordgo.Message) int {
			switch {
			case newer(y.ID, x.ID):
				return -1
			case newer(x.ID, y.ID):
				return 1
			}
			return 0
		})
		for _, m := range msgs {
			b.catch.saw(m, s.Guild, false, now)
			if now.Sub(m.Timestamp) > catchUpAge {
				continue
			}
			m.GuildID = s.Guild // REST messages carry no guild id
			caught++
			t := b.arrivals.take(m.ChannelID)
			b.onMessage(ctx, m, t)
			t.done()
		}
	}
	if caught > 0 {
		// Most were seen by a connection already (another process's,
		// or this one's before a mark was kept): the store refuses them.
		b.log.Info("caught up: messages since the newest seen handed over again", "shard", n, "messages", caught)
	}
}
