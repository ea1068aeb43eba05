package gateway

import (
	"bytes"
	"encoding/json"
)

// chatDelta is what the Responses translation reads of one streamed chat
// chunk (of its choice with index 0). Texts are kept as the inside of the
// JSON strings the provider sent, escapes and all: they are written into
// the events as they are, never decoded and encoded again.
type chatDelta struct {
	content   []byte
	reasoning []byte // reasoning_content, else reasoning
	toolCalls []toolCallDelta
	finish    string
	usage     *chatUsage
	errRaw    json.RawMessage
}

// toolCallDelta is one entry of a chunk's delta.tool_calls.
type toolCallDelta struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// chatUsage is a chat completion's usage, with the details the Responses
// API reports.
type chatUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// readChatDelta reads one chunk. Most chunks carry one text and nothing
// else; a single scan over the chunk's strings reads those without
// decoding it (encoding/json would cost several microseconds a chunk).
// The others (tool calls, the finish reason, usage, an error, a refusal,
// keys seen twice, values it cannot place) are decoded in full. ok is
// false for a payload that is not a chunk.
func readChatDelta(data []byte) (d chatDelta, ok bool) {
	if d, ok := scanChatDelta(data); ok {
		return d, true
	}
	return decodeChatDelta(data)
}

// scanChatDelta is readChatDelta's scan. It walks the chunk from string
// to string: a string followed by a colon is a key, and the keys that
// matter are looked at; every string is checked as JSON. ok is false
// when the chunk needs a full decode.
func scanChatDelta(data []byte) (d chatDelta, ok bool) {
	if len(data) == 0 || data[0] != '{' {
		return d, false
	}
	var choices, content, reasoningC, reasoning bool
	var alt []byte
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			break
		}
		start := i + j
		end := stringEnd(data[start:])
		if end < 0 {
			return d, false
		}
		end += start
		v := skipSpace(data[end+1:])
		i = end + 1
		if len(v) == 0 || v[0] != ':' {
			continue // a string value
		}
		v = skipSpace(v[1:])
		i = len(data) - len(v)
		key := data[start+1 : end]
		// value reads a string or null value of a key that must occur
		// once: its inside, and false when the chunk needs decoding.
		value := func(seen *bool) ([]byte, bool) {
			if *seen {
				return nil, false
			}
			*seen = true
			switch {
			case bytes.HasPrefix(v, []byte("null")):
				return nil, true
			case len(v) > 0 && v[0] == '"':
				e := stringEnd(v)
				return v[1:max(e, 1)], e > 0
			}
			return nil, false
		}
		switch string(key) {
		case "choices":
			choices = true
		case "tool_calls", "finish_reason", "usage", "error", "refusal":
			if !bytes.HasPrefix(v, []byte("null")) {
				return d, false
			}
		case "content":
			if d.content, ok = value(&content); !ok {
				return d, false
			}
		case "reasoning_content":
			if d.reasoning, ok = value(&reasoningC); !ok {
				return d, false
			}
		case "reasoning":
			if alt, ok = value(&reasoning); !ok {
				return d, false
			}
		}
	}
	if len(d.reasoning) == 0 {
		d.reasoning = alt
	}
	return d, choices
}

// decodeChatDelta reads a chunk with encoding/json.
func decodeChatDelta(data []byte) (d chatDelta, ok bool) {
	var c struct {
		Choices []struct {
			Index *int `json:"index"`
			Delta struct {
				Content          json.RawMessage `json:"content"`
				ReasoningContent json.RawMessage `json:"reasoning_content"`
				Reasoning        json.RawMessage `json:"reasoning"`
				ToolCalls        []toolCallDelta `json:"tool_calls"`
			} `json:"delta"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *chatUsage      `json:"usage"`
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &c) != nil {
		return d, false
	}
	for _, ch := range c.Choices {
		if ch.Index != nil && *ch.Index != 0 {
			continue
		}
		d.content = append(d.content, stringInside(ch.Delta.Content)...)
		r := stringInside(ch.Delta.ReasoningContent)
		if len(r) == 0 {
			r = stringInside(ch.Delta.Reasoning)
		}
		d.reasoning = append(d.reasoning, r...)
		d.toolCalls = append(d.toolCalls, ch.Delta.ToolCalls...)
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			d.finish = *ch.FinishReason
		}
	}
	d.usage = c.Usage
	if len(c.Error) > 0 && string(c.Error) != "null" {
		d.errRaw = c.Error
	}
	return d, true
}

// stringInside returns the inside of a JSON string value (its escapes
// kept), or nil for anything else (null, absent, another kind).
func stringInside(raw json.RawMessage) []byte {
	if len(raw) >= 2 && raw[0] == '"' {
		return raw[1 : len(raw)-1]
	}
	return nil
}

// stringEnd returns the index of the quote that closes the JSON string s
// starts with, or -1 when the string does not end or is not valid JSON (a
// control character, an unknown escape).
func stringEnd(s []byte) int {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(s) {
				return -1
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) {
					return -1
				}
				for _, h := range s[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}
