package llm

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Default values for zero Options and Timeouts fields.
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultFirstByteTimeout = 60 * time.Second
	DefaultIdleTimeout      = 90 * time.Second
	DefaultMaxRetries       = 2
	DefaultModelsTTL        = 10 * time.Minute
	DefaultBackoffBase      = 500 * time.Millisecond
	DefaultBackoffMax       = 8 * time.Second
	DefaultModelsRetryBase  = 5 * time.Second
	DefaultModelsRetryMax   = 5 * time.Minute
)

// Options tune a Client. The zero value is usable.
type Options struct {
	// Timeouts bound connect, first byte and idle gaps; zero fields take
	// the defaults. Connect applies only to the Client's own transport.
	Timeouts Timeouts
	// MaxRetries is how many times a request is retried before the first
	// response byte (connect errors, 429, 5xx). 0 means DefaultMaxRetries;
	// a negative value disables retries.
	MaxRetries int
	// Backoff spaces the retries.
	Backoff Backoff
	// HTTPClient sends the requests; nil means a Client of its own whose
	// transport applies Timeouts.Connect. Its Timeout field, if any, must
	// allow for long streams.
	HTTPClient *http.Client
	// Logger receives retry notices; nil means slog.Default(). The API key
	// is never logged.
	Logger *slog.Logger
	// ModelsTTL is how long a model list is cached; 0 means
	// DefaultModelsTTL.
	ModelsTTL time.Duration
	// ModelsRetry spaces the attempts to list the models after a failure:
	// the failure is remembered and returned at once, without a request,
	// for Base after the first failure, twice as long after each further
	// one, at most Max; a success forgets the failures. Zero fields mean
	// DefaultModelsRetryBase (5 s) and DefaultModelsRetryMax (5 min).
	// There is no jitter: one process asks each provider at most once per
	// wait.
	ModelsRetry Backoff
	// ImplicitThink reports whether a model's output starts inside a
	// reasoning block whose opening <think> tag the chat template put in
	// the prompt (so only "</think>" appears in the output). nil means
	// OmitsThinkOpen. See the package's reasoning rules on Client.Stream.
	ImplicitThink func(model string) bool
}

// Backoff is capped exponential backoff with jitter: the wait before retry
// n (from 0) is a random duration in [d/2, d] with d = min(Max, Base·2ⁿ).
// A server's Retry-After replaces the computed wait; one longer than Max is
// not waited for: the error is returned at once.
type Backoff struct {
	Base time.Duration // 0 means DefaultBackoffBase
	Max  time.Duration // 0 means DefaultBackoffMax
}

// Client talks to one provider. It is safe for concurrent use.
type Client struct {
	p         Provider
	base      string // BaseURL without a trailing '/'
	anonymous bool
	http      *http.Client
	log       *slog.Logger
	timeouts  Timeouts
	retries   int
	backoff   Backoff
	implicit  func(string) bool
	modelsTTL time.Duration
	listRetry Backoff
	now       func() time.Time // the clock of the model cache

	mu       sync.Mutex
	models   []Model
	modelsAt time.Time
	fetching *modelsFetch
	listErr  *ListError // the last failed list, until a list succeeds
	listFail int        // failed lists in a row
}

// NewClient returns a Client for p.
func NewClient(p Provider, opts Options) *Client {
	t := opts.Timeouts
	if t.Connect <= 0 {
		t.Connect = DefaultConnectTimeout
	}
	if t.FirstByte <= 0 {
		t.FirstByte = DefaultFirstByteTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	retries := opts.MaxRetries
	if retries == 0 {
		retries = DefaultMaxRetries
	} else if retries < 0 {
		retries = 0
	}
	b := opts.Backoff
	if b.Base <= 0 {
		b.Base = DefaultBackoffBase
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	ttl := opts.ModelsTTL
	if ttl <= 0 {
		ttl = DefaultModelsTTL
	}
	lr := opts.ModelsRetry
	if lr.Base <= 0 {
		lr.Base = DefaultModelsRetryBase
	}
	if lr.Max <= 0 {
		lr.Max = DefaultModelsRetryMax
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: newTransport(t.Connect)}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	implicit := opts.ImplicitThink
	if implicit == nil {
		implicit = OmitsThinkOpen
	}
	return &Client{
		p:         p,
		base:      strings.TrimRight(p.BaseURL, "/"),
		anonymous: p.anonymous(),
		http:      hc,
		log:       log.With(slog.String("provider", p.Name)),
		timeouts:  t,
		retries:   retries,
		backoff:   b,
		implicit:  implicit,
		modelsTTL: ttl,
		listRetry: lr,
		now:       time.Now,
	}
}

// connBuffer is the size of the read buffer and of the write buffer of
// each HTTP/1.1 connection of the Client's own transport (net/http's
// default is 4 KiB each). Every streamed answer holds a connection, so a
// thousand streams hold 2 MiB of these buffers instead of 8. Nothing gets
// shorter and little slower: a streamed chunk is a few hundred bytes, and
// sse.Reader reads past the connection's buffer; what of a request does
// not fit the write buffer goes out from the request itself in writes of
// 32 KiB (bufio.Writer.ReadFrom), so a 3 KB request takes two writes
// instead of one and a 1 MB prompt 32 either way; response header lines of
// any length are read whole (net/textproto joins them). The one line that
// must fit the read buffer is a chunk size line of the chunked encoding: a
// few hex digits, since servers send no chunk extensions. HTTP/2
// connections keep buffers of their own, shared by all their streams.
const connBuffer = 1 << 10

// newTransport is the Client's own transport: the default one with the
// connect timeout applied to dialing and the TLS handshake, and small
// connection buffers (connBuffer).
func newTransport(connect time.Duration) *http.Transport {
	return &http.Transport{
		ReadBufferSize:        connBuffer,
		WriteBufferSize:       connBuffer,
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   connect,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Name is the provider's configured name.
func (c *Client) Name() string { return c.p.Name }

// Anonymous reports whether requests use the keyless DeepInfra web-page
// preset.
func (c *Client) Anonymous() bool { return c.anonymous }
