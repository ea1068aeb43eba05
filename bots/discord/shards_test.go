package discord_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// newShardFake is a fake Discord with the rig's shortened limits, which
// fake adjusts.
func newShardFake(t *testing.T, fake func(*discordtest.Options)) *discordtest.Server {
	t.Helper()
	fo := discordtest.Options{
		MessageLimit: 5, MessageWindow: channelWindow,
		WebhookLimit: 5, WebhookWindow: webhookWindow,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		UserInstall: true, // as the commands are registered globally
	}
	if fake != nil {
		fake(&fo)
	}
	dc := discordtest.NewServer(fo)
	t.Cleanup(dc.Close)
	return dc
}

// shardBot is a Bot with a Manager on a bbolt store of its own, as one
// process of a cluster would be.
type shardBot struct {
	t      *testing.T
	bot    *discord.Bot
	m      *sessions.Manager
	tap    *tap
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's, once done is closed
	once   sync.Once
	closed sync.Once
	logs   logTap // warnings and errors of the Bot and its Manager
}

// runShardBot runs a Bot on dc with opts (token, address and edit
// interval filled in) until the test ends, on a bbolt store of its own.
func runShardBot(t *testing.T, dc *discordtest.Server, up *llmtest.Server, opts discord.Options) *shardBot {
	t.Helper()
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	must(t, err)
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})
	return runShardBotOn(t, dc, up, opts, store)
}

// runShardBotOn is runShardBot on store, which the caller closes (after
// the Bot's Manager: register its Close first).
func runShardBotOn(t *testing.T, dc *discordtest.Server, up *llmtest.Server, opts discord.Options, store sessions.Store) *shardBot {
	t.Helper()
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{MaxRetries: -1})}, "fake", nil)
	must(t, err)
	sb := &shardBot{t: t, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &sb.logs), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, router, nil, log)
	opts.Token, opts.APIBase, opts.EditInterval, opts.Logger = dc.Token(), dc.URL(), testInterval, log
	sb.tap = newTap(m)
	sb.bot, err = discord.New(opts, sb.tap)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	sb.cancel = cancel
	go func() { sb.err = sb.bot.Run(ctx); close(sb.done) }()
	sb.m = m
	t.Cleanup(sb.close)
	return sb
}

// close stops the Bot, then its Manager.
func (sb *shardBot) close() {
	sb.closed.Do(func() {
		sb.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sb.m.Close(ctx); err != nil {
			sb.t.Errorf("Manager.Close: %v", err)
		}
	})
}

// stop ends Run and returns its error.
func (sb *shardBot) stop() error {
	sb.once.Do(func() {
		sb.cancel()
		select {
		case <-sb.done:
		case <-time.After(45 * time.Second):
			sb.t.Error("Run did not return after cancel")
		}
	})
	return sb.err
}

// handled counts the times the Bot handed message id to its Manager.
func (sb *shardBot) handled(id string) int {
	n := 0
	for _, m := range sb.tap.handedOver() {
		if m.ID == id {
			n++
		}
	}
	return n
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// shardChannels adds a guild on each shard of total, with user as a member
// and a text channel, and returns the channels by shard.
func shardChannels(t *testing.T, dc *discordtest.Server, user discordtest.User, total int) []discordtest.Channel {
	t.Helper()
	chans := make([]discordtest.Channel, total)
	for shard := range total {
		g, err := dc.AddGuildOnShard(fmt.Sprintf("guild-%d", shard), shard, total)
		must(t, err)
		must(t, dc.AddMember(g.ID, user.ID, 0))
		chans[shard], err = dc.AddChannel(g.ID, "general")
		must(t, err)
	}
	return chans
}

// waitShards waits until exactly one connected session serves each shard
// of total in ids, and no other, and returns the sessions by shard.
func waitShards(t *testing.T, dc *discordtest.Server, total int, ids ...int) map[int]discordtest.GatewaySession {
	t.Helper()
	var got map[int]discordtest.GatewaySession
	_, err := dc.WaitSessions(testCtx(t), func(ss []discordtest.GatewaySession) bool {
		got = map[int]discordtest.GatewaySession{}
		for _, s := range ss {
			if s.Connected {
				if _, dup := got[s.Shard[0]]; dup || s.Shard[1] != total {
					return false
				}
				got[s.Shard[0]] = s
			}
		}
		for _, id := range ids {
			if _, ok := got[id]; !ok {
				return false
			}
		}
		return len(got) == len(ids)
	})
	if err != nil {
		t.Fatalf("shards %v of %d not connected (sessions %+v): %v", ids, total, dc.GatewaySessions(), err)
	}
	return got
}

// ask posts user's question, mentioning the bot, in channel.
func ask(t *testing.T, dc *discordtest.Server, user discordtest.User, channelID, text string) discordtest.Message {
	t.Helper()
	q, err := dc.SendMessage(discordtest.UserMessage{ChannelID: channelID, AuthorID: user.ID,
		Content: discordtest.Mention(dc.AppID()) + " " + text})
	must(t, err)
	return q
}

// replies are the bot's messages replying to q.
func replies(dc *discordtest.Server, q discordtest.Message) []discordtest.Message {
	var out []discordtest.Message
	for _, m := range dc.Messages(q.ChannelID) {
		if m.AuthorID == dc.AppID() && m.ReferenceID == q.ID {
			out = append(out, m)
		}
	}
	return out
}

// answered waits for the bot's finished reply to q containing want.
func answered(t *testing.T, dc *discordtest.Server, q discordtest.Message, want string) discordtest.Message {
	t.Helper()
	m, err := dc.WaitMessage(testCtx(t), func(m discordtest.Message) bool {
		return m.AuthorID == dc.AppID() && m.ReferenceID == q.ID && done(m) && strings.Contains(m.Text(), want)
	})
	if err != nil {
		t.Fatalf("no finished answer to %q containing %q; replies %+v", q.Content, want, replies(dc, q))
	}
	return m
}

// onceEach checks that each question reached one gateway connection and
// got one reply, from a Manager that was handed it once.
func onceEach(t *testing.T, dc *discordtest.Server, qs []discordtest.Message, bots ...*shardBot) {
	t.Helper()
	for _, q := range qs {
		handled := 0
		for _, sb := range bots {
			handled += sb.handled(q.ID)
		}
		if d, r := dc.Delivered(q.ID), len(replies(dc, q)); d != 1 || r != 1 || handled != 1 {
			t.Errorf("question %q: delivered to %d connections, %d replies, handled %d times; want 1 each", q.Content, d, r, handled)
		}
	}
}

// Every shard receives its guilds' messages, shard 0 the DMs, and each
// question is answered once: with a fixed shard count, and with Discord's
// recommendation.
func TestBot_Shards(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		shards    int // Options.Shards
		recommend int // GET /gateway/bot's
		total     int // the shards opened
	}{
		{"Fixed", 4, 1, 4},
		{"Auto", discord.AutoShards, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dc := newShardFake(t, func(o *discordtest.Options) {
				o.Shards = tt.recommend
				o.SessionStartLimit.MaxConcurrency = 16
				o.IdentifyWindow = discord.IdentifyWindow
			})
			up := llmtest.NewServer()
			t.Cleanup(up.Close)
			user := dc.AddUser("alice")
			chans := shardChannels(t, dc, user, tt.total)
			dm, err := dc.DM(user.ID)
			must(t, err)
			sb := runShardBot(t, dc, up, discord.Options{Shards: tt.shards})
			all := make([]int, tt.total)
			for i := range all {
				all[i] = i
			}
			waitShards(t, dc, tt.total, all...)

			var qs []discordtest.Message
			for i, ch := range append(chans, dm) {
				q := ask(t, dc, user, ch.ID, fmt.Sprintf("question %d", i))
				answered(t, dc, q, fmt.Sprintf("question %d", i))
				qs = append(qs, q)
			}
			onceEach(t, dc, qs, sb)

			ids := dc.Identifies()
			var shards []int
			for _, id := range ids {
				if !id.Accepted() || !id.Sharded || id.Shard[1] != tt.total {
					t.Errorf("identify %+v, want an accepted one for a shard of %d", id, tt.total)
				}
				shards = append(shards, id.Shard[0])
			}
			slices.Sort(shards)
			if !slices.Equal(shards, all) {
				t.Errorf("identified shards %v, want %v once each", shards, all)
			}
			states := sb.bot.Shards()
			if len(states) != tt.total {
				t.Fatalf("Bot.Shards() = %+v, want %d shards", states, tt.total)
			}
			for i, s := range states {
				if s != (discord.ShardState{ID: i, Total: tt.total, State: "up"}) {
					t.Errorf("Bot.Shards()[%d] = %+v, want shard %d of %d up", i, s, i, tt.total)
				}
			}
		})
	}
}

// A bot in more guilds than one connection may serve, run without
// sharding, stops with an error that says to shard.
func TestBot_ShardingRequired(t *testing.T) {
	t.Parallel()
	dc := newShardFake(t, func(o *discordtest.Options) { o.GuildsPerShard = 1 })
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	dc.AddGuild("one")
	dc.AddGuild("two")
	sb := runShardBot(t, dc, up, discord.Options{})
	select {
	case <-sb.done:
	case <-testCtx(t).Done():
		t.Fatal("Run did not end when Discord required sharding")
	}
	var ce *websocket.CloseError
	if !errors.As(sb.err, &ce) || ce.Code != 4011 || !strings.Contains(sb.err.Error(), "set discord.shards: auto") {
		t.Errorf("Run = %v, want close 4011 and the advice to set discord.shards: auto", sb.err)
	}
}

func TestNew_Shards(t *testing.T) {
	tests := []struct {
		name   string
		shards int
		ok     bool
	}{
		{"Auto", discord.AutoShards, true},
		{"Unsharded", 0, true},
		{"Many", 64, true},
		{"ErrNegative", -2, false},
		{"ErrHuge", 1 << 20, false},
	}
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, nil, nil, nil)
	t.Cleanup(func() { m.Close(context.Background()) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := discord.New(discord.Options{Token: "t", Shards: tt.shards}, m)
			if (err == nil) != tt.ok {
				t.Errorf("New(Shards: %d) = %v, want ok %v", tt.shards, err, tt.ok)
			}
		})
	}
}

// manualClock is a clock that moves only when the test advances it.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []manualTimer
	changed chan struct{} // closed and replaced when timers change
}

type manualTimer struct {
	at time.Time
	c  chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), changed: make(chan struct{})}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, manualTimer{c.now.Add(d), ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock by d and fires the timers due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(tm manualTimer) bool {
		if tm.at.After(c.now) {
			return false
		}
		tm.c <- c.now
		return true
	})
}

// waitTimers waits until n timers are pending.
func (c *manualClock) waitTimers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		pending, changed := len(c.timers), c.changed
		c.mu.Unlock()
		if pending >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d timers pending, want %d: %w", pending, n, ctx.Err())
		}
	}
}

// Two shards of one identify bucket IDENTIFY a window apart, which the
// fake (on the same clock) enforces: none is refused.
func TestBot_IdentifySpacing(t *testing.T) {
	t.Parallel()
	clk := newManualClock()
	dc := newShardFake(t, func(o *discordtest.Options) {
		o.Now = clk.Now
		o.IdentifyWindow = discord.IdentifyWindow // max_concurrency 1: one bucket
	})
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	runShardBot(t, dc, up, discord.Options{Shards: 2, IdentifyGate: &discord.LocalGate{Now: clk.Now, After: clk.After}})

	// One shard is up; the other waits for the window.
	must(t, clk.waitTimers(testCtx(t), 1))
	if ids := dc.Identifies(); len(ids) != 1 || !ids[0].Accepted() {
		t.Fatalf("identifies %+v before the window passed, want one accepted", ids)
	}
	clk.Advance(discord.IdentifyWindow)
	waitShards(t, dc, 2, 0, 1)
	ids := dc.Identifies()
	if len(ids) != 2 || !ids[1].Accepted() || ids[0].Shard[0] == ids[1].Shard[0] {
		t.Fatalf("identifies %+v, want shards 0 and 1 accepted", ids)
	}
	if d := ids[1].Time.Sub(ids[0].Time); d != discord.IdentifyWindow {
		t.Errorf("identifies %v apart, want %v", d, discord.IdentifyWindow)
	}
}

// cluster is a Shards for the Bots of one test, in the manner of the etcd
// store's: a shard moves make-before-break, given to its receiver first
// and taken from its holder once the receiver reported it Ready; the
// holder then closes and Drops it.
type cluster struct {
	mu      sync.Mutex
	holder  map[int]string        // shard → member
	watches map[string]chan []int // member → its Watch channel
	closed  map[string]bool       // members whose channel is closed
	dropped chan int              // the shards Dropped, in order
	ready   chan string           // "member/shard" Ready, in order
}

func newCluster(holders map[int]string) *cluster {
	c := &cluster{holder: holders, watches: map[string]chan []int{}, closed: map[string]bool{},
		dropped: make(chan int, 64), ready: make(chan string, 64)}
	for _, m := range holders {
		if c.watches[m] == nil {
			c.watches[m] = make(chan []int, 16)
		}
	}
	return c
}

type clusterMember struct {
	c    *cluster
	name string
}

func (c *cluster) member(name string) discord.Shards { return clusterMember{c, name} }

// Watch closes the channel when ctx ends: the fake has no one to hand
// the shards over to.
func (m clusterMember) Watch(ctx context.Context, total int) (<-chan []int, error) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	ch := m.c.watches[m.name]
	ch <- m.c.heldLocked(m.name)
	context.AfterFunc(ctx, func() { m.c.end(m.name) })
	return ch, nil
}

// end closes member's channel, once.
func (c *cluster) end(member string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed[member] {
		c.closed[member] = true
		close(c.watches[member])
	}
}

func (m clusterMember) Ready(ctx context.Context, shard int) error {
	select {
	case m.c.ready <- fmt.Sprintf("%s/%d", m.name, shard):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m clusterMember) Drop(ctx context.Context, shard int) error {
	select {
	case m.c.dropped <- shard:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cluster) heldLocked(member string) []int {
	var ids []int
	for id, m := range c.holder {
		if m == member {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// move gives shard to member to, waits for its Ready, runs overlap (both
// connections are up), then takes the shard from its holder and waits for
// its Drop.
func (c *cluster) move(ctx context.Context, shard int, to string, overlap func()) error {
	c.mu.Lock()
	from := c.holder[shard]
	c.watches[to] <- append(c.heldLocked(to), shard)
	c.mu.Unlock()
	want := fmt.Sprintf("%s/%d", to, shard)
	for got := ""; got != want; {
		select {
		case got = <-c.ready:
		case <-ctx.Done():
			return fmt.Errorf("shard %d not ready at %s: %w", shard, to, ctx.Err())
		}
	}
	overlap()
	c.mu.Lock()
	c.holder[shard] = to
	c.watches[from] <- c.heldLocked(from)
	c.mu.Unlock()
	select {
	case got := <-c.dropped:
		if got != shard {
			return fmt.Errorf("dropped shard %d, want %d", got, shard)
		}
	case <-ctx.Done():
		return fmt.Errorf("shard %d not dropped: %w", shard, ctx.Err())
	}
	return nil
}

// A shard moves from one Bot to another while questions keep coming: the
// new holder connects before the old one lets go, so that a question
// sent while both are connected reaches both and is answered once (their
// Managers share a store, which refuses the second delivery), the other
// shards go on undisturbed, the answer streaming on the moving shard
// finishes, and the new holder answers what comes after.
func TestBot_ShardMoves(t *testing.T) {
	t.Parallel()
	clk := newManualClock() // the shared identify gate's
	dc := newShardFake(t, func(o *discordtest.Options) { o.SessionStartLimit.MaxConcurrency = 4 })
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	user := dc.AddUser("alice")
	chans := shardChannels(t, dc, user, 4)
	c := newCluster(map[int]string{0: "a", 1: "a", 2: "b", 3: "b"})
	gate := &discord.LocalGate{Now: clk.Now, After: clk.After}
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	a := runShardBotOn(t, dc, up, discord.Options{Shards: 4, ShardSet: c.member("a"), IdentifyGate: gate}, store)
	b := runShardBotOn(t, dc, up, discord.Options{Shards: 4, ShardSet: c.member("b"), IdentifyGate: gate}, store)
	before := waitShards(t, dc, 4, 0, 1, 2, 3)
	for range 4 {
		<-c.ready // each shard's first READY
	}

	var qs []discordtest.Message
	for shard, ch := range chans {
		q := ask(t, dc, user, ch.ID, fmt.Sprintf("first %d", shard))
		answered(t, dc, q, fmt.Sprintf("first %d", shard))
		holder := a
		if shard >= 2 {
			holder = b
		}
		if holder.handled(q.ID) != 1 {
			t.Errorf("shard %d's question not handled by its holder", shard)
		}
		qs = append(qs, q)
	}

	// An answer is streaming on shard 1 when it moves; the model holds it
	// until the move is over.
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before up.Close, which waits for the answer
	up.Enqueue(llmtest.Script{Content: llmtest.Tokens("a long answer held for the move, then done"),
		Sent: func(i, n int) {
			if i == 3 {
				<-hold
			}
		}})
	inflight := ask(t, dc, user, chans[1].ID, "take your time")
	if _, err := dc.WaitMessage(testCtx(t), func(m discordtest.Message) bool {
		return m.ReferenceID == inflight.ID && stoppable(m) && strings.Contains(m.Text(), "long")
	}); err != nil {
		t.Fatalf("the answer to move under did not start: %v", err)
	}

	// Questions keep coming on the other shards meanwhile.
	stop := make(chan struct{})
	halt := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(halt)
	sent := make(chan []discordtest.Message, 1)
	go func() {
		var out []discordtest.Message
		for i := 0; ; i++ {
			select {
			case <-stop:
				sent <- out
				return
			case <-time.After(40 * time.Millisecond):
			}
			shard := []int{0, 2, 3}[i%3]
			q, err := dc.SendMessage(discordtest.UserMessage{ChannelID: chans[shard].ID, AuthorID: user.ID,
				Content: discordtest.Mention(dc.AppID()) + fmt.Sprintf(" meanwhile %d", i)})
			if err == nil {
				out = append(out, q)
			}
		}
	}()

	clk.Advance(discord.IdentifyWindow) // shard 1 may IDENTIFY again at once
	var both discordtest.Message
	err = c.move(testCtx(t), 1, "b", func() {
		if _, err := dc.WaitSessions(testCtx(t), func(ss []discordtest.GatewaySession) bool {
			n := 0
			for _, s := range ss {
				if s.Connected && s.Shard[0] == 1 {
					n++
				}
			}
			return n == 2
		}); err != nil {
			t.Errorf("shard 1 not connected twice while it moves: %v", err)
		}
		both = ask(t, dc, user, chans[1].ID, "anyone there?")
		if _, err := dc.WaitMessage(testCtx(t), func(m discordtest.Message) bool { return m.ReferenceID == both.ID }); err != nil {
			t.Errorf("no reply to the question asked while both connections are up: %v", err)
		}
	})
	must(t, err)
	after := waitShards(t, dc, 4, 0, 1, 2, 3)
	q := ask(t, dc, user, chans[1].ID, "after the move")
	answered(t, dc, q, "after the move")
	if b.handled(q.ID) != 1 || a.handled(q.ID) != 0 {
		t.Errorf("the question after the move handled by a %d, b %d times; want b once", a.handled(q.ID), b.handled(q.ID))
	}
	qs = append(qs, q)

	release()
	answered(t, dc, inflight, "then done")
	if a.handled(inflight.ID) != 1 {
		t.Error("the answer in flight was not the first holder's")
	}
	qs = append(qs, inflight)

	halt()
	meanwhile := <-sent
	if len(meanwhile) == 0 {
		t.Fatal("no question sent during the move")
	}
	t.Logf("%d questions on the other shards during the move", len(meanwhile))
	for _, q := range meanwhile {
		answered(t, dc, q, strings.TrimPrefix(q.Content, discordtest.Mention(dc.AppID())+" "))
	}
	onceEach(t, dc, append(qs, meanwhile...), a, b)

	answered(t, dc, both, "anyone there?")
	if d, r, h := dc.Delivered(both.ID), len(replies(dc, both)), a.handled(both.ID)+b.handled(both.ID); d != 2 || r != 1 || h != 2 {
		t.Errorf("question asked while both connections were up: delivered to %d, handled %d times, %d replies; want 2, 2 and 1", d, h, r)
	}
	for _, shard := range []int{0, 2, 3} {
		if s := after[shard]; s.ID != before[shard].ID || s.Resumes != 0 {
			t.Errorf("shard %d's session %+v after the move, was %+v: want it untouched", shard, s, before[shard])
		}
	}
	if after[1].ID == before[1].ID {
		t.Error("shard 1 kept its session across the move")
	}
	if got := a.bot.Shards(); len(got) != 1 || got[0].ID != 0 {
		t.Errorf("a holds %+v, want shard 0", got)
	}
	if got := b.bot.Shards(); len(got) != 3 || got[0].ID != 1 {
		t.Errorf("b holds %+v, want shards 1, 2 and 3", got)
	}
}

// With fewer session starts left than shards to open, the Bot identifies
// nothing until the limit resets, and says so ("retrying").
func TestBot_SessionStartsWait(t *testing.T) {
	t.Parallel()
	dc := newShardFake(t, func(o *discordtest.Options) {
		// The fake's clock moves only with Advance: the Bot asks again
		// every second (the least it waits) until the test resets the
		// limit.
		o.Now = newManualClock().Now
		o.SessionStartLimit = discordtest.SessionStartLimit{Remaining: 2, ResetAfter: 100 * time.Millisecond, MaxConcurrency: 16}
	})
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	states := make(chan string, 16)
	runShardBot(t, dc, up, discord.Options{Shards: 4, OnState: func(s string) { states <- s }})
	waitState(t, states, "retrying")
	if ids := dc.Identifies(); len(ids) != 0 {
		t.Fatalf("identified %+v with 2 session starts left for 4 shards", ids)
	}
	dc.Advance(100 * time.Millisecond) // the limit resets
	waitState(t, states, "up")
	waitShards(t, dc, 4, 0, 1, 2, 3)
	if l := dc.SessionStarts(); l.Remaining != l.Total-4 {
		t.Errorf("session starts %+v after the reset, want 4 spent", l)
	}
}

// When the shard assignment ends (a cluster session lost), the Bot closes
// and releases its shards and Run says why it stopped.
func TestBot_ShardAssignmentEnds(t *testing.T) {
	t.Parallel()
	dc := newShardFake(t, func(o *discordtest.Options) { o.SessionStartLimit.MaxConcurrency = 2 })
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	c := newCluster(map[int]string{0: "a", 1: "a"})
	sb := runShardBot(t, dc, up, discord.Options{Shards: 2, ShardSet: c.member("a")})
	waitShards(t, dc, 2, 0, 1)
	c.end("a")
	select {
	case <-sb.done:
	case <-testCtx(t).Done():
		t.Fatal("Run did not end with the assignment")
	}
	if sb.err == nil || !strings.Contains(sb.err.Error(), "shard assignment ended") {
		t.Errorf("Run = %v, want the end of the shard assignment", sb.err)
	}
	var dropped []int
	for range 2 {
		dropped = append(dropped, <-c.dropped)
	}
	slices.Sort(dropped)
	if !slices.Equal(dropped, []int{0, 1}) {
		t.Errorf("dropped %v, want shards 0 and 1", dropped)
	}
	waitShards(t, dc, 2)
}
