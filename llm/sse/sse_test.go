package sse

import (
	"io"
	"strings"
	"testing"
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
		{"LineAtMaxAtEOF", "data: " + long, nil},
		{"LineOverMax", "data: " + long + "x\n\n", ErrLineTooLong},
		{"LineOverMaxAtEOF", "data: " + long + "x", ErrLineTooLong},
		{"CommentOverMax", ": " + long + "xxxxx\ndata: x\n\n", ErrLineTooLong},
		{"EventOverMax", "data: " + long[:MaxLine/2] + "\ndata: " + long[:MaxLine/2] + "\n\n", ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), 4<<10)
			ev, err := r.Next()
			if err != tt.want {
				t.Fatalf("Next() error = %v, want %v", err, tt.want)
			}
			if err == nil && len(ev.Data) != len(long) {
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

// TestReader_Next_EndlessLine shows that a line that never ends is read no
// further than the limit.
func TestReader_Next_EndlessLine(t *testing.T) {
	in := &endless{}
	r := NewReader(io.MultiReader(strings.NewReader("data: "), in), 4<<10)
	if _, err := r.Next(); err != ErrLineTooLong {
		t.Fatalf("Next() error = %v, want ErrLineTooLong", err)
	}
	if in.n > MaxLine+8<<10 {
		t.Errorf("read %d bytes of an endless line, want about %d", in.n, MaxLine)
	}
}
