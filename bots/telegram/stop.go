package telegram

import (
	"sync"
	"time"
)

// generationStopped is a stopped_message_generation update
// (MessageGenerationStopped, core.telegram.org/bots/api#messagegenerationstopped,
// Bot API 10.3): the user pressed the Stop button of a draft sent with
// can_stop.
type generationStopped struct {
	Chat struct {
		ID int64 `json:"id"`
	} `json:"chat"`
	MessageThreadID int   `json:"message_thread_id"`
	DraftID         int64 `json:"draft_id"`
}

// onStopped stops the answer whose draft the user stopped, at once: its
// model's stream is closed, and the Manager shows what it wrote with the
// "(stopped)" note as a message (the draft, kept by keep_on_stop, goes
// when that message arrives). A Stop for an answer that ended, a second
// Stop, or one for a draft of an earlier run of the bot (its answer
// finalised on restart) changes nothing and says nothing: the update
// cannot be answered, and the user sees the answer's end anyway.
func (b *Bot) onStopped(s *generationStopped) {
	r := b.drafts.find(s.Chat.ID, s.DraftID)
	if r == nil {
		b.log.Debug("stop for a draft no answer runs in", "chat", s.Chat.ID, "draft", s.DraftID)
		return
	}
	if !b.m.StopReply(r.key(), r) {
		b.log.Debug("stop for an answer that ended", "chat", s.Chat.ID, "draft", s.DraftID)
	}
}

// draftRegistry finds the answer a draft id belongs to. An answer's draft
// ids share a base (a multiple of draftSpan); the bases count from the
// Bot's start in milliseconds, so that a draft of an earlier run is never
// taken for one of this run's answers.
type draftRegistry struct {
	mu      sync.Mutex
	next    int64 // the next base, over draftSpan
	answers map[int64]draftEntry
}

type draftEntry struct {
	r  *reply
	at time.Time
}

// maxDrafts bounds the answers the registry holds: when it is full, those
// registered more than draftAge ago go (an answer abandoned without its
// final view, at shutdown, is not removed otherwise).
const (
	maxDrafts = 1024
	draftAge  = time.Hour
)

func newDraftRegistry(now time.Time) *draftRegistry {
	return &draftRegistry{next: now.UnixMilli(), answers: map[int64]draftEntry{}}
}

// add registers r and returns its draft id base.
func (g *draftRegistry) add(r *reply) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next++
	base := g.next * draftSpan
	now := time.Now()
	if len(g.answers) >= maxDrafts {
		for k, e := range g.answers {
			if now.Sub(e.at) > draftAge {
				delete(g.answers, k)
			}
		}
	}
	g.answers[base] = draftEntry{r: r, at: now}
	return base
}

// remove forgets the answer with draft id base (0 for none).
func (g *draftRegistry) remove(base int64) {
	if base == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.answers, base)
}

// find returns the answer whose draft id is id in chat, nil for none.
func (g *draftRegistry) find(chat, id int64) *reply {
	g.mu.Lock()
	e, ok := g.answers[id-id%draftSpan]
	g.mu.Unlock()
	if !ok || e.r.chatID() != chat {
		return nil
	}
	return e.r
}

// chatID is the chat the reply is shown in.
func (r *reply) chatID() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chat
}
