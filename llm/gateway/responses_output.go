package gateway

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Kinds of output item.
const (
	itemReasoning = iota
	itemMessage
	itemCall
)

// outputItem is one item of a response's output as it is built.
type outputItem struct {
	kind  int
	id    string
	index int // output_index
	// text is the inside of a JSON string, escapes kept: the reasoning,
	// the message's text or the call's arguments.
	text         []byte
	callID, name string // a function call's
	added, done  bool   // its output_item.added and .done events were written
	prefix       []byte // what follows the sequence number in its delta events
}

// responseBuilder turns a chat completion, streamed or whole, into a
// Responses API response: it collects the output items and, for a
// stream, writes the semantic events into out, in the documented order:
//
//	response.created, response.in_progress
//	for each item: response.output_item.added,
//	  reasoning: response.content_part.added, response.reasoning_text.delta…, response.reasoning_text.done, response.content_part.done
//	  message:   response.content_part.added, response.output_text.delta…, response.output_text.done, response.content_part.done
//	  function call: response.function_call_arguments.delta…, response.function_call_arguments.done
//	  response.output_item.done
//	response.completed (response.incomplete when the answer was cut by a
//	token limit or a content filter), or response.failed
//
// Items are numbered in the order they start. A reasoning or message
// item ends when an item of another kind starts; function calls end with
// the answer, since a provider may interleave the fragments of parallel
// calls.
type responseBuilder struct {
	stream bool
	out    []byte // events not yet written
	seq    int

	id      string // resp_…; item ids share its suffix
	suffix  string
	model   string
	created int64
	now     func() time.Time
	echo    responseEcho

	items  []*outputItem
	text   *outputItem         // the open reasoning or message item, or nil
	calls  map[int]*outputItem // by the provider's index; -1 for calls without one
	size   int                 // bytes of text in the items
	finish string
	usage  *chatUsage
}

func newResponseBuilder(id, model string, echo responseEcho, stream bool, now func() time.Time) *responseBuilder {
	return &responseBuilder{
		stream: stream, id: "resp_" + id, suffix: id, model: model, echo: echo,
		created: now().Unix(), now: now, calls: make(map[int]*outputItem),
	}
}

// event starts an event of type typ in out, its data open after the
// sequence number.
func (b *responseBuilder) event(typ string) {
	b.out = append(b.out, "event: "...)
	b.out = append(b.out, typ...)
	b.out = append(b.out, "\ndata: {\"type\":\""...)
	b.out = append(b.out, typ...)
	b.out = append(b.out, `","sequence_number":`...)
	b.out = strconv.AppendInt(b.out, int64(b.seq), 10)
	b.seq++
}

// end closes the event's data and the event.
func (b *responseBuilder) end() { b.out = append(b.out, "}\n\n"...) }

// begin writes response.created and response.in_progress.
func (b *responseBuilder) begin() {
	if !b.stream {
		return
	}
	for _, typ := range []string{"response.created", "response.in_progress"} {
		b.event(typ)
		b.out = append(b.out, `,"response":`...)
		b.out = b.appendObject(b.out, "in_progress", nil)
		b.end()
	}
}

// addReasoning adds reasoning text (the inside of a JSON string).
func (b *responseBuilder) addReasoning(s []byte) { b.addText(itemReasoning, s) }

// addContent adds answer text (the inside of a JSON string).
func (b *responseBuilder) addContent(s []byte) { b.addText(itemMessage, s) }

func (b *responseBuilder) addText(kind int, s []byte) {
	if len(s) == 0 {
		return
	}
	it := b.text
	if it == nil || it.kind != kind {
		b.closeText()
		it = b.open(kind)
		b.text = it
	}
	it.text = append(it.text, s...)
	b.size += len(s)
	if !b.stream {
		return
	}
	if kind == itemReasoning {
		b.event("response.reasoning_text.delta")
	} else {
		b.event("response.output_text.delta")
	}
	b.out = append(b.out, it.prefix...)
	b.out = append(b.out, s...)
	if kind == itemMessage {
		b.out = append(b.out, `","logprobs":[]}`+"\n\n"...)
	} else {
		b.out = append(b.out, "\"}\n\n"...)
	}
}

// open starts an item of kind and, for a text item, its content part.
func (b *responseBuilder) open(kind int) *outputItem {
	it := &outputItem{kind: kind, index: len(b.items)}
	switch kind {
	case itemReasoning:
		it.id = "rs_" + b.suffix + "_" + strconv.Itoa(it.index)
	case itemMessage:
		it.id = "msg_" + b.suffix + "_" + strconv.Itoa(it.index)
	case itemCall:
		it.id = "fc_" + b.suffix + "_" + strconv.Itoa(it.index)
	}
	b.items = append(b.items, it)
	if !b.stream {
		return it
	}
	var p []byte
	p = append(p, `,"item_id":"`...)
	p = append(p, it.id...)
	p = append(p, `","output_index":`...)
	p = strconv.AppendInt(p, int64(it.index), 10)
	if kind != itemCall {
		p = append(p, `,"content_index":0`...)
	}
	it.prefix = append(p, `,"delta":"`...)
	if kind == itemCall {
		return it // added once it has a name (see addToolCall)
	}
	b.added(it)
	b.event("response.content_part.added")
	b.out = append(b.out, p...)
	b.out = append(b.out, `,"part":`...)
	b.out = appendPart(b.out, it, false)
	b.end()
	return it
}

// added writes an item's response.output_item.added.
func (b *responseBuilder) added(it *outputItem) {
	it.added = true
	b.event("response.output_item.added")
	b.out = append(b.out, `,"output_index":`...)
	b.out = strconv.AppendInt(b.out, int64(it.index), 10)
	b.out = append(b.out, `,"item":`...)
	b.out = appendItem(b.out, it, "in_progress")
	b.end()
}

// closeText ends the open reasoning or message item.
func (b *responseBuilder) closeText() {
	it := b.text
	if it == nil {
		return
	}
	b.text = nil
	if !b.stream {
		return
	}
	where := it.prefix[:len(it.prefix)-len(`,"delta":"`)]
	if it.kind == itemReasoning {
		b.event("response.reasoning_text.done")
	} else {
		b.event("response.output_text.done")
	}
	b.out = append(b.out, where...)
	b.out = append(b.out, `,"text":"`...)
	b.out = append(b.out, it.text...)
	if it.kind == itemMessage {
		b.out = append(b.out, `","logprobs":[]`...)
	} else {
		b.out = append(b.out, '"')
	}
	b.end()
	b.event("response.content_part.done")
	b.out = append(b.out, where...)
	b.out = append(b.out, `,"part":`...)
	b.out = appendPart(b.out, it, true)
	b.end()
	b.itemDone(it)
}

// itemDone writes an item's response.output_item.done.
func (b *responseBuilder) itemDone(it *outputItem) {
	it.done = true
	b.event("response.output_item.done")
	b.out = append(b.out, `,"output_index":`...)
	b.out = strconv.AppendInt(b.out, int64(it.index), 10)
	b.out = append(b.out, `,"item":`...)
	b.out = appendItem(b.out, it, "completed")
	b.end()
}

// addToolCall adds one tool_calls entry of a chunk (or a whole answer's
// call): its id and name when they come, and a fragment of its
// arguments. Entries are told apart by their index; one without an index
// continues the last call without one. An id other than the call's own
// starts a new call all the same (providers that number every call 0).
func (b *responseBuilder) addToolCall(tc toolCallDelta) {
	key := -1
	if tc.Index != nil {
		key = *tc.Index
	}
	it := b.calls[key]
	if it != nil && tc.ID != "" && it.callID != "" && tc.ID != it.callID {
		it = nil
	}
	if it == nil {
		b.closeText()
		it = b.open(itemCall)
		b.calls[key] = it
	}
	if it.callID == "" && tc.ID != "" {
		it.callID = tc.ID
	}
	if it.name == "" && tc.Function.Name != "" {
		it.name = tc.Function.Name
	}
	frag := stringInside(tc.Function.Arguments)
	if frag == nil && len(tc.Function.Arguments) > 0 && string(tc.Function.Arguments) != "null" {
		// Arguments sent as a JSON object rather than as text.
		q, _ := json.Marshal(string(tc.Function.Arguments))
		frag = stringInside(q)
	}
	it.text = append(it.text, frag...)
	b.size += len(frag)
	if !b.stream || it.name == "" {
		return // announced once it has a name
	}
	if !it.added {
		if it.callID == "" {
			it.callID = "call_" + b.suffix + "_" + strconv.Itoa(it.index)
		}
		b.added(it)
		frag = it.text // what came before the name, and this
	}
	if len(frag) == 0 {
		return
	}
	b.event("response.function_call_arguments.delta")
	b.out = append(b.out, it.prefix...)
	b.out = append(b.out, frag...)
	b.out = append(b.out, "\"}\n\n"...)
}

// closeAll ends every open item, in output order.
func (b *responseBuilder) closeAll() {
	b.closeText()
	for _, it := range b.items {
		if it.kind != itemCall {
			continue
		}
		if it.callID == "" {
			it.callID = "call_" + b.suffix + "_" + strconv.Itoa(it.index)
		}
		if !b.stream || it.done {
			continue
		}
		if !it.added {
			b.added(it)
		}
		b.event("response.function_call_arguments.done")
		b.out = append(b.out, it.prefix[:len(it.prefix)-len(`,"delta":"`)]...)
		b.out = append(b.out, `,"name":`...)
		b.out = appendQuoted(b.out, it.name)
		b.out = append(b.out, `,"arguments":"`...)
		b.out = append(b.out, it.text...)
		b.out = append(b.out, '"')
		b.end()
		b.itemDone(it)
	}
}

// status is the response's final status for the provider's finish
// reason, and the incomplete_details reason that goes with it.
func (b *responseBuilder) status() (status, reason string) {
	switch b.finish {
	case "length":
		return "incomplete", "max_output_tokens"
	case "content_filter":
		return "incomplete", "content_filter"
	}
	return "completed", ""
}

// complete ends the stream with response.completed (or
// response.incomplete), the whole response and its usage.
func (b *responseBuilder) complete() {
	b.closeAll()
	if !b.stream {
		return
	}
	status, _ := b.status()
	typ := "response.completed"
	if status == "incomplete" {
		typ = "response.incomplete"
	}
	b.event(typ)
	b.out = append(b.out, `,"response":`...)
	b.out = b.appendObject(b.out, status, nil)
	b.end()
}

// fail ends the stream with response.failed, the output so far (its
// open items incomplete) and err as the response's error.
func (b *responseBuilder) fail(err *apiError) {
	b.event("response.failed")
	b.out = append(b.out, `,"response":`...)
	b.out = b.appendObject(b.out, "failed", err)
	b.end()
}

// responseObject is a Responses API response object.
type responseObject struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	CreatedAt          int64             `json:"created_at"`
	Status             string            `json:"status"`
	CompletedAt        *int64            `json:"completed_at"`
	Error              *responseError    `json:"error"`
	IncompleteDetails  *incomplete       `json:"incomplete_details"`
	Instructions       json.RawMessage   `json:"instructions"`
	MaxOutputTokens    json.RawMessage   `json:"max_output_tokens"`
	Model              string            `json:"model"`
	Output             []json.RawMessage `json:"output"`
	ParallelToolCalls  json.RawMessage   `json:"parallel_tool_calls"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Reasoning          reasoningEcho     `json:"reasoning"`
	Store              bool              `json:"store"`
	Temperature        json.RawMessage   `json:"temperature"`
	Text               json.RawMessage   `json:"text"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Tools              json.RawMessage   `json:"tools"`
	TopP               json.RawMessage   `json:"top_p"`
	Truncation         string            `json:"truncation"`
	Usage              *responseUsage    `json:"usage"`
	Metadata           json.RawMessage   `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incomplete struct {
	Reason string `json:"reason"`
}

type reasoningEcho struct {
	Effort  json.RawMessage `json:"effort"`
	Summary json.RawMessage `json:"summary"`
}

// responseUsage is the Responses API's usage shape.
type responseUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// or is raw, or def when raw is absent.
func or(raw json.RawMessage, def string) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(def)
	}
	return raw
}

// appendObject appends the response object with status: empty output
// while in progress, the items so far otherwise; usage once finished.
func (b *responseBuilder) appendObject(dst []byte, status string, failure *apiError) []byte {
	e := b.echo
	o := responseObject{
		ID: b.id, Object: "response", CreatedAt: b.created, Status: status,
		Instructions: e.instructions, MaxOutputTokens: e.maxOutputTokens, Model: b.model,
		Output:            []json.RawMessage{},
		ParallelToolCalls: or(e.parallelToolCalls, "true"),
		Reasoning:         reasoningEcho{Effort: e.effort, Summary: e.summary},
		Temperature:       e.temperature, TopP: e.topP,
		Text:       or(e.text, `{"format":{"type":"text"}}`),
		ToolChoice: or(e.toolChoice, `"auto"`), Tools: or(e.tools, "[]"),
		Truncation: "disabled", Metadata: or(e.metadata, "{}"),
	}
	if status != "in_progress" {
		for _, it := range b.items {
			st := "completed"
			if status == "failed" && !it.done {
				st = "incomplete"
			}
			o.Output = append(o.Output, appendItem(nil, it, st))
		}
	}
	switch status {
	case "failed":
		o.Error = &responseError{Code: "server_error", Message: failure.Message}
		if failure.Code != nil {
			o.Error.Code = *failure.Code
		}
	case "completed", "incomplete":
		t := b.now().Unix()
		o.CompletedAt = &t
		if _, reason := b.status(); reason != "" {
			o.IncompleteDetails = &incomplete{Reason: reason}
		}
		if u := b.usage; u != nil {
			o.Usage = &responseUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
			o.Usage.InputTokensDetails.CachedTokens = u.PromptTokensDetails.CachedTokens
			o.Usage.OutputTokensDetails.ReasoningTokens = u.CompletionTokensDetails.ReasoningTokens
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		// Only a client's echoed value can fail, and it was valid JSON.
		return append(dst, `{"id":"`+b.id+`","object":"response","status":"failed"}`...)
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// appendItem appends an output item with status.
func appendItem(b []byte, it *outputItem, status string) []byte {
	final := status != "in_progress"
	b = append(b, `{"id":"`...)
	b = append(b, it.id...)
	switch it.kind {
	case itemReasoning:
		b = append(b, `","type":"reasoning","status":"`...)
		b = append(b, status...)
		b = append(b, `","summary":[],"content":[`...)
		if final {
			b = appendPart(b, it, true)
		}
		return append(b, "]}"...)
	case itemMessage:
		b = append(b, `","type":"message","status":"`...)
		b = append(b, status...)
		b = append(b, `","role":"assistant","content":[`...)
		if final {
			b = appendPart(b, it, true)
		}
		return append(b, "]}"...)
	}
	b = append(b, `","type":"function_call","status":"`...)
	b = append(b, status...)
	b = append(b, `","call_id":`...)
	b = appendQuoted(b, it.callID)
	b = append(b, `,"name":`...)
	b = appendQuoted(b, it.name)
	b = append(b, `,"arguments":"`...)
	if final {
		b = append(b, it.text...)
	}
	return append(b, `"}`...)
}

// appendPart appends a text item's content part, empty or whole.
func appendPart(b []byte, it *outputItem, whole bool) []byte {
	if it.kind == itemReasoning {
		b = append(b, `{"type":"reasoning_text","text":"`...)
	} else {
		b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":"`...)
	}
	if whole {
		b = append(b, it.text...)
	}
	return append(b, `"}`...)
}

// appendQuoted appends s as a JSON string.
func appendQuoted(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// object renders the whole (non-streamed) response.
func (b *responseBuilder) object() []byte {
	b.closeAll()
	status, _ := b.status()
	return b.appendObject(nil, status, nil)
}
