package telegramtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Calls returns every request answered so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the requests to one method (case-insensitive), in order.
func (s *Server) CallsTo(method string) []Call {
	return slices.DeleteFunc(s.Calls(), func(c Call) bool { return !strings.EqualFold(c.Method, method) })
}

// WaitFor blocks until cond returns true or ctx ends. cond is called at
// once and again after every change to the server's state (a request
// answered, an update pushed, a setting changed); it may call the server's
// accessors.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("telegramtest: wait: %w", ctx.Err())
		}
	}
}

// WaitMessage waits until a message of the chat satisfies pred and returns
// it (the latest such message).
func (s *Server) WaitMessage(ctx context.Context, chatID int64, pred func(Message) bool) (Message, error) {
	var found Message
	err := s.WaitFor(ctx, func() bool {
		ms := s.Messages(chatID)
		for i := len(ms) - 1; i >= 0; i-- {
			if pred(ms[i]) {
				found = ms[i]
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitCall waits until a request satisfying pred has been answered and
// returns the first such call.
func (s *Server) WaitCall(ctx context.Context, pred func(Call) bool) (Call, error) {
	var found Call
	err := s.WaitFor(ctx, func() bool {
		for _, c := range s.Calls() {
			if pred(c) {
				found = c
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitUpdatesConsumed waits until the bot has confirmed every pushed update
// (by a getUpdates offset past them, or 2xx answers at its webhook).
func (s *Server) WaitUpdatesConsumed(ctx context.Context) error {
	return s.WaitFor(ctx, func() bool { return s.PendingUpdates() == 0 })
}
