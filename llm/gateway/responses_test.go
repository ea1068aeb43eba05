package gateway_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// lastChat is the body of the last chat request the provider received.
func lastChat(t *testing.T, up *llmtest.Server) map[string]json.RawMessage {
	t.Helper()
	reqs := up.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if strings.HasSuffix(reqs[i].Path, "/chat/completions") {
			return reqs[i].Request.Fields
		}
	}
	t.Fatal("no chat request upstream")
	return nil
}

// compact re-encodes JSON text without white space, for comparisons.
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b.String()
}

func TestSDK_Responses(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Reasoning: []string{"Think", "ing."}, Content: llmtest.Tokens("The answer is 42.")})
	c := newSDK(e, "x")
	resp, err := c.Responses.New(t.Context(), responses.ResponseNewParams{
		Model:           "deepinfra/echo",
		Instructions:    openai.String("Be brief."),
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("What is the answer?")},
		MaxOutputTokens: openai.Int(100),
		Temperature:     openai.Float(0),
		Reasoning:       shared.ReasoningParam{Effort: shared.ReasoningEffortLow},
		Store:           openai.Bool(true), // ignored: every response is stateless
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != "completed" || resp.OutputText() != "The answer is 42." || resp.Model != "deepinfra/echo" ||
		!strings.HasPrefix(resp.ID, "resp_") || resp.Instructions.OfString != "Be brief." || resp.MaxOutputTokens != 100 {
		t.Errorf("response %s", resp.RawJSON())
	}
	if r := resp.Output[0].AsReasoning(); resp.Output[0].Type != "reasoning" || len(r.Content) != 1 || r.Content[0].Text != "Thinking." {
		t.Errorf("output[0] = %s", resp.Output[0].RawJSON())
	}
	if u := resp.Usage; u.InputTokens != 6 || u.OutputTokens != 6 || u.TotalTokens != 12 {
		t.Errorf("usage %s", u.RawJSON())
	}
	up := lastChat(t, e.up)
	want := map[string]string{
		"model":            `"echo"`,
		"messages":         `[{"role":"system","content":"Be brief."},{"role":"user","content":"What is the answer?"}]`,
		"max_tokens":       `100`,
		"temperature":      `0`,
		"reasoning_effort": `"low"`,
	}
	if len(up) != len(want) {
		t.Errorf("upstream fields %v, want %v", up, want)
	}
	for k, v := range want {
		if got := compact(t, string(up[k])); got != v {
			t.Errorf("upstream %s = %s, want %s", k, got, v)
		}
	}
}

func TestSDK_ResponsesStream(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Dialect: llmtest.VLLM, Reasoning: []string{"Hmm", "…"}, Content: llmtest.Tokens("Hello there, friend.")})
	c := newSDK(e, "x")
	stream := c.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{
		Model: "deepinfra/echo",
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("Hi", responses.EasyInputMessageRoleUser),
		}},
	})
	var (
		types             []string
		text, reasoning   string
		seq               int64
		completed         responses.Response
		doneText, doneRsn string
	)
	for stream.Next() {
		ev := stream.Current()
		if ev.SequenceNumber != seq {
			t.Errorf("event %q has sequence number %d, want %d", ev.Type, ev.SequenceNumber, seq)
		}
		seq++
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text += ev.Delta
		case "response.output_text.done":
			doneText = ev.Text
		case "response.reasoning_text.delta":
			reasoning += ev.Delta
		case "response.reasoning_text.done":
			doneRsn = ev.Text
		case "response.completed":
			completed = ev.AsResponseCompleted().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text != "Hello there, friend." || doneText != text || reasoning != "Hmm…" || doneRsn != reasoning {
		t.Errorf("text %q (done %q), reasoning %q (done %q)", text, doneText, reasoning, doneRsn)
	}
	if completed.Status != "completed" || completed.OutputText() != text || completed.Usage.TotalTokens == 0 {
		t.Errorf("completed %s", completed.RawJSON())
	}
	wantTypes := "response.created response.in_progress response.output_item.added response.content_part.added " +
		"response.reasoning_text.delta response.reasoning_text.delta response.reasoning_text.done response.content_part.done " +
		"response.output_item.done response.output_item.added response.content_part.added " +
		strings.Repeat("response.output_text.delta ", 3) +
		"response.output_text.done response.content_part.done response.output_item.done response.completed"
	if got := strings.Join(types, " "); got != wantTypes {
		t.Errorf("events:\n%s\nwant:\n%s", got, wantTypes)
	}
	// The usage of response.completed is asked for upstream.
	if got := compact(t, string(lastChat(t, e.up)["stream_options"])); got != `{"include_usage":true}` {
		t.Errorf("upstream stream_options = %s", got)
	}
}

// A function-call round trip: the model calls a tool, the client runs it
// and sends its output back with the conversation, the model answers.
func TestSDK_ResponsesFunctionCall(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	c := newSDK(e, "x")
	tools := []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{
		Name:        "get_weather",
		Description: openai.String("The weather in a city."),
		Parameters:  map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
	}}}
	question := responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser)

	// Turn 1, streamed: a call.
	e.up.Enqueue(llmtest.Script{ToolCalls: []llmtest.ToolCall{{ID: "call_abc", Name: "get_weather", Arguments: []string{`{"ci`, `ty":`, `"Paris"}`}}}})
	stream := c.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{
		Model: "deepinfra/echo", Tools: tools,
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{question}},
	})
	var call responses.ResponseFunctionToolCall
	var args string
	for stream.Next() {
		switch ev := stream.Current(); ev.Type {
		case "response.function_call_arguments.delta":
			args += ev.Delta
		case "response.output_item.done":
			if item := ev.AsResponseOutputItemDone().Item; item.Type == "function_call" {
				call = item.AsFunctionCall()
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if call.CallID != "call_abc" || call.Name != "get_weather" || call.Arguments != `{"city":"Paris"}` || args != call.Arguments {
		t.Fatalf("call %s, arguments streamed %q", call.RawJSON(), args)
	}
	wantTools := `[{"type":"function","function":{"name":"get_weather","description":"The weather in a city.",` +
		`"parameters":{"properties":{"city":{"type":"string"}},"type":"object"}}}]`
	if got := compact(t, string(lastChat(t, e.up)["tools"])); got != wantTools {
		t.Errorf("upstream tools:\n%s\nwant:\n%s", got, wantTools)
	}

	// Turn 2, not streamed: the output goes back, the model answers.
	e.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("It is 18 °C in Paris.")})
	out := responses.ResponseInputItemParamOfFunctionCallOutput(`{"temp":18}`)
	out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	callParam := call.ToParam()
	resp, err := c.Responses.New(t.Context(), responses.ResponseNewParams{
		Model: "deepinfra/echo", Tools: tools,
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			question, {OfFunctionCall: &callParam}, out,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "It is 18 °C in Paris." {
		t.Errorf("answer %q", resp.OutputText())
	}
	wantMsgs := `[{"role":"user","content":"Weather in Paris?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
		`{"role":"tool","content":"{\"temp\":18}","tool_call_id":"call_abc"}]`
	if got := compact(t, string(lastChat(t, e.up)["messages"])); got != wantMsgs {
		t.Errorf("upstream messages:\n%s\nwant:\n%s", got, wantMsgs)
	}
}

// The event streams of the Responses API, byte for byte, for the shapes
// a provider's answer takes.
func TestResponses_Golden(t *testing.T) {
	whole := `{"id":"x","object":"chat.completion","created":1,"model":"echo","choices":[{"index":0,"message":` +
		`{"role":"assistant","content":"Whole.","reasoning_content":"Quick."},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}`
	tools := `,"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}},` +
		`{"type":"function","name":"get_time","parameters":{"type":"object"},"strict":true}],"tool_choice":"auto"`
	for _, tt := range []struct {
		name   string
		script llmtest.Script
		extra  string // more request fields
		stream bool
	}{
		{"text", llmtest.Script{Content: llmtest.Tokens("Hello, world!")}, `,"instructions":"Be kind.","metadata":{"k":"v"}`, true},
		{"reasoning", llmtest.Script{Dialect: llmtest.VLLM, Reasoning: []string{"Let me", " see."}, Content: []string{"Yes."}},
			`,"reasoning":{"effort":"high"}`, true},
		{"tool_calls", llmtest.Script{Content: []string{"Checking."}, ToolCalls: []llmtest.ToolCall{
			{ID: "call_1", Name: "get_weather", Arguments: []string{`{"city":`, `"Paris"}`}},
			{ID: "call_2", Name: "get_time", Arguments: []string{`{"tz":"CET"}`}}}}, tools, true},
		{"incomplete", llmtest.Script{Content: []string{"Cut", " short"}, FinishReason: "length"}, `,"max_output_tokens":2`, true},
		{"failed_drop", llmtest.Script{Content: []string{"a", "b", "c"}, Fail: llmtest.FailDrop, FailAfter: 2}, "", true},
		{"failed_error", llmtest.Script{Content: []string{"a"}, Fail: llmtest.FailErrorChunk, FailAfter: 1, FailMessage: "out of memory"}, "", true},
		{"whole_streamed", llmtest.Script{Raw: whole}, "", true},
		{"tool_calls", llmtest.Script{Reasoning: []string{"Hmm."}, ToolCalls: []llmtest.ToolCall{
			{ID: "call_1", Name: "get_weather", Arguments: []string{`{"city":"Paris"}`}}}}, tools, false},
	} {
		ext := ".sse"
		if !tt.stream {
			ext = ".json"
		}
		t.Run(tt.name+ext, func(t *testing.T) {
			e := newEnv(t, gateway.Options{})
			gateway.SetDeterministic(e.gw, time.Unix(1767225600, 0))
			e.up.Enqueue(tt.script)
			body := `{"model":"deepinfra/echo","input":"Hi","stream":` + map[bool]string{true: "true", false: "false"}[tt.stream] + tt.extra + `}`
			resp := e.post(t, "/v1/responses", body, nil)
			data, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s %v", resp.StatusCode, data, err)
			}
			if tt.stream {
				checkResponseEvents(t, data)
			} else {
				var b bytes.Buffer
				json.Indent(&b, data, "", "  ")
				data = append(b.Bytes(), '\n')
			}
			golden(t, "responses_"+tt.name+ext, data)
		})
	}
}

// checkResponseEvents checks the framing of a Responses event stream:
// each event an "event:" line naming its data's type, one "data:" line of
// JSON, a blank line; sequence numbers from 0; response.created and
// response.in_progress first, a terminal event last.
func checkResponseEvents(t *testing.T, data []byte) {
	t.Helper()
	events := strings.Split(strings.TrimSuffix(string(data), "\n\n"), "\n\n")
	last := events[len(events)-1]
	if len(events) < 3 || !strings.HasPrefix(events[0], "event: response.created\n") ||
		!strings.HasPrefix(events[1], "event: response.in_progress\n") ||
		!strings.HasPrefix(last, "event: response.completed\n") && !strings.HasPrefix(last, "event: response.incomplete\n") &&
			!strings.HasPrefix(last, "event: response.failed\n") {
		t.Errorf("the stream does not start with response.created and response.in_progress and end with a terminal event")
	}
	for i, ev := range events {
		typ, payload, ok := strings.Cut(ev, "\n")
		typ, okT := strings.CutPrefix(typ, "event: ")
		payload, okD := strings.CutPrefix(payload, "data: ")
		var v struct {
			Type string `json:"type"`
			Seq  *int   `json:"sequence_number"`
		}
		if !ok || !okT || !okD || json.Unmarshal([]byte(payload), &v) != nil || v.Type != typ || v.Seq == nil || *v.Seq != i {
			t.Fatalf("event %d is malformed: %q", i, ev)
		}
	}
}

func TestResponses_BadInput(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	for _, tt := range []struct {
		name, body, param string
	}{
		{"ErrPreviousResponse", `{"previous_response_id":"resp_1","input":"hi"}`, "previous_response_id"},
		{"ErrConversation", `{"conversation":"conv_1","input":"hi"}`, "conversation"},
		{"ErrBackground", `{"background":true,"input":"hi"}`, "background"},
		{"ErrPrompt", `{"prompt":{"id":"pmpt_1"}}`, "prompt"},
		{"ErrNoInput", `{}`, "input"},
		{"ErrInputNumber", `{"input":7}`, "input"},
		{"ErrEmptyInput", `{"input":[]}`, "input"},
		{"ErrItemNotObject", `{"input":["hi"]}`, "input[0]"},
		{"ErrItemReference", `{"input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0].type"},
		{"ErrItemType", `{"input":[{"role":"user","content":"hi"},{"type":"web_search_call","id":"ws_1"}]}`, "input[1].type"},
		{"ErrNoType", `{"input":[{"content":"hi"}]}`, "input[0].type"},
		{"ErrRole", `{"input":[{"role":"tool","content":"hi"}]}`, "input[0].role"},
		{"ErrContent", `{"input":[{"role":"user","content":7}]}`, "input[0].content"},
		{"ErrPartFile", `{"input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}`, "input[0].content[0].type"},
		{"ErrPartAudio", `{"input":[{"role":"user","content":[{"type":"input_text","text":"x"},{"type":"input_audio"}]}]}`, "input[0].content[1].type"},
		{"ErrImageFileID", `{"input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]}`, "input[0].content[0].file_id"},
		{"ErrImageNoURL", `{"input":[{"role":"user","content":[{"type":"input_image"}]}]}`, "input[0].content[0].image_url"},
		{"ErrImageNotUser", `{"input":[{"role":"assistant","content":[{"type":"input_image","image_url":"https://x/y.png"}]}]}`, "input[0].content[0].type"},
		{"ErrTextNoText", `{"input":[{"role":"user","content":[{"type":"input_text"}]}]}`, "input[0].content[0].text"},
		{"ErrCallNoID", `{"input":[{"type":"function_call","name":"f","arguments":"{}"}]}`, "input[0].call_id"},
		{"ErrCallNoName", `{"input":[{"type":"function_call","call_id":"c","arguments":"{}"}]}`, "input[0].name"},
		{"ErrCallArgs", `{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":{}}]}`, "input[0].arguments"},
		{"ErrOutputNoID", `{"input":[{"type":"function_call_output","output":"x"}]}`, "input[0].call_id"},
		{"ErrOutputImage", `{"input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"x"}]}]}`, "input[0].output[0].type"},
		{"ErrBuiltinTool", `{"input":"hi","tools":[{"type":"function","name":"f"},{"type":"web_search"}]}`, "tools[1].type"},
		{"ErrToolNoName", `{"input":"hi","tools":[{"type":"function"}]}`, "tools[0].name"},
		{"ErrToolChoice", `{"input":"hi","tool_choice":{"type":"file_search"}}`, "tool_choice"},
		{"ErrToolChoiceMode", `{"input":"hi","tool_choice":"sometimes"}`, "tool_choice"},
		{"ErrInstructions", `{"input":"hi","instructions":["x"]}`, "instructions"},
		{"ErrTemperature", `{"input":"hi","temperature":"hot"}`, "temperature"},
		{"ErrEffort", `{"input":"hi","reasoning":{"effort":3}}`, "reasoning.effort"},
		{"ErrTextFormat", `{"input":"hi","text":{"format":{"type":"grammar"}}}`, "text.format.type"},
		{"ErrParallel", `{"input":"hi","parallel_tool_calls":"yes"}`, "parallel_tool_calls"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"model":"deepinfra/echo",` + strings.TrimPrefix(tt.body, "{")
			if tt.body == "{}" {
				body = `{"model":"deepinfra/echo"}`
			}
			resp := e.post(t, "/v1/responses", body, nil)
			got := readError(t, resp)
			if resp.StatusCode != http.StatusBadRequest || got.Error.Param == nil || *got.Error.Param != tt.param ||
				!strings.Contains(got.Error.Message, strings.Split(tt.param, ".")[0]) {
				t.Errorf("status %d, error %+v; want 400 naming %s", resp.StatusCode, got.Error, tt.param)
			}
		})
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Errorf("provider got %d requests", n)
	}
}

// Items the relay accepts and what the provider gets: developer as
// system, consecutive calls in one assistant message (after its text),
// reasoning items left out, images as content parts, text parts joined,
// named tool_choice, json_schema as response_format.
func TestResponses_Translation(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	body := `{"model":"deepinfra/echo","input":[
		{"role":"developer","content":"Use tools."},
		{"type":"message","role":"user","content":[{"type":"input_text","text":"Look:"},{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}]},
		{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"opaque"},
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Two calls."}]},
		{"type":"function_call","call_id":"c1","name":"a","arguments":"{}"},
		{"type":"function_call","call_id":"c2","name":"b","arguments":"{\"x\":1}"},
		{"type":"function_call_output","call_id":"c1","output":[{"type":"input_text","text":"one"},{"type":"input_text","text":"two"}]},
		{"type":"function_call_output","call_id":"c2","output":"2"},
		{"role":"user","content":[{"type":"input_text","text":"And"},{"type":"input_text","text":"so?"}]}],
		"tools":[{"type":"function","name":"a","parameters":null},{"type":"function","name":"b","strict":false}],
		"tool_choice":{"type":"function","name":"b"},"parallel_tool_calls":false,"top_p":0.5,
		"text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}},
		"store":false,"include":["reasoning.encrypted_content"],"truncation":"auto","user":"u1","service_tier":"auto"}`
	resp := e.post(t, "/v1/responses", body, nil)
	if data, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	up := lastChat(t, e.up)
	want := map[string]string{
		"model": `"echo"`,
		"messages": `[{"role":"system","content":"Use tools."},` +
			`{"role":"user","content":[{"type":"text","text":"Look:"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]},` +
			`{"role":"assistant","content":"Two calls.","tool_calls":[{"id":"c1","type":"function","function":{"name":"a","arguments":"{}"}},` +
			`{"id":"c2","type":"function","function":{"name":"b","arguments":"{\"x\":1}"}}]},` +
			`{"role":"tool","content":"one\ntwo","tool_call_id":"c1"},{"role":"tool","content":"2","tool_call_id":"c2"},` +
			`{"role":"user","content":"And\nso?"}]`,
		"tools":               `[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b","strict":false}}]`,
		"tool_choice":         `{"function":{"name":"b"},"type":"function"}`,
		"parallel_tool_calls": `false`,
		"top_p":               `0.5`,
		"response_format":     `{"json_schema":{"name":"out","schema":{"type":"object"},"strict":true},"type":"json_schema"}`,
	}
	if len(up) != len(want) {
		t.Errorf("upstream has %d fields, want %d: %v", len(up), len(want), up)
	}
	for k, v := range want {
		if got := compact(t, string(up[k])); got != v {
			t.Errorf("upstream %s:\n%s\nwant:\n%s", k, got, v)
		}
	}
	if ims := e.up.Requests()[0].Request.Images(); len(ims) != 1 || ims[0].MIME != "image/png" {
		t.Errorf("images upstream: %+v", ims)
	}
}

// A provider's refusal before the answer starts is an HTTP error, stream
// or not, in OpenAI's shape; an unknown model too.
func TestResponses_UpstreamErrors(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	for _, stream := range []string{"true", "false"} {
		e.up.Enqueue(llmtest.Script{Status: 400, Body: `{"error":{"message":"context too long","type":"invalid_request_error"}}`})
		resp := e.post(t, "/v1/responses", `{"model":"deepinfra/echo","input":"hi","stream":`+stream+`}`, nil)
		if got := readError(t, resp); resp.StatusCode != 400 || got.Error.Message != "provider deepinfra: context too long" {
			t.Errorf("stream %s: %d %+v", stream, resp.StatusCode, got.Error)
		}
	}
	c := newSDK(e, "x")
	_, err := c.Responses.New(t.Context(), responses.ResponseNewParams{Model: "deepinfra/",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("unknown model: %v", err)
	}
}

// A stream that fails after it started ends with response.failed, which
// openai-go delivers as an event with the error.
func TestSDK_ResponsesFailed(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Content: []string{"a", "b", "c"}, Fail: llmtest.FailErrorEvent, FailAfter: 2, FailMessage: "GPU lost"})
	c := newSDK(e, "x")
	stream := c.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{Model: "deepinfra/echo",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	var failed responses.Response
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.failed" {
			failed = ev.AsResponseFailed().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if failed.Status != "failed" || failed.Error.Code != "upstream_error" || failed.Error.Message != "provider deepinfra: GPU lost" ||
		failed.OutputText() != "ab" || failed.Output[0].AsMessage().Status != "incomplete" {
		t.Errorf("failed response %s", failed.RawJSON())
	}
	if !strings.Contains(e.log.String(), `error="provider deepinfra: GPU lost"`) {
		t.Errorf("log:\n%s", e.log)
	}
}

// The usage of a Responses request goes to the log and the Meter as a
// chat request's does.
func TestResponses_UsageLogged(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	e.up.Enqueue(llmtest.Script{Content: []string{"a"}, Usage: &llm.Usage{PromptTokens: 7, CompletionTokens: 1, TotalTokens: 8}})
	resp := e.post(t, "/v1/responses", `{"model":"deepinfra/echo","input":"hi","stream":true}`, nil)
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if log := e.log.String(); !strings.Contains(log, "path=/v1/responses status=200") || !strings.Contains(log, "prompt_tokens=7 completion_tokens=1") {
		t.Errorf("log:\n%s", log)
	}
}
