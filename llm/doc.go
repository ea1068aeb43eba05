// Package llm is a client for OpenAI-compatible chat-completion APIs
// (DeepInfra, vLLM, llama.cpp, Ollama, LM Studio, another palaver).
//
// It streams answers as a sequence of [Delta] values, keeps reasoning apart
// from content whichever dialect the server speaks, detects truncated and
// failed streams, and reports refusals as [*StatusError]. A [Router] holds
// the configured providers and resolves user-facing model names
// ("provider/model", bare ids, aliases) to a provider's [Client].
package llm
