package discordtest

import (
	"net/http"
	"slices"
	"strconv"
)

// listMessages serves GET /channels/{channel}/messages with Discord's
// after and limit (1 to 100, default 50): the channel's messages newer
// than after, newest first; without after, the newest ones.
func (s *Server) listMessages(rq *request) {
	q := rq.r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", map[string]any{"limit": "must be between 1 and 100"})
			return
		}
		limit = n
	}
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	chID := rq.r.PathValue("channel")
	rq.call.ChannelID = chID
	if _, ok := s.channels[chID]; !ok {
		rq.fail(http.StatusNotFound, 10003, "Unknown Channel", nil)
		return
	}
	var ms []*Message
	for _, m := range s.messages {
		id, _ := strconv.ParseUint(m.ID, 10, 64)
		if m.ChannelID == chID && !m.Deleted && m.Flags&FlagEphemeral == 0 && id > after {
			ms = append(ms, m)
		}
	}
	byID := func(a, b *Message) int {
		x, _ := strconv.ParseUint(a.ID, 10, 64)
		y, _ := strconv.ParseUint(b.ID, 10, 64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	slices.SortFunc(ms, byID)
	if after > 0 && len(ms) > limit {
		ms = ms[:limit] // the ones right after
	} else if len(ms) > limit {
		ms = ms[len(ms)-limit:] // the newest
	}
	slices.Reverse(ms)
	out := make([]*wireMessage, 0, len(ms))
	for _, m := range ms {
		out = append(out, s.wireMessageLocked(m, false))
	}
	rq.writeJSON(http.StatusOK, out)
}
