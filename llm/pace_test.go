package llm

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPacedReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &socket{ready: make(chan struct{}, 1)}
		const tokens = 300 // one every 10 ms, for 3 s
		go func() {
			for range tokens {
				time.Sleep(10 * time.Millisecond)
				s.write("tok ")
			}
			s.close()
		}()
		// The consumer takes a snapshot every second.
		snapshot := time.Now()
		next := func() time.Time {
			for !snapshot.After(time.Now()) {
				snapshot = snapshot.Add(time.Second)
			}
			return snapshot
		}
		p := &pacedReader{r: s, ctx: t.Context(), pace: pacing{lead: 100 * time.Millisecond, next: next}}
		defer p.stop()
		buf := make([]byte, 4096)
		// Before start, every token is read as it comes.
		var got strings.Builder
		for range 3 {
			n, err := p.Read(buf)
			if err != nil || n != 4 {
				t.Fatalf("unpaced read = %d, %v; want one token", n, err)
			}
			got.Write(buf[:n])
		}
		p.start()
		reads := 0
		for {
			n, err := p.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			reads++
		}
		if want := strings.Repeat("tok ", tokens); got.String() != want {
			t.Errorf("read %q, want every token", got.String())
		}
		// 297 tokens over 2.97 s, read from 100 ms before each snapshot
		// on: one read for what waited, then one per token until the
		// snapshot; some 33 reads, not 297.
		if reads > 36 {
			t.Errorf("%d reads after start for 297 tokens over 3 snapshots, want at most 36", reads)
		}
	})
}

// socket is an in-memory byte stream that, like a socket, buffers what
// was written until it is read.
type socket struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
	ready  chan struct{}
}

func (s *socket) write(p string) {
	s.mu.Lock()
	s.buf.WriteString(p)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *socket) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *socket) Read(b []byte) (int, error) {
	for {
		s.mu.Lock()
		if s.buf.Len() > 0 {
			n, _ := s.buf.Read(b)
			s.mu.Unlock()
			return n, nil
		}
		if s.closed {
			s.mu.Unlock()
			return 0, io.EOF
		}
		s.mu.Unlock()
		<-s.ready
	}
}

func TestPacedReader_Cancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		later := time.Now().Add(time.Hour)
		p := &pacedReader{r: strings.NewReader("data"), ctx: ctx, pace: pacing{next: func() time.Time { return later }}}
		defer p.stop()
		p.start()
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		start := time.Now()
		if _, err := p.Read(make([]byte, 8)); err != context.Canceled {
			t.Fatalf("read during a cancelled pause = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("the read returned after %v, want at the cancellation (1s)", d)
		}
	})
}
