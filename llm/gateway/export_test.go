package gateway

import (
	"fmt"
	"sync/atomic"
	"time"
)

// SetDeterministic makes s number its responses from 1 (ids
// "resp_000000000000000000000001", …) and read now from its clock, so
// that golden transcripts depend on neither chance nor the time.
func SetDeterministic(s *Server, now time.Time) {
	var n atomic.Int64
	s.newID = func() string { return fmt.Sprintf("%024d", n.Add(1)) }
	s.now = func() time.Time { return now }
}
