package gateway

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestAuthGuard(t *testing.T) {
	g := newAuthGuard()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Failures spread over the window: the last one gets the client refused,
	// and only that one reports it.
	for i := range AuthMaxFailures {
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		if _, refused := g.refused("a", at); refused {
			t.Fatalf("refused before failure %d", i+1)
		}
		if got, want := g.fail("a", at), i == AuthMaxFailures-1; got != want {
			t.Fatalf("failure %d: fail = %v, want %v", i+1, got, want)
		}
	}
	last := t0.Add(time.Duration(AuthMaxFailures-1) * 5 * time.Second)
	for _, tt := range []struct {
		at       time.Duration // after the last failure
		wantWait time.Duration
		want     bool
	}{
		{0, AuthWindow, true},
		{1500 * time.Millisecond, AuthWindow - time.Second, true}, // 58.5 s left, rounded up
		{AuthWindow - time.Millisecond, time.Second, true},
		{AuthWindow, 0, false},
	} {
		wait, refused := g.refused("a", last.Add(tt.at))
		if refused != tt.want || wait != tt.wantWait {
			t.Errorf("%v after: refused = %v, %v; want %v, %v", tt.at, refused, wait, tt.want, tt.wantWait)
		}
	}
	if _, refused := g.refused("b", last); refused {
		t.Error("another client refused")
	}
	// After the refusal the count starts again.
	after := last.Add(AuthWindow)
	for i := range AuthMaxFailures - 1 {
		if g.fail("a", after.Add(time.Duration(i))) {
			t.Fatalf("failure %d after the refusal reported a refusal", i+1)
		}
	}
	// Failures more than a window apart never add up.
	for i := range 3 * AuthMaxFailures {
		if g.fail("slow", t0.Add(time.Duration(i)*AuthWindow/2)) {
			t.Fatalf("slow failure %d got the client refused", i+1)
		}
		if _, refused := g.refused("slow", t0.Add(time.Duration(i)*AuthWindow/2+time.Second)); refused {
			t.Fatalf("refused after slow failure %d", i+1)
		}
	}
}

// The table never holds more than authMaxClients addresses; a full table
// forgets the client whose last failure is oldest.
func TestAuthGuard_Bounded(t *testing.T) {
	g := newAuthGuard()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range AuthMaxFailures {
		g.fail("refused", t0)
	}
	addr := func(i int) string { return "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) }
	for i := range authMaxClients - 1 {
		g.fail(addr(i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if _, refused := g.refused("refused", t0); !refused || len(g.clients) != authMaxClients {
		t.Fatalf("full table: refused = %v, %d clients", refused, len(g.clients))
	}
	g.fail(addr(0), t0.Add(time.Hour)) // addr(0) fails again: addr(1) is now the oldest but one
	for i := range 2 * authMaxClients {
		g.fail("new"+strconv.Itoa(i), t0.Add(time.Hour))
		if n := len(g.clients); n > authMaxClients {
			t.Fatalf("%d clients after %d new ones, want at most %d", n, i+1, authMaxClients)
		}
		switch i {
		case 0:
			if _, refused := g.refused("refused", t0); refused {
				t.Error("the client whose last failure is oldest was kept")
			}
		case 1:
			if _, ok := g.clients[addr(1)]; ok {
				t.Error("addr(1) was kept")
			}
			if _, ok := g.clients[addr(0)]; !ok {
				t.Error("addr(0), which failed lately, was forgotten")
			}
		}
	}
}

func TestClientAddr(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.7:40000", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[::1]:80", "::/64"},
		{"@", "@"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if got := clientAddr(r); got != tt.want {
			t.Errorf("clientAddr(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
