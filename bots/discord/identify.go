package discord

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
)

// IdentifyWindow is Discord's identify rate window: an app may start
// max_concurrency gateway sessions per 5 seconds, one per bucket
// (shard id % max_concurrency). Discord answers an IDENTIFY past that
// with Invalid Session.
const IdentifyWindow = 5 * time.Second

// LocalGate is the IdentifyGate of a bot run by a single process (the
// default when Options.IdentifyGate is nil): one IDENTIFY per bucket at a
// time, each no sooner than IdentifyWindow after the bucket's last began.
// A bot run by several processes needs a gate they share (the etcd
// store's). The zero value is ready to use; its methods are safe for
// concurrent use.
type LocalGate struct {
	// Now and After are the gate's clock; nil means time.Now and
	// time.After.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time

	mu      sync.Mutex
	buckets map[int]*identifyBucket
}

// identifyBucket is one bucket of a LocalGate. turn holds a token while
// the bucket is free; last is used only by the token's holder.
type identifyBucket struct {
	turn chan struct{}
	last time.Time // when the bucket's last IDENTIFY began; zero if none
}

// Identify implements IdentifyGate: it waits until shard's bucket is free
// and IdentifyWindow has passed since its last IDENTIFY began, or until
// ctx ends. release frees the bucket; calls after the first do nothing.
func (g *LocalGate) Identify(ctx context.Context, shard, maxConcurrency int) (release func(), err error) {
	if shard < 0 {
		return nil, fmt.Errorf("discord: identify gate: shard %d is negative", shard)
	}
	b := g.bucket(shard % max(maxConcurrency, 1))
	select {
	case <-b.turn:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for !b.last.IsZero() {
		wait := b.last.Add(IdentifyWindow).Sub(g.now())
		if wait <= 0 {
			break
		}
		select {
		case <-g.after(wait):
		case <-ctx.Done():
			b.turn <- struct{}{}
			return nil, ctx.Err()
		}
	}
	b.last = g.now()
	var once sync.Once
	return func() { once.Do(func() { b.turn <- struct{}{} }) }, nil
}

func (g *LocalGate) bucket(n int) *identifyBucket {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.buckets == nil {
		g.buckets = map[int]*identifyBucket{}
	}
	b := g.buckets[n]
	if b == nil {
		b = &identifyBucket{turn: make(chan struct{}, 1)}
		b.turn <- struct{}{}
		g.buckets[n] = b
	}
	return b
}

func (g *LocalGate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *LocalGate) after(d time.Duration) <-chan time.Time {
	if g.After != nil {
		return g.After(d)
	}
	return time.After(d)
}

// plan is how a Run shards its gateway connection.
type plan struct {
	total       int  // shards of the application
	concurrency int  // Discord's max_concurrency: identify buckets
	budget      bool // check the session start limit before identifying
}

// plan decides the shard count: one connection for Options.Shards 0 or 1
// (with no request, as an unsharded bot always did), else the count
// configured or, for AutoShards, the one GET /gateway/bot recommends;
// with max_concurrency from the same answer.
func (b *Bot) plan(ctx context.Context) (plan, error) {
	if b.opts.Shards == 0 || b.opts.Shards == 1 {
		return plan{total: 1, concurrency: 1}, nil
	}
	gb, err := b.gatewayBot(ctx, func() { b.setPending(stateRetrying) })
	if err != nil {
		return plan{}, err
	}
	p := plan{total: b.opts.Shards, concurrency: max(gb.SessionStartLimit.MaxConcurrency, 1), budget: true}
	if p.total != AutoShards {
		return p, nil
	}
	p.total = max(gb.Shards, 1)
	if sc, ok := b.shardSet.(ShardCount); ok {
		// Several processes: the count the first of them settled.
		agreed, err := sc.AgreeShards(ctx, p.total)
		if err != nil {
			return plan{}, fmt.Errorf("discord: agree on the shard count: %w", err)
		}
		if agreed != p.total {
			b.log.Warn("Discord recommends another shard count than the deployment runs; set discord.shards to a number in every process to change it",
				"recommended", p.total, "shards", agreed)
		}
		p.total = agreed
	}
	b.log.Info("sharding as Discord recommends", "shards", p.total, "max_concurrency", p.concurrency)
	return p, nil
}

// gatewayBot asks GET /gateway/bot, trying again with backoff (calling
// retrying first) while Discord cannot be reached or answers with a
// server error; a refused token ends it.
func (b *Bot) gatewayBot(ctx context.Context, retrying func()) (*discordgo.GatewayBotResponse, error) {
	backoff := openBackoffMin
	for {
		gb, err := b.s.GatewayBot(discordgo.WithContext(ctx))
		if err == nil {
			return gb, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if refused(err) {
			return nil, fmt.Errorf("discord: get gateway: Discord refused the token (check discord.token): %w", err)
		}
		b.log.Warn("cannot ask Discord for the gateway; trying again", "error", err, "api_base", b.apiBase(), "retry_in", backoff)
		retrying()
		if !sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(backoff*2, openBackoffMax)
	}
}

// awaitStarts returns once Discord's session start limit has a start left
// for each of shards, waiting for its reset (with shards reported "retrying")
// while it has fewer: identifying past the limit would make Discord end
// every session of the bot and reset its token.
func (b *Bot) awaitStarts(ctx context.Context, shards []*shard) error {
	retrying := func() {
		for _, sh := range shards {
			b.setShardState(sh, stateRetrying)
		}
	}
	for {
		gb, err := b.gatewayBot(ctx, retrying)
		if err != nil {
			return err
		}
		l := gb.SessionStartLimit
		if l.Remaining >= len(shards) {
			return nil
		}
		wait := max(time.Duration(l.ResetAfter)*time.Millisecond, openBackoffMin)
		b.log.Error("Discord's daily session start limit is almost spent: waiting for its reset before opening more shards, "+
			"as going past it makes Discord reset the bot's token. Frequent restarts spend it; so does a shard count that keeps changing",
			"remaining", l.Remaining, "total", l.Total, "shards_to_open", len(shards), "reset_in", wait)
		retrying()
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}
