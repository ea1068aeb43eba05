package sessions

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/llm"
)

// EndpointPlatform is the platform of the usage the endpoint (palaver
// serve) records, per API key.
const EndpointPlatform = "endpoint"

// Tally is usage added up: requests, tokens and their cost. Tokens are
// counted as providers count them: CompletionTokens includes the
// reasoning tokens, ReasoningTokens says how many of them were reasoning.
type Tally struct {
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	ReasoningTokens  int64
	// EstimatedTokens are the tokens above that Palaver estimated, for
	// answers whose provider sent no usage (a stream cut short, a server
	// that does not report it).
	EstimatedTokens int64
	// CostNanoUSD is the cost of the priced tokens, in billionths of a US
	// dollar; UnpricedTokens are the tokens of models without a known
	// price, whose cost is unknown (not zero).
	CostNanoUSD    int64
	UnpricedTokens int64
	// MaxTokens and MaxCostNanoUSD are those of the largest single request
	// added: what an answer in flight is expected to use at most (see
	// UsageConfig).
	MaxTokens      int64
	MaxCostNanoUSD int64
}

// Tokens is the prompt and completion tokens together.
func (t Tally) Tokens() int64 { return t.PromptTokens + t.CompletionTokens }

// CostUSD is the cost of the priced tokens in US dollars.
func (t Tally) CostUSD() float64 { return float64(t.CostNanoUSD) / 1e9 }

// CostKnown reports whether every token of t has a price.
func (t Tally) CostKnown() bool { return t.UnpricedTokens == 0 }

// Add adds o to t: counts are summed, maxima kept.
func (t *Tally) Add(o Tally) {
	t.Requests += o.Requests
	t.PromptTokens += o.PromptTokens
	t.CompletionTokens += o.CompletionTokens
	t.ReasoningTokens += o.ReasoningTokens
	t.EstimatedTokens += o.EstimatedTokens
	t.CostNanoUSD += o.CostNanoUSD
	t.UnpricedTokens += o.UnpricedTokens
	t.MaxTokens = max(t.MaxTokens, o.MaxTokens)
	t.MaxCostNanoUSD = max(t.MaxCostNanoUSD, o.MaxCostNanoUSD)
}

// fields lists t's counters in their stored order (see AppendTally).
func (t *Tally) fields() [9]*int64 {
	return [9]*int64{&t.Requests, &t.PromptTokens, &t.CompletionTokens, &t.ReasoningTokens,
		&t.EstimatedTokens, &t.CostNanoUSD, &t.UnpricedTokens, &t.MaxTokens, &t.MaxCostNanoUSD}
}

// AppendTally encodes t as its counters in order, each an unsigned
// varint: a few bytes for a small counter. Counters added later go at the
// end, so that a value written by an older palaver decodes with zeros
// there, and one written by a newer palaver decodes with its extra
// counters ignored.
func AppendTally(b []byte, t Tally) []byte {
	for _, f := range t.fields() {
		b = binary.AppendUvarint(b, uint64(max(*f, 0)))
	}
	return b
}

// errBadTally reports a stored counter that cannot be decoded.
var errBadTally = errors.New("malformed usage counter")

// DecodeTally is the inverse of AppendTally.
func DecodeTally(v []byte) (Tally, error) {
	var t Tally
	for _, f := range t.fields() {
		if len(v) == 0 {
			break
		}
		x, n := binary.Uvarint(v)
		if n <= 0 || x > math.MaxInt64 {
			return Tally{}, errBadTally
		}
		*f = int64(x)
		v = v[n:]
	}
	return t, nil
}

// UsageRecord is the usage of one answer or endpoint request, or, read
// back, of every request of one day with the same fields. Fields that do
// not apply are empty.
type UsageRecord struct {
	// Day is the day it was recorded, "2006-01-02" in the time zone of
	// UsageConfig.Location.
	Day string `json:"day"`
	// Platform is the conversation's platform ("telegram", "discord",
	// "console"), or EndpointPlatform.
	Platform string `json:"platform"`
	// User is the asker's platform id, UserName the name they had when
	// last recorded.
	User     string `json:"user,omitempty"`
	UserName string `json:"user_name,omitempty"`
	// Group is the group or server the conversation belongs to
	// (Message.Group).
	Group string `json:"group,omitempty"`
	// Conversation is the conversation's Key.String().
	Conversation string `json:"conversation,omitempty"`
	// Shared is set when several people talk in the conversation (a
	// group, a channel): only such conversations have counters of their
	// own, and limits; in a private one, the user's count. It is not
	// stored.
	Shared bool `json:"-"`
	// Key names the endpoint's API key ("key#1", or "anonymous").
	Key string `json:"key,omitempty"`
	// Model is the "provider/model" that answered.
	Model string `json:"model"`
	Tally
}

// Kinds of usage scopes: what a counter adds up (see BoltStore). Scope
// ids are platform-qualified where the platform's ids are not unique
// across platforms.
const (
	scopeUser         = "user"         // "platform:user id"; per model
	scopeConversation = "conversation" // Key.String()
	scopeGroup        = "group"        // "platform:group id"; per user
	scopeModel        = "model"        // "provider/model"
	scopeKey          = "key"          // the endpoint's key name
)

// scope is what a counter adds up: a kind, an id, and for the counters
// kept per part of a scope (a user's models, a group's users) the part.
type scope struct{ kind, id, sub string }

// UsageUserID, groupScope: the scope ids of a platform's user and group
// (UsageUserID also names a user's recorded name, in every store). Keys
// join parts with 0x00, which the parts may not hold.
func UsageUserID(platform, user string) string { return keyPart(platform + ":" + user) }
func groupScope(platform, group string) string { return keyPart(platform + ":" + group) }

// counted is a scope a record adds to: its month's counter always, its
// day's too when daily (the scopes limits apply to).
type counted struct {
	scope
	daily bool
}

// UsageCount is one counter a usage record adds to (UsageRecord.Counts),
// as every store keys it: a kind (user, conversation, group, model or
// key), an id, and for the counters kept per part of a scope (a user's
// models, a group's users) the part. Each adds to its month's counter, a
// Daily one to its day's too.
type UsageCount struct {
	Kind, ID, Sub string
	Daily         bool
}

// Counts lists the counters r adds to, so that a store other than
// BoltStore keeps the same ones (the contract tests hold it to them).
func (r *UsageRecord) Counts() []UsageCount {
	cs := r.scopes()
	out := make([]UsageCount, len(cs))
	for i, c := range cs {
		out[i] = UsageCount{Kind: c.kind, ID: c.id, Sub: c.sub, Daily: c.daily}
	}
	return out
}

// scopes lists the counters r adds to.
func (r *UsageRecord) scopes() []counted {
	s := make([]counted, 0, 7)
	var user string
	if r.User != "" {
		user = UsageUserID(r.Platform, r.User)
		s = append(s, counted{scope{scopeUser, user, ""}, true})
		if r.Model != "" {
			s = append(s, counted{scope{scopeUser, user, keyPart(r.Model)}, false})
		}
	}
	if r.Conversation != "" && r.Shared {
		s = append(s, counted{scope{scopeConversation, keyPart(r.Conversation), ""}, true})
	}
	if r.Group != "" {
		group := groupScope(r.Platform, r.Group)
		s = append(s, counted{scope{scopeGroup, group, ""}, true})
		if user != "" {
			s = append(s, counted{scope{scopeGroup, group, user}, false})
		}
	}
	if r.Key != "" {
		s = append(s, counted{scope{scopeKey, keyPart(r.Key), ""}, true})
	}
	if r.Model != "" {
		s = append(s, counted{scope{scopeModel, keyPart(r.Model), ""}, true})
	}
	return s
}

// recordFields are a record's fields in its key's order (see BoltStore).
func (r *UsageRecord) recordFields() [7]*string {
	return [7]*string{&r.Day, &r.Platform, &r.User, &r.Group, &r.Conversation, &r.Key, &r.Model}
}

// keyPart makes s fit in a 0x00-separated key: ids never hold 0x00, but
// a name from elsewhere might.
func keyPart(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// recordKey is the usage_records key of r.
func recordKey(r *UsageRecord) []byte {
	var b []byte
	for i, f := range r.recordFields() {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, keyPart(*f)...)
	}
	return b
}

// parseRecordKey is the inverse of recordKey.
func parseRecordKey(k []byte) (UsageRecord, bool) {
	parts := strings.Split(string(k), "\x00")
	var r UsageRecord
	fields := r.recordFields()
	if len(parts) != len(fields) || !isDay(parts[0]) {
		return UsageRecord{}, false
	}
	for i, p := range parts {
		*fields[i] = p
	}
	return r, true
}

// counterKey is the usage_counters key of a scope's counter in a
// period: kind 0x00 id 0x00 period, then 0x00 sub for a part. A scope's
// counters of one period lie together, its parts' right after its own.
func counterKey(period string, s scope) []byte {
	b := make([]byte, 0, len(s.kind)+len(s.id)+len(period)+len(s.sub)+3)
	b = append(b, s.kind...)
	b = append(b, 0)
	b = append(b, s.id...)
	b = append(b, 0)
	b = append(b, period...)
	if s.sub != "" {
		b = append(b, 0)
		b = append(b, s.sub...)
	}
	return b
}

// parseCounterKey is the inverse of counterKey.
func parseCounterKey(k []byte) (period string, s scope, ok bool) {
	parts := strings.Split(string(k), "\x00")
	if len(parts) < 3 || len(parts) > 4 || parts[0] == "" || parts[1] == "" || !isDay(parts[2]) && !isMonth(parts[2]) {
		return "", scope{}, false
	}
	s = scope{kind: parts[0], id: parts[1]}
	if len(parts) == 4 {
		if s.sub = parts[3]; s.sub == "" {
			return "", scope{}, false
		}
	}
	return parts[2], s, true
}

// Period formats: a day and a month.
const (
	dayLayout   = "2006-01-02"
	monthLayout = "2006-01"
)

func isDay(s string) bool {
	_, err := time.Parse(dayLayout, s)
	return err == nil
}

func isMonth(s string) bool {
	_, err := time.Parse(monthLayout, s)
	return err == nil
}

// nextDay and nextMonth are when the day and the month of t, in t's
// location, end: the next midnight, and midnight on the first of the
// next month. Days of 23 or 25 hours (a daylight saving change) end at
// their midnight too.
func nextDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, t.Location())
}

func nextMonth(t time.Time) time.Time {
	y, m, _ := t.Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, t.Location())
}

// nanoPerUSDPerMillion converts a price in USD per million tokens to
// billionths of a USD per token.
const nanoPerUSDPerMillion = 1e3

// tallyOf counts one request's usage u at price (nil: unknown).
// estimated marks every token of it as an estimate.
func tallyOf(u llm.Usage, price *llm.Pricing, estimated bool) Tally {
	t := Tally{
		Requests:         1,
		PromptTokens:     int64(max(u.PromptTokens, 0)),
		CompletionTokens: int64(max(u.CompletionTokens, 0)),
		ReasoningTokens:  int64(max(u.CompletionDetails.ReasoningTokens, 0)),
	}
	if t.ReasoningTokens > t.CompletionTokens {
		t.ReasoningTokens = t.CompletionTokens // a provider's slip; never more than the whole
	}
	if estimated {
		t.EstimatedTokens = t.Tokens()
	}
	if price == nil {
		t.UnpricedTokens = t.Tokens()
	} else {
		cost := float64(t.PromptTokens)*price.InputTokens*nanoPerUSDPerMillion +
			float64(t.CompletionTokens)*price.OutputTokens*nanoPerUSDPerMillion
		t.CostNanoUSD = int64(math.Round(max(cost, 0)))
	}
	t.MaxTokens, t.MaxCostNanoUSD = t.Tokens(), t.CostNanoUSD
	return t
}

// estimateUsage estimates a request's tokens when its provider sent no
// usage: the prompt's messages and the answer's text, with Palaver's
// rule of thumb for context budgets (estimateTokens, imageTokens). Nothing
// received means nothing is counted: a request the provider refused
// before answering costs nothing.
func estimateUsage(prompt []llm.Message, content, reasoning string) llm.Usage {
	if content == "" && reasoning == "" {
		return llm.Usage{}
	}
	var u llm.Usage
	for _, m := range prompt {
		u.PromptTokens += estimateTokens(m.Content) + len(m.Images)*imageTokens(Image{})
		if m.Name != "" {
			u.PromptTokens += estimateTokens(m.Name)
		}
	}
	if content != "" {
		u.CompletionTokens += estimateTokens(content)
	}
	if reasoning != "" {
		r := estimateTokens(reasoning)
		u.CompletionTokens += r
		u.CompletionDetails.ReasoningTokens = r
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// maxNameLen bounds the user names stored with usage, in bytes.
const maxNameLen = 128

// ClipUserName shortens a display name for the store (at most
// maxNameLen bytes, whole characters), as every store keeps it.
func ClipUserName(s string) string {
	if len(s) <= maxNameLen {
		return s
	}
	s = s[:maxNameLen]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
