package gateway

import (
	"container/list"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Bounds of the failed-authentication guard.
const (
	// AuthMaxFailures is how many failed authentications a client address
	// may make within AuthWindow before it is refused.
	AuthMaxFailures = 10
	// AuthWindow is how long failures are counted from a client's first
	// one, and how long a client is then refused.
	AuthWindow = time.Minute
	// authMaxClients bounds the addresses the guard remembers.
	authMaxClients = 4096
)

// authGuard counts failed authentications per client address. A client
// that fails AuthMaxFailures times within AuthWindow of its first failure
// is refused for AuthWindow, without its key being checked. It remembers
// at most authMaxClients addresses; when full, it forgets the one whose
// last failure is oldest. It is safe for concurrent use.
type authGuard struct {
	mu      sync.Mutex
	clients map[string]*list.Element // of *authFailures
	byLast  list.List                // *authFailures, latest failure last
}

type authFailures struct {
	client  string
	count   int
	first   time.Time // the first failure of the current window
	refused time.Time // refused until then; zero when not refused
}

func newAuthGuard() *authGuard {
	return &authGuard{clients: make(map[string]*list.Element)}
}

// refused reports whether client is refused at now, and for how much
// longer (rounded up to a whole second).
func (g *authGuard) refused(client string, now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	el := g.clients[client]
	if el == nil {
		return 0, false
	}
	f := el.Value.(*authFailures)
	if !now.Before(f.refused) {
		return 0, false
	}
	wait := f.refused.Sub(now)
	return (wait + time.Second - 1).Truncate(time.Second), true
}

// fail counts a failed authentication of client at now. It reports true
// once per burst: for the failure that gets the client refused.
func (g *authGuard) fail(client string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	var f *authFailures
	if el := g.clients[client]; el != nil {
		f = el.Value.(*authFailures)
		g.byLast.MoveToBack(el)
		if now.Sub(f.first) >= AuthWindow && !now.Before(f.refused) {
			*f = authFailures{client: client, first: now} // a new window
		}
	} else {
		if len(g.clients) >= authMaxClients {
			oldest := g.byLast.Front()
			delete(g.clients, oldest.Value.(*authFailures).client)
			g.byLast.Remove(oldest)
		}
		f = &authFailures{client: client, first: now}
		g.clients[client] = g.byLast.PushBack(f)
	}
	f.count++
	if f.count == AuthMaxFailures {
		f.refused = now.Add(AuthWindow)
		return true
	}
	return false
}

// clientAddr is the address failures are counted under: the IP address of
// the connection's peer, an IPv6 one by its /64 prefix (what one site is
// usually given). Behind a reverse proxy every client has the proxy's.
func clientAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
