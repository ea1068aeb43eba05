package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
)

// Bounds of the wait between attempts to open the gateway.
const (
	openBackoffMin = time.Second
	openBackoffMax = time.Minute
)

// open opens sh's gateway connection, each attempt in its turn at the
// identify gate, trying again with backoff (reported as "retrying") while
// Discord cannot be reached or answers with a server error, or the gate
// fails. It gives up only when ctx ends or Discord refuses what no retry
// can fix: the token (401, 403, close 4004) or the configuration (closes
// 4010–4014: shards, API version, intents).
func (b *Bot) open(ctx context.Context, sh *shard, concurrency int) error {
	backoff := openBackoffMin
	for {
		err := b.identify(ctx, sh, concurrency)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if refused(err) {
			return openError(err, sh, b.opts.ThreadFollowAll)
		}
		// discordgo names https://discord.com in its errors even when
		// discord.api_base sends the request elsewhere.
		b.log.Warn("cannot open the gateway; trying again", "shard", sh.id, "error", err, "api_base", b.apiBase(), "retry_in", backoff)
		b.setShardState(sh, stateRetrying)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, openBackoffMax)
	}
}

// identify opens sh's connection in its turn at the identify gate, which
// it holds until Discord answered (READY) or the attempt failed. Discord
// must answer GET /gateway first: an attempt that fails before its
// IDENTIFY would close the bucket for nothing. (A session that cannot
// resume identifies inside discordgo, past the gate.)
func (b *Bot) identify(ctx context.Context, sh *shard, concurrency int) error {
	if _, err := b.s.Gateway(discordgo.WithContext(ctx)); err != nil {
		return err
	}
	release, err := b.gate.Identify(ctx, sh.id, concurrency)
	if err != nil {
		return fmt.Errorf("wait for the identify gate: %w", err)
	}
	defer release()
	return sh.s.Open()
}

// apiBase is where REST requests go.
func (b *Bot) apiBase() string {
	if b.opts.APIBase == "" {
		return "https://" + discordHost
	}
	return b.opts.APIBase
}

// refused reports whether err from opening the gateway is Discord refusing
// the token or the configuration, which trying again cannot change.
func refused(err error) bool {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil {
		switch re.Response.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return true
		}
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case 4004, 4010, 4011, 4012, 4013, 4014:
			return true
		}
	}
	return false
}

// openError explains a refusal to open sh's gateway connection. Discord
// closes it with 4014 when the bot asks for a privileged intent that is
// not enabled in the Developer Portal, 4011 when the connection would
// serve more guilds than Discord allows (2500) and 4010 for a shard count
// it does not accept.
func openError(err error, sh *shard, followAll bool) error {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		ce = &websocket.CloseError{}
	}
	switch {
	case ce.Code == 4011:
		return fmt.Errorf("open gateway: Discord requires sharding: the bot is in more guilds than one connection may serve "+
			"(%d connection(s) now; Discord allows 2500 guilds each): set discord.shards: auto: %w", sh.total, err)
	case ce.Code == 4010:
		return fmt.Errorf("open gateway: Discord refused shard %d of %d (Invalid Shard): set discord.shards: auto, "+
			"or to a multiple of the shard count Discord assigned to the bot: %w", sh.id, sh.total, err)
	case followAll && ce.Code == 4014:
		return fmt.Errorf("open gateway: discord.thread_follow_all needs the Message Content intent: "+
			"enable it in the Developer Portal (Bot → Privileged Gateway Intents) or turn the key off: %w", err)
	}
	return fmt.Errorf("open gateway: Discord refused the token or the connection settings (check discord.token): %w", err)
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
