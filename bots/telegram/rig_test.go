package telegram_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// Test timings: the fake's flood limits and the bot's intervals scaled
// down together, so that a schedule obeying the bot's intervals never
// trips the fake's limits.
const (
	testInterval = 30 * time.Millisecond
	fakeInterval = 20 * time.Millisecond
)

// rig is a Bot on the fake Bot API, with a real Manager on bbolt and an
// llmtest upstream.
type rig struct {
	t    *testing.T
	tg   *telegramtest.Server
	up   *llmtest.Server
	path string
	cfg  sessions.Config
	opts telegram.Options
	fake telegramtest.Options // the fake Bot API's, set before it starts
	// holdFetcher keeps the Bot's Fetcher from the Manager (see recorder).
	holdFetcher bool
	// onStart, if set, is called with each Bot started, before it runs.
	onStart func(*telegram.Bot)
	// logs, if set, receives the Bot's log lines as well.
	logs *logLines

	store  *sessions.BoltStore
	m      *sessions.Manager
	rec    *recorder // m as the Bot sees it
	bot    *telegram.Bot
	cancel context.CancelFunc
	done   chan error
}

type rigOption func(*rig)

func withOptions(f func(*telegram.Options)) rigOption {
	return func(r *rig) { f(&r.opts) }
}

// withFetcherHeld keeps the Bot's Fetcher from the Manager: the test
// calls it alone.
func withFetcherHeld(r *rig) { r.holdFetcher = true }

func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	r := &rig{
		t: t, up: up,
		path: filepath.Join(t.TempDir(), "palaver.db"),
		cfg:  sessions.Config{DefaultModel: "fake/echo"},
		fake: telegramtest.Options{
			Flood:          telegramtest.FloodLimits{ChatInterval: fakeInterval, ChatBurst: 3, GroupPerMinute: int(time.Minute / fakeInterval)},
			MaxPollTimeout: 2 * time.Second,
		},
		opts: telegram.Options{
			EditInterval:      testInterval,
			GroupEditInterval: testInterval,
			PollTimeout:       time.Second,
			AlbumWait:         100 * time.Millisecond,
			Drafts:            true,
		},
	}
	for _, o := range opts {
		o(r)
	}
	r.tg = telegramtest.NewServer(r.fake)
	t.Cleanup(r.tg.Close)
	r.opts.Token, r.opts.APIEndpoint = r.tg.Token(), r.tg.Endpoint()
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{r.t, r.logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	t    *testing.T
	also *logLines
}

func (w testWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	w.t.Log(line)
	if w.also != nil {
		w.also.add(line)
	}
	return len(p), nil
}

// logLines collects log lines for a test to inspect.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

// with returns the lines containing every one of words.
func (l *logLines) with(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(line, w) }) {
			out = append(out, line)
		}
	}
	return out
}

// start opens the store, the Manager and the Bot, and runs the Bot.
func (r *rig) start() {
	r.t.Helper()
	store, err := sessions.OpenBolt(r.path, sessions.BoltOptions{ProgressFlush: 10 * time.Millisecond})
	if err != nil {
		r.t.Fatal(err)
	}
	client := llm.NewClient(r.up.Provider("fake"), llm.Options{MaxRetries: -1})
	router, err := llm.NewRouter([]*llm.Client{client}, "fake", nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.store = store
	r.m = sessions.NewManager(r.cfg, store, router, nil, r.logger())
	r.rec = &recorder{Manager: r.m, hold: r.holdFetcher}
	opts := r.opts
	opts.Logger = r.logger()
	r.bot, err = telegram.New(opts, r.rec, store)
	if err != nil {
		r.t.Fatal(err)
	}
	if r.onStart != nil {
		r.onStart(r.bot)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan error, 1)
	go func() { r.done <- r.bot.Run(ctx) }()
}

// stop ends the Bot, then the Manager (waiting for the answers running),
// then the store.
func (r *rig) stop() { r.stopWithin(10 * time.Second) }

// stopWithin is stop, the answers still running after grace interrupted.
func (r *rig) stopWithin(grace time.Duration) {
	if r.bot == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Error("Run did not return after cancel")
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
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
	ctx, cancel := context.WithTimeout(r.t.Context(), 20*time.Second)
	r.t.Cleanup(cancel)
	return ctx
}

// final waits for a finished answer in chat: a bot message containing
// want, without the Stop button (an answer's Retry button, or a notice's
// keyboard, may be there).
func (r *rig) final(chat int64, want string) telegramtest.Message {
	r.t.Helper()
	m, err := r.tg.WaitMessage(r.ctx(), chat, func(m telegramtest.Message) bool {
		return m.From.ID == r.tg.Bot().ID && strings.Contains(m.Text, want) && !strings.Contains(string(m.ReplyMarkup), `"stop"`)
	})
	if err != nil {
		r.t.Fatalf("no final answer containing %q in chat %d; bot messages: %q", want, chat, texts(r.tg.BotMessages(chat)))
	}
	return m
}

// finalAfter is final for a message newer than message after.
func (r *rig) finalAfter(chat int64, want string, after int) telegramtest.Message {
	r.t.Helper()
	m, err := r.tg.WaitMessage(r.ctx(), chat, func(m telegramtest.Message) bool {
		return m.ID > after && m.From.ID == r.tg.Bot().ID && strings.Contains(m.Text, want) && !strings.Contains(string(m.ReplyMarkup), `"stop"`)
	})
	if err != nil {
		r.t.Fatalf("no final answer containing %q in chat %d after message %d; bot messages: %q", want, chat, after, texts(r.tg.BotMessages(chat)))
	}
	return m
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

func (r *rig) lastRequest() llmtest.Request {
	r.t.Helper()
	reqs := r.chatRequests()
	if len(reqs) == 0 {
		r.t.Fatal("no upstream request")
	}
	return reqs[len(reqs)-1]
}

func texts(ms []telegramtest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// visible is the text Telegram shows for an answer rendered by the bot.
func visible(t *testing.T, markdown string) string {
	t.Helper()
	text, _, err := telegramtest.ParseHTML(telegram.Render(markdown))
	if err != nil {
		t.Fatalf("Render(%q) is not valid Telegram HTML: %v", markdown, err)
	}
	return strings.TrimSpace(text)
}

// buttons returns the callback data of a message's inline keyboard by
// button text.
func buttons(t *testing.T, m telegramtest.Message) map[string]string {
	t.Helper()
	var kb struct {
		InlineKeyboard [][]struct {
			Text         string `json:"text"`
			CallbackData string `json:"callback_data"`
		} `json:"inline_keyboard"`
	}
	if len(m.ReplyMarkup) == 0 {
		return nil
	}
	if err := json.Unmarshal(m.ReplyMarkup, &kb); err != nil {
		t.Fatalf("reply markup %s: %v", m.ReplyMarkup, err)
	}
	out := map[string]string{}
	for _, row := range kb.InlineKeyboard {
		for _, b := range row {
			out[b.Text] = b.CallbackData
		}
	}
	return out
}

// count429 is the number of calls refused with 429.
func (r *rig) count429() int {
	n := 0
	for _, c := range r.tg.Calls() {
		if c.ErrorCode == 429 {
			n++
		}
	}
	return n
}

var (
	alice = telegramtest.User{ID: 1001, FirstName: "Alice", Username: "alice"}
	bob   = telegramtest.User{ID: 1002, FirstName: "Bob"}
)

const group = int64(-4001)

// recorder is the real Manager as the Bot sees it, noting the messages
// handed to it and the Fetcher registered with it.
type recorder struct {
	*sessions.Manager
	// hold keeps the Fetcher from the Manager, so that a test's own
	// Fetch calls are the only ones.
	hold    bool
	mu      sync.Mutex
	msgs    []sessions.Message
	fetcher sessions.Fetcher
}

func (r *recorder) Handle(ctx context.Context, msg sessions.Message, reply sessions.Reply) (*sessions.Turn, error) {
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	r.mu.Unlock()
	return r.Manager.Handle(ctx, msg, reply)
}

func (r *recorder) SetFetcher(platform string, f sessions.Fetcher) {
	r.mu.Lock()
	if platform == telegram.Platform {
		r.fetcher = f
	}
	r.mu.Unlock()
	if !r.hold {
		r.Manager.SetFetcher(platform, f)
	}
}

// handled waits until the Bot has confirmed every update pushed, which it
// does once it has handed their messages over, and returns the messages
// handed to the Manager.
func (r *rig) handled() []sessions.Message {
	r.t.Helper()
	if err := r.tg.WaitUpdatesConsumed(r.ctx()); err != nil {
		r.t.Fatalf("updates not consumed: %v", err)
	}
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	return slices.Clone(r.rec.msgs)
}

// fetcher is the Fetcher the Bot registered.
func (r *rig) fetcher() sessions.Fetcher {
	r.t.Helper()
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	if r.rec.fetcher == nil {
		r.t.Fatal("the Bot registered no Fetcher")
	}
	return r.rec.fetcher
}

// richParam decodes the rich_message parameter of a call.
func richParam(t *testing.T, c telegramtest.Call) (rm struct {
	Markdown string `json:"markdown"`
	Blocks   []struct {
		Type, Text string
	} `json:"blocks"`
}) {
	t.Helper()
	if err := json.Unmarshal([]byte(c.Params["rich_message"]), &rm); err != nil {
		t.Fatalf("%s: rich_message %q: %v", c.Method, c.Params["rich_message"], err)
	}
	return rm
}
