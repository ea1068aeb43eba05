package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// killOne kills the Telegram leader (wantLeader: the odd kills, the first
// included) or a process holding shards and leading nothing, measures the
// takeover, and restarts it. Which process, when several fit, is random.
func (r *harness) killOne(ctx context.Context, i int, wantLeader bool) error {
	st := r.d.look(ctx)
	var candidates []*member
	for _, m := range r.d.members {
		h := st.health[m]
		if h == nil {
			continue
		}
		if h.leads() == wantLeader && (wantLeader || len(h.shardsUp()) > 0) {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) == 0 {
		candidates = st.leaders // every process leads or holds nothing: take the leader
	}
	if len(candidates) == 0 {
		return errors.New("no process to kill")
	}
	target := candidates[r.rng.IntN(len(candidates))]
	// While answers stream: the target has some running, if it will.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	for wctx.Err() == nil {
		if n, err := target.scrape(wctx, "palaver_active_answers"); err == nil && n > 0 {
			break
		}
		sleep(wctx, pollEvery)
	}
	cancel()
	h := target.health(ctx)
	k := &kill{member: target.name, leader: h.leads(), shards: h.shardsUp()}
	to := takeover{Kill: i, Member: target.name, Leader: k.leader, Shards: k.shards, ShardReady: map[int]millis{}}
	polled := make(chan time.Time, 1)
	pctx, stopPoll := context.WithTimeout(ctx, r.takeoverTimeout())
	defer stopPoll()
	k.at = time.Now()
	target.kill(ctx)
	r.event(k.at, "SIGKILL "+target.name)
	to.Unconfirmed = r.w.tg.PendingUpdates()
	r.kills.add(k)
	if k.leader {
		go func() { polled <- r.nextPoll(pctx) }()
	}
	r.measure(ctx, k, &to)
	if k.leader {
		if at := <-polled; !at.IsZero() {
			to.TelegramPoll = millis(at.Sub(k.at))
		}
	}
	to.Complete = to.Complete && (!k.leader || to.TelegramPoll > 0)
	r.kills.done(k, time.Now())
	r.report.Kills = append(r.report.Kills, to)
	line := fmt.Sprintf("  kill %d: %s (leader %t, shards %v): lease gone after %s", i, target.name, k.leader, k.shards, to.LeaseGone)
	if k.leader {
		line += fmt.Sprintf(", Telegram polled again after %s", to.TelegramPoll)
	}
	if len(k.shards) > 0 {
		line += fmt.Sprintf(", shards READY after %s", to.ShardsReady)
	}
	r.logf("%s", line)
	if !to.Complete {
		r.violation(kindNoTakeover, target.name, "kill %d: not taken over within %s: %+v", i, r.takeoverTimeout(), to)
	}
	if !sleep(ctx, r.opts.restartAfter) {
		return ctx.Err()
	}
	if err := r.waitMemberGone(ctx, target.name); err != nil {
		return err
	}
	r.event(time.Now(), "restart "+target.name)
	return target.start(r.d.bin, r.w.dir)
}

// takeoverTimeout bounds the wait for a takeover: the lease's TTL, then
// the identifies of every shard in one bucket.
func (r *harness) takeoverTimeout() time.Duration {
	return 3*r.opts.failover + 2*time.Duration(r.opts.shards)*identifyWindow + 30*time.Second
}

// measure polls until the survivors have taken over what the killed
// process held: its member record is gone, a survivor leads Telegram (if
// it led), each of its shards was identified again.
func (r *harness) measure(ctx context.Context, k *kill, to *takeover) {
	ctx, cancel := context.WithTimeout(ctx, r.takeoverTimeout())
	defer cancel()
	for {
		now := time.Now()
		if to.LeaseGone == 0 && r.memberGone(ctx, k.member) {
			to.LeaseGone = millis(now.Sub(k.at))
		}
		if k.leader && to.TelegramLeader == 0 && len(r.d.look(ctx).leaders) > 0 {
			to.TelegramLeader = millis(now.Sub(k.at))
		}
		r.shardsReady(k.at, k.shards, to.ShardReady)
		done := to.LeaseGone > 0 && (!k.leader || to.TelegramLeader > 0) && len(to.ShardReady) == len(k.shards)
		if done || !sleep(ctx, pollEvery) {
			break
		}
	}
	for _, d := range to.ShardReady {
		to.ShardsReady = max(to.ShardsReady, d)
	}
	to.Complete = to.LeaseGone > 0 && (!k.leader || to.TelegramLeader > 0) && len(to.ShardReady) == len(k.shards)
}

// nextPoll waits until the long poll open at the kill (the dead
// process's) has ended and another one began, and returns when; zero when
// ctx ends first. The fake records a call when it answers it, so its
// calls cannot say when a poll began.
func (r *harness) nextPoll(ctx context.Context) time.Time {
	tg := r.w.tg
	if tg.WaitFor(ctx, func() bool { return tg.Pollers() == 0 }) != nil {
		return time.Time{}
	}
	var at time.Time
	if tg.WaitFor(ctx, func() bool {
		if tg.Pollers() > 0 {
			at = time.Now()
			return true
		}
		return false
	}) != nil {
		return time.Time{}
	}
	return at
}

// shardsReady records, for each of shards not in ready yet, how long after
// since the fake Discord accepted an IDENTIFY of it (READY).
func (r *harness) shardsReady(since time.Time, shards []int, ready map[int]millis) {
	if len(ready) == len(shards) {
		return
	}
	for _, id := range r.w.dc.Identifies() {
		s := id.Shard[0]
		if !id.Accepted() || !id.Time.After(since) || !slices.Contains(shards, s) || ready[s] > 0 {
			continue
		}
		ready[s] = millis(id.Time.Sub(since))
	}
}

// memberGone reports whether the member record of name is gone from etcd:
// its session lease ended.
func (r *harness) memberGone(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := r.cli.Get(ctx, etcdPrefix+"members/"+name, clientv3.WithCountOnly())
	return err == nil && resp.Count == 0
}

// waitMemberGone waits until name's member record is gone, so that the
// process may start again under that name.
func (r *harness) waitMemberGone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*r.opts.failover+10*time.Second)
	defer cancel()
	for !r.memberGone(ctx, name) {
		if !sleep(ctx, pollEvery) {
			return fmt.Errorf("%s: its member record outlived its lease", name)
		}
	}
	return nil
}
