// Package gateway is the HTTP server behind "palaver serve": a local
// OpenAI-compatible endpoint that relays POST /v1/chat/completions and
// GET /v1/models to the configured providers through an llm.Router, so
// that any OpenAI SDK or curl can use the same models as the bots.
//
// # Relay
//
// A chat request body is decoded only as far as its top-level fields: the
// "model" value is replaced by the provider's own model id and every other
// field goes upstream as the client sent it (temperature 0, tools,
// response_format, reasoning_effort, stream_options and fields unknown to
// Palaver alike). The gateway never adds fields of its own: in particular
// it does not ask for stream_options.include_usage, so a client sees
// exactly the stream its request asks for; token counts are logged when
// the provider reports them (DeepInfra and llama.cpp always do).
//
// Streams are relayed event by event, each upstream "data:" payload
// written unchanged as "data: PAYLOAD\n\n" (keep-alive comments too). The
// first event is flushed at once, and after it the response is flushed
// whenever the gateway has relayed every event it has read from upstream,
// that is before each wait on the provider: no event ever waits in a
// buffer, and a burst of events that arrived together is flushed together. A stream whose provider sent a finish reason ends with
// "data: [DONE]" even when the provider left it out; one that ends, breaks
// or stalls before a finish reason ends with an error event
// (data: {"error":{…}}) and no [DONE]. Errors reported inside the stream
// end it the same way, and so does an event longer than Options.MaxEvent
// (DefaultMaxEvent, 1 MiB): it is neither buffered whole nor relayed.
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
// # Model list
//
// GET /v1/models lists every provider's models under the names clients
// send back ("provider/model"), followed by the configured aliases, each
// owned by its target's provider.
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
// is set. GET /healthz is always open. Routes are also served without the
// /v1 prefix.
package gateway
