package gateway

import (
	"strings"
	"testing"
	"time"
)

// readChatDelta's byte scan reads what encoding/json reads, and leaves
// to it every chunk it cannot place.
func TestReadChatDelta(t *testing.T) {
	for _, tt := range []struct {
		name, data         string
		content, reasoning string
		ok                 bool
	}{
		{"Content", `{"id":"x","choices":[{"index":0,"delta":{"content":"Hi \"you\" \u00e9\n"},"finish_reason":null}]}`, `Hi \"you\" \u00e9\n`, "", true},
		{"RoleAndEmpty", `{"choices":[{"delta":{"role":"assistant","content":""}}]}`, "", "", true},
		{"ReasoningContent", `{"choices":[{"delta":{"content":null,"reasoning_content":"hmm"}}]}`, "", "hmm", true},
		{"Ollama", `{"choices":[{"delta":{"content":"","reasoning":"hm\\m"}}]}`, "", `hm\\m`, true},
		{"Both", `{"choices":[{"delta":{"reasoning_content":"a","reasoning":"b"}}]}`, "", "a", true},
		{"KeyInText", `{"choices":[{"delta":{"content":"\"content\": \"no\""}}]}`, `\"content\": \"no\"`, "", true},
		{"Logprobs", `{"choices":[{"delta":{"content":"a"},"logprobs":{"content":[{"token":"a"}]}}]}`, "a", "", true},
		{"Spaced", "{ \"choices\" : [ { \"delta\" : { \"content\" : \"a b\" } } ] }", "a b", "", true},
		{"Finish", `{"choices":[{"delta":{"content":"end"},"finish_reason":"stop"}]}`, "end", "", true},
		{"SecondChoice", `{"choices":[{"index":1,"delta":{"content":"no"}},{"index":0,"delta":{"content":"yes"}}]}`, "yes", "", true},
		{"ErrBadEscape", `{"choices":[{"delta":{"content":"a\x"}}]}`, "", "", false},
		{"ErrBadUnicode", `{"choices":[{"delta":{"content":"a\u12G4"}}]}`, "", "", false},
		{"ErrCutUnicode", `{"choices":[{"delta":{"content":"\u12"}}]}`, "", "", false},
		{"ErrControl", "{\"choices\":[{\"delta\":{\"content\":\"a\tb\"}}]}", "", "", false},
		{"ErrNotJSON", `data`, "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := readChatDelta([]byte(tt.data))
			if ok != tt.ok || string(d.content) != tt.content || string(d.reasoning) != tt.reasoning {
				t.Errorf("got %q %q %v, want %q %q %v", d.content, d.reasoning, ok, tt.content, tt.reasoning, tt.ok)
			}
			if !ok {
				return
			}
			full, _ := decodeChatDelta([]byte(tt.data))
			if string(full.content) != string(d.content) || string(full.reasoning) != string(d.reasoning) {
				t.Errorf("encoding/json reads %q %q", full.content, full.reasoning)
			}
		})
	}
}

// Tool-call entries are told apart by index, by id when a provider
// numbers every call alike, and continue the last call without an index;
// arguments sent as an object are taken as their text.
func TestResponseBuilder_ToolCalls(t *testing.T) {
	idx := func(i int) *int { return &i }
	call := func(index *int, id, name, args string) toolCallDelta {
		tc := toolCallDelta{Index: index, ID: id}
		tc.Function.Name, tc.Function.Arguments = name, []byte(args)
		return tc
	}
	for _, tt := range []struct {
		name  string
		calls []toolCallDelta
		want  string // call_id name arguments; …
	}{
		{"Indexed", []toolCallDelta{call(idx(0), "a", "f", `"{\"x\""`), call(idx(1), "b", "g", `""`), call(idx(0), "", "", `":1}"`),
			call(idx(1), "", "", `"{}"`)}, `a f {\"x\":1}; b g {}`},
		{"NoIndex", []toolCallDelta{call(nil, "a", "f", `"{"`), call(nil, "", "", `"}"`), call(nil, "b", "g", `"[]"`)}, `a f {}; b g []`},
		{"SameIndexNewID", []toolCallDelta{call(idx(0), "a", "f", `"1"`), call(idx(0), "a", "", `"2"`), call(idx(0), "b", "g", `"3"`)}, `a f 12; b g 3`},
		{"ObjectArguments", []toolCallDelta{call(idx(0), "a", "f", `{"x": [1, "y"]}`)}, `a f {\"x\": [1, \"y\"]}`},
		{"NoID", []toolCallDelta{call(idx(0), "", "f", `"{}"`)}, `call_7_0 f {}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				b := newResponseBuilder("7", "p/m", responseEcho{}, stream, time.Now)
				b.begin()
				for _, tc := range tt.calls {
					b.addToolCall(tc)
				}
				b.complete()
				var got []string
				for _, it := range b.items {
					got = append(got, it.callID+" "+it.name+" "+string(it.text))
				}
				if strings.Join(got, "; ") != tt.want {
					t.Errorf("stream %v: calls %q, want %q", stream, strings.Join(got, "; "), tt.want)
				}
			}
		})
	}
}

// BenchmarkResponsesChunk measures the translation of one typical chunk
// into its output_text.delta event.
func BenchmarkResponsesChunk(b *testing.B) {
	chunk := []byte(`{"id":"chatcmpl-llmtest-1","object":"chat.completion.chunk","created":1700000000,"model":"echo","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}`)
	rb := newResponseBuilder("1", "p/m", responseEcho{}, true, time.Now)
	rb.begin()
	b.ReportAllocs()
	for b.Loop() {
		rb.out = rb.out[:0]
		d, ok := readChatDelta(chunk)
		if !ok {
			b.Fatal("not a chunk")
		}
		rb.addContent(d.content)
		if len(rb.items[0].text) > 1<<20 {
			rb.items[0].text = rb.items[0].text[:0]
		}
	}
}
