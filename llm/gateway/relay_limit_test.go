package gateway

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestEventLimiter(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		max      int
		wantErr  bool
	}{
		// An event counts its bytes up to the blank line that ends it:
		// "data: 12345\n\n" is 12, "data: 12345\r\n\r\n" 13.
		{"OK", "data: 12345\n\ndata: 12345\n\n", 12, false},
		{"OKCRLF", "data: 12345\r\n\r\ndata: 1234\r\n\r\n", 13, false},
		{"OKCommentsApart", ": 12345678\n\n: 12345678\n\n", 11, false},
		{"ErrOneLine", "data: 12345\n\ndata: 123456\n\n", 12, true},
		{"ErrOneLineCRLF", "data: 12345\r\n\r\n", 12, true},
		{"ErrManyLines", "data: 1\ndata: 2\ndata: 3\n\n", 20, true},
		{"ErrCRLines", "data: 1\r\n\r\rdata: 2\r\n\r\n", 12, true}, // a lone CR does not end a line
	} {
		t.Run(tt.name, func(t *testing.T) {
			// One byte per read, then all at once: the count spans reads.
			for _, in := range []io.Reader{&oneByte{strings.NewReader(tt.in)}, strings.NewReader(tt.in)} {
				data, err := io.ReadAll(&eventLimiter{r: in, max: tt.max})
				if tt.wantErr != errors.Is(err, errEventTooLarge) || !tt.wantErr && string(data) != tt.in {
					t.Errorf("read %q, %v; want error %v", data, err, tt.wantErr)
				}
			}
		})
	}
}

// oneByte reads one byte at a time.
type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

// BenchmarkEventLimiter measures the cost of the event bound on a stream
// of typical chunks (about 150 bytes each), read 16 KiB at a time as the
// relay does.
func BenchmarkEventLimiter(b *testing.B) {
	chunk := "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"},\"finish_reason\":null}]}\n\n"
	body := strings.Repeat(chunk, 2000)
	buf := make([]byte, 16<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		l := &eventLimiter{r: strings.NewReader(body), max: DefaultMaxEvent}
		for {
			if _, err := l.Read(buf); err != nil {
				break
			}
		}
	}
}
