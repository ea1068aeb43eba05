package llm

import (
	"context"
	"io"
	"time"
)

type pacing struct {
	lead time.Duration
	next func() time.Time
}

type pacingKey struct{}

// WithPacing returns a copy of ctx that paces the streams read with it
// (Client.Stream) to the snapshots a consumer takes of the answer (a chat
// message edited once a second). next reports when the consumer will
// take its next snapshot. Once the answer's first text has arrived, the
// response is read only from lead before that time on: the tokens that
// arrive meanwhile wait in the socket and come in one read, so the
// consumer wakes about once per snapshot instead of once per token, and
// each snapshot still holds every token that came before it, give or take
// lead. The first text is never delayed, nor is anything read while next
// is in the past. Cancelling ctx ends a wait.
func WithPacing(ctx context.Context, lead time.Duration, next func() time.Time) context.Context {
	return context.WithValue(ctx, pacingKey{}, pacing{lead: lead, next: next})
}

// pacingOf is ctx's pacing; its next is nil when ctx is not paced.
func pacingOf(ctx context.Context) pacing {
	p, _ := ctx.Value(pacingKey{}).(pacing)
	return p
}

// pacedReader reads r as its pacing says once start was called. A nil
// *pacedReader's start does nothing.
type pacedReader struct {
	r     io.Reader
	ctx   context.Context
	pace  pacing
	on    bool
	timer *time.Timer
}

func (p *pacedReader) start() {
	if p != nil {
		p.on = true
	}
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if !p.on {
		return p.r.Read(b)
	}
	if wait := time.Until(p.pace.next().Add(-p.pace.lead)); wait > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(wait)
		} else {
			p.timer.Reset(wait)
		}
		select {
		case <-p.timer.C:
		case <-p.ctx.Done():
			return 0, p.ctx.Err()
		}
	}
	return p.r.Read(b)
}

func (p *pacedReader) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
