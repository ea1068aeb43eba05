package sessions

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// DefaultUsageRetention is how many days of usage counters are kept when
// UsageConfig.RetentionDays is zero.
const DefaultUsageRetention = 400

// UsageConfig says how usage is recorded and limited (the config's
// limits section, models.prices and models.restricted). The zero value
// records usage, with days in UTC, and limits nothing.
type UsageConfig struct {
	// Location is the time zone of day and month boundaries; nil is UTC.
	Location *time.Location
	// RetentionDays is how many days of counters are kept, the current
	// one included (months are kept while any of their days is); 0 means
	// DefaultUsageRetention.
	RetentionDays int
	// Prices are USD per million tokens by "provider/model". They win
	// over the prices in the providers' model lists; a model with
	// neither has no price, and its cost is unknown.
	Prices map[string]llm.Pricing
	// User, Conversation, Group and Key limit each user (across their
	// conversations), each shared conversation (a group chat, a channel, a
	// thread; in a private one the user's limit applies), each group or
	// server (Message.Group) and each endpoint API key.
	User, Conversation, Group, Key Limit
	// Models limit each listed "provider/model": everyone's use of it
	// together, chats and endpoint alike.
	Models map[string]Limit
	// LimitAdmins holds admins (Author.Admin) to the limits too; by
	// default they are exempt. Their usage counts all the same.
	LimitAdmins bool
	// Restricted lists the models only admins may choose or use
	// ("provider/model", or "provider/*" for every model of a provider);
	// the Manager holds its turns to it, whatever its store. The
	// endpoint's keys are not restricted.
	Restricted []string
	// Now is the clock; nil is time.Now. Tests inject one.
	Now func() time.Time
}

// Limit caps usage: each non-zero field is a cap, on the tokens (prompt
// and completion together) or the cost in USD of a day or a month. Tokens
// of models without a price count towards the token caps only.
type Limit struct {
	DailyTokens   int64
	MonthlyTokens int64
	DailyUSD      float64
	MonthlyUSD    float64
}

// IsZero reports whether l caps nothing.
func (l Limit) IsZero() bool { return l == Limit{} }

// Ledger records usage into a UsageStore's counters and holds answers to
// the limits of UsageConfig. The Manager keeps one for its turns
// (Manager.Ledger), and the endpoint uses the same through Admit, so that
// limits on a model count both. It is safe for concurrent use.
//
// A turn or request is admitted against the usage recorded so far: one
// over a limit is refused, and none is ever cut off once admitted, so a
// limit is exceeded by at most the answers in flight when it is reached.
// To keep that to one answer, answers in flight hold a reservation in each
// limited scope: the largest request the scope made this month (at least
// minReserveTokens tokens). When the recorded usage plus the reservations
// reaches a limit, a further answer waits until those in flight are
// recorded, then is admitted or refused; so concurrent answers of one
// scope near its limit run one at a time, and at most one of them goes
// over, unless an answer in flight is larger than every earlier one of
// the month. Far from their limits, answers run side by side.
//
// Usage is counted on the day (and month) it is recorded: an answer that
// ends after midnight counts on the new day. Days follow the clock: a
// clock set back across midnight records into, and limits by, the day it
// shows.
type Ledger struct {
	store  UsageStore
	router *llm.Router // for the providers' prices; may be nil
	cfg    UsageConfig
	obs    TurnObserver
	log    *slog.Logger

	mu       sync.Mutex
	inflight map[string]int // reservations by limited scope (scope.key)
	changed  chan struct{}  // closed when a reservation ends

	priceMu sync.Mutex
	prices  map[string]cachedPrice

	pruneMu   sync.Mutex
	pruned    string // counters of days before it are deleted
	pruning   string // the day a prune in progress deletes before
	pruneNext []byte // where it goes on (see UsageStore.PruneUsage)
}

// minReserveTokens is the least an answer in flight reserves of a token
// limit: what a short answer with some history uses.
const minReserveTokens = 1000

// priceTTL is how long a model's price from its provider's list is kept.
const priceTTL = 10 * time.Minute

type cachedPrice struct {
	p  *llm.Pricing
	at time.Time
}

// NewLedger returns a Ledger over store. router, when not nil, gives the
// prices of models that UsageConfig.Prices does not list; obs's Usage and
// BudgetRefused receive what is recorded and refused; a nil log is
// slog.Default().
func NewLedger(store UsageStore, router *llm.Router, cfg UsageConfig, obs TurnObserver, log *slog.Logger) *Ledger {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.RetentionDays <= 0 {
		cfg.RetentionDays = DefaultUsageRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Ledger{store: store, router: router, cfg: cfg, obs: obs, log: log,
		inflight: make(map[string]int), changed: make(chan struct{}), prices: make(map[string]cachedPrice)}
	return l
}

// now is the ledger's clock in its time zone.
func (l *Ledger) now() time.Time { return l.cfg.Now().In(l.cfg.Location) }

// asker is who a turn or request is counted for.
type asker struct {
	platform     string
	user, name   string // "" for the endpoint
	group        string
	conversation string // Key.String(); "" for the endpoint
	shared       bool   // several people talk in the conversation
	key          string // the endpoint's key name; "" for chats
}

// record is a's usage record for model on day.
func (a asker) record(day, model string) UsageRecord {
	return UsageRecord{Day: day, Platform: a.platform, User: a.user, UserName: a.name,
		Group: a.group, Conversation: a.conversation, Shared: a.shared, Key: a.key, Model: model}
}

// price is model's price: UsageConfig.Prices, else its provider's list
// (cached for priceTTL), else nil.
func (l *Ledger) price(ctx context.Context, model string) *llm.Pricing {
	if p, ok := l.cfg.Prices[model]; ok {
		return &p
	}
	if l.router == nil {
		return nil
	}
	now := time.Now()
	l.priceMu.Lock()
	c, ok := l.prices[model]
	l.priceMu.Unlock()
	if ok && now.Sub(c.at) < priceTTL {
		return c.p
	}
	prov, id, _ := strings.Cut(model, "/")
	client := l.router.Client(prov)
	if client == nil {
		return nil
	}
	// The provider's list is cached by its client, and a failure
	// remembered: this waits on no request but the first.
	models, err := client.Models(ctx)
	if err != nil && len(models) == 0 {
		return nil // unknown for now; asked again next time
	}
	var p *llm.Pricing
	for _, md := range models {
		if md.ID == id && md.Pricing != nil {
			pr := *md.Pricing
			p = &pr
			break
		}
	}
	l.priceMu.Lock()
	l.prices[model] = cachedPrice{p, now}
	l.priceMu.Unlock()
	return p
}

// usageRecord is a's record of one request to model that used u, or,
// when the provider sent no usage, an estimate from the prompt and the
// answer's text (marked as such). It is nil when nothing was used.
func (l *Ledger) usageRecord(ctx context.Context, a asker, model string, u llm.Usage, estimated bool) *UsageRecord {
	if u.IsZero() {
		return nil
	}
	r := a.record(l.now().Format(dayLayout), model)
	r.Tally = tallyOf(u, l.price(ctx, model), estimated)
	return &r
}

// recorded reports r, once it is durable, to the observer, and deletes
// counters past the retention when a new day started.
func (l *Ledger) recorded(ctx context.Context, r *UsageRecord) {
	if r == nil {
		return
	}
	if o := l.obs.Usage; o != nil {
		o(r.Model, r.Tally)
	}
	l.prune(ctx, r.Day)
}

// pruneBatch bounds the counters one prune transaction looks at (and the
// records it deletes): a few milliseconds of work.
const pruneBatch = 20000

// prune deletes counters older than the retention, counted back from
// day: one bounded transaction per call (see UsageStore.PruneUsage), so
// that the first records of a day bear a bounded cost each, and carry on
// until none is left. A prune in progress elsewhere makes this call do
// nothing.
func (l *Ledger) prune(ctx context.Context, day string) {
	d, err := time.Parse(dayLayout, day)
	if err != nil {
		return
	}
	cutoff := d.AddDate(0, 0, 1-l.cfg.RetentionDays).Format(dayLayout)
	if !l.pruneMu.TryLock() {
		return
	}
	defer l.pruneMu.Unlock()
	if cutoff <= l.pruned {
		return
	}
	if cutoff != l.pruning {
		l.pruning, l.pruneNext = cutoff, nil
	}
	next, done, err := l.store.PruneUsage(ctx, cutoff, l.pruneNext, pruneBatch)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrStoreClosed) { // else shutting down: the next start prunes
			l.log.Warn("prune usage counters", "error", err)
		}
		return
	}
	l.pruneNext = next
	if done {
		l.pruned = cutoff
	}
}

// Admit admits a request of the endpoint's API key (its name, "key#1")
// for model ("provider/model"), holding it to UsageConfig.Key and the
// model's limit; it may wait while answers in flight near a limit finish
// (see Ledger). A refused request's error says which limit and when it
// resets (its RetryAfter method says how long until then), and wraps
// ErrOverBudget. The returned function records the request's usage once
// it ended, exactly once: u as the provider reported it, or estimated,
// when the gateway had to estimate it; zero usage records nothing.
func (l *Ledger) Admit(ctx context.Context, key, model string) (func(u llm.Usage, estimated bool), error) {
	a := asker{platform: EndpointPlatform, key: key}
	res, err := l.admit(ctx, a, model, false, nil)
	if err != nil {
		return nil, err
	}
	return func(u llm.Usage, estimated bool) {
		defer res.release()
		ctx := context.WithoutCancel(ctx) // the client may have gone; its tokens count
		r := l.usageRecord(ctx, a, model, u, estimated)
		if r == nil {
			return
		}
		if err := l.store.AddUsage(ctx, *r); err != nil {
			l.log.Error("record usage", "key", key, "model", model, "error", err)
			return
		}
		l.recorded(ctx, r)
	}, nil
}
