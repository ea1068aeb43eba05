package sessions

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Reply is where one answer is shown: a platform message (or several) that
// the adapter creates on the first Show and edits on later ones. The reply
// engine calls Show from one goroutine at a time per Reply, never more often
// than the destination's schedule allows, and always once more with a final
// View (Final true) unless Show reported ErrReplyGone.
type Reply interface {
	// Destination names the rate-limit schedule this reply shares with every
	// other reply going to the same place (a Telegram chat, a Discord channel).
	Destination() Destination
	// Show makes v the visible state of the answer. It returns how many
	// platform requests it made (the destination's schedule charges each),
	// and a *RateLimitError when the platform asked to slow down, or an error
	// wrapping ErrReplyGone when the message no longer exists.
	//
	// A view that takes several requests (an answer growing past one
	// message) should be shown one request per call: Show makes the first
	// and returns ErrMore, and the engine calls it again, with the newest
	// view, when the destination's schedule allows. A burst of requests
	// would break a platform's sliding-window limit even though the
	// schedule charges them all.
	Show(ctx context.Context, v View) (requests int, err error)
}

// Typer is implemented by replies that can show a "typing…" indicator.
// The engine calls Typing when an answer starts and then every few seconds
// until the first Show; typing is not charged to the destination's
// schedule, but draws on the bot's global budget, and is the first thing
// dropped when that runs short.
//
// Typing calls charge, at most once, before a request the platform
// charges to the bot, and makes it only when charge reports true; a sign
// of life the platform does not charge (a Telegram draft) needs no call.
type Typer interface {
	Typing(ctx context.Context, charge func() bool) error
}

// Drafter is implemented by replies that show some views as drafts:
// previews the platform charges to no limit (Telegram's sendMessageDraft).
// The engine draws on no budget for a view Draft reports true for.
type Drafter interface {
	Draft(v View) bool
}

// Destination is a rate-limit schedule shared by all replies with the same
// ID (a Telegram chat, a Discord channel or thread).
type Destination struct {
	ID string
	// Interval is the least time between an update of growing text or
	// status at the destination and the request before it that showed a
	// reply (a first appearance, first text, growing text or status): how
	// smoothly answers grow. A reply's first appearance or first text, a
	// notice and a final view do not wait for it; notices and final views
	// do not start it.
	Interval time.Duration
	// Windows are the platform's own limits at the destination, all of
	// which hold (a Telegram group: a chat's 3 in 3 s and a group's 20 a
	// minute). The last request each window allows is kept for final
	// views, so that an answer that ends is shown complete at once. No
	// windows means one request per Interval, none kept.
	Windows []Window
	// Budget names the per-bot global budget the destination draws on
	// (Engine.SetBudget); empty draws on none.
	Budget string
}

// Window is a sliding-window rate limit: at most Requests requests in any
// span of Per.
type Window struct {
	Requests int
	Per      time.Duration
}

// View is what an answer looks like at one moment. Content and Reasoning are
// Markdown as the model wrote it; the adapter renders them for its platform.
type View struct {
	// Content is the answer so far.
	Content string
	// Reasoning is the model's reasoning so far, present only when the
	// conversation's reasoning display is Collapsed or Full.
	Reasoning string
	// ReasoningMode says how Reasoning is to be shown.
	ReasoningMode ReasoningMode
	// Status is a short line shown under the answer, or alone when there is
	// no content yet: "Thinking… 4 s", "Queued (1 ahead)", "(stopped)",
	// "⚠️ The model provider refused: …". Empty when there is nothing to say.
	Status string
	// Final is true on the last Show of an answer: the adapter removes
	// in-progress controls (a Stop button) and makes the text permanent.
	Final bool
}

// ReasoningMode is how an answer's reasoning is displayed.
type ReasoningMode string

// Reasoning display modes (config key chat.reasoning).
const (
	ReasoningHidden    ReasoningMode = "hidden"
	ReasoningCollapsed ReasoningMode = "collapsed"
	ReasoningFull      ReasoningMode = "full"
)

// ErrMore is returned by Reply.Show when it made one request towards the
// view and needs more to show all of it.
var ErrMore = errors.New("the view needs more requests")

// ErrReplyGone reports that the message being edited no longer exists (the
// user deleted it). The engine stops showing that answer without an error.
var ErrReplyGone = errors.New("reply message is gone")

// RateLimitError is returned by Show (or Typing) when the platform refused
// a request for being too fast. The engine pauses the destination for
// RetryAfter, or with Global set every destination of the bot's budget,
// and then shows the newest text.
type RateLimitError struct {
	RetryAfter time.Duration
	// Global is set when the limit was the bot's, across destinations
	// (Discord's "global": true).
	Global bool
	Err    error
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited, retry after %s: %v", e.RetryAfter, e.Err)
}

func (e *RateLimitError) Unwrap() error { return e.Err }
