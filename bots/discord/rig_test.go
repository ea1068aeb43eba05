package discord_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// Test timings: Discord's limits (5 writes per channel in 5 s, 5 requests
// per interaction token in 2 s) and the bot's 1 s edit interval, all
// scaled down twenty times, so that a schedule obeying the bot's interval
// never trips the fake's limits.
const (
	testInterval  = 50 * time.Millisecond
	channelWindow = 250 * time.Millisecond
	webhookWindow = 100 * time.Millisecond
)

// rig is a Bot on the fake Discord, with a real Manager on bbolt and an
// llmtest upstream.
type rig struct {
	t    *testing.T
	dc   *discordtest.Server
	up   *llmtest.Server
	path string
	cfg  sessions.Config
	opts discord.Options

	guild discordtest.Guild
	user  discordtest.User // an ordinary member
	mod   discordtest.User // a member with Manage Channels

	logs logTap // what the Bot and the Manager logged

	store  *sessions.BoltStore
	m      *sessions.Manager
	tap    *tap // r.m as the Bot sees it
	bot    *discord.Bot
	cancel context.CancelFunc
	done   chan error
}

func newRig(t *testing.T, opts ...func(*rig)) *rig {
	t.Helper()
	return newRigWith(t, nil, opts...)
}

// newRigWith is newRig on a fake whose options fake adjusts first.
func newRigWith(t *testing.T, fake func(*discordtest.Options), opts ...func(*rig)) *rig {
	t.Helper()
	fo := discordtest.Options{
		MessageLimit: 5, MessageWindow: channelWindow,
		WebhookLimit: 5, WebhookWindow: webhookWindow,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if fake != nil {
		fake(&fo)
	}
	dc := discordtest.NewServer(fo)
	t.Cleanup(dc.Close)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	r := &rig{
		t: t, dc: dc, up: up,
		path: filepath.Join(t.TempDir(), "palaver.db"),
		cfg:  sessions.Config{DefaultModel: "fake/echo"},
		opts: discord.Options{Token: dc.Token(), APIBase: dc.URL(), EditInterval: testInterval},
	}
	r.guild = dc.AddGuild("server")
	r.user = dc.AddUser("alice")
	r.mod = dc.AddUser("mod")
	must(t, dc.AddMember(r.guild.ID, r.user.ID, 0))
	must(t, dc.AddMember(r.guild.ID, r.mod.ID, discordtest.PermManageChannels))
	r.opts.Guilds = []string{r.guild.ID}
	for _, o := range opts {
		o(r)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (r *rig) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{r.t}, &r.logs), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// logTap keeps log lines for tests to count.
type logTap struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count is how many log lines contain s.
func (l *logTap) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// start opens the store, the Manager and the Bot, runs the Bot and waits
// until its commands are registered.
func (r *rig) start() {
	r.t.Helper()
	store, err := sessions.OpenBolt(r.path, sessions.BoltOptions{ProgressFlush: 10 * time.Millisecond})
	must(r.t, err)
	client := llm.NewClient(r.up.Provider("fake"), llm.Options{MaxRetries: -1})
	router, err := llm.NewRouter([]*llm.Client{client}, "fake", nil)
	must(r.t, err)
	r.store = store
	r.m = sessions.NewManager(r.cfg, store, router, nil, r.logger())
	r.tap = newTap(r.m)
	opts := r.opts
	opts.Logger, opts.State = r.logger(), store
	r.bot, err = discord.New(opts, r.tap)
	must(r.t, err)
	before := len(r.puts())
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan error, 1)
	go func() { r.done <- r.bot.Run(ctx) }()
	if _, err := r.dc.WaitCall(r.ctx(), func(c discordtest.Call) bool {
		return len(r.puts()) > before
	}); err != nil {
		r.t.Fatalf("commands were not registered: %v", err)
	}
}

// puts are the command registrations so far.
func (r *rig) puts() []discordtest.Call {
	var out []discordtest.Call
	for _, c := range r.dc.Calls() {
		if c.Method == "PUT" && strings.HasSuffix(c.Route, "/commands") && c.Status == 200 {
			out = append(out, c)
		}
	}
	return out
}

// stop ends the Bot, then the Manager, then the store.
func (r *rig) stop() {
	if r.bot == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		r.t.Error("Run did not return after cancel")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.m.Close(ctx); err != nil {
		r.t.Errorf("Manager.Close: %v", err)
	}
	if err := r.store.Close(); err != nil {
		r.t.Errorf("store.Close: %v", err)
	}
	r.bot = nil
}

func (r *rig) restart() {
	r.t.Helper()
	r.stop()
	r.start()
}

func (r *rig) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	r.t.Cleanup(cancel)
	return ctx
}

// channel adds a text channel to the rig's guild.
func (r *rig) channel(name string) discordtest.Channel {
	r.t.Helper()
	ch, err := r.dc.AddChannel(r.guild.ID, name)
	must(r.t, err)
	return ch
}

// slash runs a slash command and waits for its first response.
func (r *rig) slash(t *testing.T, name string, opts []discordtest.Option, userID, channelID string) discordtest.InteractionState {
	t.Helper()
	it, err := r.dc.SendSlash(name, opts, userID, channelID)
	must(t, err)
	st, err := r.dc.WaitInteraction(r.ctx(), it.ID, func(s discordtest.InteractionState) bool { return s.ResponseType != 0 })
	if err != nil {
		t.Fatalf("/%s was not answered: %v", name, err)
	}
	return st
}

// original waits for the interaction's original response to satisfy pred.
func (r *rig) original(t *testing.T, st discordtest.InteractionState, pred func(discordtest.Message) bool) discordtest.Message {
	t.Helper()
	var got discordtest.Message
	_, err := r.dc.WaitInteraction(r.ctx(), st.ID, func(s discordtest.InteractionState) bool {
		m, ok := r.dc.Message(s.OriginalID)
		got = m
		return ok && pred(m)
	})
	if err != nil {
		t.Fatalf("original response of %s never matched; last %q: %v", st.ID, got.Text(), err)
	}
	return got
}

// final waits for a finished bot message in channel containing want.
func (r *rig) final(t *testing.T, channelID, want string) discordtest.Message {
	t.Helper()
	m, err := r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
		return m.ChannelID == channelID && m.AuthorID == r.dc.AppID() && done(m) && strings.Contains(m.Text(), want)
	})
	if err != nil {
		t.Fatalf("no finished answer containing %q in %s; bot messages: %q", want, channelID, r.botTexts(channelID))
	}
	return m
}

// done reports whether a bot message is finished: it has text and no
// Stop button.
func done(m discordtest.Message) bool {
	return m.Text() != "" && !slices.Contains(m.CustomIDs(), "palaver:stop")
}

func stoppable(m discordtest.Message) bool {
	return slices.Contains(m.CustomIDs(), "palaver:stop")
}

func (r *rig) botTexts(channelID string) []string {
	var out []string
	for _, m := range r.dc.Messages(channelID) {
		if m.AuthorID == r.dc.AppID() {
			out = append(out, m.Text())
		}
	}
	return out
}

// chatRequests are the upstream chat-completion requests, oldest first.
func (r *rig) chatRequests() []llmtest.Request {
	var out []llmtest.Request
	for _, rec := range r.up.Requests() {
		if strings.HasSuffix(rec.Path, "/chat/completions") {
			out = append(out, rec.Request)
		}
	}
	return out
}

func (r *rig) lastRequest(t *testing.T) llmtest.Request {
	t.Helper()
	reqs := r.chatRequests()
	if len(reqs) == 0 {
		t.Fatal("no upstream request")
	}
	return reqs[len(reqs)-1]
}

// count429 is the number of calls the fake refused with 429.
func (r *rig) count429() int {
	n := 0
	for _, c := range r.dc.Calls() {
		if c.Status == 429 {
			n++
		}
	}
	return n
}

// slow is a script that streams text one word per interval.
func slow(text string, interval time.Duration) llmtest.Script {
	return llmtest.Script{Content: llmtest.Tokens(text), Interval: interval}
}

// tap is the real Manager with a record of what the Bot gave it: the
// messages it handed over and the Fetchers it registered.
type tap struct {
	*sessions.Manager

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every record
	handled  []sessions.Message
	fetchers map[string]sessions.Fetcher
}

func newTap(m *sessions.Manager) *tap {
	return &tap{Manager: m, changed: make(chan struct{}), fetchers: map[string]sessions.Fetcher{}}
}

func (t *tap) Handle(ctx context.Context, msg sessions.Message, reply sessions.Reply) (*sessions.Turn, error) {
	t.mu.Lock()
	t.handled = append(t.handled, msg)
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
	return t.Manager.Handle(ctx, msg, reply)
}

func (t *tap) SetFetcher(platform string, f sessions.Fetcher) {
	t.mu.Lock()
	t.fetchers[platform] = f
	t.mu.Unlock()
	t.Manager.SetFetcher(platform, f)
}

// fetcher is the Fetcher registered for platform, nil if none.
func (t *tap) fetcher(platform string) sessions.Fetcher {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fetchers[platform]
}

// handedOver returns the messages handed to the Manager so far.
func (t *tap) handedOver() []sessions.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.handled)
}

// waitHandled waits for a message handed to the Manager that satisfies
// pred and returns the first one.
func (r *rig) waitHandled(t *testing.T, what string, pred func(sessions.Message) bool) sessions.Message {
	t.Helper()
	ctx := r.ctx()
	for {
		r.tap.mu.Lock()
		ch := r.tap.changed
		r.tap.mu.Unlock()
		for _, m := range r.tap.handedOver() {
			if pred(m) {
				return m
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no message handed to the Manager %s; handed: %+v", what, r.tap.handedOver())
		}
	}
}
