package gateway

import (
	"github.com/palaver-bot/palaver/llm/sse"

	"io"
	"strings"
	"testing"
	"time"
)

func TestLimiter_Allow(t *testing.T) {
	l := newLimiter(60, 0) // one a second, bursts of 60
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 60 {
		if ok, _ := l.allow("k", t0); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	for _, tt := range []struct {
		at       time.Duration
		wantOK   bool
		wantWait time.Duration
	}{
		{0, false, time.Second},
		{300 * time.Millisecond, false, time.Second}, // 0.3 refilled: 0.7 s to go, rounded up
		{time.Second, true, 0},
		{time.Second, false, time.Second},
		{3 * time.Second, true, 0},
		{3 * time.Second, true, 0},
		{3 * time.Second, false, time.Second},
	} {
		ok, wait := l.allow("k", t0.Add(tt.at))
		if ok != tt.wantOK || wait != tt.wantWait {
			t.Errorf("at %v: allow = %v, %v; want %v, %v", tt.at, ok, wait, tt.wantOK, tt.wantWait)
		}
	}
	if ok, _ := l.allow("other", t0); !ok {
		t.Error("another key shares the bucket")
	}
	slow := newLimiter(2, 0)
	slow.allow("k", t0)
	slow.allow("k", t0)
	if ok, wait := slow.allow("k", t0); ok || wait != 30*time.Second {
		t.Errorf("2/min: allow = %v, %v; want false, 30s", ok, wait)
	}
	if ok, _ := newLimiter(0, 0).allow("k", t0); !ok {
		t.Error("unlimited limiter refused")
	}
}

func TestLimiter_Acquire(t *testing.T) {
	l := newLimiter(0, 2)
	if !l.acquire("k") || !l.acquire("k") || l.acquire("k") {
		t.Fatal("bound of 2 not enforced")
	}
	if !l.acquire("j") {
		t.Error("another key counted")
	}
	l.release("k")
	if !l.acquire("k") {
		t.Error("release did not free a place")
	}
}

func TestInspectChunk(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		finished   bool
		usage      int // total tokens, -1 for none
		isErr      bool
	}{
		{"Content", `{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`, false, -1, false},
		{"ContentNamesKeys", `{"choices":[{"delta":{"content":"\"finish_reason\": \"stop\", \"usage\": 1"},"finish_reason":null}]}`, false, -1, false},
		{"Finish", `{"choices":[{"delta":{},"finish_reason":"stop"}]}`, true, -1, false},
		{"FinishSpaced", `{"choices":[{"delta":{},"finish_reason" : "length"}], "usage" : null}`, true, -1, false},
		{"SecondChoiceFinishes", `{"choices":[{"index":0,"finish_reason":null},{"index":1,"finish_reason":"stop"}]}`, true, -1, false},
		{"UsageOnly", `{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`, false, 7, false},
		{"FinishAndUsage", `{"choices":[{"finish_reason":"stop"}],"usage":{"total_tokens":9}}`, true, 9, false},
		{"Error", `{"error":{"message":"boom"}}`, false, -1, true},
		{"ErrorNull", `{"error":null,"choices":[{"finish_reason":null}]}`, false, -1, false},
		{"NotJSON", `not json "finish_reason": 1`, false, -1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := inspectChunk([]byte(tt.data))
			usage := -1
			if got.usage != nil {
				usage = got.usage.TotalTokens
			}
			if got.finished != tt.finished || usage != tt.usage || (got.errRaw != nil) != tt.isErr {
				t.Errorf("got finished %v usage %d error %s", got.finished, usage, got.errRaw)
			}
		})
	}
}

func TestEventReader(t *testing.T) {
	in := "\xef\xbb\xbfdata: one\r\n\r\n: keep-alive\n\nid: 3\nretry: 10\ndata:two\ndata: lines\n\n" +
		"event: error\ndata: {\"message\":\"x\"}\n\nerror: {\"code\":500}\n\n" + "data: " + strings.Repeat("z", 40000) + "\n\ndata: last"
	rd := sse.NewReader(strings.NewReader(in), 16<<10)
	rd.Comments = true
	var got []string
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		d := string(ev.Data)
		if len(d) > 20 {
			d = d[:3] + "…" + d[len(d)-2:]
		}
		got = append(got, string(rune('0'+ev.Kind))+":"+d)
	}
	want := []string{"0:one", "3:: keep-alive", "0:two\nlines", `1:{"message":"x"}`, `2:{"code":500}`, "0:zzz…zz", "0:last"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events\n%q\nwant\n%q", got, want)
	}
}

func TestAppendData(t *testing.T) {
	if got := string(appendData([]byte("data: "), []byte("a\nb\nc"))); got != "data: a\ndata: b\ndata: c" {
		t.Errorf("got %q", got)
	}
}

func TestNullUsage(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"id":"x","choices":[{"finish_reason":"stop"}],"usage":{"total_tokens":3},"timings":{"a":1}}`,
			`{"id":"x","choices":[{"finish_reason":"stop"}],"usage":null,"timings":{"a":1}}`},
		{`{ "usage" : { "total_tokens" : 3 } , "choices" : [] }`, `{ "usage" : null , "choices" : [] }`},
		{`{"choices":[{"delta":{"content":"\"usage\":1"}}]}`, `{"choices":[{"delta":{"content":"\"usage\":1"}}]}`},
		{`not json`, `not json`},
	} {
		if got := string(nullUsage([]byte(tt.in))); got != tt.want {
			t.Errorf("nullUsage(%s)\n= %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
