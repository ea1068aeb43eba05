// Package llm is a client for OpenAI-compatible chat-completion APIs
// (DeepInfra, vLLM, llama.cpp, Ollama, LM Studio, another palaver).
//
// It streams answers as a sequence of [Delta] values, keeps reasoning apart
// from content whichever dialect the server speaks, detects truncated and
// failed streams, and reports refusals as [*StatusError]. A [Router] holds
// the configured providers and resolves user-facing model names
// ("provider/model", bare ids, aliases) to a provider's [Client].
//
// # Reasoning
//
// A delta's "reasoning_content" (DeepInfra, llama.cpp, older vLLM) or
// "reasoning" (vLLM ≥ 0.11, Ollama) field is reasoning. Servers without a
// reasoning parser put it inline in the content instead, and the client
// splits it out under these rules, which hold however the text is cut
// into chunks:
//
//   - Content whose first non-white-space text is "<think>" is reasoning up
//     to the first "</think>"; the tags and the white space before the
//     opening tag are dropped. Only leading white space and a leading
//     prefix of "<think>" are ever held back, so models that never think
//     get their text at once.
//   - Some models' chat templates put the opening tag in the prompt, so
//     their output holds only "</think>" ([OmitsThinkOpen] names them;
//     Options.ImplicitThink overrides the list). For those, text is held
//     until "</think>" arrives, and everything before it is reasoning; if
//     the answer ends first, the held text is content. A reasoning field
//     from the server turns this holding off.
//   - For any other model, a bare "</think>" stays in the content: text
//     already delivered cannot be taken back.
//
// # Errors
//
// A refused request is a [*StatusError] (HTTP status, the provider's
// message, RetryAfter, and NeedsKey for a keyless DeepInfra request). A
// failure the server reports inside a stream is a [*StreamError]. A stream
// that ends before a finish reason wraps [ErrTruncated]. Requests are
// retried before the response starts (connect errors, 429, 5xx), never
// after.
package llm
