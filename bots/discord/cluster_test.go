package discord_test

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions/etcdstore"
	"github.com/palaver-bot/palaver/sessions/etcdstore/etcdtest"
)

// clusterShards is the shard count of the cluster tests.
const clusterShards = 4

// clusterRig is several palaver processes on one embedded etcd cluster:
// each a Bot on its own etcd store (the shard assignment and the
// conversations' store), with a shared identify gate whose clock never
// makes anyone wait (the etcd gate has tests of its own).

// jumpClock is a clock that moves on by whatever is waited for, at once.
type jumpClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(max(d, 0))
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// severable is the Shards of a process that the test can kill: cut ends
// its Watch's channel, and the Bot closes every gateway connection at
// once, as the connections of a killed process end with it.
type severable struct {
	discord.Shards
	cut  chan struct{}
	once sync.Once
}

func (s *severable) Watch(ctx context.Context, total int) (<-chan []int, error) {
	in, err := s.Shards.Watch(ctx, total)
	if err != nil {
		return nil, err
	}
	out := make(chan []int)
	go func() {
		defer close(out)
		for {
			select {
			case ids, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- ids:
				case <-s.cut:
					return
				}
			case <-s.cut:
				return
			}
		}
	}()
	return out, nil
}

func (s *severable) sever() { s.once.Do(func() { close(s.cut) }) }

type clusterRig struct {
	t     *testing.T
	etcd  *etcdtest.Cluster
	cfg   etcdstore.Config
	dc    *discordtest.Server
	up    *llmtest.Server
	gate  *discord.LocalGate
	user  discordtest.User
	chans []discordtest.Channel // by shard
}

func newClusterRig(t *testing.T, etcd *etcdtest.Cluster) *clusterRig {
	dc := newShardFake(t, func(o *discordtest.Options) { o.SessionStartLimit.MaxConcurrency = 16 })
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	r := &clusterRig{t: t, etcd: etcd, dc: dc, up: up, user: dc.AddUser("alice"),
		cfg: etcdstore.Config{Endpoints: etcd.Endpoints(), Prefix: etcd.Prefix(t), Failover: 2 * time.Second,
			Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}}
	clk := &jumpClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r.gate = &discord.LocalGate{Now: clk.Now, After: clk.After}
	r.chans = shardChannels(t, dc, r.user, clusterShards)
	return r
}

// process is one palaver process of a clusterRig.
type process struct {
	name   string
	store  *etcdstore.Store
	shards *severable
	*shardBot
}

// split is the shards each of ps runs (etcdstore.AssignShards over their
// names).
func split(ps ...*process) map[*process][]int {
	byName := make(map[string]*process)
	var ids []string
	for _, p := range ps {
		byName[p.name] = p
		ids = append(ids, p.name)
	}
	out := make(map[*process][]int)
	for n, id := range etcdstore.AssignShards(ids, clusterShards) {
		out[byName[id]] = append(out[byName[id]], n)
	}
	return out
}

// start starts process name.
func (r *clusterRig) start(name string) *process {
	r.t.Helper()
	cfg := r.cfg
	cfg.Member = name
	store, err := etcdstore.Open(r.t.Context(), cfg)
	must(r.t, err)
	r.t.Cleanup(func() { store.Close() }) // after the Bot's and Manager's
	shards := &severable{Shards: store, cut: make(chan struct{})}
	sb := runShardBotOn(r.t, r.dc, r.up, discord.Options{Shards: clusterShards, ShardSet: shards, IdentifyGate: r.gate}, store)
	return &process{name: name, store: store, shards: shards, shardBot: sb}
}

// kill ends p as kill -9 would, as far as Discord and etcd can tell: its
// session lease is revoked (its claims and shards are free at once) and
// its gateway connections close, with no hand-over.
func (p *process) kill(etcd *etcdtest.Cluster) {
	p.t.Helper()
	lease, err := strconv.ParseInt(p.store.Role().Lease, 16, 64)
	must(p.t, err)
	if _, err := etcd.Client(p.t).Revoke(p.t.Context(), clientv3.LeaseID(lease)); err != nil {
		p.t.Fatal(err)
	}
	p.shards.sever()
	p.stop() // returns at once, the assignment having ended
}

// leave stops p as palaver does on SIGINT: its Bot hands its shards
// over and returns, its Manager finishes, its store closes.
func (p *process) leave() {
	p.t.Helper()
	if err := p.stop(); err != nil {
		p.t.Errorf("%s: Run: %v", p.name, err)
	}
	p.close()
	if err := p.store.Close(); err != nil {
		p.t.Errorf("%s: store.Close: %v", p.name, err)
	}
}

// settle waits until each process runs the shards want gives it and
// holds their claims (no hand-over is left to finish), each shard on
// exactly one gateway connection.
func (r *clusterRig) settle(want map[*process][]int) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		ok := true
		for p, ids := range want {
			var got []int
			for _, s := range p.bot.Shards() {
				got = append(got, s.ID)
			}
			ok = ok && slices.Equal(got, ids) && len(p.store.Role().Receiving) == 0
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("shards not settled as %v", want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	waitShards(r.t, r.dc, clusterShards, 0, 1, 2, 3)
}

// sender asks a question every 40 ms, on each shard in turn, until stop
// is called, which returns what it sent.
func (r *clusterRig) sender() (stop func() []discordtest.Message) {
	done := make(chan struct{})
	sent := make(chan []discordtest.Message, 1)
	go func() {
		var out []discordtest.Message
		for i := 0; ; i++ {
			select {
			case <-done:
				sent <- out
				return
			case <-time.After(40 * time.Millisecond):
			}
			q, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: r.chans[i%clusterShards].ID, AuthorID: r.user.ID,
				Content: discordtest.Mention(r.dc.AppID()) + " question " + strconv.Itoa(i)})
			if err != nil {
				r.t.Errorf("send question %d: %v", i, err)
				continue
			}
			out = append(out, q)
		}
	}()
	var once sync.Once
	var qs []discordtest.Message
	return func() []discordtest.Message {
		once.Do(func() { close(done); qs = <-sent })
		return qs
	}
}

// text is what question q asked.
func (r *clusterRig) text(q discordtest.Message) string {
	return strings.TrimPrefix(q.Content, discordtest.Mention(r.dc.AppID())+" ")
}

// TestBot_Cluster runs palaver processes on one etcd cluster while
// questions keep coming on every shard.
func TestBot_Cluster(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t, 1)

	// A process joins and another stops (gracefully): the shards move
	// make-before-break, so that every question reaches a connection and
	// is answered exactly once, those reaching two connections included.
	t.Run("JoinAndLeave", func(t *testing.T) {
		t.Parallel()
		r := newClusterRig(t, etcd)
		a, b := r.start("a"), r.start("b")
		r.settle(split(a, b))
		stop := r.sender()
		c := r.start("c")
		r.settle(split(a, b, c))
		b.leave()
		r.settle(split(a, c))
		qs := stop()

		lost, twice := 0, 0
		for _, q := range qs {
			switch d := r.dc.Delivered(q.ID); {
			case d == 0:
				lost++
				t.Errorf("%q reached no gateway connection", r.text(q))
				continue
			case d > 1:
				twice++
			}
			answered(t, r.dc, q, r.text(q))
		}
		// Replies that came late (a question handed over again) are
		// counted once every question was answered.
		for _, q := range qs {
			if n := len(replies(r.dc, q)); n != 1 {
				t.Errorf("%q answered %d times, want once", r.text(q), n)
			}
		}
		t.Logf("%d questions while a process joined and another left: %d lost, %d delivered to two connections", len(qs), lost, twice)
	})

	// A process dies (its lease revoked): the survivor takes its shards
	// at once. Questions sent while no connection served a shard are not
	// delivered by Discord (counted); none is answered twice.
	t.Run("Killed", func(t *testing.T) {
		t.Parallel()
		r := newClusterRig(t, etcd)
		a, b := r.start("a"), r.start("b")
		r.settle(split(a, b))
		stop := r.sender()
		time.Sleep(200 * time.Millisecond) // a few questions before
		killed := r.dc.Now()
		b.kill(r.etcd)
		r.settle(map[*process][]int{a: {0, 1, 2, 3}})
		var takeover time.Duration // until the survivor's last IDENTIFY
		for _, id := range r.dc.Identifies() {
			takeover = max(takeover, id.Time.Sub(killed))
		}
		time.Sleep(200 * time.Millisecond) // a few questions after
		qs := stop()
		b.close()

		lost, unanswered := 0, 0
		for _, q := range qs {
			if r.dc.Delivered(q.ID) == 0 {
				lost++
				continue
			}
			if a.handled(q.ID) == 0 {
				// Taken by the killed process only: answered there
				// before its end, or left to be finalised.
				unanswered++
				continue
			}
			answered(t, r.dc, q, r.text(q))
		}
		for _, q := range qs {
			if n := len(replies(r.dc, q)); n > 1 {
				t.Errorf("%q answered %d times, want once at most", r.text(q), n)
			}
		}
		t.Logf("%d questions while a process was killed: %d not delivered by Discord (the survivor identified its shards %v after the kill), %d taken by the killed process only",
			len(qs), lost, takeover, unanswered)
	})

	// With discord.shards auto, every process runs the count the first
	// settled, whatever Discord recommends to the ones after.
	t.Run("Auto", func(t *testing.T) {
		t.Parallel()
		dc := newShardFake(t, func(o *discordtest.Options) {
			o.Shards = 3 // recommended now; 2 were settled before
			o.SessionStartLimit.MaxConcurrency = 16
		})
		up := llmtest.NewServer()
		t.Cleanup(up.Close)
		cfg := etcdstore.Config{Endpoints: etcd.Endpoints(), Prefix: etcd.Prefix(t), Failover: 2 * time.Second,
			Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		var stores []*etcdstore.Store
		for _, name := range []string{"a", "b"} {
			cfg.Member = name
			s, err := etcdstore.Open(t.Context(), cfg)
			must(t, err)
			t.Cleanup(func() { s.Close() })
			stores = append(stores, s)
		}
		if n, err := stores[0].AgreeShards(t.Context(), 2); err != nil || n != 2 {
			t.Fatalf("AgreeShards = %d, %v; want 2 settled", n, err)
		}
		for _, s := range stores {
			runShardBotOn(t, dc, up, discord.Options{Shards: discord.AutoShards, ShardSet: s, IdentifyGate: s}, s)
		}
		waitShards(t, dc, 2, 0, 1)
		for _, id := range dc.Identifies() {
			if id.Shard[1] != 2 {
				t.Errorf("identified shard %v, want a shard of the 2 settled", id.Shard)
			}
		}
	})
}
