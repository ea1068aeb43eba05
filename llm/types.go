package llm

import (
	"encoding/json"
	"time"
)

// Roles of chat messages.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one chat message sent upstream.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Name is the optional author name (OpenAI's "name" field).
	Name string `json:"name,omitempty"`
	// Images are pictures a user message carries. A message with images is
	// sent as OpenAI content parts: the text part first (left out when
	// Content is empty), then one image_url part with a data: URL per
	// image, in order. Only user messages may carry images. encoding/json
	// leaves Images out; the client writes them itself.
	Images []Image `json:"-"`
}

// Image is one picture in a message, sent as it is: scaling it down to what
// vision models use is the caller's job.
type Image struct {
	// MIME is the image's media type, "image/jpeg", "image/png",
	// "image/webp" or "image/gif" (any "image/…" type is passed on).
	MIME string
	// Data is the encoded image, at most MaxImageBytes. The client reads
	// it while it encodes a request and never changes it.
	Data []byte
}

// MaxImageBytes is the largest Image.Data a request may carry: a bound on
// mistakes, far above a picture prepared for a vision model (a 1568-pixel
// JPEG is well under 1 MiB). Each image grows by a third in the request
// body, which is base64.
const MaxImageBytes = 20 << 20

// Request is a chat-completion request. Model is the provider's own model
// id (without the "provider/" prefix). Nil pointers and zero MaxTokens are
// left out of the request body, so Temperature 0 is sent as 0.
type Request struct {
	Model       string
	Messages    []Message
	Temperature *float64
	TopP        *float64
	MaxTokens   int
	// Extra holds further body fields, sent verbatim (e.g. "reasoning_effort").
	Extra map[string]json.RawMessage
}

// Delta is one step of a streamed answer. Any field may be empty.
type Delta struct {
	Content   string
	Reasoning string
	// FinishReason is set once, on the step that ends the answer
	// ("stop", "length", "tool_calls", ...).
	FinishReason string
	// Usage is set when the server reported token counts.
	Usage *Usage
}

// Usage is the token accounting of one completion, in OpenAI's shape.
// CompletionTokens includes the reasoning tokens, as providers count and
// bill them; CompletionDetails.ReasoningTokens says how many of them were
// reasoning, when the provider tells (OpenAI, DeepInfra, vLLM, OpenRouter
// send completion_tokens_details.reasoning_tokens).
type Usage struct {
	PromptTokens      int               `json:"prompt_tokens"`
	CompletionTokens  int               `json:"completion_tokens"`
	TotalTokens       int               `json:"total_tokens"`
	CompletionDetails CompletionDetails `json:"completion_tokens_details,omitzero"`
}

// CompletionDetails is the breakdown of a completion's tokens.
type CompletionDetails struct {
	ReasoningTokens int `json:"reasoning_tokens,omitempty"`
}

// IsZero reports whether u counts no tokens at all: a provider that sent
// no usage, or an all-zero one.
func (u Usage) IsZero() bool {
	return u.PromptTokens == 0 && u.CompletionTokens == 0 && u.TotalTokens == 0 && u.CompletionDetails.ReasoningTokens == 0
}

// Completion is a whole, non-streamed answer.
type Completion struct {
	Content      string
	Reasoning    string
	FinishReason string
	Usage        Usage
}

// Model describes one model a provider lists.
type Model struct {
	// Provider is the configured provider name; ID is the provider's id.
	// The user-facing name is Provider + "/" + ID.
	Provider string
	ID       string
	OwnedBy  string
	// ContextLength is 0 when the provider does not say.
	ContextLength int
	// Pricing in USD per million tokens; nil when unknown.
	Pricing *Pricing
	// Vision is true when the provider's metadata says the model takes
	// images (DeepInfra's metadata.tags holds "vision"). False means the
	// list does not say, not that the model cannot see.
	Vision bool
	// Tools and Reasoning are true when the provider's metadata says the
	// model calls tools or reasons before it answers; false means the
	// list does not say.
	Tools     bool
	Reasoning bool
}

// Name is the user-facing model name, "provider/id".
func (m Model) Name() string { return m.Provider + "/" + m.ID }

// Pricing is a model's price in USD per million tokens.
type Pricing struct {
	InputTokens  float64 `json:"input_tokens"`
	OutputTokens float64 `json:"output_tokens"`
}

// Timeouts bound each phase of a request. Zero values take the defaults
// noted on each field.
type Timeouts struct {
	Connect   time.Duration // TCP+TLS connect; default 10s
	FirstByte time.Duration // request sent → response headers; default 60s
	Idle      time.Duration // longest gap between two stream chunks; default 90s
}
