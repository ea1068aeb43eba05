package telegram

import (
	"context"
)

// Leader elects the one process that receives a bot's updates when
// several Palaver processes share one store: Telegram hands each update
// to one poller or one webhook, and the update offset is a single value.
// The etcd store implements it with an election under the process's
// session lease, so that a process that dies or is cut off loses
// leadership when its lease expires.
type Leader interface {
	// Lead blocks until this process leads name (or ctx ends), then
	// returns a context that ends when leadership is lost or ctx ends.
	// addr is advertised to the other processes while leading. Leadership
	// is given up when ctx ends: the Bot ends it only once it has stopped
	// taking updates and saved the offset, so that the next leader
	// resumes exactly where it stopped.
	Lead(ctx context.Context, name, addr string) (context.Context, error)
	// LeaderAddr returns the address the current leader of name
	// advertised ("" when none).
	LeaderAddr(ctx context.Context, name string) (string, error)
}

// Roles reported by Bot.Role.
const (
	// RoleLeader is a Bot receiving updates (Options.Leader elected it,
	// or there is none).
	RoleLeader = "leader"
	// RoleStandby is a Bot waiting to lead: it answers webhook requests
	// by forwarding them to the leader. A Bot that is not running is a
	// standby too.
	RoleStandby = "standby"
)

// leaderName is the election the Bot's updates are received under.
const leaderName = "telegram"

// Role is RoleLeader while the Bot receives updates and RoleStandby
// otherwise (for /healthz). It is safe to call at any time.
func (b *Bot) Role() string {
	if b.leading.Load() {
		return RoleLeader
	}
	return RoleStandby
}

// lead waits until this process leads the Bot's updates; with no
// Options.Leader it leads at once. It returns a context that ends when
// leadership is lost or ctx ends, and resign, which gives leadership up
// and must be called once updates have stopped. It fails only when ctx
// ends; the Leader's errors are logged and the campaign retried with
// backoff.
func (b *Bot) lead(ctx context.Context) (held context.Context, resign func(), err error) {
	if b.opts.Leader == nil {
		held, cancel := context.WithCancel(ctx)
		return held, cancel, nil
	}
	// The campaign outlives ctx once won: Run ends it (resigning) only
	// after the last update taken is handed over and the offset saved.
	campaign, endCampaign := context.WithCancel(context.WithoutCancel(ctx))
	stopWatch := context.AfterFunc(ctx, endCampaign)
	backoff := backoffMin
	for {
		won, err := b.opts.Leader.Lead(campaign, leaderName, b.opts.Advertise)
		if err == nil {
			stopWatch()
			held, cancel := context.WithCancel(won)
			stopHeld := context.AfterFunc(ctx, cancel)
			return held, func() { stopHeld(); cancel(); endCampaign() }, nil
		}
		if campaign.Err() != nil {
			endCampaign()
			return nil, nil, ctx.Err()
		}
		b.log.Warn("campaign to receive updates; trying again", "error", err, "retry_in", backoff)
		if !sleep(campaign, backoff) {
			endCampaign()
			return nil, nil, ctx.Err()
		}
		backoff = min(backoff*2, backoffMax)
	}
}
