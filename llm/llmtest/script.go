package llmtest

import (
	"net/http"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// Dialect is the way a server formats its stream.
type Dialect int

const (
	// DeepInfra sends reasoning in delta.reasoning_content and usage on the
	// finish chunk, always.
	DeepInfra Dialect = iota
	// VLLM sends reasoning in delta.reasoning and, when the request asked
	// for include_usage, a usage-only chunk ("choices": []) after the
	// finish chunk.
	VLLM
	// Ollama sends each reasoning token as a chunk of its own with
	// delta.reasoning and an empty content, and the usage like VLLM.
	Ollama
	// LlamaCpp sends delta.reasoning_content and usage plus "timings" on the
	// finish chunk; its mid-stream failures use FailErrorField.
	LlamaCpp
	// InlineThink sends reasoning inside the content as
	// "<think>" … "</think>" tokens (OmitOpenTag leaves out the first), as
	// a server without a reasoning parser does; usage on the finish chunk.
	InlineThink
)

// Failure is a way a stream can fail after it started.
type Failure int

const (
	// NoFailure ends the stream normally.
	NoFailure Failure = iota
	// FailErrorChunk sends data: {"error":{"message":…,"type","code"}}
	// (vLLM, current llama.cpp).
	FailErrorChunk
	// FailErrorField sends an SSE "error: {…}" line, then data: [DONE]
	// (llama.cpp builds of 2025).
	FailErrorField
	// FailErrorEvent sends "event: error" with data {"code","message"}.
	FailErrorEvent
	// FailDrop breaks the connection without a finish reason.
	FailDrop
)

// Script is how the server answers one chat-completion request.
type Script struct {
	Dialect Dialect
	// Reasoning and Content are the tokens sent, reasoning first.
	Reasoning []string
	Content   []string
	// Interval is the pause before each token.
	Interval time.Duration
	// FinishReason defaults to "stop".
	FinishReason string
	// ToolCalls are the function calls the answer makes, streamed after
	// the content (see ToolCall); the finish reason then defaults to
	// "tool_calls".
	ToolCalls []ToolCall
	// Usage defaults to counted tokens: prompt = the words of the messages,
	// completion = the number of tokens and tool-call fragments sent.
	Usage *llm.Usage
	// NoUsage sends no usage at all, whatever the dialect and the request
	// ask, as a server that does not count tokens.
	NoUsage bool
	// OmitOpenTag leaves out the opening "<think>" in the InlineThink
	// dialect, as the original DeepSeek-R1 does.
	OmitOpenTag bool
	// KeepAlive sends a ": keep-alive" comment before each token.
	KeepAlive bool
	// NoSpace writes "data:" without the space after the colon.
	NoSpace bool
	// NoDone leaves out the final "data: [DONE]".
	NoDone bool

	// Status, when non-zero, refuses the request with that HTTP status and
	// Body (default: an OpenAI-shaped error naming the status), and the
	// Retry-After header when RetryAfter is set.
	Status     int
	Body       string
	RetryAfter string

	// Raw, when not empty, is the whole body of a 200 answer, sent as it
	// is with the Content-Type RawType ("application/json" when empty),
	// whether the request asked for a stream or not: an upstream that
	// sends invalid JSON, or an event stream to a request that wanted a
	// JSON completion.
	Raw     string
	RawType string

	// Fail ends the stream abnormally after FailAfter tokens, with
	// FailMessage (default "upstream failure").
	Fail        Failure
	FailAfter   int
	FailMessage string

	// Sent, when set, is called as token i of n is sent: just before it is
	// written and flushed, so that a time taken in it precedes anything
	// the client does with the token (the write may still fail). Load
	// tests use it to time the model's first and last token.
	Sent func(i, n int)
}

// Echo is the default answer: the content "echo: " followed by the last
// user message, one token per word, no reasoning.
func Echo(req Request) Script {
	last := ""
	for _, m := range req.Messages {
		if m.Role == llm.RoleUser {
			last = m.Content
		}
	}
	return Script{Content: Tokens("echo: " + last)}
}

// Tokens splits text into word tokens, each but the first with the white
// space before it, so that joining them gives text back.
func Tokens(text string) []string {
	var toks []string
	start := 0
	for i := 1; i < len(text); i++ {
		if isSpace(text[i]) && !isSpace(text[i-1]) {
			toks = append(toks, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		toks = append(toks, text[start:])
	}
	return toks
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' }

// usage is the script's usage for req.
func (s Script) usage(req Request) llm.Usage {
	if s.Usage != nil {
		return *s.Usage
	}
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(strings.Fields(m.Content))
	}
	u := llm.Usage{PromptTokens: max(prompt, 1), CompletionTokens: len(s.Reasoning) + len(s.Content)}
	for _, tc := range s.ToolCalls {
		u.CompletionTokens += len(tc.Arguments)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func (s Script) finishReason() string {
	if s.FinishReason == "" && len(s.ToolCalls) > 0 {
		return "tool_calls"
	}
	if s.FinishReason == "" {
		return "stop"
	}
	return s.FinishReason
}

func (s Script) failMessage() string {
	if s.FailMessage == "" {
		return "upstream failure"
	}
	return s.FailMessage
}

// refusalBody is the body of a Status refusal.
func (s Script) refusalBody() string {
	if s.Body != "" {
		return s.Body
	}
	return `{"error":{"message":` + quote(http.StatusText(s.Status)) + `,"type":"server_error","param":null,"code":null}}`
}
