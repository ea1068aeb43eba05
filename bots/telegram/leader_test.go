package telegram_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// election is an in-memory telegram.Leader standing in for the etcd
// election (built in sessions/etcdstore, which this package cannot
// import): one seat, given to the campaigners in the order they came;
// depose takes it from its holder, as a lease expiring does.
type election struct {
	mu     sync.Mutex
	holder *seat
	queue  []*campaigner
}

type seat struct {
	addr   string
	ctx    context.Context
	cancel context.CancelFunc
}

type campaigner struct {
	ctx  context.Context
	addr string
	won  chan *seat
}

func (e *election) Lead(ctx context.Context, name, addr string) (context.Context, error) {
	e.mu.Lock()
	if e.holder == nil && len(e.queue) == 0 {
		s := e.grantLocked(ctx, addr)
		e.mu.Unlock()
		return s.ctx, nil
	}
	c := &campaigner{ctx: ctx, addr: addr, won: make(chan *seat, 1)}
	e.queue = append(e.queue, c)
	e.mu.Unlock()
	select {
	case s := <-c.won:
		return s.ctx, nil
	case <-ctx.Done():
		e.mu.Lock()
		e.queue = slices.DeleteFunc(e.queue, func(o *campaigner) bool { return o == c })
		e.mu.Unlock()
		select {
		case s := <-c.won: // won meanwhile: give it up
			s.cancel()
		default:
		}
		return nil, ctx.Err()
	}
}

func (e *election) LeaderAddr(ctx context.Context, name string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.holder == nil {
		return "", nil
	}
	return e.holder.addr, nil
}

// grantLocked seats a campaigner; the seat frees when its campaign ends
// (the holder resigns) or it is deposed.
func (e *election) grantLocked(ctx context.Context, addr string) *seat {
	held, cancel := context.WithCancel(ctx)
	s := &seat{addr: addr, ctx: held, cancel: cancel}
	e.holder = s
	context.AfterFunc(held, func() { e.free(s) })
	return s
}

func (e *election) free(s *seat) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.holder != s {
		return
	}
	e.holder = nil
	for len(e.queue) > 0 {
		c := e.queue[0]
		e.queue = e.queue[1:]
		if c.ctx.Err() == nil {
			c.won <- e.grantLocked(c.ctx, c.addr)
			return
		}
	}
}

// depose ends the holder's leadership, as its lease expiring would.
func (e *election) depose() {
	e.mu.Lock()
	s := e.holder
	e.mu.Unlock()
	if s != nil {
		s.cancel()
	}
}

// campaigners is the number of processes waiting to lead.
func (e *election) campaigners() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue)
}

// cluster is several Bots on one fake Bot API and one bbolt store, each
// with its own Manager, electing their leader through one election.
type cluster struct {
	t     *testing.T
	tg    *telegramtest.Server
	up    *llmtest.Server
	store *sessions.BoltStore
	elect *election
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, elect: &election{}}
	c.tg = telegramtest.NewServer(telegramtest.Options{MaxPollTimeout: 2 * time.Second, WebhookRetry: 5 * time.Millisecond})
	t.Cleanup(c.tg.Close)
	c.up = llmtest.NewServer()
	t.Cleanup(c.up.Close)
	_, c.store = newManager(t, c.up)
	return c
}

// member is one process of a cluster.
type member struct {
	t      *testing.T
	name   string
	bot    *telegram.Bot
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
}

// start runs a member with opts (Token, APIEndpoint and Leader set).
func (c *cluster) start(name string, opts telegram.Options) *member {
	c.t.Helper()
	rec := &recorder{Manager: newManagerOn(c.t, c.store, c.up)}
	opts.Token, opts.APIEndpoint, opts.Leader = c.tg.Token(), c.tg.Endpoint(), c.elect
	opts.PollTimeout, opts.EditInterval, opts.GroupEditInterval = time.Second, testInterval, testInterval
	opts.Logger = (&rig{t: c.t}).logger().With("member", name)
	if opts.AlbumWait == 0 {
		opts.AlbumWait = 50 * time.Millisecond
	}
	bot, err := telegram.New(opts, rec, c.store)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{t: c.t, name: name, bot: bot, rec: rec, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- bot.Run(ctx) }()
	c.t.Cleanup(m.stop)
	return m
}

// stop ends the member's Run (as a graceful shutdown does) and waits.
func (m *member) stop() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	if err := <-m.done; err != nil {
		m.t.Errorf("member %s: Run: %v", m.name, err)
	}
}

func (c *cluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(c.t.Context(), 20*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

// waitRole waits until m has role.
func (c *cluster) waitRole(m *member, role string) {
	c.t.Helper()
	if !c.eventually(func() bool { return m.bot.Role() == role }) {
		c.t.Fatalf("member %s is %s, want %s", m.name, m.bot.Role(), role)
	}
}

// eventually reports whether cond becomes true within the test's wait,
// checking it every millisecond (the Bots' roles and the election change
// nothing the fake could signal).
func (c *cluster) eventually(cond func() bool) bool {
	ctx := c.ctx()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return true
}

// ask sends a question from a user of its own (a private chat each) and
// returns the user.
func (c *cluster) ask(i int, question string) telegramtest.User {
	u := telegramtest.User{ID: int64(5000 + i), FirstName: fmt.Sprint("User", i)}
	c.tg.SendText(u.ID, u, question)
	return u
}

// answered waits until u has an answer to question, and fails unless it
// has exactly one.
func (c *cluster) answered(u telegramtest.User, question string) {
	c.t.Helper()
	want := "echo: " + question
	ctx := c.ctx()
	if err := c.tg.WaitFor(ctx, func() bool { return c.answers(u, want) > 0 }); err != nil {
		c.t.Fatalf("no answer %q: %v", want, err)
	}
	if n := c.answers(u, want); n != 1 {
		c.t.Errorf("%d answers %q, want 1", n, want)
	}
}

func (c *cluster) answers(u telegramtest.User, text string) int {
	n := 0
	for _, m := range c.tg.BotMessages(u.ID) {
		if strings.Contains(m.Text, text) {
			n++
		}
	}
	return n
}

// questions are the texts handed to m's Manager.
func (m *member) questions() []string {
	var out []string
	for _, msg := range m.rec.messages() {
		out = append(out, msg.Text)
	}
	return out
}

// upstreamAsked counts the model requests per question.
func (c *cluster) upstreamAsked() map[string]int {
	out := map[string]int{}
	for _, r := range c.up.Requests() {
		if strings.HasSuffix(r.Path, "/chat/completions") {
			out[r.Request.Messages[len(r.Request.Messages)-1].Content]++
		}
	}
	return out
}

// Two polling Bots share one store: only the leader polls; when it is
// deposed mid-run the other takes over from the stored offset, and when
// that one shuts down the first leads again; every question is answered
// once.
func TestBot_Leader_Failover(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", telegram.Options{})
	c.waitRole(a, telegram.RoleLeader)
	b := c.start("b", telegram.Options{})
	if !c.eventually(func() bool { return c.elect.campaigners() == 1 }) {
		t.Fatal("b never campaigned")
	}
	if got := b.bot.Role(); got != telegram.RoleStandby {
		t.Errorf("b is %s, want standby", got)
	}

	u0 := c.ask(0, "q0")
	c.answered(u0, "q0")

	// Questions arrive while the leader is deposed: each is handled by
	// one of them, before or after the takeover, and answered once.
	var users []telegramtest.User
	for i := 1; i <= 5; i++ {
		users = append(users, c.ask(i, fmt.Sprint("q", i)))
		if i == 2 {
			c.elect.depose()
		}
	}
	c.waitRole(b, telegram.RoleLeader)
	for i, u := range users {
		c.answered(u, fmt.Sprint("q", i+1))
	}
	if got := a.bot.Role(); got != telegram.RoleStandby {
		t.Errorf("deposed a is %s, want standby", got)
	}
	polls := len(c.tg.CallsTo("getUpdates"))
	u6 := c.ask(6, "q6")
	c.answered(u6, "q6")
	if !slices.Contains(b.questions(), "q6") || slices.Contains(a.questions(), "q6") {
		t.Errorf("q6 handed to a %q, b %q; want b alone", a.questions(), b.questions())
	}
	if len(c.tg.CallsTo("getUpdates")) == polls {
		t.Error("no poll after the takeover")
	}

	// b shuts down gracefully: a takes over where b stopped.
	b.stop()
	c.waitRole(a, telegram.RoleLeader)
	u7 := c.ask(7, "q7")
	c.answered(u7, "q7")
	if !slices.Contains(a.questions(), "q7") {
		t.Errorf("q7 handed to a %q, want a", a.questions())
	}

	if err := c.tg.WaitUpdatesConsumed(c.ctx()); err != nil {
		t.Fatal(err)
	}
	for q, n := range c.upstreamAsked() {
		if n != 1 {
			t.Errorf("question %q sent upstream %d times, want once", q, n)
		}
	}
	if got := len(c.upstreamAsked()); got != 8 {
		t.Errorf("questions answered = %d, want 8", got)
	}
	saved, err := c.store.Value(c.ctx(), "telegram/offset")
	if err != nil || string(saved) != fmt.Sprint(c.tg.LastUpdateID()+1) {
		t.Errorf("stored offset = %q, %v; want %d", saved, err, c.tg.LastUpdateID()+1)
	}
}

// With a webhook, a request that lands on the standby is forwarded to the
// leader; after a takeover, the new leader takes them, and the old one
// forwards. An album staged by a deposed leader is answered by the next.
func TestBot_Leader_Webhook(t *testing.T) {
	c := newCluster(t)
	// Telegram's requests go where the test says (a load balancer).
	var target atomic.Pointer[telegram.Bot]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target.Load().WebhookHandler().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	hook := telegram.Webhook{URL: front.URL + "/telegram", SecretToken: testSecret}
	// Each member's address for forwarded requests.
	var bots [2]atomic.Pointer[telegram.Bot]
	var internal [2]*httptest.Server
	for i := range internal {
		internal[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bots[i].Load().WebhookHandler().ServeHTTP(w, r)
		}))
		t.Cleanup(internal[i].Close)
	}

	// a waits long for albums: deposed, it leaves one staged.
	a := c.start("a", telegram.Options{Webhook: hook, Advertise: internal[0].URL, AlbumWait: time.Hour})
	bots[0].Store(a.bot)
	c.waitRole(a, telegram.RoleLeader)
	b := c.start("b", telegram.Options{Webhook: hook, Advertise: internal[1].URL})
	bots[1].Store(b.bot)
	target.Store(b.bot) // the standby

	u0 := c.ask(0, "q0")
	c.answered(u0, "q0")
	if !slices.Contains(a.questions(), "q0") || len(b.questions()) != 0 {
		t.Errorf("q0 handed to a %q, b %q; want a (b forwards)", a.questions(), b.questions())
	}

	photo := picture(t, 40, 30, "jpeg")
	album := telegramtest.User{ID: 5100, FirstName: "Album"}
	items := c.tg.SendAlbum(album.ID, album, [][]byte{photo, photo, photo}, "three")
	if err := c.tg.WaitUpdatesConsumed(c.ctx()); err != nil {
		t.Fatal(err)
	}
	if n := len(a.questions()); n != 1 {
		t.Fatalf("a handed over %d messages before its album wait ended, want 1", n)
	}

	c.elect.depose()
	c.waitRole(b, telegram.RoleLeader)
	target.Store(a.bot) // now the standby
	if err := c.tg.WaitFor(c.ctx(), func() bool { return slices.Contains(b.questions(), "three") }); err != nil {
		t.Fatalf("the staged album was not handed over by b: %q", b.questions())
	}
	if got := b.rec.messages()[0]; got.ID != fmt.Sprint(items[0].ID) || len(got.Attachments) != 3 {
		t.Errorf("album handed over = {ID %s, %d files}, want {%d, 3}", got.ID, len(got.Attachments), items[0].ID)
	}
	u1 := c.ask(1, "q1")
	c.answered(u1, "q1")
	if !slices.Contains(b.questions(), "q1") || slices.Contains(a.questions(), "q1") {
		t.Errorf("q1 handed to a %q, b %q; want b (a forwards)", a.questions(), b.questions())
	}
	for _, d := range c.tg.Deliveries() {
		if !d.OK() && d.Status != http.StatusServiceUnavailable {
			t.Errorf("delivery %+v, want 2xx (or 503 during the takeover)", d)
		}
	}
}

// A standby that knows no leader answers 503 with Retry-After, so that
// Telegram tries again soon; so does one with no Leader.
func TestBot_WebhookHandler_NoLeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leader telegram.Leader
	}{{"NoneElected", &election{}}, {"NoLeader", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			m, store := newManager(t, nil)
			b, err := telegram.New(telegram.Options{Token: "1:x", Leader: tc.leader,
				Webhook: telegram.Webhook{URL: "https://bot.example.com/tg", SecretToken: testSecret}}, m, store)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/tg", strings.NewReader(`{"update_id":1}`))
			req.Header.Set(telegramtest.SecretTokenHeader, testSecret)
			w := httptest.NewRecorder()
			b.WebhookHandler().ServeHTTP(w, req)
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
				t.Errorf("answer = %d, Retry-After %q; want 503, 1", w.Code, w.Header().Get("Retry-After"))
			}
		})
	}
}
