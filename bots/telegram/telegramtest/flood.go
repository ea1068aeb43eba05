package telegramtest

import (
	"math"
	"strconv"
	"time"
)

// FloodLimits are the rate limits the fake enforces, modelled on
// core.telegram.org/bots/faq: about one message per second per chat with
// short bursts allowed, and at most 20 messages per minute per group.
//
// sendMessage, editMessageText and editMessageReplyMarkup are charged (edits
// count like messages). sendChatAction, sendMessageDraft, deleteMessage and
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
	s.flood = l.withDefaults()
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

// charge takes one charged call from the chat's buckets, or returns the
// 429 answer when they are empty.
func (s *Server) chargeLocked(c *chatState) *apiError {
	l := s.flood
	if l.Disabled {
		return nil
	}
	f := &c.flood
	now := s.now()
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
	if wait > 0 {
		return tooManyRequests(int(math.Ceil(wait.Seconds())))
	}
	f.chat--
	if !c.isPrivate() {
		f.group--
	}
	return nil
}

func tooManyRequests(retryAfter int) *apiError {
	retryAfter = max(retryAfter, 1)
	return &apiError{
		code:        429,
		description: "Too Many Requests: retry after " + strconv.Itoa(retryAfter),
		retryAfter:  retryAfter,
	}
}
