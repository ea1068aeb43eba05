package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// responsesRequest is a Responses API request translated to a chat
// completion.
type responsesRequest struct {
	model  string
	stream bool
	// chat is the chat-completion request, field by field (its "model"
	// is the client's name until sendChat replaces it).
	chat map[string]json.RawMessage
	// echo holds the request's fields that the response object repeats.
	echo responseEcho
}

// responseEcho are the request's fields, as sent (nil when absent), that
// a response object repeats.
type responseEcho struct {
	instructions, maxOutputTokens, parallelToolCalls, temperature, topP json.RawMessage
	tools, toolChoice, text, metadata                                   json.RawMessage
	effort, summary                                                     json.RawMessage
}

// chatMessage is one message of the chat request a Responses request
// becomes. Content is a JSON string, a list of content parts, or null
// (an assistant message with tool calls only).
type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []chatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type chatToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function chatCallFunction `json:"function"`
}

type chatCallFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// inputItem is one item of a Responses "input" list, as far as the
// gateway reads it.
type inputItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// contentPart is one part of an input message's content.
type contentPart struct {
	Type     string          `json:"type"`
	Text     *string         `json:"text"`
	Refusal  *string         `json:"refusal"`
	ImageURL json.RawMessage `json:"image_url"`
	FileID   string          `json:"file_id"`
	Detail   string          `json:"detail"`
}

// badField is the 400 of a request field the gateway cannot serve, param
// naming it.
func badField(param, format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, typeInvalidRequest, "invalid_request", format, args...).withParam(param)
}

// unsupported is the 400 of a feature of the Responses API that a
// stateless relay to chat completions cannot serve, param naming it.
func unsupported(param, format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, typeInvalidRequest, "unsupported_parameter", format, args...).withParam(param)
}

// parseResponses reads a POST /v1/responses body and translates it to a
// chat completion (see the package documentation for the rules).
func parseResponses(body []byte) (*responsesRequest, *apiError) {
	fields, model, stream, apiErr := parseChat(body)
	if apiErr != nil {
		return nil, apiErr
	}
	set := func(k string) bool { v, ok := fields[k]; return ok && string(v) != "null" }
	switch {
	case set("previous_response_id"):
		return nil, unsupported("previous_response_id", "previous_response_id is not supported: this server keeps no responses "+
			"(every response is stateless, as with \"store\": false); send the whole conversation in \"input\" instead")
	case set("conversation"):
		return nil, unsupported("conversation", "conversation is not supported: this server keeps no conversations; "+
			"send the whole conversation in \"input\" instead")
	case set("prompt"):
		return nil, unsupported("prompt", "prompt templates are not supported: this server keeps no prompts; "+
			"send \"instructions\" and \"input\" instead")
	case string(fields["background"]) == "true":
		return nil, unsupported("background", "background responses are not supported: this server keeps no responses; "+
			"leave out \"background\" and wait for the answer, or stream it")
	}
	req := &responsesRequest{model: model, stream: stream, chat: map[string]json.RawMessage{"model": fields["model"]}}
	if stream {
		req.chat["stream"] = json.RawMessage("true")
	}
	var msgs []chatMessage
	if raw := fields["instructions"]; len(raw) > 0 && string(raw) != "null" {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, badField("instructions", "\"instructions\" must be a string")
		}
		if s != "" {
			msgs = append(msgs, chatMessage{Role: "system", Content: raw})
		}
		req.echo.instructions = raw
	}
	in, apiErr := inputMessages(fields["input"])
	if apiErr != nil {
		return nil, apiErr
	}
	msgs = append(msgs, in...)
	if len(msgs) == 0 {
		return nil, badField("input", "\"input\" must be a string or a list of items holding at least one message")
	}
	if err := putJSON(req.chat, "messages", msgs); err != nil {
		return nil, err
	}
	if apiErr := translateTools(fields, req); apiErr != nil {
		return nil, apiErr
	}
	if apiErr := translateOptions(fields, req); apiErr != nil {
		return nil, apiErr
	}
	return req, nil
}

// putJSON sets m[k] to v encoded.
func putJSON(m map[string]json.RawMessage, k string, v any) *apiError {
	b, err := json.Marshal(v)
	if err != nil {
		return newError(http.StatusBadRequest, typeInvalidRequest, "invalid_json", "cannot encode %s: %v", k, err)
	}
	m[k] = b
	return nil
}

// inputMessages translates "input": a string (one user message) or a list
// of items. Messages keep their order; consecutive function calls (and
// the assistant message just before them) become one assistant message
// with tool_calls; a function call's output becomes a "tool" message.
// Reasoning items are left out: chat templates drop the reasoning of
// earlier turns, and an encrypted one means nothing to another model.
func inputMessages(raw json.RawMessage) ([]chatMessage, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badField("input", "\"input\" is required: a string or a list of items")
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return []chatMessage{{Role: "user", Content: raw}}, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, badField("input", "\"input\" must be a string or a list of items")
	}
	var msgs []chatMessage
	calls := -1 // the index in msgs of the assistant message that takes function calls, or -1
	for i, rawItem := range items {
		p := fmt.Sprintf("input[%d]", i)
		var it inputItem
		if json.Unmarshal(rawItem, &it) != nil {
			return nil, badField(p, "%s must be an object (a message, a function_call or a function_call_output)", p)
		}
		typ := it.Type
		if typ == "" && it.Role != "" {
			typ = "message"
		}
		switch typ {
		case "message":
			m, apiErr := inputMessage(p, it)
			if apiErr != nil {
				return nil, apiErr
			}
			msgs = append(msgs, m)
			calls = -1
			if m.Role == "assistant" {
				calls = len(msgs) - 1
			}
		case "function_call":
			tc, apiErr := functionCall(p, it)
			if apiErr != nil {
				return nil, apiErr
			}
			if calls < 0 {
				msgs = append(msgs, chatMessage{Role: "assistant", Content: json.RawMessage("null")})
				calls = len(msgs) - 1
			}
			msgs[calls].ToolCalls = append(msgs[calls].ToolCalls, tc)
		case "function_call_output":
			m, apiErr := functionOutput(p, it)
			if apiErr != nil {
				return nil, apiErr
			}
			msgs = append(msgs, m)
			calls = -1
		case "reasoning":
			// Left out (see above); it does not end a run of calls.
		case "item_reference":
			return nil, unsupported(p+".type", "%s is an item_reference, which needs stored items: this server keeps none; "+
				"send the item itself", p)
		case "":
			return nil, badField(p+".type", "%s has no \"type\" (and no \"role\")", p)
		default:
			return nil, unsupported(p+".type", "%s has type %q, which is not supported here: this server relays to chat completions "+
				"and takes messages, function_call and function_call_output items (and ignores reasoning items)", p, typ)
		}
	}
	return msgs, nil
}

// inputMessage translates a message item. "developer" becomes "system",
// which every chat server knows. Content made of text parts only is sent
// as one string (parts joined with "\n"), which every chat server takes;
// with an image it is sent as content parts.
func inputMessage(p string, it inputItem) (chatMessage, *apiError) {
	role := it.Role
	switch role {
	case "user", "assistant", "system":
	case "developer":
		role = "system"
	default:
		return chatMessage{}, badField(p+".role", "%s.role must be user, assistant, system or developer, not %q", p, it.Role)
	}
	var text string
	if json.Unmarshal(it.Content, &text) == nil {
		return chatMessage{Role: role, Content: it.Content}, nil
	}
	var parts []contentPart
	if json.Unmarshal(it.Content, &parts) != nil {
		return chatMessage{}, badField(p+".content", "%s.content must be a string or a list of content parts", p)
	}
	type imageURL struct {
		URL    string `json:"url"`
		Detail string `json:"detail,omitempty"`
	}
	type chatPart struct {
		Type     string    `json:"type"`
		Text     *string   `json:"text,omitempty"`
		ImageURL *imageURL `json:"image_url,omitempty"`
	}
	var (
		out    []chatPart
		texts  []string
		images bool
	)
	for j, part := range parts {
		pp := fmt.Sprintf("%s.content[%d]", p, j)
		switch part.Type {
		case "input_text", "output_text", "text":
			if part.Text == nil {
				return chatMessage{}, badField(pp+".text", "%s has no \"text\"", pp)
			}
			out = append(out, chatPart{Type: "text", Text: part.Text})
			texts = append(texts, *part.Text)
		case "refusal":
			if part.Refusal == nil {
				return chatMessage{}, badField(pp+".refusal", "%s has no \"refusal\"", pp)
			}
			out = append(out, chatPart{Type: "text", Text: part.Refusal})
			texts = append(texts, *part.Refusal)
		case "input_image":
			var u string
			switch {
			case role != "user":
				return chatMessage{}, badField(pp+".type", "%s: only user messages may carry images", pp)
			case part.FileID != "":
				return chatMessage{}, unsupported(pp+".file_id", "%s: file_id is not supported: this server keeps no files; "+
					"send the image as image_url (a data: URL or an https URL)", pp)
			case json.Unmarshal(part.ImageURL, &u) != nil || u == "":
				return chatMessage{}, badField(pp+".image_url", "%s needs an image_url: a data: URL or an https URL", pp)
			}
			out = append(out, chatPart{Type: "image_url", ImageURL: &imageURL{URL: u, Detail: part.Detail}})
			images = true
		default:
			return chatMessage{}, unsupported(pp+".type", "%s has type %q, which is not supported here: "+
				"this server takes input_text, output_text, refusal and input_image parts", pp, part.Type)
		}
	}
	var content any = strings.Join(texts, "\n")
	if images {
		content = out
	}
	b, err := json.Marshal(content)
	if err != nil {
		return chatMessage{}, badField(p+".content", "%s.content: %v", p, err)
	}
	return chatMessage{Role: role, Content: b}, nil
}

// functionCall translates a function_call item (a call the model made in
// an earlier turn) to a chat tool call.
func functionCall(p string, it inputItem) (chatToolCall, *apiError) {
	switch {
	case it.CallID == "":
		return chatToolCall{}, badField(p+".call_id", "%s is a function_call without a call_id", p)
	case it.Name == "":
		return chatToolCall{}, badField(p+".name", "%s is a function_call without a name", p)
	}
	args := "{}"
	if len(it.Arguments) > 0 && string(it.Arguments) != "null" {
		if json.Unmarshal(it.Arguments, &args) != nil {
			return chatToolCall{}, badField(p+".arguments", "%s.arguments must be a string (the arguments as JSON text)", p)
		}
	}
	return chatToolCall{ID: it.CallID, Type: "function", Function: chatCallFunction{Name: it.Name, Arguments: args}}, nil
}

// functionOutput translates a function_call_output item to a "tool"
// message. Its output is a string, or text parts, which are joined.
func functionOutput(p string, it inputItem) (chatMessage, *apiError) {
	if it.CallID == "" {
		return chatMessage{}, badField(p+".call_id", "%s is a function_call_output without a call_id", p)
	}
	var out string
	if json.Unmarshal(it.Output, &out) != nil {
		var parts []contentPart
		if json.Unmarshal(it.Output, &parts) != nil {
			return chatMessage{}, badField(p+".output", "%s.output must be a string or a list of text parts", p)
		}
		var texts []string
		for j, part := range parts {
			if (part.Type != "input_text" && part.Type != "output_text") || part.Text == nil {
				return chatMessage{}, unsupported(fmt.Sprintf("%s.output[%d].type", p, j),
					"%s.output[%d] has type %q: a function's output may hold text parts only here", p, j, part.Type)
			}
			texts = append(texts, *part.Text)
		}
		out = strings.Join(texts, "\n")
	}
	b, _ := json.Marshal(out)
	return chatMessage{Role: "tool", Content: b, ToolCallID: it.CallID}, nil
}

// responseTool is one entry of a Responses request's "tools".
type responseTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description json.RawMessage `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      json.RawMessage `json:"strict"`
}

// translateTools translates "tools" (function tools only: built-in tools
// need a server that runs them) and "tool_choice".
func translateTools(fields map[string]json.RawMessage, req *responsesRequest) *apiError {
	if raw := fields["tools"]; len(raw) > 0 && string(raw) != "null" {
		var tools []responseTool
		if json.Unmarshal(raw, &tools) != nil {
			return badField("tools", "\"tools\" must be a list of tools")
		}
		type function struct {
			Name        string          `json:"name"`
			Description json.RawMessage `json:"description,omitempty"`
			Parameters  json.RawMessage `json:"parameters,omitempty"`
			Strict      json.RawMessage `json:"strict,omitempty"`
		}
		type chatTool struct {
			Type     string   `json:"type"`
			Function function `json:"function"`
		}
		out := make([]chatTool, 0, len(tools))
		for i, t := range tools {
			p := fmt.Sprintf("tools[%d]", i)
			switch {
			case t.Type != "function":
				return unsupported(p+".type", "%s has type %q, a built-in tool, which is not supported here: this server relays "+
					"to chat completions and runs no tools of its own; declare a \"function\" tool instead", p, t.Type)
			case t.Name == "":
				return badField(p+".name", "%s is a function without a name", p)
			}
			f := function{Name: t.Name}
			for _, v := range []struct {
				dst *json.RawMessage
				src json.RawMessage
			}{{&f.Description, t.Description}, {&f.Parameters, t.Parameters}, {&f.Strict, t.Strict}} {
				if string(v.src) != "null" {
					*v.dst = v.src
				}
			}
			out = append(out, chatTool{Type: "function", Function: f})
		}
		if len(out) > 0 {
			if apiErr := putJSON(req.chat, "tools", out); apiErr != nil {
				return apiErr
			}
		}
		req.echo.tools = raw
	}
	if raw := fields["tool_choice"]; len(raw) > 0 && string(raw) != "null" {
		var mode string
		var named struct {
			Type string `json:"type"`
			Name string `json:"name"`
		}
		switch {
		case json.Unmarshal(raw, &mode) == nil:
			if mode != "auto" && mode != "none" && mode != "required" {
				return badField("tool_choice", "\"tool_choice\" must be auto, none, required or a function, not %q", mode)
			}
			req.chat["tool_choice"] = raw
		case json.Unmarshal(raw, &named) == nil && named.Type == "function" && named.Name != "":
			if apiErr := putJSON(req.chat, "tool_choice", map[string]any{"type": "function", "function": map[string]string{"name": named.Name}}); apiErr != nil {
				return apiErr
			}
		default:
			return unsupported("tool_choice", "\"tool_choice\" must be auto, none, required or {\"type\": \"function\", \"name\": …}; "+
				"built-in tools and allowed_tools are not supported here")
		}
		req.echo.toolChoice = raw
	}
	if raw := fields["parallel_tool_calls"]; len(raw) > 0 && string(raw) != "null" {
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return badField("parallel_tool_calls", "\"parallel_tool_calls\" must be true or false")
		}
		req.chat["parallel_tool_calls"] = raw
		req.echo.parallelToolCalls = raw
	}
	return nil
}

// translateOptions translates the sampling and output options:
// temperature and top_p as they are, max_output_tokens as max_tokens,
// reasoning.effort as reasoning_effort, text.format as response_format.
// Fields the relay cannot honour but that change nothing for a stateless
// answer (store, include, metadata, truncation, service_tier, user, …)
// are ignored.
func translateOptions(fields map[string]json.RawMessage, req *responsesRequest) *apiError {
	set := func(k string) (json.RawMessage, bool) {
		v, ok := fields[k]
		return v, ok && string(v) != "null"
	}
	number := func(k, chatKey string, dst *json.RawMessage) *apiError {
		raw, ok := set(k)
		if !ok {
			return nil
		}
		var f float64
		if json.Unmarshal(raw, &f) != nil {
			return badField(k, "%q must be a number", k)
		}
		req.chat[chatKey] = raw
		*dst = raw
		return nil
	}
	for _, n := range []struct {
		k, chatKey string
		dst        *json.RawMessage
	}{
		{"temperature", "temperature", &req.echo.temperature},
		{"top_p", "top_p", &req.echo.topP},
		{"max_output_tokens", "max_tokens", &req.echo.maxOutputTokens},
	} {
		if apiErr := number(n.k, n.chatKey, n.dst); apiErr != nil {
			return apiErr
		}
	}
	if raw, ok := set("reasoning"); ok {
		var r struct {
			Effort  json.RawMessage `json:"effort"`
			Summary json.RawMessage `json:"summary"`
		}
		if json.Unmarshal(raw, &r) != nil {
			return badField("reasoning", "\"reasoning\" must be an object such as {\"effort\": \"low\"}")
		}
		if len(r.Effort) > 0 && string(r.Effort) != "null" {
			var effort string
			if json.Unmarshal(r.Effort, &effort) != nil {
				return badField("reasoning.effort", "\"reasoning.effort\" must be a string such as \"low\"")
			}
			req.chat["reasoning_effort"] = r.Effort
			req.echo.effort = r.Effort
		}
		req.echo.summary = r.Summary
	}
	if raw, ok := set("text"); ok {
		var t struct {
			Format *struct {
				Type        string          `json:"type"`
				Name        string          `json:"name"`
				Description json.RawMessage `json:"description"`
				Schema      json.RawMessage `json:"schema"`
				Strict      json.RawMessage `json:"strict"`
			} `json:"format"`
		}
		if json.Unmarshal(raw, &t) != nil {
			return badField("text", "\"text\" must be an object such as {\"format\": {\"type\": \"text\"}}")
		}
		if f := t.Format; f != nil {
			switch f.Type {
			case "text", "":
			case "json_object":
				req.chat["response_format"] = json.RawMessage(`{"type":"json_object"}`)
			case "json_schema":
				js := map[string]json.RawMessage{}
				name, _ := json.Marshal(f.Name)
				js["name"] = name
				for k, v := range map[string]json.RawMessage{"description": f.Description, "schema": f.Schema, "strict": f.Strict} {
					if len(v) > 0 && string(v) != "null" {
						js[k] = v
					}
				}
				if apiErr := putJSON(req.chat, "response_format", map[string]any{"type": "json_schema", "json_schema": js}); apiErr != nil {
					return apiErr
				}
			default:
				return unsupported("text.format.type", "text.format.type %q is not supported: use text, json_object or json_schema", f.Type)
			}
		}
		req.echo.text = raw
	}
	if raw, ok := set("metadata"); ok {
		req.echo.metadata = raw
	}
	return nil
}
