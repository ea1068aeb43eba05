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
