package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestChunk_Parse(t *testing.T) {
	tests := []struct {
		name                    string
		in                      string
		content, reasoning, alt string
		finish                  string
		usage                   *Usage
		errRaw                  string
		wantErr                 bool
	}{
		{name: "Content", in: `{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`, content: "hi"},
		{name: "Escapes", in: `{"choices":[{"delta":{"content":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00\ud800x"}}]}`, content: "a\"b\\c/d\n\té😀\ufffdx"},
		{name: "EscapedKey", in: `{"choices":[{"delta":{"cont\u0065nt":"k"}}]}`, content: "k"},
		{name: "Reasoning", in: `{"choices":[{"delta":{"content":null,"reasoning_content":"r","reasoning":"r"}}]}`, reasoning: "r", alt: "r"},
		{name: "Finish", in: `{"choices":[{"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`,
			finish: "length", usage: &Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}},
		{name: "UsageOnly", in: `{"id":"x","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9}}`, usage: &Usage{PromptTokens: 4, CompletionTokens: 5, TotalTokens: 9}},
		{name: "OtherIndex", in: `{"choices":[{"index":1,"delta":{"content":"no"},"finish_reason":"stop"},{"index":0,"delta":{"content":"yes"}}]}`, content: "yes"},
		{name: "Skips", in: ` {"a":[1,2.5e3,{"b":[true,false,null]},"s\"]"],"choices":null,"x":{}} `},
		{name: "Error", in: `{"error":{"message":"m"}}`, errRaw: `{"message":"m"}`},
		{name: "ErrorNull", in: `{"error":null,"choices":[]}`},
		{name: "InvalidUTF8", in: "{\"choices\":[{\"delta\":{\"content\":\"a\xffb\"}}]}", content: "a\ufffdb"},
		{name: "Trailing", in: `{"choices":[]} x`, wantErr: true},
		{name: "Unterminated", in: `{"choices":[{"delta":{"content":"abc`, wantErr: true},
		{name: "ContentNotString", in: `{"choices":[{"delta":{"content":5}}]}`, wantErr: true},
		{name: "NotObject", in: `[1]`, wantErr: true},
		{name: "ControlChar", in: "{\"choices\":[{\"delta\":{\"content\":\"a\nb\"}}]}", wantErr: true},
		{name: "BadUsage", in: `{"usage":{"prompt_tokens":"x"}}`, wantErr: true},
		{name: "ReasoningTokens", in: `{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":9,"total_tokens":13,"completion_tokens_details":{"reasoning_tokens":6}}}`,
			usage: &Usage{PromptTokens: 4, CompletionTokens: 9, TotalTokens: 13, CompletionDetails: CompletionDetails{ReasoningTokens: 6}}},
		{name: "DeepInfraUsage", in: `{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"total_tokens":17,"completion_tokens":7,"estimated_cost":1.2e-05}}`,
			finish: "stop", usage: &Usage{PromptTokens: 10, CompletionTokens: 7, TotalTokens: 17}},
		{name: "DetailsNull", in: `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"completion_tokens_details":null,"prompt_tokens_details":{"cached_tokens":0}}}`,
			usage: &Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c chunk
			c.content = append(c.content, "stale"...) // reused buffers start empty
			err := c.parse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if string(c.content) != tt.content || string(c.reasoning) != tt.reasoning || string(c.reasoningAlt) != tt.alt || string(c.finish) != tt.finish {
				t.Errorf("got %q %q %q %q", c.content, c.reasoning, c.reasoningAlt, c.finish)
			}
			if c.hasUsage != (tt.usage != nil) || tt.usage != nil && c.usage != *tt.usage {
				t.Errorf("usage = %v %+v, want %+v", c.hasUsage, c.usage, tt.usage)
			}
			if string(c.errRaw) != tt.errRaw {
				t.Errorf("errRaw = %q, want %q", c.errRaw, tt.errRaw)
			}
		})
	}
}

// refChunk decodes a chunk with encoding/json, the reference for
// chunk.parse.
type refChunk struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
			Reasoning        string `json:"reasoning"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage          `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// comparable reports whether encoding/json's leniencies (duplicate keys
// merge, keys match case-insensitively) cannot make it disagree with the
// exact-key parser on data.
func comparable(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type level struct {
		object bool
		keys   map[string]bool
		isKey  bool
	}
	var stack []*level
	hot := []string{"choices", "index", "delta", "content", "reasoning_content", "reasoning", "finish_reason", "usage", "error",
		"prompt_tokens", "completion_tokens", "total_tokens"}
	for {
		tok, err := dec.Token()
		if err != nil {
			return err == io.EOF
		}
		top := (*level)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if k, ok := tok.(string); ok && top != nil && top.object && top.isKey {
			if top.keys[k] {
				return false
			}
			top.keys[k] = true
			for _, h := range hot {
				if strings.EqualFold(k, h) && k != h {
					return false
				}
			}
			top.isKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, keys: map[string]bool{}, isKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &level{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].isKey = true
		}
	}
}

// FuzzChunk checks the hand-written chunk parser against encoding/json:
// whatever encoding/json decodes, the parser decodes the same way.
func FuzzChunk(f *testing.F) {
	for _, s := range []string{
		`{"choices":[{"index":0,"delta":{"content":"hi","reasoning_content":null},"finish_reason":null}],"usage":null}`,
		`{"choices":[{"index":0,"delta":{"reasoning":"r\u00e9\ud83d\ude00"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`,
		`{"choices":[{"index":1,"delta":{"content":"x"}},{"index":0,"delta":{"content":"y"},"finish_reason":"length"}]}`,
		`{"error":{"message":"boom","code":500}}`,
		`{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9},"x":[1,{"a":"\""}]}`,
		`{"choices":[{"delta":{"content":"\ud800\u0041"}}]}`,
		"{\"choices\":[{\"delta\":{\"content\":\"\xe2\x82\"}}]}",
	} {
		f.Add([]byte(s))
	}
	var c chunk
	f.Fuzz(func(t *testing.T, data []byte) {
		err := c.parse(data) // must not panic, whatever data is
		var ref refChunk
		if json.Unmarshal(data, &ref) != nil || !comparable(data) {
			return
		}
		if err != nil {
			t.Fatalf("encoding/json accepts %q, parse: %v", data, err)
		}
		var content, reasoning, alt, finish string
		for _, ch := range ref.Choices {
			if ch.Index != 0 {
				continue
			}
			content += ch.Delta.Content
			reasoning += ch.Delta.ReasoningContent
			alt += ch.Delta.Reasoning
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
		if string(c.content) != content || string(c.reasoning) != reasoning || string(c.reasoningAlt) != alt || string(c.finish) != finish {
			t.Fatalf("%q: got %q %q %q %q, want %q %q %q %q", data, c.content, c.reasoning, c.reasoningAlt, c.finish, content, reasoning, alt, finish)
		}
		if c.hasUsage != (ref.Usage != nil) || ref.Usage != nil && c.usage != *ref.Usage {
			t.Fatalf("%q: usage %v %+v, want %+v", data, c.hasUsage, c.usage, ref.Usage)
		}
		hasErr := len(ref.Error) > 0 && string(ref.Error) != "null"
		if (len(c.errRaw) > 0) != hasErr {
			t.Fatalf("%q: errRaw %q, want %q", data, c.errRaw, ref.Error)
		}
	})
}

// FuzzSSE feeds arbitrary bodies to the stream decoder: it must not panic,
// must end with exactly one error or one finish delta, and must yield
// nothing after that.
func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
		"data:{\"choices\":[{\"delta\":{\"reasoning_content\":\"r\"}}]}\r\n\r\n: ping\r\n\r\ndata:{\"choices\":[],\"usage\":{\"total_tokens\":1}}\r\n\r\n",
		"error: {\"message\":\"x\"}\n\ndata: [DONE]\n\n",
		"event: error\ndata: {\"code\":1}\n\n",
		"data: {\"choices\":[{\"delta\":{\"content\":\"<think>x</th\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"ink>y\"},\"finish_reason\":\"stop\"}]}\n\n",
		"data: {\"cho",
		"data: {\"choices\":\ndata: []}\n\n",
		"\xef\xbb\xbfdata: [DONE]",
	} {
		f.Add([]byte(s), false)
	}
	c := NewClient(Provider{Name: "fuzz"}, Options{Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, body []byte, implicit bool) {
		ended := false
		c.readStream(context.Background(), bytes.NewReader(body), nil, implicit, func(d Delta, err error) bool {
			if ended {
				t.Fatalf("yield after the end: %+v %v", d, err)
			}
			switch {
			case err != nil:
				ended = true
			case d.FinishReason != "":
				ended = true
			case d.Usage != nil:
				t.Fatalf("usage without finish reason")
			case d.Content == "" && d.Reasoning == "":
				t.Fatalf("empty delta")
			}
			return true
		})
		if !ended {
			t.Fatalf("stream of %q ended without error or finish", body)
		}
	})
}

func TestReadStream_StopsWhenConsumerStops(t *testing.T) {
	body := strings.Repeat("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n", 10)
	c := NewClient(Provider{Name: "p"}, Options{})
	n := 0
	c.readStream(context.Background(), strings.NewReader(body), nil, false, func(Delta, error) bool {
		n++
		return n < 3
	})
	if n != 3 {
		t.Errorf("yield called %d times after returning false, want 3 in all", n)
	}
}

func TestReadStream_LongLine(t *testing.T) {
	long := strings.Repeat("é", 100<<10)
	body := "data: {\"choices\":[{\"delta\":{\"content\":\"" + long + "\"},\"finish_reason\":\"stop\"}]}\n\n"
	c := NewClient(Provider{Name: "p"}, Options{})
	var got string
	var err error
	c.readStream(context.Background(), strings.NewReader(body), nil, false, func(d Delta, e error) bool {
		got += d.Content
		err = errors.Join(err, e)
		return true
	})
	if err != nil || got != long {
		t.Errorf("long line: err %v, %d bytes, want %d", err, len(got), len(long))
	}
}
