package discord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bwmarrin/discordgo"
)

// Sharding (Options.Shards). Discord splits a bot's gateway events over
// shards: shard n of N receives the events of the guilds whose
// (guild_id >> 22) % N is n, and shard 0 the DMs too. Each shard this
// process holds is one gateway connection, a *discordgo.Session of its
// own that shares the Bot's REST session (its HTTP client, rate limiter
// and state): answers are sent and edited by the REST session whichever
// shard delivered the question, and every shard's events go to the same
// handlers.
//
// Which shards this process runs is Options.ShardSet's to say (all of
// them when nil), and when each may IDENTIFY is Options.IdentifyGate's.
// A shard that leaves the set is closed, then released with Drop; one
// that joins it opens through the gate and is reported Ready once
// Discord answered READY; the others are not touched.
//
// A shard moves between processes make-before-break: the process
// receiving it opens its connection while the previous holder keeps its
// own, until the receiver reported the shard Ready (or a bounded time
// passed). Discord delivers the shard's events to both connections
// meanwhile, so none is lost; the store refuses the second delivery of a
// question (sessions.ErrDuplicate, dropped without a word), and of the
// other interactions only one response is taken (Discord answers the
// other 40060, which is dropped as quietly). When Run's context ends,
// the process hands its shards over the same way before it closes them.

// AutoShards, as Options.Shards, takes the shard count Discord recommends
// (GET /gateway/bot) at each Run.
const AutoShards = -1

// maxShards bounds Options.Shards: far more than any bot runs.
const maxShards = 1 << 16

// Shards says which shards this process runs. In a cluster the etcd
// store implements it; nil in Options runs every shard.
type Shards interface {
	// Watch sends the ids of the shards (of total) this process is to
	// run now and whenever that set changes. A shard joins the set once
	// this process holds its claim, or earlier while another process
	// hands it over to this one: the receiver opens its connection and
	// calls Ready once Discord answered READY, and the previous holder
	// keeps its own connection until then (or a bounded time). A shard
	// leaves the set once this process is to stop running it (the
	// receiver is ready, the hand-over timed out, or the claim was
	// lost); the receiver closes that shard's connection and calls Drop,
	// which releases the claim.
	//
	// When ctx ends, Watch hands the shards held over to the other
	// processes in this way (bounded) and closes the channel once it
	// holds none: the Bot keeps serving them meanwhile. A channel closed
	// before ctx ends is the loss of every claim: the Bot closes its
	// shards and Run returns an error.
	Watch(ctx context.Context, total int) (<-chan []int, error)
	// Ready reports that this process's connection of shard answered
	// READY (it receives the shard's events).
	Ready(ctx context.Context, shard int) error
	// Drop reports that this process closed the connection of shard,
	// which left the set; its claim is released.
	Drop(ctx context.Context, shard int) error
}

// ShardCount is a Shards that several processes share: with
// discord.shards auto they must run the same count, so the first to ask
// settles it.
type ShardCount interface {
	// AgreeShards returns the deployment's shard count: recommended
	// when none was settled yet (it is then), else the one settled.
	AgreeShards(ctx context.Context, recommended int) (int, error)
}

// IdentifyGate spaces the IDENTIFYs of a bot's shards. In a cluster the
// etcd store implements it; nil in Options means a LocalGate.
type IdentifyGate interface {
	// Identify waits for this shard's turn to IDENTIFY: at most
	// maxConcurrency identifies per 5 s, one per bucket
	// (shard % maxConcurrency) across all processes. release is called
	// once the gateway answered READY (or failed); the bucket stays
	// closed 5 s after the identify began.
	Identify(ctx context.Context, shard, maxConcurrency int) (release func(), err error)
}

// ShardState is a shard this process holds, as Bot.Shards reports it.
type ShardState struct {
	// ID is the shard's id, of Total shards.
	ID    int `json:"id"`
	Total int `json:"total"`
	// State is the shard's connection: "connecting", "up", "reconnecting"
	// or "retrying", as Options.OnState describes them.
	State string `json:"state"`
}

// allShards is the Shards of a single process: it runs every shard, and
// has no one to hand them over to.
type allShards struct{}

func (allShards) Watch(ctx context.Context, total int) (<-chan []int, error) {
	ids := make([]int, total)
	for i := range ids {
		ids[i] = i
	}
	ch := make(chan []int, 1)
	ch <- ids
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}

func (allShards) Ready(context.Context, int) error { return nil }
func (allShards) Drop(context.Context, int) error  { return nil }

// handOverWait bounds how long Run, its context ended, serves the shards
// Options.ShardSet is handing over (the etcd store takes at most its
// hand-over timeout, 15 s by default, and a few seconds to release).
const handOverWait = 30 * time.Second

// dropTimeout bounds the release of a closed shard's claim; it is
// detached from Run's context, so that a shard closed at shutdown is
// released too.
const dropTimeout = 5 * time.Second

// shard is one gateway connection of a Run.
type shard struct {
	id, total int
	s         *discordgo.Session
	stop      context.CancelFunc // ends runShard
	after     <-chan struct{}    // closed once the shard's previous connection is released; nil if none
	dropped   chan struct{}      // signalled when the connection drops
	done      chan struct{}      // closed when runShard returns
	released  chan struct{}      // closed when the connection is closed and Dropped
	state     string             // guarded by Bot.shardMu
}

// newShard makes the gateway session of shard id, sharing the REST
// session's client, rate limiter and state, with the Bot's handlers;
// stop ends its runShard.
func (b *Bot) newShard(id, total int, stop context.CancelFunc) *shard {
	g, _ := discordgo.New(b.s.Token) // fails only on an MFA login
	g.Client, g.Dialer, g.Ratelimiter, g.UserAgent = b.s.Client, b.s.Dialer, b.s.Ratelimiter, b.s.UserAgent
	g.State, g.StateEnabled = b.s.State, true
	g.Identify = b.s.Identify
	g.ShardID, g.ShardCount = id, total
	// runShard reconnects, not discordgo: a reconnection discordgo starts
	// (from its heartbeat or reading goroutine) outlives Close, and would
	// open the shard again after it was given to another process.
	g.ShouldReconnectOnError = false
	g.ShouldRetryOnRateLimit = b.s.ShouldRetryOnRateLimit
	// Handlers run in the goroutine that reads the shard's connection, so
	// that its events are seen in order; the handlers of messages and
	// interactions start tracked goroutines of their own.
	g.SyncEvents = true
	g.LogLevel = discordgo.LogWarning
	sh := &shard{id: id, total: total, s: g, stop: stop, dropped: make(chan struct{}, 1),
		done: make(chan struct{}), released: make(chan struct{}), state: stateConnecting}
	b.handle(sh)
	return sh
}

// handle registers the Bot's event handlers on sh's session.
func (b *Bot) handle(sh *shard) {
	// Questions take their ticket here, in the order Discord delivers
	// them; a channel's events all come on one shard.
	sh.s.AddHandler(func(_ *discordgo.Session, ev *discordgo.InteractionCreate) {
		var t *ticket
		if ev.Type == discordgo.InteractionApplicationCommand && ev.ApplicationCommandData().Name == "chat" {
			t = b.arrivals.take(ev.ChannelID)
		}
		go func() {
			defer t.done()
			b.track(func(ctx context.Context) { b.onInteraction(ctx, ev.Interaction, t) })
		}()
	})
	sh.s.AddHandler(func(_ *discordgo.Session, ev *discordgo.MessageCreate) {
		b.catch.saw(ev.Message, ev.GuildID, false, b.now())
		t := b.arrivals.take(ev.ChannelID)
		go func() {
			defer t.done()
			b.track(func(ctx context.Context) { b.onMessage(ctx, ev.Message, t) })
		}()
	})
	sh.s.AddHandler(func(_ *discordgo.Session, ev *discordgo.Ready) {
		b.ready(ev)
		b.setShardState(sh, stateUp)
		// A new session: what was written while the shard had no
		// connection was delivered to none (a RESUMED replays it).
		go b.track(func(ctx context.Context) { b.catchUpShard(ctx, sh.id) })
		// Off the reading goroutine: a previous holder waits for this to
		// close its connection of the shard.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
			defer cancel()
			if err := b.shardSet.Ready(ctx, sh.id); err != nil {
				b.log.Warn("report a shard ready", "shard", sh.id, "error", err)
			}
		}()
	})
	sh.s.AddHandler(func(*discordgo.Session, *discordgo.Resumed) { b.setShardState(sh, stateUp) })
	// Connect follows READY or RESUMED once the handshake is complete.
	sh.s.AddHandler(func(*discordgo.Session, *discordgo.Connect) { b.setShardState(sh, stateUp) })
	sh.s.AddHandler(func(*discordgo.Session, *discordgo.Disconnect) {
		b.setShardState(sh, stateReconnecting)
		select {
		case sh.dropped <- struct{}{}:
		default:
		}
	})
}

// ready keeps who the bot is from a shard's READY.
func (b *Bot) ready(r *discordgo.Ready) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.User != nil {
		b.selfID, b.selfName = r.User.ID, r.User.Username
	}
	if b.appID == "" && r.Application != nil {
		b.appID = r.Application.ID
	}
	if b.appID == "" && r.User != nil {
		b.appID = r.User.ID // a bot's user id is its application id
	}
}

// reshard makes the shards held those of ids: it closes (then Drops) the
// shards that left the set and opens those that joined it, leaving the
// others alone. Called by Run only.
func (b *Bot) reshard(ctx context.Context, ids []int, p plan) {
	want := map[int]bool{}
	for _, id := range ids {
		if id < 0 || id >= p.total {
			b.log.Warn("ignoring a shard outside the shard count", "shard", id, "shards", p.total)
			continue
		}
		want[id] = true
	}
	b.shardMu.Lock()
	b.settled = true
	var gone, added []*shard
	var ctxs []context.Context // the contexts of added
	for id, sh := range b.shards {
		if !want[id] {
			delete(b.shards, id)
			gone = append(gone, sh)
		}
	}
	for _, sh := range gone {
		b.leaving[sh.id] = sh.released
	}
	for _, id := range sortedKeys(want) {
		if b.shards[id] == nil {
			sctx, stop := context.WithCancel(ctx)
			sh := b.newShard(id, p.total, stop)
			sh.after = b.leaving[id]
			b.shards[id] = sh
			added, ctxs = append(added, sh), append(ctxs, sctx)
		}
	}
	b.shardMu.Unlock()
	b.report()
	for _, sh := range gone {
		b.log.Info("closing shard", "shard", sh.id, "shards", sh.total)
		b.bg.Go(func() { b.closeShard(sh) })
	}
	if len(added) == 0 {
		return
	}
	ready := make(chan struct{})
	if p.budget {
		b.bg.Go(func() {
			if err := b.awaitStarts(ctx, added); err != nil {
				b.fail(ctx, err) // ready stays open: the shards wait for their end
				return
			}
			close(ready)
		})
	} else {
		close(ready)
	}
	for i, sh := range added {
		b.bg.Go(func() { b.runShard(ctx, ctxs[i], sh, ready, p) })
	}
}

// runShard opens sh once its previous connection is released and the
// session starts allow, through the identify gate, and opens it again
// whenever the connection drops, until ctx (sh's) ends. The first shard
// up of a Run runs connected under runCtx.
func (b *Bot) runShard(runCtx, ctx context.Context, sh *shard, ready <-chan struct{}, p plan) {
	defer close(sh.done)
	for _, c := range []<-chan struct{}{sh.after, ready} {
		if c == nil {
			continue
		}
		select {
		case <-c:
		case <-ctx.Done():
			return
		}
	}
	if err := b.open(ctx, sh, p.concurrency); err != nil {
		b.fail(ctx, err)
		return
	}
	b.log.Debug("shard up", "shard", sh.id, "shards", sh.total)
	b.firstUp.Do(func() { b.bg.Go(func() { b.connected(runCtx) }) })
	for {
		select {
		case <-ctx.Done():
			return
		case <-sh.dropped:
		}
		if err := b.reopen(ctx, sh); err != nil {
			b.fail(ctx, err)
			return
		}
	}
}

// reopen opens sh's session again after its connection dropped, at once,
// then with backoff, until ctx ends or Discord refuses. The session
// resumes where Discord allows, which takes no turn at the identify gate;
// where it does not, discordgo identifies anew, past the gate.
func (b *Bot) reopen(ctx context.Context, sh *shard) error {
	var backoff time.Duration
	for {
		err := sh.s.Open()
		if err == nil || errors.Is(err, discordgo.ErrWSAlreadyOpen) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if refused(err) {
			return openError(err, sh, b.opts.ThreadFollowAll)
		}
		backoff = min(max(backoff*2, openBackoffMin), openBackoffMax)
		b.log.Warn("cannot reconnect the gateway; trying again", "shard", sh.id, "error", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
}

// connected runs once per Run, when its first shard is up: it finalises
// the answers a previous run left unfinished and registers the slash
// commands.
func (b *Bot) connected(ctx context.Context) {
	b.mu.Lock()
	name := b.selfName
	b.mu.Unlock()
	b.log.Info("connected", "bot", name)
	if err := b.m.Recover(ctx, Platform, b.restoreReply); err != nil {
		b.log.Warn("finalise interrupted answers", "error", err)
	}
	if err := b.registerCommands(ctx); err != nil && ctx.Err() == nil {
		b.log.Error("register slash commands", "error", err)
	}
	if b.opts.ShardSet != nil {
		// Several processes: answers one of them leaves unfinished later
		// (it died, or stopped past its grace) are finalised by a sweep.
		go b.sweepInterrupted(ctx)
	}
}

// recoverEvery is how often, with several processes, the bot looks for
// answers a process left unfinished.
const recoverEvery = 30 * time.Second

// sweepInterrupted finalises, every recoverEvery until ctx ends, the
// answers no live process holds any more.
func (b *Bot) sweepInterrupted(ctx context.Context) {
	t := time.NewTicker(recoverEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := b.m.Recover(ctx, Platform, b.restoreReply); err != nil && ctx.Err() == nil {
			b.log.Warn("finalise interrupted answers", "error", err)
		}
	}
}

// handOver serves the shards held while Options.ShardSet hands them over
// to other processes, Run's context having ended: each is closed (and
// Dropped) as it leaves the set, none is opened, until the set's channel
// closes or handOverWait passed.
func (b *Bot) handOver(sets <-chan []int, p plan) {
	t := time.NewTimer(handOverWait)
	defer t.Stop()
	for {
		select {
		case ids, ok := <-sets:
			if !ok {
				return
			}
			b.shardMu.Lock()
			kept := slices.DeleteFunc(ids, func(id int) bool { return b.shards[id] == nil })
			b.shardMu.Unlock()
			b.reshard(context.Background(), kept, p)
		case <-t.C:
			b.log.Warn("the shards were not all handed over in time; closing them", "wait", handOverWait)
			return
		}
	}
}

// closeShard closes sh's connection, then releases its claim. Events it
// delivered until then are handled; answers in flight go on over REST.
func (b *Bot) closeShard(sh *shard) {
	sh.stop()
	<-sh.done
	if err := sh.s.Close(); err != nil {
		b.log.Warn("close gateway", "shard", sh.id, "error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	if err := b.shardSet.Drop(ctx, sh.id); err != nil {
		b.log.Warn("release shard", "shard", sh.id, "error", err)
	}
	close(sh.released)
	b.shardMu.Lock()
	if b.leaving[sh.id] == sh.released {
		delete(b.leaving, sh.id)
	}
	b.shardMu.Unlock()
}

// closeAll closes every shard held and waits until each is released and
// every goroutine of the Run has returned.
func (b *Bot) closeAll() {
	b.shardMu.Lock()
	for _, sh := range b.shards {
		b.bg.Go(func() { b.closeShard(sh) })
	}
	clear(b.shards)
	b.shardMu.Unlock()
	b.bg.Wait()
}

// fail ends Run with err, unless ctx (the shard's or Run's) ended.
func (b *Bot) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	select {
	case b.fatal <- err:
	default:
	}
}

// errAssignmentEnded is Run's error when Options.ShardSet closed its
// channel.
var errAssignmentEnded = errors.New("discord: the shard assignment ended (was the cluster session lost?): closed the gateway")

// Shards reports the shards this process holds and their connection
// states, by id: empty before Run has its first assignment and after it
// returned.
func (b *Bot) Shards() []ShardState {
	b.shardMu.Lock()
	defer b.shardMu.Unlock()
	out := make([]ShardState, 0, len(b.shards))
	for _, sh := range b.shards {
		out = append(out, ShardState{ID: sh.id, Total: sh.total, State: sh.state})
	}
	slices.SortFunc(out, func(x, y ShardState) int { return x.ID - y.ID })
	return out
}

// stateRank orders connection states from the best to the worst.
var stateRank = map[string]int{stateUp: 0, stateConnecting: 1, stateReconnecting: 2, stateRetrying: 3}

// setShardState records sh's state, if sh is still held, and reports the
// Bot's.
func (b *Bot) setShardState(sh *shard, state string) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	b.shardMu.Lock()
	held := b.shards[sh.id] == sh
	if held {
		sh.state = state
	}
	s := b.stateLocked()
	b.shardMu.Unlock()
	if held {
		b.reportLocked(s)
	}
}

// setPending sets the state reported before the first assignment.
func (b *Bot) setPending(state string) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	b.shardMu.Lock()
	b.pending = state
	s := b.stateLocked()
	b.shardMu.Unlock()
	b.reportLocked(s)
}

// report reports the Bot's state as it stands.
func (b *Bot) report() {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	b.shardMu.Lock()
	s := b.stateLocked()
	b.shardMu.Unlock()
	b.reportLocked(s)
}

// stateLocked is the Bot's state: before the first assignment the
// pending one, then the worst of the shards held, "up" when it holds
// none (a standby process of a cluster).
func (b *Bot) stateLocked() string {
	if !b.settled {
		return b.pending
	}
	s := stateUp
	for _, sh := range b.shards {
		if stateRank[sh.state] > stateRank[s] {
			s = sh.state
		}
	}
	return s
}

func sortedKeys(m map[int]bool) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkShards validates Options.Shards.
func checkShards(n int) error {
	if n < AutoShards || n > maxShards {
		return fmt.Errorf("discord: shards %d: want auto, 0 or 1 for one connection, or a number of shards up to %d", n, maxShards)
	}
	return nil
}
