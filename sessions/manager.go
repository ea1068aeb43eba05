package sessions

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/palaver-bot/palaver/llm"
)

// Config holds the Manager's defaults and limits. Zero fields take the
// defaults noted on each.
type Config struct {
	// DefaultModel is the "provider/model" used by conversations that chose none.
	DefaultModel string
	// Allowed lists the models users may choose ("provider/model" or
	// "provider/*"); empty allows every model the providers list.
	Allowed      []string
	SystemPrompt string
	Temperature  *float64
	MaxTokens    int
	// MaxHistory is the most history messages sent upstream; default 40.
	MaxHistory int
	// ContextLength is the context budget for models whose metadata does not
	// give one; default 32768.
	ContextLength int
	Reasoning     ReasoningMode // default collapsed
	// MaxSystemPrompt and MaxMessage bound input sizes in characters;
	// defaults 4000 and 16000.
	MaxSystemPrompt int
	MaxMessage      int
	// Queue is how many messages may wait per conversation while answers
	// run; default 50. Zero means the default; negative means none.
	Queue int
	// Parallel is how many answers run at once in a shared conversation
	// (a group, a channel); default 4. Private conversations answer one at
	// a time.
	Parallel int
	// UserRate is messages per minute per user; 0 means unlimited.
	UserRate int
	// MaxAnswer caps an answer in characters: past it the model's stream
	// is closed and the answer ends with a note; default 100000.
	MaxAnswer int
	// MaxImages is the most images one prompt carries, the newest kept
	// (older ones in the history are sent as "[image]"), and the most read
	// from one message; default 5 (llmcord's). Negative reads none.
	MaxImages int
	// ImageMaxSide is the longest side, in pixels, images are scaled to
	// for vision models; default 1568.
	ImageMaxSide int
	// MaxFileChars caps the characters the model reads of one text file,
	// PDF or transcript, cut with a note; default 20000.
	MaxFileChars int
	// MaxAttachmentBytes is the largest attachment read, refused before
	// its download when the platform declares a larger size; default
	// 20 MiB (Telegram's limit for bots).
	MaxAttachmentBytes int64
	// Vision lists glob patterns (path.Match syntax, '*' matching '/' as
	// well, compared without regard to case) of the "provider/model"
	// names of models that see images, besides those whose provider's
	// metadata says so; none by default.
	Vision []string
	// Transcription is the "provider/model" that turns voice messages
	// into text; empty (the default) leaves them unread, with a note.
	Transcription string
	// Observer receives turn events, for metrics.
	Observer TurnObserver
	// Usage says how usage is recorded and limited (see Ledger), when
	// the store keeps usage (a UsageStore, as BoltStore is); its
	// Restricted models are only for admins whatever the store.
	Usage UsageConfig
}

// TurnObserver receives the Manager's turn events. Every field may be nil.
type TurnObserver struct {
	FirstToken func(model string, d time.Duration)
	Tokens     func(model string, n int)
	Finished   func(model, status string)
	Active     func(delta int)
	// UpstreamError reports a failed upstream request by kind: "auth",
	// "rate_limit", "client", "server", "stream", "truncated", "timeout" or
	// "network".
	UpstreamError func(model, kind string)
	// StoreFailed reports a store write that failed, by what it was for:
	// "message" (a user's message, not confirmed to the platform),
	// "answer" or "progress".
	StoreFailed func(op string)
	// Usage reports the usage of one answer (or endpoint request) once it
	// is recorded; t holds one request.
	Usage func(model string, t Tally)
	// BudgetRefused reports a turn or request refused by a limit, by
	// scope: "user", "conversation", "group", "model", "key", or
	// "restricted" for a model only admins may use.
	BudgetRefused func(scope string)
}

func (c *Config) setDefaults() {
	if c.MaxHistory == 0 {
		c.MaxHistory = 40
	}
	if c.ContextLength == 0 {
		c.ContextLength = 32768
	}
	if c.Reasoning == "" {
		c.Reasoning = ReasoningCollapsed
	}
	if c.MaxSystemPrompt == 0 {
		c.MaxSystemPrompt = 4000
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = 16000
	}
	if c.Queue == 0 {
		c.Queue = 50
	}
	if c.Parallel <= 0 {
		c.Parallel = 4
	}
	if c.MaxAnswer == 0 {
		c.MaxAnswer = 100000
	}
	if c.MaxImages == 0 {
		c.MaxImages = DefaultMaxImages
	}
	if c.ImageMaxSide <= 0 {
		c.ImageMaxSide = DefaultImageMaxSide
	}
	if c.MaxFileChars <= 0 {
		c.MaxFileChars = DefaultMaxFileChars
	}
	if c.MaxAttachmentBytes <= 0 {
		c.MaxAttachmentBytes = DefaultMaxAttachmentBytes
	}
}

// Author is who wrote a message.
type Author struct {
	ID   string
	Name string
	// Admin is set by the adapter for the platform's configured admins:
	// they may use restricted models and are exempt from usage limits
	// (see UsageConfig).
	Admin bool
}

// Message is a user's message meant for the model.
type Message struct {
	Key Key
	// ID is the platform's id of the message, increasing within a
	// conversation (a Telegram message id, a Discord snowflake); empty
	// where there is none. A message whose ID the conversation accepted
	// before (a platform delivering it again after a crash) is refused
	// with ErrDuplicate.
	ID string
	// Unordered says the platform does not deliver a conversation's
	// messages in id order (Discord): ID refuses a message only when it is
	// among the conversation's last RecentMessages unordered ids.
	Unordered bool
	Author    Author
	Text      string
	// Shared is true where several people talk to the bot in one
	// conversation (groups, channels): their names go upstream with their
	// messages.
	Shared bool
	// Group is the group or server the conversation belongs to, for
	// usage and its limits: a Discord guild id, a Telegram group's chat
	// id; empty in private chats.
	Group string
	// Attachments are the files sent with the message (pictures,
	// documents, voice notes), fetched through the platform's Fetcher
	// when the turn starts. A message with attachments may have no Text.
	Attachments []Attachment
}

// Manager runs conversations: in a private conversation one answer at a
// time, in a shared one up to Config.Parallel side by side, the others
// queued; every answer streamed through the Engine and committed to the
// Store once per turn, together with its question.
//
// What concurrent questions see of each other: each answer's prompt is the
// history as it was when the answer started plus its own question. The
// history holds only finished turns (a question enters it with its
// answer), so answers running side by side do not see each other's
// questions, and the history reads question, answer, question, answer in
// the order the answers finished. One person's questions in a conversation
// are answered one after another, in order.
type Manager struct {
	cfg    Config
	store  Store
	router *llm.Router
	engine *Engine
	log    *slog.Logger
	now    func() time.Time
	ledger *Ledger // nil when the store keeps no usage

	// base bounds everything the Manager shows; cancelled by Close after the
	// grace period.
	base     context.Context
	stopBase context.CancelFunc
	wg       sync.WaitGroup
	notices  sync.WaitGroup // notices being shown

	mu     sync.Mutex
	convs  map[Key]*conv
	closed bool
	// stopping is set when Close's grace has ended: no queued turn starts.
	stopping bool
	rate     *userRate

	qseq atomic.Uint64 // numbers queued messages (Store.SetQueued)

	fetchMu  sync.Mutex
	fetchers map[string]Fetcher // by platform

	claimMu sync.Mutex
	claims  map[Key]*claimHold // conversations this process holds (claim.go)
}

// SetFetcher makes f the way attachments of platform's messages are
// downloaded. Adapters call it before they hand over messages.
func (m *Manager) SetFetcher(platform string, f Fetcher) {
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	if m.fetchers == nil {
		m.fetchers = make(map[string]Fetcher)
	}
	m.fetchers[platform] = f
}

// fetcher returns platform's Fetcher, or nil.
func (m *Manager) fetcher(platform string) Fetcher {
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	return m.fetchers[platform]
}

type conv struct {
	running []*Turn
	queue   []*Turn
	limit   int // answers at once: 1, or Config.Parallel when shared

	// refusal is the notice telling people the queue is full, while it
	// waits for its request: later refusals are added to it.
	refusal *Live
	refused []string // who it names
}

// startLocked starts the queued turns that may run now: up to c.limit at
// once, the first waiting turn of each author whose earlier turn is not
// running. Once Close's grace has ended it starts none: their records
// tell the next start about them. m.mu must be held.
func (m *Manager) startLocked(key Key, c *conv) {
	for i := 0; !m.stopping && i < len(c.queue) && len(c.running) < c.limit; {
		t := c.queue[i]
		if slices.ContainsFunc(c.running, func(r *Turn) bool { return r.msg.Author.ID == t.msg.Author.ID && !t.retry && !r.retry }) {
			i++ // this author's earlier question comes first
			continue
		}
		c.queue = slices.Delete(c.queue, i, i+1)
		c.running = append(c.running, t)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.run(t)
			m.mu.Lock()
			defer m.mu.Unlock()
			c.running = slices.DeleteFunc(c.running, func(r *Turn) bool { return r == t })
			m.startLocked(key, c)
			if len(c.running) == 0 && len(c.queue) == 0 && m.convs[key] == c {
				delete(m.convs, key)
			}
		}()
	}
}

// NewManager returns a Manager. A nil engine gets a new one; a nil logger
// means slog.Default().
func NewManager(cfg Config, store Store, router *llm.Router, engine *Engine, log *slog.Logger) *Manager {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	if engine == nil {
		engine = NewEngine(log, Observer{})
	}
	base, stop := context.WithCancel(context.Background())
	m := &Manager{
		cfg:      cfg,
		store:    store,
		router:   router,
		engine:   engine,
		log:      log,
		now:      time.Now,
		base:     base,
		stopBase: stop,
		convs:    make(map[Key]*conv),
		rate:     newUserRate(cfg.UserRate),
	}
	if us, ok := store.(UsageStore); ok {
		m.ledger = NewLedger(us, router, cfg.Usage, cfg.Observer, log)
	}
	// Queued message ids stay unique across restarts: records left by an
	// earlier run keep theirs until Recover moves them.
	m.qseq.Store(uint64(time.Now().UnixNano()))
	return m
}

// Turn is one answer, queued or running.
type Turn struct {
	key   Key
	id    uint64 // the turn's progress record; its queued record's too
	msg   Message
	retry bool
	reply Reply
	live  *Live

	mu     sync.Mutex
	cancel context.CancelCauseFunc // set while running
	// owed is set once the turn runs and its progress record says where
	// the answer goes: from then on what its reply shows is recorded
	// there.
	owed  atomic.Bool
	psnap []byte // the reply record last saved durably, under mu

	// saved is closed once Handle's write is done (at once for a retry):
	// the message is recorded as queued (qid non-zero) until it enters the
	// history with its answer. saveErr, set before, is its error.
	saved   chan struct{}
	saveErr error

	// The message's queued record: qdone, under qmu, is set once the
	// record is gone (moved into the history, or dropped).
	qid      uint64
	question Entry
	qmu      sync.Mutex
	qdone    bool
	qsnap    []byte // the reply record last saved, under qmu

	done   chan struct{}
	answer string
	status string
	err    error

	usage *turnUsage // set once admitted (usage_limits.go); the turn's goroutine only
}

// Done is closed when the answer has been shown in full (or abandoned).
func (t *Turn) Done() <-chan struct{} { return t.done }

// Result returns the answer's text, its status ("" for complete, "stopped",
// "failed", "interrupted") and the error that ended it. Valid after Done.
func (t *Turn) Result() (answer, status string, err error) { return t.answer, t.status, t.err }

var (
	errStopped  = errors.New("stopped by the user")
	errShutdown = errors.New("palaver is shutting down")
	errGone     = errors.New("reply message deleted")
)

// Handle queues msg for an answer shown on reply. It returns once the
// message is durable (in the history, or recorded as queued), so that a
// platform may be told it was received; the answer is streamed from
// another goroutine. A refused message (no text and no attachments, too
// long, too many waiting, user too fast) returns an error for Explain and
// nothing is shown on reply; so does a message the store could not save
// (ErrNotSaved: the platform should deliver it again later) and one
// accepted before (ErrDuplicate: nothing to say).
func (m *Manager) Handle(ctx context.Context, msg Message, reply Reply) (*Turn, error) {
	text := strings.TrimSpace(strings.ToValidUTF8(msg.Text, "\uFFFD"))
	if text == "" && len(msg.Attachments) == 0 {
		return nil, userErr(ErrEmpty, "Your message is empty: write something after the command or mention.")
	}
	if n := utf8.RuneCountInString(text); n > m.cfg.MaxMessage {
		return nil, userErr(ErrTooLong, "Your message is %d characters long; the limit is %d. Please shorten it.", n, m.cfg.MaxMessage)
	}
	if ok, first := m.rate.allow(msg.Key.Platform+":"+msg.Author.ID, m.now()); !ok {
		err := userErr(ErrRateLimited, "You are sending messages faster than %d a minute; please wait a moment.", m.cfg.UserRate)
		if !first {
			err.(*UserError).Quiet = true // told once is enough
		}
		return nil, err
	}
	msg.Text = text
	t, err := m.enqueue(msg, false, reply)
	if err != nil {
		return nil, err
	}
	if err := m.accept(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// Retry answers the conversation's last user message again, replacing the
// last answer. It is queued like a message.
func (m *Manager) Retry(ctx context.Context, key Key, reply Reply) (*Turn, error) {
	t, err := m.enqueue(Message{Key: key}, true, reply)
	if err != nil {
		return nil, err
	}
	return t, m.accept(ctx, t)
}

// enqueue adds a turn for msg to its conversation's queue and starts what
// may run. A turn does not run before accept has saved it.
func (m *Manager) enqueue(msg Message, retry bool, reply Reply) (*Turn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, userErr(ErrClosed, "Palaver is restarting; please send that again in a moment.")
	}
	c := m.convs[msg.Key]
	if c == nil {
		c = &conv{limit: 1}
		if msg.Shared {
			c.limit = m.cfg.Parallel
		}
		m.convs[msg.Key] = c
	}
	if len(c.queue) >= max(m.cfg.Queue, 0) && len(c.running) >= c.limit {
		err := userErr(ErrBusy, "%d questions are waiting here already; please ask again in a few minutes.", len(c.queue))
		if !retry && msg.Shared {
			// In a crowd, one notice names everyone turned away while it
			// waits for its request, instead of one message each.
			m.refuseLocked(c, msg, reply, err.(*UserError))
			err.(*UserError).Quiet = true
		}
		return nil, err
	}
	t := &Turn{key: msg.Key, msg: msg, retry: retry, reply: reply, id: m.qseq.Add(1),
		done: make(chan struct{}), saved: make(chan struct{})}
	if !retry {
		t.question = Entry{Role: llm.RoleUser, MsgID: msg.ID, Unordered: msg.Unordered, AuthorID: msg.Author.ID, AuthorName: msg.Author.Name, Text: msg.Text, Time: m.now(),
			Attachments: slices.Clone(msg.Attachments), Group: msg.Group}
		t.qid = t.id
	}
	c.queue = append(c.queue, t)
	m.startLocked(msg.Key, c)
	return t, nil
}

// maxRefusedNames bounds the names one refusal notice lists.
const maxRefusedNames = 20

// refuseLocked tells msg's author that the queue is full: by adding them to
// the conversation's refusal notice while it waits, else with a new one on
// reply. m.mu must be held.
func (m *Manager) refuseLocked(c *conv, msg Message, reply Reply, ue *UserError) {
	name := cmp.Or(msg.Author.Name, msg.Author.ID)
	if !slices.Contains(c.refused, name) {
		c.refused = append(c.refused, name)
	}
	names := c.refused
	more := ""
	if len(names) > maxRefusedNames {
		more = fmt.Sprintf(" and %d more", len(names)-maxRefusedNames)
		names = names[:maxRefusedNames]
	}
	v := View{Status: "⚠️ " + ue.Msg + " (" + strings.Join(names, ", ") + more + ")"}
	if c.refusal != nil && c.refusal.Amend(v) {
		return
	}
	c.refused = []string{name}
	v.Status = "⚠️ " + ue.Msg + " (" + name + ")"
	c.refusal = m.notify(reply, v)
}

// accept makes t's message durable (a queued record, until its question
// enters the history with its answer) and then starts showing its reply:
// at once "⏳ Queued" when it has to wait. A turn that could not be saved
// leaves its queue and shows nothing.
func (m *Manager) accept(ctx context.Context, t *Turn) error {
	var err error
	if !t.retry {
		err = m.saveQueued(ctx, t)
	}
	m.mu.Lock()
	if err != nil {
		if c := m.convs[t.key]; c != nil {
			if i := slices.Index(c.queue, t); i >= 0 {
				c.queue = slices.Delete(c.queue, i, i+1)
				close(t.done) // it never runs
			}
		}
	} else {
		t.live = m.engine.Start(m.base, t.reply, func(v View) { m.recordProgress(t, v) })
		if ahead := m.aheadLocked(t); ahead > 0 {
			// Said once: positions moving would cost a request per
			// waiting person.
			t.live.Update(View{Status: queuedStatus(ahead)})
		}
	}
	m.mu.Unlock()
	if err != nil {
		t.saveErr = err
		err = m.notSaved(t.key, "message", err)
	}
	close(t.saved)
	return err
}

// notSaved classifies a store error for Handle: ErrDuplicate stays as it
// is; any other is logged loudly, counted, and wrapped in ErrNotSaved.
func (m *Manager) notSaved(key Key, op string, err error) error {
	if errors.Is(err, ErrDuplicate) {
		m.log.Debug("message delivered again; it was accepted before", "conversation", key.String(), "error", err)
		return err
	}
	m.storeFailed(key, op, err)
	return fmt.Errorf("%w: %w", ErrNotSaved, err)
}

// storeFailed logs loudly and counts a store write that failed, by what
// it was for.
func (m *Manager) storeFailed(key Key, op string, err error) {
	m.log.Error("the store cannot save", "what", op, "conversation", key.String(), "error", err)
	if o := m.cfg.Observer.StoreFailed; o != nil {
		o(op)
	}
}

// aheadLocked is how many turns are ahead of t in its conversation's
// queue, 0 when it runs or is gone. m.mu must be held.
func (m *Manager) aheadLocked(t *Turn) int {
	c := m.convs[t.key]
	if c == nil {
		return 0
	}
	return max(slices.Index(c.queue, t)+1, 0)
}

func queuedStatus(ahead int) string {
	if ahead == 1 {
		return "⏳ Queued: one answer ahead of this one."
	}
	return fmt.Sprintf("⏳ Queued: %d answers ahead of this one.", ahead)
}

// Stop ends answers in progress in the conversation, keeping what was
// written so far: the answers to author's questions, or with author ""
// every answer. It reports whether there was one.
func (m *Manager) Stop(key Key, author string) bool {
	m.mu.Lock()
	var ts []*Turn
	if c := m.convs[key]; c != nil {
		for _, t := range c.running {
			if author == "" || t.msg.Author.ID == author {
				ts = append(ts, t)
			}
		}
	}
	m.mu.Unlock()
	stopped := false
	for _, t := range ts {
		t.mu.Lock()
		if t.cancel != nil {
			t.cancel(errStopped)
			stopped = true
		}
		t.mu.Unlock()
	}
	return stopped
}

// Busy reports whether an answer is running in the conversation.
func (m *Manager) Busy(key Key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.convs[key]
	return c != nil && len(c.running) > 0
}

// Notify shows v on reply once, as a notice (a command's answer, a
// refusal, a note), through the reply's destination schedule like every
// answer (see Engine.Notify). It returns at once; Close waits for the
// notices within its grace, then abandons them.
func (m *Manager) Notify(reply Reply, v View) {
	m.notify(reply, v)
}

// Spend waits until the bot's global budget (named by the platform, as in
// Destination.Budget) allows a request made outside any Reply; see
// Engine.Spend.
func (m *Manager) Spend(ctx context.Context, budget string) error {
	return m.engine.Spend(ctx, budget)
}

// Close stops accepting messages, lets running answers finish until ctx
// ends, then stops them; their partial answers are kept and shown with a
// note. Close returns when every answer has been finalised.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		m.waitNotices(ctx)
		return nil
	case <-ctx.Done():
	}
	m.mu.Lock()
	m.stopping = true
	for _, c := range m.convs {
		for _, t := range c.running {
			t.mu.Lock()
			if t.cancel != nil {
				t.cancel(errShutdown)
			}
			t.mu.Unlock()
		}
	}
	m.mu.Unlock()
	// Give the final views a bounded moment, then abandon them.
	grace, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-done:
		m.waitNotices(grace)
	case <-grace.Done():
	}
	m.stopBase()
	<-done
	return nil
}

// waitNotices waits for the notices still to be shown until ctx ends,
// then abandons them.
func (m *Manager) waitNotices(ctx context.Context) {
	done := make(chan struct{})
	go func() { m.notices.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.stopBase()
		<-done
	}
}

// notify shows v on reply as a notice and tracks it until it is shown or
// abandoned (Close waits for it).
func (m *Manager) notify(reply Reply, v View) *Live {
	l := m.engine.Notify(m.base, reply, v)
	m.notices.Add(1)
	go func() {
		defer m.notices.Done()
		<-l.Done()
	}()
	return l
}

// saveQueued records queued turn t durably, with where its reply is shown
// once it was; a record that would not change is not written again.
// t.qmu must be held, or the turn not yet accepted.
func (m *Manager) saveQueued(ctx context.Context, t *Turn) error {
	q := Queued{Key: t.key, ID: t.qid, Question: t.question, Destination: t.reply.Destination().ID}
	if s, ok := t.reply.(interface{ Snapshot() []byte }); ok {
		q.Reply = s.Snapshot()
	}
	if t.qsnap != nil && bytes.Equal(t.qsnap, q.Reply) {
		return nil
	}
	if err := m.store.SetQueued(ctx, q); err != nil {
		return err
	}
	t.qsnap = append([]byte{}, q.Reply...)
	return nil
}

// dropQueued removes queued turn t's record when the turn ended before its
// message entered the history, unless Palaver is shutting down (the record
// then tells the next start about the message).
func (m *Manager) dropQueued(ctx context.Context, t *Turn) {
	if t.qid == 0 {
		return
	}
	t.qmu.Lock()
	defer t.qmu.Unlock()
	if t.qdone || m.base.Err() != nil || errors.Is(context.Cause(ctx), errShutdown) {
		return
	}
	if err := m.store.Commit(context.WithoutCancel(ctx), t.key, Commit{QueuedID: t.qid}); err != nil {
		m.log.Warn("drop queued message", "conversation", t.key.String(), "error", err)
	}
	t.qdone = true
}

// finaliser shows final views of recovered replies side by side, each on
// its destination's schedule, and collects their errors.
type finaliser struct {
	m       *Manager
	ctx     context.Context
	restore func(Progress) (Reply, error)
	found   func(Key) []time.Duration // the requests another process made there (Handoff)
	honored map[Key]bool              // conversations whose found requests were counted
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []error
}

// show starts showing p.Shown, a final view, on the reply restore rebuilds
// from p's record, and clears the record once it is shown; a nil Reply
// shows nothing, and the record is cleared. A view that could not be
// shown leaves the record, for the next Recover.
func (f *finaliser) show(p Progress) {
	r, err := f.restore(p)
	if err != nil {
		f.fail(fmt.Errorf("%s: %w", p.Key, err))
		return
	}
	if r == nil {
		f.clear(p)
		return
	}
	if !f.honored[p.Key] {
		if f.honored == nil {
			f.honored = make(map[Key]bool)
		}
		f.honored[p.Key] = true
		f.m.engine.Honour(r.Destination(), f.found(p.Key))
	}
	l := f.m.engine.Start(f.ctx, r, nil)
	f.wg.Go(func() {
		if err := l.Finish(f.ctx, p.Shown); err != nil {
			f.fail(fmt.Errorf("%s: %w", p.Key, err))
			return
		}
		f.clear(p)
	})
}

// clear deletes p's record: its final view is shown.
func (f *finaliser) clear(p Progress) {
	c := Commit{ProgressID: p.ID, DropProgress: true}
	if err := f.m.store.Commit(f.ctx, p.Key, c); err != nil {
		f.fail(fmt.Errorf("%s: clear the record: %w", p.Key, err))
	}
}

func (f *finaliser) fail(err error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
}

// wait waits for every view started and returns the errors so far.
func (f *finaliser) wait() []error {
	f.wg.Wait()
	return f.errs
}

// progress is t's progress record showing v.
func (m *Manager) progress(t *Turn, v View) *Progress {
	p := &Progress{Destination: t.reply.Destination().ID, Shown: v, Started: m.now()}
	if s, ok := t.reply.(interface{ Snapshot() []byte }); ok {
		p.Reply = s.Snapshot()
	}
	return p
}

// recordProgress records what t's reply shows after a Show. Where the
// reply is shown (its message ids) is saved durably when it changed, so
// that a crash never forgets a message it must finalise; the text alone is
// written behind.
func (m *Manager) recordProgress(t *Turn, v View) {
	if !t.owed.Load() {
		// A queued turn's status: the queued message's record learns
		// where it is shown.
		if t.qid != 0 {
			t.qmu.Lock()
			if !t.qdone {
				if err := m.saveQueued(m.base, t); err != nil {
					m.log.Warn("record queued message", "conversation", t.key.String(), "error", err)
				}
			}
			t.qmu.Unlock()
		}
		return
	}
	p := m.progress(t, v)
	t.mu.Lock()
	defer t.mu.Unlock()
	var err error
	if bytes.Equal(p.Reply, t.psnap) {
		err = m.store.SetProgress(m.base, t.key, t.id, p)
	} else if err = m.store.SaveProgress(m.base, t.key, t.id, *p); err == nil {
		t.psnap = p.Reply
	}
	if err != nil {
		m.log.Warn("record progress", "conversation", t.key.String(), "error", err)
	}
}

// Recover finalises the answers of platform that were owed when Palaver
// last stopped, and the messages that waited for them. restore rebuilds
// each one's Reply from its record (a nil Reply shows nothing; a record
// with no message yet gets a new one). An interrupted answer shows its
// last text with an "interrupted" note, and that part is kept in the
// history so /retry can answer again; an answer saved before the crash
// shows its final view again; a waiting message enters the history and
// its reply says to use /retry. The views go through the engine, on each
// destination's schedule, side by side; Recover returns when all are
// shown.
func (m *Manager) Recover(ctx context.Context, platform string, restore func(Progress) (Reply, error)) error {
	ps, err := m.store.Progresses(ctx)
	if err != nil {
		return fmt.Errorf("sessions: recover: %w", err)
	}
	qs, err := m.store.QueuedMessages(ctx)
	if err != nil {
		return fmt.Errorf("sessions: recover: %w", err)
	}
	type turn struct {
		key Key
		id  uint64
	}
	waiting := make(map[turn]Queued)
	for _, q := range qs {
		if q.Key.Platform == platform {
			waiting[turn{q.Key, q.ID}] = q
		}
	}
	// On a store shared by several processes, a conversation another
	// live process holds is its own to finish (its records are skipped);
	// the others are held until they are finalised.
	held, found, release, err := m.holdForRecovery(ctx, platform, ps, qs)
	if err != nil {
		return fmt.Errorf("sessions: recover: %w", err)
	}
	defer release()
	if _, shared := m.store.(Claimer); shared {
		// Read again under the claims: a live process may have finished
		// (or moved on in) a conversation between the first read and
		// its claim.
		if ps, err = m.store.Progresses(ctx); err != nil {
			return fmt.Errorf("sessions: recover: %w", err)
		}
		if qs, err = m.store.QueuedMessages(ctx); err != nil {
			return fmt.Errorf("sessions: recover: %w", err)
		}
		if qs, err = m.orphaned(ctx, qs, ps); err != nil {
			return fmt.Errorf("sessions: recover: %w", err)
		}
		waiting = make(map[turn]Queued)
		for _, q := range qs {
			if q.Key.Platform == platform {
				waiting[turn{q.Key, q.ID}] = q
			}
		}
	}
	for k, q := range waiting {
		if !held(q.Key) {
			delete(waiting, k)
		}
	}
	var errs []error
	f := &finaliser{m: m, ctx: ctx, restore: restore, found: found}
	for _, p := range ps {
		if p.Key.Platform != platform || !held(p.Key) {
			continue
		}
		// A committed answer is in the history already: its final view
		// is shown again (a platform that showed it answers "not
		// modified"). Otherwise the answer stopped where the record says:
		// that part enters the history, marked, so that /retry answers
		// again, and the record says its final view is owed, until it
		// is shown (a crash meanwhile shows it on the next start).
		c := Commit{ProgressID: p.ID}
		if q, ok := waiting[turn{p.Key, p.ID}]; ok && p.ID != 0 {
			// The question enters the history with what was answered.
			delete(waiting, turn{p.Key, p.ID})
			c.QueuedID, c.Entries = q.ID, append(c.Entries, q.Question)
		}
		if !p.Committed {
			p.Shown.Final = true
			p.Shown.Status = "⚠️ Interrupted: Palaver restarted. Use /retry for a new answer."
			c.Entries = append(c.Entries, Entry{Role: llm.RoleAssistant, Text: p.Shown.Content, Reasoning: p.Shown.Reasoning, Status: "interrupted", Time: m.now()})
			owed := p
			owed.Committed = true
			c.Progress = &owed
		}
		switch {
		case p.ID == 0:
			// A record of a release before turns had ids: its question is
			// in the history already.
			err = m.store.Append(ctx, p.Key, true, c.Entries...)
		case len(c.Entries) > 0:
			err = m.store.Commit(ctx, p.Key, c)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Key, err))
			continue // the record still says what is owed
		}
		f.show(p)
	}
	// Messages that waited for their turn: into the history, so /retry can
	// answer them, and their "queued" reply (or a new one) says what
	// happened, owed by a progress record of the turn until it is shown.
	for _, q := range waiting {
		p := Progress{Key: q.Key, ID: q.ID, Destination: q.Destination, Reply: q.Reply, Committed: true, Started: m.now(),
			Shown: View{Status: "⚠️ Palaver restarted before answering this. Use /retry to have it answered.", Final: true}}
		c := Commit{QueuedID: q.ID, ProgressID: q.ID, Progress: &p,
			Entries: []Entry{q.Question, {Role: llm.RoleAssistant, Status: "interrupted", Time: m.now()}}}
		if err := m.store.Commit(ctx, q.Key, c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", q.Key, err))
			continue
		}
		f.show(p)
	}
	errs = append(errs, f.wait()...)
	if len(errs) > 0 {
		return fmt.Errorf("sessions: recover: %w", errors.Join(errs...))
	}
	return nil
}
