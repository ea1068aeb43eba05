package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// encodeRequest renders req as a chat-completions body: model, messages,
// stream, stream_options {"include_usage":true} when streaming,
// temperature and top_p when non-nil, max_tokens when positive, then the
// Extra fields in key order. An Extra field replaces the standard field of
// the same name (stream_options, temperature, …), except model, messages
// and stream, which it may not set. Messages with images are written as
// content parts (see Message.Images), the images base64-encoded straight
// into the body.
func encodeRequest(req Request, stream bool) ([]byte, error) {
	if req.Model == "" {
		return nil, fmt.Errorf("llm: request has no model")
	}
	for _, k := range []string{"model", "messages", "stream"} {
		if _, ok := req.Extra[k]; ok {
			return nil, fmt.Errorf("llm: request Extra may not set %q", k)
		}
	}
	for _, f := range []*float64{req.Temperature, req.TopP} {
		if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
			return nil, fmt.Errorf("llm: request sampling parameter %v is not a finite number", *f)
		}
	}
	msgs := req.Messages
	if msgs == nil {
		msgs = []Message{}
	}
	images, err := imagesSize(msgs)
	if err != nil {
		return nil, err
	}
	// One allocation for the whole body, however large the images.
	b := make([]byte, 0, images+textSize(req))
	b = append(b, `{"model":`...)
	model, _ := json.Marshal(req.Model)
	b = append(b, model...)
	b = append(b, `,"messages":`...)
	if images > 0 {
		b, err = appendMessages(b, msgs)
	} else {
		var m []byte
		if m, err = json.Marshal(msgs); err == nil {
			b = append(b, m...)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("llm: encode messages: %w", err)
	}
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, stream)
	std := func(key string) bool {
		if _, ok := req.Extra[key]; ok {
			return false
		}
		b = append(b, `,"`...)
		b = append(b, key...)
		b = append(b, `":`...)
		return true
	}
	if stream && std("stream_options") {
		b = append(b, `{"include_usage":true}`...)
	}
	if req.Temperature != nil && std("temperature") {
		b = strconv.AppendFloat(b, *req.Temperature, 'g', -1, 64)
	}
	if req.TopP != nil && std("top_p") {
		b = strconv.AppendFloat(b, *req.TopP, 'g', -1, 64)
	}
	if req.MaxTokens > 0 && std("max_tokens") {
		b = strconv.AppendInt(b, int64(req.MaxTokens), 10)
	}
	keys := make([]string, 0, len(req.Extra))
	for k := range req.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := bytes.TrimSpace(req.Extra[k])
		if !json.Valid(v) {
			return nil, fmt.Errorf("llm: request Extra %q is not valid JSON", k)
		}
		key, _ := json.Marshal(k)
		b = append(b, ',')
		b = append(b, key...)
		b = append(b, ':')
		b = append(b, v...)
	}
	return append(b, '}'), nil
}
