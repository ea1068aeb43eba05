package telegram

import (
	"context"
	"time"
)

// backgroundTimeout bounds a command's work in the background (listing
// the models); the message it shows is then the Manager's to send.
const backgroundTimeout = 30 * time.Second

// background runs fn in its own goroutine, tracked so that Run waits for
// it, with a context bounded by backgroundTimeout that outlives shutdown
// by at most asyncGrace. It is for commands whose answer needs a slow look-up,
// so that the look-up does not hold up the updates behind it.
func (b *Bot) background(fn func(ctx context.Context)) {
	b.async.Add(1)
	go func() {
		defer b.async.Done()
		ctx, cancel := context.WithTimeout(b.asyncCtx, backgroundTimeout)
		defer cancel()
		fn(ctx)
	}()
}
