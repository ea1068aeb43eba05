// Package discord is Palaver's Discord adapter: it holds the bot's gateway
// connection (or the shards of it this process holds, shards.go),
// registers the slash commands, turns slash commands, mentions, replies
// to the bot and DMs into turns and commands of the session Manager, and
// shows answers as Discord messages that grow as the model
// writes, with a Stop button while they run. Files, voice messages and
// stickers go with a question as references that the Manager downloads
// through Bot.Fetch when the question's turn starts (attachments.go).
//
// The adapter never calls a model, never opens the store and never decides
// when to edit: the Manager and its reply engine do. It renders, splits at
// Discord's limits (4000 characters of text displays in a Components V2
// message, components.go; 2000 characters of content otherwise) and turns
// Discord's refusals into the errors the engine understands.
//
// Commands are registered for guild and user installs (user.go): a user
// who installed Palaver to their account can /chat where the bot is not a
// member, and is answered through the interaction alone. A finished
// answer carries a Retry button that answers its question again.
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// Platform is the conversation key's platform for Discord.
const Platform = "discord"

// Manager is what the adapter needs from the session manager
// (*sessions.Manager satisfies it).
type Manager interface {
	Handle(ctx context.Context, msg sessions.Message, reply sessions.Reply) (*sessions.Turn, error)
	Retry(ctx context.Context, key sessions.Key, reply sessions.Reply) (*sessions.Turn, error)
	Regenerate(ctx context.Context, key sessions.Key, question string, by sessions.Author, admin bool, reply sessions.Reply) (*sessions.Turn, error)
	Stop(key sessions.Key, author string) bool
	Spend(ctx context.Context, budget string) error
	Model(ctx context.Context, key sessions.Key) (string, error)
	ChooseModel(ctx context.Context, key sessions.Key, name string, by sessions.Author) (string, error)
	Models(ctx context.Context) ([]llm.Model, error)
	SystemPrompt(ctx context.Context, key sessions.Key) (string, bool, error)
	SetSystemPrompt(ctx context.Context, key sessions.Key, prompt string) error
	ClearSystemPrompt(ctx context.Context, key sessions.Key) error
	Reset(ctx context.Context, key sessions.Key) error
	Settings(ctx context.Context, key sessions.Key) (sessions.Summary, error)
	UsageReport(ctx context.Context, r sessions.UsageRequest) (string, error)
	Recover(ctx context.Context, platform string, restore func(sessions.Progress) (sessions.Reply, error)) error
	Inherit(ctx context.Context, child, parent sessions.Key) error
	// Notify shows v once on reply (a notice) through its destination's
	// schedule, and returns at once.
	Notify(reply sessions.Reply, v sessions.View)
	// SetFetcher makes f the way the attachments of platform's messages
	// are downloaded.
	SetFetcher(platform string, f sessions.Fetcher)
}

// Options configure a Bot. Zero fields take the defaults noted on each.
type Options struct {
	// Token is the bot token from the Discord developer portal, with or
	// without the "Bot " prefix. It is never logged.
	Token string
	// ApplicationID is the application whose commands are registered;
	// empty takes it from the gateway's READY.
	ApplicationID string
	// APIBase replaces https://discord.com for REST and the gateway
	// (discord.api_base); empty means the real Discord.
	APIBase string
	// Guilds register the commands per guild (instantly); empty registers
	// them globally, for guild and user installs (user.go).
	Guilds []string
	// EditInterval is the least time between requests to one channel;
	// default 1 s, so a channel never receives more than 5 edits in 5 s.
	EditInterval time.Duration
	// Window is Discord's limit per channel or thread, as the reply engine
	// keeps it: the last request of a window is kept for final answers.
	// Zero means one request per edit interval.
	Window sessions.Window
	// AllowedGuilds and AllowedChannels restrict where the bot answers: a
	// guild message or command is served when its guild, its channel or
	// (in a thread) the thread's parent channel is listed. DMs are served
	// when their channel is listed or the author is in Admins. Both empty
	// serves everyone everywhere.
	AllowedGuilds   []string
	AllowedChannels []string
	// Admins are user or role ids that may change any channel's settings,
	// besides members with the Manage Channels permission.
	Admins []string
	// Threads makes /chat and mentions in a guild text channel open a
	// public thread named after the question and answer there; the thread
	// is a conversation and a rate-limit destination of its own, and
	// starts with the channel's settings. Where Discord refuses the thread
	// (a missing Create Public Threads permission, a rate limit) the
	// answer comes in the channel. Default off.
	Threads bool
	// ThreadFollowAll treats every message in a thread the bot created as
	// meant for it, not only mentions of the bot and replies to it. It
	// asks the gateway for the privileged MESSAGE_CONTENT intent, which
	// must be enabled in the Developer Portal (else Discord refuses the
	// connection). Default off.
	ThreadFollowAll bool
	// Components is how answers are made (discord.components): "auto"
	// (the default) as Components V2 messages of up to 4000 characters,
	// falling back for good to plain messages of 2000 characters the
	// first time Discord refuses one; "v2" as Components V2 only; "legacy"
	// as plain messages only.
	Components string
	// Shards is the number of gateway shards (discord.shards): 0 or 1
	// opens one unsharded connection, enough below 2500 guilds; N > 1
	// opens N shards; AutoShards takes the count Discord recommends
	// (GET /gateway/bot) at each Run. Discord closes the connection of a
	// bot in more guilds than one connection may serve (4011), and Run
	// then says to set discord.shards. Sharded, Run checks Discord's
	// session start limit before identifying, and waits for its reset
	// rather than spend it.
	Shards int
	// ShardSet says which shards this process runs (in a cluster, the
	// etcd store's claims, handed over make-before-break: see Shards);
	// nil runs all of them.
	ShardSet Shards
	// IdentifyGate spaces the shards' IDENTIFYs by Discord's
	// max_concurrency (in a cluster, across processes); nil means a
	// LocalGate, which spaces them within this process.
	IdentifyGate IdentifyGate
	// Logger receives the adapter's logs; nil means slog.Default().
	Logger *slog.Logger
	// OnState is called from the Bot's goroutines whenever its gateway
	// connection state changes; nil ignores. The states are "connecting"
	// (Run is opening the gateway), "up" (READY or RESUMED received),
	// "reconnecting" (the connection dropped and Run is reconnecting it,
	// resuming the session where Discord allows) and "retrying" (the gateway could not be opened: Discord
	// unreachable, or a server error; Run tries again with backoff). With
	// several shards the state is the worst of the shards this process
	// holds ("retrying", then "reconnecting", then "connecting"), and
	// "up" when it holds none; Bot.Shards has each shard's. Calls happen
	// only while Run runs, one at a time and only on a change; most come
	// from the goroutines serving the gateway, so OnState must return
	// quickly.
	OnState func(state string)
	// State keeps, across restarts and processes, the channels where the
	// bot was asked something lately and the newest message seen in each
	// (catchup.go), so that messages written while a shard had no
	// connection are answered once it has one. Nil: kept in memory only
	// (a connection re-identifying catches up; a restart does not).
	State State
}

// Connection states reported to Options.OnState.
const (
	stateConnecting   = "connecting"
	stateUp           = "up"
	stateReconnecting = "reconnecting"
	stateRetrying     = "retrying"
)

// Bot is a running Discord bot. Create it with New and start it with Run.
type Bot struct {
	opts Options
	m    Manager
	s    *discordgo.Session
	log  *slog.Logger
	now  func() time.Time

	apiBaseURL *url.URL // Options.APIBase parsed; nil for the real Discord

	allowedGuilds   map[string]bool
	allowedChannels map[string]bool
	admins          map[string]bool

	// globalUntil is when Discord's last global rate limit ends, in Unix
	// nanoseconds (see classify).
	globalUntil atomic.Int64
	// v2Refused is set once Discord refused a Components V2 message.
	v2Refused atomic.Bool

	arrivals arrivals // the order of questions per channel

	mu       sync.Mutex
	appID    string // the application id, from Options or READY
	selfID   string // the bot user's id, from READY
	selfName string // the bot user's name, from READY
	closing  bool
	work     sync.WaitGroup // event handlers in flight

	threads threadGate // channels where opening a thread failed
	catch   catchUp    // channels to catch up in when a shard connects (catchup.go)

	shardSet Shards
	gate     IdentifyGate

	// The state of a Run (shards.go). Lock order: connMu, then shardMu.
	shardMu sync.Mutex
	shards  map[int]*shard          // the shards held, by id
	leaving map[int]<-chan struct{} // shards closing: closed once released
	settled bool                    // the first assignment arrived
	pending string                  // the state before it
	fatal   chan error              // a shard's error that ends Run
	firstUp *sync.Once              // runs connected once per Run
	bg      sync.WaitGroup          // the Run's goroutines

	connMu   sync.Mutex // serialises the reports to Options.OnState
	conn     string     // the state last reported
	connDone bool       // Run is returning: report nothing more
}

// New returns a Bot and registers it with m as the Fetcher of Discord's
// attachments (Bot.Fetch). It makes no request: Run connects.
func New(opts Options, m Manager) (*Bot, error) {
	if m == nil {
		return nil, errors.New("discord: a manager is required")
	}
	if opts.EditInterval <= 0 {
		opts.EditInterval = time.Second
	}
	var err error
	if opts.Components, err = checkComponents(opts.Components); err != nil {
		return nil, err
	}
	if err := checkShards(opts.Shards); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("platform", Platform)
	b := &Bot{
		opts:            opts,
		m:               m,
		log:             log,
		now:             time.Now,
		appID:           opts.ApplicationID,
		allowedGuilds:   set(opts.AllowedGuilds),
		allowedChannels: set(opts.AllowedChannels),
		admins:          set(opts.Admins),
		shardSet:        opts.ShardSet,
		gate:            opts.IdentifyGate,
	}
	if b.shardSet == nil {
		b.shardSet = allShards{}
	}
	if b.gate == nil {
		b.gate = &LocalGate{}
	}
	s, err := NewSession(SessionOptions{Token: opts.Token, APIBase: opts.APIBase, Logger: log,
		OnGlobalLimit: func(d time.Duration) { b.globalUntil.Store(time.Now().Add(d).UnixNano()) }})
	if err != nil {
		return nil, err
	}
	b.s = s
	if b.apiBaseURL, err = ParseAPIBase(opts.APIBase); err != nil {
		return nil, err
	}
	// s is the REST session; the gateway connections are the shards'
	// sessions (shards.go), which copy its Identify.
	s.LogLevel = discordgo.LogWarning
	if opts.ThreadFollowAll {
		s.Identify.Intents |= discordgo.IntentMessageContent
	}
	m.SetFetcher(Platform, b)
	return b, nil
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// handlerTimeout bounds the handling of one event (a permission check, a
// settings change, an interaction response); it is detached from shutdown
// so that an event is handled whole.
const handlerTimeout = 15 * time.Second

// shutdownGrace is how long Run, returning, lets event handlers finish.
const shutdownGrace = 5 * time.Second

// Run opens the gateway shards this process holds (one connection
// unless Options.Shards says otherwise), finalises the answers a previous
// run left unfinished and registers the slash commands (by bulk
// overwrite, per guild in Options.Guilds, else globally) once the first
// shard is up, and serves events until ctx ends, opening and closing
// shards as Options.ShardSet assigns them. It then serves the shards
// while Options.ShardSet hands them over to other processes (bounded; at
// once for a process of its own), closes the gateway and waits a bounded
// time for the event handlers in flight. Answers in
// progress are the Manager's to finish. Run returns an error when Discord
// refuses the token or the connection settings (the shard count among
// them), or the shard assignment ends.
func (b *Bot) Run(ctx context.Context) error {
	defer b.endConn()
	b.shardMu.Lock()
	b.shards, b.leaving, b.settled = map[int]*shard{}, map[int]<-chan struct{}{}, false
	b.fatal, b.firstUp = make(chan error, 1), new(sync.Once)
	b.shardMu.Unlock()
	b.mu.Lock()
	b.closing = false
	b.mu.Unlock()
	b.startConn()
	// What was seen is kept until the handlers are done (shutdown, below).
	seenCtx, stopSeen := context.WithCancel(context.WithoutCancel(ctx))
	seenDone := make(chan struct{})
	go func() { defer close(seenDone); b.keepSeen(seenCtx) }()
	defer func() { stopSeen(); <-seenDone }()
	defer b.shutdown() // after the cancel below
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p, err := b.plan(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	b.catch.setTotal(p.total)
	sets, err := b.shardSet.Watch(ctx, p.total)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("discord: watch the shards to hold: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			b.handOver(sets, p)
			return nil
		case err := <-b.fatal:
			return err
		case ids, ok := <-sets:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errAssignmentEnded
			}
			b.reshard(ctx, ids, p)
		}
	}
}

// shutdown closes the gateway and waits for the handlers in flight.
func (b *Bot) shutdown() {
	b.endConn() // closing the gateway is not a reconnection
	b.closeAll()
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.work.Wait(); close(done) }()
	t := time.NewTimer(shutdownGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		b.log.Warn("event handlers still running at shutdown")
	}
}

// startConn reports "connecting" as Run starts.
func (b *Bot) startConn() {
	b.connMu.Lock()
	b.conn, b.connDone = "", false
	b.connMu.Unlock()
	b.setPending(stateConnecting)
}

// reportLocked reports state to Options.OnState if it differs from the
// last state reported and Run is not returning. b.connMu is held.
func (b *Bot) reportLocked(state string) {
	if b.connDone || state == b.conn || b.opts.OnState == nil {
		return
	}
	b.conn = state
	b.opts.OnState(state)
}

// endConn stops the reports: after it returns, OnState is not called.
func (b *Bot) endConn() {
	b.connMu.Lock()
	b.connDone = true
	b.connMu.Unlock()
}

// track runs f as a tracked event handler, unless the Bot is closing.
func (b *Bot) track(f func(ctx context.Context)) {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return
	}
	b.work.Add(1)
	b.mu.Unlock()
	defer b.work.Done()
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	f(ctx)
}

// self returns the application id and the bot user's id.
func (b *Bot) self() (appID, userID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.appID, b.selfID
}

// registerCommands replaces the application's commands with Palaver's:
// per guild in Options.Guilds, else globally for guild and user installs
// (user.go). When Discord refuses the global commands, as it does when
// the app does not support user installs, they are registered again for
// the installs the app supports, with a warning saying how to enable user
// installs.
func (b *Bot) registerCommands(ctx context.Context) error {
	appID, _ := b.self()
	if appID == "" {
		return errors.New("discord: no application id (set discord.application_id)")
	}
	// Each request draws on the bot's budget, as every other does; only
	// an ended ctx refuses one.
	overwrite := func(guild string, userInstalls bool) error {
		if err := b.m.Spend(ctx, Platform); err != nil {
			return err
		}
		_, err := b.s.ApplicationCommandBulkOverwrite(appID, guild, commandList(userInstalls), discordgo.WithContext(ctx))
		return err
	}
	if len(b.opts.Guilds) == 0 {
		err := overwrite("", true)
		if err == nil || !badRequest(err) {
			return wrapRegister("globally", err)
		}
		b.log.Warn("Discord refused the commands for user installs; registering them for server installs only. "+
			"To let people install Palaver to their account, enable User Install in the Developer Portal "+
			"(Installation → Installation Contexts) and restart", "error", err)
		return wrapRegister("globally", overwrite("", false))
	}
	var errs []error
	for _, g := range b.opts.Guilds {
		errs = append(errs, wrapRegister("in guild "+g, overwrite(g, false)))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func wrapRegister(where string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("discord: register commands %s: %w", where, err)
}
