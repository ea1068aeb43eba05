package gateway

import (
	"bytes"
	"encoding/json"

	"github.com/palaver-bot/palaver/llm"
)

// chunkInfo is what the relay needs to know of one streamed chunk.
type chunkInfo struct {
	finished bool // a choice has a finish reason
	usage    *llm.Usage
	// usageRaw is the usage as sent, and usageOnly is set for a chunk
	// with usage and no choices: the chunk stream_options.include_usage
	// asks for.
	usageRaw  json.RawMessage
	usageOnly bool
	// id, created and model are the chunk's, as sent, when it was decoded
	// (it has a finish reason, usage or an error).
	id, created, model json.RawMessage
	errRaw             json.RawMessage // the top-level "error" value, nil when absent or null
}

var (
	keyFinish = []byte(`"finish_reason"`)
	keyUsage  = []byte(`"usage"`)
	keyError  = []byte(`"error"`)
)

// inspectChunk reads a chunk's finish reason, usage and error. Most chunks
// carry none ("finish_reason": null), and a byte scan tells so without
// decoding them; the others are decoded in full. A payload that is not
// JSON yields nothing: it is relayed all the same.
func inspectChunk(data []byte) chunkInfo {
	if !hasValue(data, keyFinish) && !hasValue(data, keyUsage) && !hasValue(data, keyError) {
		return chunkInfo{}
	}
	var c struct {
		ID      json.RawMessage `json:"id"`
		Created json.RawMessage `json:"created"`
		Model   json.RawMessage `json:"model"`
		Choices []struct {
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &c) != nil {
		return chunkInfo{}
	}
	info := chunkInfo{id: c.ID, created: c.Created, model: c.Model}
	if len(c.Usage) > 0 && string(c.Usage) != "null" {
		var u llm.Usage
		if json.Unmarshal(c.Usage, &u) == nil {
			info.usage, info.usageRaw = &u, c.Usage
			info.usageOnly = len(c.Choices) == 0
		}
	}
	for _, ch := range c.Choices {
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			info.finished = true
		}
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		info.errRaw = c.Error
	}
	return info
}

// hasValue reports whether data may hold key, as an object key, with a
// value other than null. A quoted key cannot occur inside a JSON string
// (whose quotes are escaped), so a match is a key or a whole string value;
// false positives only cost a full decode.
func hasValue(data, key []byte) bool {
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return false
		}
		data = skipSpace(data[i+len(key):])
		if len(data) > 0 && data[0] == ':' {
			if v := skipSpace(data[1:]); !bytes.HasPrefix(v, []byte("null")) {
				return true
			}
		}
	}
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// nullUsage returns data, a chunk, with the value of its top-level
// "usage" member replaced by null and every other byte as it was. It
// returns data itself when it finds no such member.
func nullUsage(data []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return data
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return data
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return data
		}
		if k == "usage" {
			end := int(dec.InputOffset())
			out := make([]byte, 0, len(data))
			out = append(out, data[:end-len(v)]...)
			out = append(out, "null"...)
			return append(out, data[end:]...)
		}
	}
	return data
}
