package llmtest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ToolCall is one function call of a scripted answer. A stream sends it
// as OpenAI does: a first delta with the call's index (its position in
// Script.ToolCalls), id, "type": "function", name and an empty
// "arguments", then one delta per Arguments fragment with the index and
// the fragment only. Calls are streamed one after another; a whole answer
// has them in message.tool_calls with their fragments joined.
type ToolCall struct {
	// ID is the call's id; empty means "call_N", N its index.
	ID string
	// Name is the function's name.
	Name string
	// Arguments are the fragments of the JSON arguments, in order. They
	// are sent as they are, so a test may split the JSON anywhere.
	Arguments []string
}

func (tc ToolCall) id(i int) string {
	if tc.ID != "" {
		return tc.ID
	}
	return "call_" + strconv.Itoa(i)
}

// wholeToolCalls renders the script's calls as message.tool_calls.
func (sc Script) wholeToolCalls() []any {
	calls := make([]any, len(sc.ToolCalls))
	for i, tc := range sc.ToolCalls {
		calls[i] = map[string]any{"id": tc.id(i), "type": "function",
			"function": map[string]any{"name": tc.Name, "arguments": strings.Join(tc.Arguments, "")}}
	}
	return calls
}

// sendToolCalls streams the script's tool calls, each chunk after
// Script.Interval. It reports false when the stream ended (the client
// hung up).
func (s *Server) sendToolCalls(sw *streamWriter, r *http.Request, timer *time.Timer) bool {
	wait := func() bool {
		if sw.sc.Interval <= 0 {
			return true
		}
		timer.Reset(sw.sc.Interval)
		select {
		case <-r.Context().Done():
			timer.Stop()
			s.noteDisconnect()
			return false
		case <-timer.C:
			return true
		}
	}
	send := func(delta []byte) bool {
		if !wait() {
			return false
		}
		if err := sw.send(sw.chunk(delta, "", nil, true, "")); err != nil {
			s.noteDisconnect()
			return false
		}
		return true
	}
	for i, tc := range sw.sc.ToolCalls {
		var b []byte
		if sw.first {
			b = append(b, `"role":"assistant","content":null,`...)
			sw.first = false
		}
		b = append(b, `"tool_calls":[{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"id":`...)
		b = appendQuote(b, tc.id(i))
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendQuote(b, tc.Name)
		b = append(b, `,"arguments":""}}]`...)
		if !send(b) {
			return false
		}
		for _, frag := range tc.Arguments {
			b = append(b[:0], `"tool_calls":[{"index":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,"function":{"arguments":`...)
			b = appendQuote(b, frag)
			b = append(b, `}}]`...)
			if !send(b) {
				return false
			}
		}
	}
	return true
}
