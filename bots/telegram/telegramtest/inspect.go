package telegramtest

// LastUpdateID is the id of the newest update pushed (by SendText,
// SendPhoto and the other Send methods, PressButton or MigrateChat), 0
// before the first. Update ids count from 1
// in the order updates are pushed.
func (s *Server) LastUpdateID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextUpdateID - 1
}

// DeliveredUpdateID is the id of the newest update a getUpdates call has
// returned, or posted to a webhook, confirmed or not; 0 before the first.
func (s *Server) DeliveredUpdateID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// ConfirmedUpdateID is the id of the newest update the bot has confirmed,
// by calling getUpdates with an offset past it (or answering 2xx to it
// and every older one at its webhook); every older update is confirmed
// too, and Telegram will never deliver them again. It is 0 before the
// first confirmation.
func (s *Server) ConfirmedUpdateID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.updates) > 0 {
		return s.updates[0].id - 1
	}
	return s.nextUpdateID - 1
}

// Redeliveries is how many times an update was delivered again: getUpdates
// returned an update it had returned before (the bot fetched it and did
// not confirm it: it crashed, its next poll failed, or it waited for the
// rest of an album), or the webhook refused it and it was posted again.
func (s *Server) Redeliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redeliveries
}
