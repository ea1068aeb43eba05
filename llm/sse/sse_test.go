package sse

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestReader_Next(t *testing.T) {
	in := "\xef\xbb\xbf: keep-alive\r\ndata:{\"a\":1}\r\n\r\nid: 7\ndata: x\ndata: y\n\nevent: error\ndata: {\"code\":422}\n\nerror: {\"m\":1}\ndata: last"
	tests := []struct {
		comments bool
		want     []string
	}{
		{false, []string{`0:{"a":1}`, "0:x\ny", `1:{"code":422}`, `2:{"m":1}`, "0:last(eof)"}},
		{true, []string{"3:: keep-alive", `0:{"a":1}`, "0:x\ny", `1:{"code":422}`, `2:{"m":1}`, "0:last(eof)"}},
	}
	for _, tt := range tests {
		r := NewReader(strings.NewReader(in), 16)
		r.Comments = tt.comments
		var got []string
		for {
			ev, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			s := string(rune('0'+ev.Kind)) + ":" + string(ev.Data)
			if ev.AtEOF {
				s += "(eof)"
			}
			got = append(got, s)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("comments=%v: got %q, want %q", tt.comments, got, tt.want)
		}
	}
}

// payload is n bytes of letters in no repeating order, so that a byte
// lost, doubled or moved shows.
func payload(n int) string {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return string(b)
}

// TestReader_Next_LongLine reads lines around and far beyond the size of
// the buffer, with either end of line, whole or one byte per read: each
// arrives intact, and so does the event after it.
func TestReader_Next_LongLine(t *testing.T) {
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"Whole", func(r io.Reader) io.Reader { return r }},
		{"OneByte", iotest.OneByteReader},
		{"Half", iotest.HalfReader},
		{"DataErr", iotest.DataErrReader},
	}
	for _, size := range []int{16, 1 << 10, 4 << 10} {
		for _, n := range []int{size - len("data: ") - 2, size - len("data: ") - 1, size - len("data: "), size, 3*size + 5, 100_000} {
			for _, eol := range []string{"\n", "\r\n"} {
				long := payload(n)
				in := "data: " + long + eol + eol + "data: next" + eol + eol
				for _, rd := range readers {
					name := fmt.Sprintf("Buffer=%d/Line=%d/EOL=%q/%s", size, n, eol, rd.name)
					if rd.name == "OneByte" && n > 10_000 {
						continue // the same code path as the shorter lines, a hundred thousand times
					}
					t.Run(name, func(t *testing.T) {
						r := NewReader(rd.wrap(strings.NewReader(in)), size)
						for _, want := range []string{long, "next"} {
							ev, err := r.Next()
							if err != nil {
								t.Fatalf("Next() error = %v", err)
							}
							if string(ev.Data) != want {
								t.Fatalf("Next() = %d bytes, want %d: %.20q…", len(ev.Data), len(want), ev.Data)
							}
						}
						if _, err := r.Next(); err != io.EOF {
							t.Errorf("Next() at the end error = %v, want io.EOF", err)
						}
					})
				}
			}
		}
	}
}

// endless is a reader of a line that never ends, counting what was read.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += len(p)
	return len(p), nil
}

func TestReader_Next_LineTooLong(t *testing.T) {
	long := strings.Repeat("x", MaxLine-len("data: "))
	tests := []struct {
		name string
		in   string
		want error // of the first Next
	}{
		{"LineAtMax", "data: " + long + "\r\n\r\n", nil},
		{"LineAtMaxLF", "data: " + long + "\n\n", nil},
		{"LineAtMaxAtEOF", "data: " + long, nil},
		{"LineOverMax", "data: " + long + "x\n\n", ErrLineTooLong},
		{"LineOverMaxCRLF", "data: " + long + "x\r\n\r\n", ErrLineTooLong},
		{"LineOverMaxAtEOF", "data: " + long + "x", ErrLineTooLong},
		{"CommentOverMax", ": " + long + "xxxxx\ndata: x\n\n", ErrLineTooLong},
		{"EventOverMax", "data: " + long[:MaxLine/2] + "\ndata: " + long[:MaxLine/2] + "\n\n", ErrLineTooLong},
	}
	for _, size := range []int{16, 1 << 10, 4 << 10} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("Buffer=%d/%s", size, tt.name), func(t *testing.T) {
				r := NewReader(strings.NewReader(tt.in), size)
				ev, err := r.Next()
				if err != tt.want {
					t.Fatalf("Next() error = %v, want %v", err, tt.want)
				}
				if err == nil && string(ev.Data) != long {
					t.Errorf("data is %d bytes, want %d", len(ev.Data), len(long))
				}
				if err != nil {
					if _, again := r.Next(); again != err {
						t.Errorf("second Next() error = %v, want %v again", again, err)
					}
				}
			})
		}
	}
}

// TestReader_Next_EndlessLine shows that a line that never ends is read no
// further than the limit.
func TestReader_Next_EndlessLine(t *testing.T) {
	for _, size := range []int{1 << 10, 4 << 10} {
		in := &endless{}
		r := NewReader(io.MultiReader(strings.NewReader("data: "), in), size)
		if _, err := r.Next(); err != ErrLineTooLong {
			t.Fatalf("Next() error = %v, want ErrLineTooLong", err)
		}
		if in.n+len("data: ") > maxBuffer {
			t.Errorf("buffer %d: read %d bytes of an endless line, want at most %d", size, in.n+len("data: "), maxBuffer)
		}
	}
}

// chunks is a stream that arrives one event per read, as a model's tokens
// come one by one from a socket.
type chunks struct{ events []string }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.events) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.events[0])
	if c.events[0] = c.events[0][n:]; c.events[0] == "" {
		c.events = c.events[1:]
	}
	return n, nil
}

// TestReader_buffer shows that the buffer keeps its size for a stream
// read a chunk at a time and grows for one whose reads fill it, and for a
// long line.
func TestReader_buffer(t *testing.T) {
	event := "data: " + payload(300) + "\n\n"
	tests := []struct {
		name string
		in   io.Reader
		want int
	}{
		{"Slow", &chunks{slices.Repeat([]string{event}, 1000)}, 1 << 10},
		{"Fast", strings.NewReader(strings.Repeat(event, 1000)), fastBuffer},
		{"LongLine", &chunks{[]string{event, "data: " + payload(100_000) + "\n\n", event}}, 128 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.in, 1<<10)
			for {
				if _, err := r.Next(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if got := len(r.buf); got != tt.want {
				t.Errorf("buffer is %d bytes, want %d", got, tt.want)
			}
		})
	}
}

// closer counts calls to Close.
type closer struct{ n int }

func (c *closer) Close() error { c.n++; return nil }

// TestReader_Drain shows that Drain reads 64 KiB after the last event, what
// was buffered included, and closes nothing when the input is there.
func TestReader_Drain(t *testing.T) {
	const first = "data: [DONE]\n\n"
	in := strings.NewReader(first + strings.Repeat("x", 100<<10))
	r := NewReader(in, 1<<10)
	if ev, err := r.Next(); err != nil || string(ev.Data) != "[DONE]" {
		t.Fatalf("Next() = %q, %v", ev.Data, err)
	}
	var body closer
	r.Drain(&body, time.Minute)
	if got, want := in.Len(), (100-64)<<10; got != want {
		t.Errorf("%d bytes left unread, want %d", got, want)
	}
	if body.n != 0 {
		t.Errorf("body closed %d times, want 0", body.n)
	}
}

// BenchmarkReader_Next reads about 1 MiB of events of one length with a
// buffer of a given size: the cost per byte stays the same whether a line
// fits the buffer or is assembled from many reads of it.
func BenchmarkReader_Next(b *testing.B) {
	for _, size := range []int{1 << 10, 4 << 10} {
		for _, line := range []int{260, 3 << 10, 64 << 10, MaxLine - 64} {
			event := "data: " + strings.Repeat("x", line-len("data: ")) + "\n\n"
			body := strings.Repeat(event, max(1, (1<<20)/len(event)))
			b.Run(fmt.Sprintf("Buffer=%d/Line=%d", size, line), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					r := NewReader(strings.NewReader(body), size)
					for {
						ev, err := r.Next()
						if err == io.EOF {
							break
						}
						if err != nil || len(ev.Data) != line-len("data: ") {
							b.Fatalf("Next() = %d bytes, %v", len(ev.Data), err)
						}
					}
				}
			})
		}
	}
}
