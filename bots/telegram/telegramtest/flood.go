package telegramtest

import (
	"math"
	"strconv"
	"time"
)

// FloodLimits are the rate limits the fake enforces, modelled on
// core.telegram.org/bots/faq: about one message per second per chat with
// short bursts allowed (a bucket), at most 20 messages per minute per
// group (a bucket), and about 30 messages per second per bot across all
// its chats (a sliding window).
//
// sendMessage, sendRichMessage, editMessageText and editMessageReplyMarkup
// are charged (edits count like messages), to their chat and to the bot.
// sendChatAction, sendMessageDraft, sendRichMessageDraft, deleteMessage and
// the other methods are not: Telegram documents no limit for them, and a
// draft is a preview that Telegram coalesces. A refused call is not charged.
// Over the limit a call fails with 429 "Too Many Requests: retry after N"
// and parameters.retry_after N, N being the whole seconds until it would
// pass.
type FloodLimits struct {
	// Disabled turns the limits off.
	Disabled bool
	// ChatInterval is the sustained interval between charged calls per
	// chat; default 1 s.
	ChatInterval time.Duration
	// ChatBurst is how many charged calls a quiet chat may make at once;
	// default 3.
	ChatBurst int
	// GroupPerMinute is the charged calls per minute per group or
	// supergroup; default 20.
	GroupPerMinute int
	// BotPerSecond is how many charged calls the bot may make across all
	// its chats within any span of one second (a sliding window: a burst
	// of that many at once passes, but never more in a second, so that
	// "never above the budget" and "never refused" are one rule). The
	// default is 30 at Telegram's ChatInterval of 1 s, scaled with a
	// shorter or longer ChatInterval (30 × 1 s / ChatInterval), so that a
	// fake whose time is compressed for a fast test keeps Telegram's
	// proportions. Negative disables this limit alone.
	BotPerSecond int

	// bot is the bot-wide window and counters. It is state, not
	// configuration: made by withDefaults and kept by SetFlood.
	bot *botFlood
}

func (l FloodLimits) withDefaults() FloodLimits {
	if l.ChatInterval <= 0 {
		l.ChatInterval = time.Second
	}
	if l.ChatBurst <= 0 {
		l.ChatBurst = 3
	}
	if l.GroupPerMinute <= 0 {
		l.GroupPerMinute = 20
	}
	if l.BotPerSecond == 0 {
		l.BotPerSecond = max(1, int(math.Round(30*float64(time.Second)/float64(l.ChatInterval))))
	}
	if l.bot == nil {
		l.bot = &botFlood{}
	}
	return l
}

// chatFlood is one chat's token buckets and injected refusals.
type chatFlood struct {
	started  bool
	last     time.Time
	chat     float64 // tokens in the per-chat bucket
	group    float64 // tokens in the per-group bucket
	injected []injection
}

type injection struct {
	calls      int
	retryAfter int
}

// SetFlood replaces the flood limits; buckets keep their current fill.
func (s *Server) SetFlood(l FloodLimits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bot := s.flood.bot
	s.flood = l.withDefaults()
	s.flood.bot = bot
}

// InjectFlood makes the next calls requests addressed to chatID (any method
// with that chat_id) fail with 429 and retry_after seconds, whatever the
// flood limits say. Injections queue up in order.
func (s *Server) InjectFlood(chatID int64, calls, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatLocked(chatID)
	c.flood.injected = append(c.flood.injected, injection{calls: calls, retryAfter: retryAfter})
}

// takeInjected consumes one injected refusal, if any.
func (f *chatFlood) takeInjected() *apiError {
	for len(f.injected) > 0 {
		in := &f.injected[0]
		if in.calls <= 0 {
			f.injected = f.injected[1:]
			continue
		}
		in.calls--
		return tooManyRequests(in.retryAfter)
	}
	return nil
}

// charge takes one charged call from the chat's buckets and the bot's, or
// returns the 429 answer when one of them is empty.
func (s *Server) chargeLocked(c *chatState) *apiError {
	l := s.flood
	now := s.now()
	if l.Disabled {
		l.bot.count(now)
		return nil
	}
	f := &c.flood
	perMinute := float64(l.GroupPerMinute)
	if !f.started {
		f.started, f.last, f.chat, f.group = true, now, float64(l.ChatBurst), perMinute
	}
	if elapsed := now.Sub(f.last); elapsed > 0 {
		f.chat = min(float64(l.ChatBurst), f.chat+float64(elapsed)/float64(l.ChatInterval))
		f.group = min(perMinute, f.group+elapsed.Minutes()*perMinute)
		f.last = now
	}
	var wait time.Duration
	if f.chat < 1 {
		wait = time.Duration((1 - f.chat) * float64(l.ChatInterval))
	}
	if !c.isPrivate() && f.group < 1 {
		wait = max(wait, time.Duration((1-f.group)/perMinute*float64(time.Minute)))
	}
	if bw := l.bot.wait(now, l.BotPerSecond); bw > 0 {
		l.bot.limited++
		wait = max(wait, bw)
	}
	if wait > 0 {
		return tooManyRequests(int(math.Ceil(wait.Seconds())))
	}
	f.chat--
	if !c.isPrivate() {
		f.group--
	}
	l.bot.count(now)
	return nil
}

// botFlood is the bot-wide window and what it saw.
type botFlood struct {
	recent  []time.Time // charged calls within the last second, oldest first
	limited int         // calls refused for the bot-wide limit
	charged int         // calls charged
	peak    int         // most charged calls within any second
}

// prune forgets the calls a second or more before now.
func (b *botFlood) prune(now time.Time) {
	i := 0
	for i < len(b.recent) && now.Sub(b.recent[i]) >= time.Second {
		i++
	}
	b.recent = b.recent[i:]
}

// wait returns how long until the window admits another call: 0 when it
// does or when perSecond ≤ 0 disables it.
func (b *botFlood) wait(now time.Time, perSecond int) time.Duration {
	b.prune(now)
	if perSecond <= 0 || len(b.recent) < perSecond {
		return 0
	}
	return b.recent[len(b.recent)-perSecond].Add(time.Second).Sub(now)
}

// count records a charged call.
func (b *botFlood) count(now time.Time) {
	b.prune(now)
	b.charged++
	b.recent = append(b.recent, now)
	b.peak = max(b.peak, len(b.recent))
}

// BotFloodStats is what the bot-wide limit saw.
type BotFloodStats struct {
	// Charged is the calls charged to the bot (sendMessage and the edits
	// that succeeded), Limited those the bot-wide limit refused.
	Charged int
	Limited int
	// PeakPerSecond is the most charged calls within any span of one
	// second, kept even while the limits are disabled.
	PeakPerSecond int
}

// BotFlood returns what the bot-wide limit saw since the server started.
func (s *Server) BotFlood() BotFloodStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.flood.bot
	return BotFloodStats{Charged: b.charged, Limited: b.limited, PeakPerSecond: b.peak}
}

func tooManyRequests(retryAfter int) *apiError {
	retryAfter = max(retryAfter, 1)
	return &apiError{
		code:        429,
		description: "Too Many Requests: retry after " + strconv.Itoa(retryAfter),
		retryAfter:  retryAfter,
	}
}
