package discord_test

import (
	"testing"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

// OnState follows the gateway: connecting while Run opens it, up on
// READY, reconnecting when the connection drops, up again on RESUMED.
func TestBot_OnState(t *testing.T) {
	states := make(chan string, 16)
	r := newRig(t, func(r *rig) {
		r.opts.OnState = func(s string) { states <- s }
	})
	ctx := r.ctx()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("state = %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no state %q: %v", want, ctx.Err())
		}
	}
	expect("connecting")
	expect("up")

	r.dc.DropConnections()
	expect("reconnecting")
	expect("up")

	// The resumed connection serves messages.
	ch := r.channel("after-drop")
	_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
		Content: discordtest.Mention(r.dc.AppID()) + " still there?"})
	must(t, err)
	r.final(t, ch.ID, "still there?")
	if n := len(r.dc.GatewaySessions()); n != 1 {
		t.Errorf("%d gateway sessions, want the one resumed", n)
	}

	// Closing the gateway at shutdown is not a reconnection.
	r.stop()
	close(states)
	for s := range states {
		t.Errorf("extra state %q", s)
	}
}
