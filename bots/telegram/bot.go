// Package telegram is Palaver's Telegram adapter: it receives updates from
// the Bot API by long polling or by webhook (webhook.go), in one process
// of a cluster at a time (Leader), turns messages into turns and commands
// of the session Manager, and shows answers as rich messages (Bot API
// 10.1) or Telegram HTML messages that grow as the model writes; in
// private chats as live drafts with a Stop button, a "Thinking…" draft
// going out as soon as a message is accepted. A finished answer has a
// Retry button. The files users send (photos, albums, documents, voice
// notes) go to the Manager as attachments, which it downloads through the
// adapter's Fetcher (getFile, then the file endpoint) when their turn
// starts.
//
// The adapter never calls a model, never opens the store and never decides
// when to edit: the Manager and its reply engine do. It renders, splits at
// Telegram's length limit and turns Telegram's refusals into the errors the
// engine understands.
package telegram

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/attach"
	"github.com/palaver-bot/palaver/sessions"
)

// Platform is the conversation key's platform for Telegram.
const Platform = "telegram"

// offsetName is the State value holding the next update offset.
const offsetName = "telegram/offset"

// Manager is what the adapter needs from the session manager
// (*sessions.Manager satisfies it).
type Manager interface {
	Handle(ctx context.Context, msg sessions.Message, reply sessions.Reply) (*sessions.Turn, error)
	Retry(ctx context.Context, key sessions.Key, reply sessions.Reply) (*sessions.Turn, error)
	// Regenerate answers the latest question again for its asker or an
	// admin (a Retry button); LatestQuestion is that question's id.
	Regenerate(ctx context.Context, key sessions.Key, question string, by sessions.Author, admin bool, reply sessions.Reply) (*sessions.Turn, error)
	LatestQuestion(ctx context.Context, key sessions.Key) (string, error)
	Stop(key sessions.Key, author string) bool
	// StopReply stops the running answer shown on reply (a draft's Stop
	// button).
	StopReply(key sessions.Key, reply sessions.Reply) bool
	Model(ctx context.Context, key sessions.Key) (string, error)
	// ChooseModel sets the conversation's model for by, refusing a
	// restricted model (models.restricted) to anyone but an admin.
	ChooseModel(ctx context.Context, key sessions.Key, name string, by sessions.Author) (string, error)
	Models(ctx context.Context) ([]llm.Model, error)
	SystemPrompt(ctx context.Context, key sessions.Key) (string, bool, error)
	SetSystemPrompt(ctx context.Context, key sessions.Key, prompt string) error
	ClearSystemPrompt(ctx context.Context, key sessions.Key) error
	Reset(ctx context.Context, key sessions.Key) error
	Settings(ctx context.Context, key sessions.Key) (sessions.Summary, error)
	// UsageReport is the /usage answer, in Markdown.
	UsageReport(ctx context.Context, r sessions.UsageRequest) (string, error)
	Move(ctx context.Context, from, to sessions.Key) error
	Recover(ctx context.Context, platform string, restore func(sessions.Progress) (sessions.Reply, error)) error
	// Notify shows v once on reply (a notice) through its destination's
	// schedule, and returns at once.
	Notify(reply sessions.Reply, v sessions.View)
	// SetFetcher makes f the way the attachments of platform's messages
	// are downloaded when their turns start.
	SetFetcher(platform string, f sessions.Fetcher)
}

// State keeps the adapter's own small state (the update offset);
// sessions.Store satisfies it.
type State interface {
	Value(ctx context.Context, name string) ([]byte, error)
	SetValue(ctx context.Context, name string, v []byte) error
}

// Options configure a Bot. Zero fields take the defaults noted on each.
type Options struct {
	// Token is the bot token from @BotFather. It is never logged.
	Token string
	// APIEndpoint is the Bot API URL format string, with the token and the
	// method as its two %s: default "https://api.telegram.org/bot%s/%s".
	APIEndpoint string
	// EditInterval is the least time between requests to one private chat;
	// default 1 s.
	EditInterval time.Duration
	// GroupEditInterval is the least time between requests to one group
	// (all its topics together); default 3 s, Telegram's 20 per minute.
	GroupEditInterval time.Duration
	// Window is Telegram's limit per chat, and GroupWindow, in groups, the
	// group's as well (all its topics together), as the reply engine keeps
	// them: the last request of a window is kept for final answers. Zero
	// means one request per edit interval.
	Window      sessions.Window
	GroupWindow sessions.Window
	// AllowedChats and AllowedUsers restrict who may use the bot: a
	// message is served when its chat or its author is listed. Both empty
	// serves everyone.
	AllowedChats []int64
	AllowedUsers []int64
	// Admins may change any group's settings, besides the group's own
	// administrators; they alone are admins for usage (Author.Admin: they
	// may choose restricted models, are exempt from usage limits, and see
	// a group's usage in /usage).
	Admins []int64
	// Drafts streams answers in private chats as drafts (sendMessageDraft,
	// Bot API 9.3+, or sendRichMessageDraft), with a Stop button (Bot API
	// 10.3's can_stop, keep_on_stop and stopped_message_generation), and
	// shows Telegram's "Thinking…" placeholder as soon as a message is
	// accepted. A server that refuses drafts turns them off for the rest
	// of the process.
	Drafts bool
	// Format is how answers are shown (telegram.format): "auto" (the
	// default, "") as rich messages (sendRichMessage, Bot API 10.1:
	// headings, lists, tables, code and formulas rendered by Telegram,
	// reasoning in a collapsed block) while the Bot API server knows them,
	// and as Telegram HTML from the first "method not found" on (an older
	// self-hosted server; logged once); "rich" tries rich messages for
	// every answer, falling back to HTML only for the message refused;
	// "html" shows Telegram HTML only. With auto and rich, a message whose
	// rich Markdown Telegram refuses goes as HTML (logged). Notices
	// (commands' answers) are HTML in every format.
	Format string
	// PollTimeout is how long one getUpdates call waits for updates;
	// default 30 s.
	PollTimeout time.Duration
	// AlbumWait is how long the Bot waits for the rest of an album (the
	// photos or files a user sends at once, which Telegram delivers as
	// separate updates) when a batch of updates ends with one of its
	// items, before it answers the album as one message; default 1 s.
	AlbumWait time.Duration
	// MaxAttachmentBytes is the size of the largest file the Manager
	// fetches (chat.max_attachment_bytes): of a photo's sizes, the largest
	// within it is chosen. Default attach.DefaultMaxFileBytes (20 MiB).
	MaxAttachmentBytes int64
	// HTTPClient sends the requests; nil means a client of the Bot's own
	// with connect, TLS and overall timeouts (PollTimeout plus a margin).
	HTTPClient *http.Client
	// Logger receives the adapter's logs; nil means slog.Default().
	Logger *slog.Logger
	// OnState is called from the Bot's goroutines whenever its connection
	// state changes; nil ignores. The states are "connecting" (until getMe
	// succeeds), "up" (getMe succeeded and no getUpdates, or setWebhook,
	// has failed since the last one that succeeded) and "retrying" (the
	// last getUpdates or setWebhook failed and the Bot is backing off).
	// Calls happen only while Run runs, one at a time, and only on a
	// change.
	OnState func(state string)
	// Webhook receives updates by webhook instead of long polling when
	// its URL is set (telegram.webhook).
	Webhook Webhook
	// Leader elects the one process that receives updates when several
	// share a store; nil means this process always receives them. See
	// Leader and Role.
	Leader Leader
	// Advertise is the URL at which the other processes reach this
	// process's webhook handler (cluster.advertise), such as
	// "http://10.0.0.5:8443/telegram": advertised while this process
	// leads, it is where standbys forward the webhook requests that land
	// on them. Empty advertises none, and standbys answer those requests
	// 503 (Telegram sends them again), which suits a load balancer that
	// sends Telegram's requests only to the leader.
	Advertise string
}

// Connection states reported to Options.OnState.
const (
	stateConnecting = "connecting"
	stateUp         = "up"
	stateRetrying   = "retrying"
)

// Bot is a running Telegram bot. Create it with New and start it with Run.
type Bot struct {
	opts  Options
	m     Manager
	state State
	api   *api
	log   *slog.Logger

	allowedChats map[int64]bool
	allowedUsers map[int64]bool
	admins       map[int64]bool

	// self is the bot's own user, from getMe at the start of Run.
	self tgbotapi.User
	// conn is the connection state last reported to Options.OnState; only
	// Run's goroutine uses it.
	conn string

	// unsaved holds the messages the store could not save whose users
	// were told so: an update delivered again is not explained twice.
	// Only Run's goroutine uses it; it is emptied when updates are
	// confirmed.
	unsaved map[[2]int64]bool
	// merged holds the ids of updates handed to the Manager as later
	// items of an album but not confirmed yet (an update before them
	// could not be saved): delivered again, they are not handed over
	// alone. Only Run's goroutine uses it.
	merged map[int]bool
	// waited is the album whose remaining items Run last waited for.
	waited albumKey

	// files is the Fetcher registered with the Manager.
	files *files

	draftsOff atomic.Bool    // set when the server refused a draft
	drafts    *draftRegistry // the answers streaming as drafts, by draft id
	format    string         // formatAuto, formatRich or formatHTML
	richOff   atomic.Bool    // set when the server did not know the rich methods

	// leading is set while Run receives updates (Role).
	leading atomic.Bool
	// hook takes webhook requests' updates while this process leads with
	// a webhook; nil otherwise.
	hook atomic.Pointer[hookIntake]
	// handled are the updates taken from webhook requests lately, so that
	// one delivered again (Telegram missed the answer) is not handled
	// twice; used under the hook's turn.
	handled recentIDs
	// secretSum is the SHA-256 of the webhook's secret token.
	secretSum [32]byte
	// forwarder sends webhook requests on to the leader.
	forwarder *http.Client

	// async tracks the commands' look-ups and a leader's sweep
	// (sweepInterrupted) in the background; stopAsync cancels the ones
	// still running a while after Run returns.
	async     sync.WaitGroup
	asyncCtx  context.Context
	stopAsync context.CancelFunc
}

// New returns a Bot and registers with m the Fetcher of the files users
// send. It makes no request: Run checks the token.
func New(opts Options, m Manager, state State) (*Bot, error) {
	if opts.Token == "" {
		return nil, errors.New("telegram: no bot token (telegram.token)")
	}
	if m == nil || state == nil {
		return nil, errors.New("telegram: a manager and a state store are required")
	}
	format, err := parseFormat(opts.Format)
	if err != nil {
		return nil, err
	}
	if opts.APIEndpoint == "" {
		opts.APIEndpoint = tgbotapi.APIEndpoint
	}
	if opts.EditInterval <= 0 {
		opts.EditInterval = time.Second
	}
	if opts.GroupEditInterval <= 0 {
		opts.GroupEditInterval = 3 * time.Second
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = 30 * time.Second
	}
	if opts.AlbumWait <= 0 {
		opts.AlbumWait = time.Second
	}
	if opts.MaxAttachmentBytes <= 0 {
		opts.MaxAttachmentBytes = attach.DefaultMaxFileBytes
	}
	if err := checkWebhook(&opts); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	client := opts.HTTPClient
	if client == nil {
		client = newHTTPClient(opts.PollTimeout)
	}
	bot := &tgbotapi.BotAPI{Token: opts.Token, Client: client, Buffer: 100}
	bot.SetAPIEndpoint(opts.APIEndpoint)
	asyncCtx, stopAsync := context.WithCancel(context.Background())
	a := &api{bot: bot, http: client, token: opts.Token}
	b := &Bot{
		asyncCtx:     asyncCtx,
		stopAsync:    stopAsync,
		opts:         opts,
		m:            m,
		state:        state,
		api:          a,
		log:          log.With("platform", Platform),
		unsaved:      make(map[[2]int64]bool),
		merged:       make(map[int]bool),
		files:        newFiles(a, opts.APIEndpoint, client),
		allowedChats: set(opts.AllowedChats),
		allowedUsers: set(opts.AllowedUsers),
		admins:       set(opts.Admins),
		drafts:       newDraftRegistry(time.Now()),
		format:       format,
	}
	b.secretSum = sha256.Sum256([]byte(opts.Webhook.SecretToken))
	b.forwarder = newForwarder()
	if b.files.endpoint == "" {
		b.log.Warn("telegram.api_endpoint has no /bot%s: files users send cannot be downloaded")
	}
	m.SetFetcher(Platform, b.files)
	return b, nil
}

func set(ids []int64) map[int64]bool {
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// newHTTPClient is a client whose every request ends: connecting and the
// TLS handshake are bounded, and a whole request may take one long poll
// plus a margin.
func newHTTPClient(poll time.Duration) *http.Client {
	return &http.Client{
		Timeout: poll + 15*time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConnsPerHost:   64, // answers streaming at once edit concurrently
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// Backoff bounds for failed polls.
const (
	backoffMin = 500 * time.Millisecond
	backoffMax = 30 * time.Second
)

// updateTimeout bounds the handling of one update (a permission check, a
// settings change); it is not cut short by shutdown, so that an update is
// either handled whole or not confirmed.
const updateTimeout = 15 * time.Second

// Run checks the token, finalises the answers a previous run left
// unfinished, registers the commands and receives updates until ctx ends:
// by long polling, or by webhook when Options.Webhook.URL is set (see
// WebhookHandler). With Options.Leader, it receives updates only while
// this process leads (Role): it campaigns first, stops taking updates as
// soon as leadership is lost (the answers already handed over are the
// Manager's), and campaigns again; a new leader resumes from the stored
// offset.
//
// While polling, the offset is saved once each batch of updates has been
// handed to the Manager, which returns only once a message is durable, so
// a restart or a new leader loses no message; a message delivered again is
// recognised by its id. A message the store cannot save stops the batch
// unconfirmed, and Run polls again with backoff until it can. The items of
// an album are handed over as one message (see handleBatch). Answers and
// notices are the Manager's to show; Run waits only for its commands'
// look-ups in the background.
func (b *Bot) Run(ctx context.Context) error {
	defer b.waitAsync()
	b.conn = ""
	b.setConn(stateConnecting)
	if b.opts.Webhook.Listen != "" {
		stop, err := b.serveWebhooks()
		if err != nil {
			return err
		}
		defer stop()
	}
	me, err := b.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	b.self = me
	b.log.Info("connected", "bot", "@"+me.UserName)
	b.setConn(stateUp)

	if err := b.api.setCommands(ctx, commandList()); err != nil && ctx.Err() == nil {
		b.log.Warn("register commands", "error", err)
	}

	for ctx.Err() == nil {
		held, resign, err := b.lead(ctx)
		if err != nil {
			break // ctx ended while campaigning
		}
		b.leading.Store(true)
		if b.opts.Leader != nil {
			b.log.Info("leading: receiving updates")
		}
		// Answers a previous leader (or this process, before a restart)
		// left unfinished; on a shared store those another live process
		// still holds are left to it.
		if b.opts.Leader == nil {
			if err := b.m.Recover(held, Platform, b.restoreReply); err != nil && held.Err() == nil {
				b.log.Warn("finalise interrupted answers", "error", err)
			}
		} else {
			// Several processes: updates are taken at once (the previous
			// leader's unconfirmed ones have waited a failover already)
			// while the answers a process left unfinished are finalised
			// beside them, now and by the leader's sweep; each
			// conversation is finalised under its claim, which its new
			// turns wait for.
			b.async.Go(func() { b.sweepInterrupted(held) })
		}
		if b.opts.Webhook.URL != "" {
			err = b.takeWebhooks(held)
		} else {
			err = b.poll(held)
		}
		b.leading.Store(false)
		resign()
		if err != nil {
			return err
		}
		if ctx.Err() == nil {
			b.log.Warn("lost the lead: no longer receiving updates; standing by")
		}
	}
	return nil
}

// poll long-polls for updates and hands them to the Manager until ctx
// ends (Run ends, or leadership is lost), starting from the stored offset.
// A webhook left set (Telegram refuses getUpdates while one is) is
// deleted first.
func (b *Bot) poll(ctx context.Context) error {
	b.dropWebhook(ctx)
	offset, ok := b.loadOffset(ctx)
	if !ok {
		return nil
	}
	b.waited = albumKey{}
	maps.DeleteFunc(b.merged, func(id int, _ bool) bool { return id < offset })
	backoff := backoffMin
	dropped := false // whether a webhook set meanwhile was deleted
	for ctx.Err() == nil {
		raws, err := b.api.getUpdates(ctx, offset, max(1, int(b.opts.PollTimeout/time.Second)))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if e := apiError(err); e != nil && (e.Code == http.StatusUnauthorized || e.Code == http.StatusNotFound) {
				return fmt.Errorf("telegram: the Bot API refused the token (check telegram.token): %w", err)
			}
			wait := backoff
			if rl := rateLimit(err); rl != nil {
				wait = max(wait, rl.RetryAfter)
			}
			switch {
			case isWebhookConflict(err):
				// Another process set a webhook (one configured with
				// telegram.webhook.url): Telegram refuses to poll.
				b.log.Error("Telegram refuses getUpdates while a webhook is set: another process with this token uses telegram.webhook.url; set it here too, or remove it there",
					"error", err, "retry_in", wait)
				if !dropped {
					dropped = true
					b.dropWebhook(ctx)
				}
			case isPollConflict(err):
				b.log.Warn("another process polls with this bot's token (only one may): set the same storage for both so that one leads, or stop one",
					"error", err, "retry_in", wait)
			default:
				b.log.Warn("poll for updates", "error", err, "retry_in", wait)
			}
			b.setConn(stateRetrying)
			if !sleep(ctx, wait) {
				break
			}
			backoff = min(backoff*2, backoffMax)
			continue
		}
		b.setConn(stateUp)
		batch := decodeBatch(raws, offset)
		// An album whose items end the batch may have more items on the
		// way. The updates before it are handled now; the album, left
		// unconfirmed, comes back from the poll after AlbumWait with any
		// items sent meanwhile, and is handled then (it is waited for
		// once).
		cut := len(batch)
		if k := batch.tailAlbum(); k != (albumKey{}) && k != b.waited {
			b.waited = k
			cut = batch.first(k)
		}
		next, held := b.handleBatch(ctx, batch[:cut], offset)
		if next != offset {
			// Every message handed over is durable (Handle returns once
			// it is), so confirming the batch loses nothing; a message
			// delivered again after a crash is recognised by its id. The
			// offset is saved before leadership is given up.
			offset = next
			b.saveOffset(offset)
			maps.DeleteFunc(b.merged, func(id int, _ bool) bool { return id < offset })
		}
		if !held {
			backoff = backoffMin
			clear(b.unsaved)
			if cut < len(batch) && !sleep(ctx, b.opts.AlbumWait) {
				break
			}
			continue
		}
		b.log.Warn("holding updates until the store can save them", "update_id", next, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			break
		}
		backoff = min(backoff*2, backoffMax)
	}
	return nil
}

// asyncGrace is how long Run, returning, lets commands' look-ups finish.
const asyncGrace = 5 * time.Second

// waitAsync waits for the commands' look-ups in flight, cancelling them
// after asyncGrace.
func (b *Bot) waitAsync() {
	done := make(chan struct{})
	go func() { b.async.Wait(); close(done) }()
	t := time.NewTimer(asyncGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		b.stopAsync()
		<-done
	}
}

// connect asks getMe until it answers, backing off on network errors.
func (b *Bot) connect(ctx context.Context) (tgbotapi.User, error) {
	backoff := backoffMin
	for {
		me, err := b.api.getMe(ctx)
		if err == nil {
			return me, nil
		}
		if e := apiError(err); e != nil && (e.Code == http.StatusUnauthorized || e.Code == http.StatusNotFound) {
			return me, fmt.Errorf("telegram: the Bot API refused the token (check telegram.token): %w", err)
		}
		b.log.Warn("cannot reach the Bot API; trying again", "error", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return me, ctx.Err()
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// loadOffset reads the stored offset, trying again with backoff while the
// store cannot be read; ok is false when ctx ended first.
func (b *Bot) loadOffset(ctx context.Context) (offset int, ok bool) {
	backoff := backoffMin
	for {
		raw, err := b.state.Value(ctx, offsetName)
		if err == nil {
			n, err := strconv.Atoi(string(raw))
			if len(raw) > 0 && err != nil {
				b.log.Warn("ignore unreadable update offset", "value", string(raw))
			}
			return n, true
		}
		if ctx.Err() != nil {
			return 0, false
		}
		b.log.Error("load update offset; trying again", "error", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return 0, false
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// saveOffset records the next offset; it outlives shutdown so that the
// last handled update is never repeated.
func (b *Bot) saveOffset(offset int) {
	ctx, cancel := context.WithTimeout(context.Background(), updateTimeout)
	defer cancel()
	if err := b.state.SetValue(ctx, offsetName, []byte(strconv.Itoa(offset))); err != nil {
		b.log.Error("save update offset", "offset", offset, "error", err)
	}
}

// setConn reports state to Options.OnState if it differs from the last
// state reported.
func (b *Bot) setConn(state string) {
	if state == b.conn || b.opts.OnState == nil {
		return
	}
	b.conn = state
	b.opts.OnState(state)
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dispatch handles one update within updateTimeout, detached from
// shutdown. An error (wrapping sessions.ErrNotSaved) means the update must
// not be confirmed.
func (b *Bot) dispatch(ctx context.Context, u incoming) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), updateTimeout)
	defer cancel()
	switch {
	case u.Message != nil:
		return b.onMessage(ctx, u.Message, u.Topic, b.attachments(u.Message))
	case u.CallbackQuery != nil:
		b.onCallback(ctx, u.CallbackQuery, u.Topic)
	case u.Stopped != nil:
		b.onStopped(u.Stopped)
	}
	return nil
}

// recoverEvery is how often a leader of several processes looks for
// answers a process left unfinished.
const recoverEvery = 30 * time.Second

// sweepInterrupted finalises at once, then every recoverEvery until ctx
// ends, the answers no live process holds any more.
func (b *Bot) sweepInterrupted(ctx context.Context) {
	t := time.NewTicker(recoverEvery)
	defer t.Stop()
	for {
		if err := b.m.Recover(ctx, Platform, b.restoreReply); err != nil && ctx.Err() == nil {
			b.log.Warn("finalise interrupted answers", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
