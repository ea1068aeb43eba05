package llmtest

// StreamOptionsRefusal is the message of the 400 a server that refuses
// "stream_options" answers with (Azure OpenAI's words before it took the
// field).
const StreamOptionsRefusal = "Unrecognized request argument supplied: stream_options"

// RejectStreamOptions makes the server refuse, with 400 and
// StreamOptionsRefusal, every chat request whose body has a
// "stream_options" field (null included), as older servers do; false
// accepts them again. The refused requests are recorded.
func (s *Server) RejectStreamOptions(reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noStreamOptions = reject
}

// refusesStreamOptions reports whether req must be refused for its
// "stream_options".
func (s *Server) refusesStreamOptions(req Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, has := req.Fields["stream_options"]
	return s.noStreamOptions && has
}
