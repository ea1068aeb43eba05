// Package gateway is the HTTP server behind "palaver serve": a local
// OpenAI-compatible endpoint that relays to the configured providers
// through an llm.Router, so that any OpenAI SDK, agent or curl can use
// the same models as the bots. It serves
//
//	POST /v1/chat/completions       relayed as it is
//	POST /v1/responses              the Responses API, translated to chat completions
//	POST /v1/embeddings             relayed as it is
//	POST /v1/audio/transcriptions   a multipart upload, relayed
//	GET  /v1/models                 every provider's models, with what they say of them
//	GET  /v1/models/{model}         one of them
//
// # Chat completions
//
// A chat request body is decoded only as far as its top-level fields: the
// "model" value is replaced by the provider's own model id and every other
// field goes upstream as the client sent it (temperature 0, tools,
// response_format, reasoning_effort, stream_options and fields unknown to
// Palaver alike). The gateway adds no field of its own. A provider that
// refuses "stream_options" (400 or 422 naming it: servers that predate
// it) gets the request again without it and is remembered, so that later
// requests leave it out at once.
//
// Streams are relayed event by event, each upstream "data:" payload
// written unchanged as "data: PAYLOAD\n\n" (keep-alive comments too):
// streamed tool calls (index, id once, name, argument fragments, parallel
// calls, finish_reason "tool_calls") and reasoning fields
// ("reasoning_content", "reasoning") reach the client byte for byte. The
// first event is flushed at once, and after it the response is flushed
// whenever the gateway has relayed every event it has read from upstream,
// that is before each wait on the provider: no event ever waits in a
// buffer, and a burst of events that arrived together is flushed
// together. A stream whose provider sent a finish reason ends with
// "data: [DONE]" even when the provider left it out; one that ends, breaks
// or stalls before a finish reason ends with an error event
// (data: {"error":{…}}) and no [DONE]. Errors reported inside the stream
// end it the same way, and so does an event longer than Options.MaxEvent
// (DefaultMaxEvent, 1 MiB): it is neither buffered whole nor relayed.
//
// A client that asks for stream_options.include_usage gets OpenAI's
// contract, which SDKs rely on (openai-go adds up the usage of every
// chunk): the usage once, in a chunk with "choices": [] just before
// [DONE]. The provider's own usage chunk is relayed; a provider that puts
// its usage on a chunk with choices instead (DeepInfra and llama.cpp on
// their finish chunk, or any provider the request went to without
// stream_options) has that usage replaced with null, every other byte of
// the chunk kept, and the relay adds the usage chunk. A provider that
// sends no usage at all gets no chunk invented.
//
// A non-streamed answer is relayed only when it is a JSON object with a
// "choices" list; invalid JSON, another JSON value or an event stream
// becomes a 502 in OpenAI's error shape ("upstream_invalid_response").
//
// Responses keep the provider's "model" field (its own id, without the
// "provider/" prefix): rewriting it would mean re-encoding every chunk.
//
// The upstream request is bound to the client's: a client that hangs up
// stops the provider's generation at once.
//
// # Responses API
//
// POST /v1/responses is stateless: every response is as with
// "store": false, whatever the request says, and nothing is kept, so
// previous_response_id, conversation, prompt (a stored template) and
// background: true are refused with 400 naming the field; a client sends
// the whole conversation in "input", as Codex does. The request becomes a
// chat completion:
//
//   - "instructions" becomes a first system message; "input" a user
//     message (a string) or the messages of its items: message items
//     (role user, assistant, system, or developer, sent as system; text
//     parts joined with "\n", input_image parts with an image_url as
//     image_url content parts), function_call items as the tool_calls of
//     an assistant message (consecutive calls, and the assistant message
//     just before them, in one), function_call_output items as "tool"
//     messages. Reasoning items are left out (chat templates drop earlier
//     reasoning, and an encrypted one means nothing to another model).
//     Other item and content types (item_reference, input_file, built-in
//     tool calls, …) are refused with 400 naming the field
//     ("input[2].type").
//   - "tools" may hold function tools only (a built-in tool is refused
//     with 400 naming "tools[i].type"); "tool_choice" is auto, none,
//     required or a named function; parallel_tool_calls, temperature and
//     top_p pass as they are; max_output_tokens becomes max_tokens,
//     reasoning.effort reasoning_effort, text.format response_format.
//     Fields that change nothing for a stateless answer (store, include,
//     metadata, truncation, service_tier, user, …) are ignored; metadata
//     is repeated in the response.
//
// The answer becomes a response object, whose output holds a reasoning
// item (reasoning_content or reasoning, as reasoning_text content), a
// message (output_text), and a function_call item per tool call, in the
// order they started. A stream has the documented semantic events:
// response.created and response.in_progress as soon as the provider has
// answered, then for each item response.output_item.added, its content
// part's response.content_part.added, its deltas
// (response.output_text.delta, response.reasoning_text.delta,
// response.function_call_arguments.delta) and their .done events,
// response.output_item.done, and last response.completed with the usage
// (the gateway asks for include_usage), response.incomplete when the
// provider stopped at a token limit or a content filter, or
// response.failed with the error when the provider fails, breaks or
// stalls. Text is copied from the provider's JSON strings into the events
// escapes and all, never decoded and encoded again; reasoning a provider
// leaves inline in the content (<think>…</think>) stays in the text. A
// refusal before the answer starts is an HTTP error in OpenAI's shape,
// streamed or not.
//
// # Embeddings and transcriptions
//
// POST /v1/embeddings and POST /v1/audio/transcriptions go to the
// provider that serves the model, with its own model id and every other
// field (or form part) as the client sent it, and come back as the
// provider answered. A transcription upload is bounded by MaxUpload (25
// MiB, OpenAI's limit; 413 beyond it) and must be a well-formed
// multipart/form-data form with a "file" part and a "model" field (400
// otherwise). A provider that has no such endpoint, or not for that model
// (404, 405 or 501 upstream), gets the client a 404 that names the
// provider and the model.
//
// # Model list
//
// GET /v1/models lists every provider's models under the names clients
// send back ("provider/model"), followed by the configured aliases, each
// owned by its (target's) provider, with what the provider says of the
// model: context_length, pricing (USD per million tokens) and
// capabilities ("vision", "tools", "reasoning"), each left out when it
// does not say. GET /v1/models/{model} serves one entry: a listed name, an
// alias, or a bare model id (from the first provider that lists it),
// under the name asked for.
//
// # Overhead
//
// Every API response that went to a provider has a Server-Timing header
// that splits its time to first byte between the provider ("provider",
// the wait for its answer to begin) and Palaver ("palaver", everything
// else), in milliseconds; Options.Overhead gets Palaver's share for a
// histogram.
//
// # Access
//
// With APIKeys set, every /v1 request needs "Authorization: Bearer KEY"
// (checked in constant time against every key), and so do the routes
// mounted with Handle (/metrics); logs name a key by its position
// ("key#2"), never by its value. A client address (an IPv6 one by its /64)
// that fails AuthMaxFailures times within AuthWindow is refused with 429
// and Retry-After for AuthWindow, its key unchecked, and logged once as it
// is refused. Without keys every client shares the "anonymous" limits, and
// New refuses a listen address other than loopback unless AllowAnonymous
// is set. Every request that goes to a provider (chat, responses,
// embeddings, transcriptions) counts against its key's request rate and
// requests in flight, is admitted and metered by the Meter, and is logged
// with its model and usage. GET /healthz is always open. Routes are also
// served without the /v1 prefix.
package gateway
