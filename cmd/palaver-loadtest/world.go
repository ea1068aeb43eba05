package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// Palaver's intervals (its defaults, which the generated config keeps).
const (
	telegramInterval      = time.Second
	telegramGroupInterval = 3 * time.Second
	discordInterval       = time.Second
)

// world is everything around Palaver: the fake model, the fake Telegram and
// Discord with their real limits, the users, and what they saw.
type world struct {
	opts options
	up   *llmtest.Server
	tg   *telegramtest.Server
	dc   *discordtest.Server

	// Where Palaver reaches the fakes: directly, or through proxies that
	// add latency (-platform-latency), and the model directly or over TLS
	// and HTTP/2 (-upstream-h2, its certificate in upstreamCA).
	tgEndpoint string
	dcBase     string
	upURL      string
	upstreamCA []byte // PEM
	proxies    []*httptest.Server

	guild   discordtest.Guild
	dcUsers []discordtest.User // by conversation user index
	botID   string

	// stagger separates the questions of the users of one conversation.
	stagger time.Duration
	// threads is discord.threads in Palaver's config.
	threads bool

	convs   []*conversation
	answers map[string]*answer // by tag

	injected atomic.Int64 // 429s injected
}

// newWorld starts the fakes and lays out the conversations.
func newWorld(opts options, counts map[kind]int) (*world, error) {
	w := &world{opts: opts, answers: map[string]*answer{}, stagger: userStagger}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w.up = llmtest.NewServer()
	w.tg = telegramtest.NewServer(telegramtest.Options{})
	w.dc = discordtest.NewServer(discordtest.Options{NoEcho: true, Logger: quiet})
	w.tgEndpoint = w.tg.Endpoint()
	w.dcBase = w.dc.URL()
	w.upURL = w.up.URL
	if opts.upstreamH2 {
		h2, ca := h2Proxy(w.up.URL)
		w.proxies = append(w.proxies, h2)
		w.upURL, w.upstreamCA = h2.URL+"/v1", ca
	}
	if opts.platformLatency > 0 {
		tgProxy := slowProxy(w.tg.URL(), opts.platformLatency)
		dcProxy := slowProxy(w.dc.URL(), opts.platformLatency)
		w.proxies = append(w.proxies, tgProxy, dcProxy)
		w.tgEndpoint = tgProxy.URL + "/bot%s/%s"
		w.dcBase = dcProxy.URL
	}
	w.botID = w.dc.BotUser().ID
	w.guild = w.dc.AddGuild("load")
	maxUsers := max(opts.users, 1)
	if opts.workload == crowdWorkload {
		maxUsers = opts.crowd
		w.stagger = crowdArrival / time.Duration(opts.crowd)
		w.threads = opts.threads
	}
	for u := range maxUsers {
		du := w.dc.AddUser("user" + strconv.Itoa(u))
		if err := w.dc.AddMember(w.guild.ID, du.ID, 0); err != nil {
			w.close()
			return nil, err
		}
		w.dcUsers = append(w.dcUsers, du)
	}
	lay := w.layout
	if opts.workload == crowdWorkload {
		lay = w.layoutCrowd
	}
	if err := lay(counts); err != nil {
		w.close()
		return nil, err
	}
	w.up.SetScriptFunc(w.script)
	return w, nil
}

// layout creates the chats, forums and channels and the expected answers.
func (w *world) layout(counts map[kind]int) error {
	rng := rand.New(rand.NewPCG(uint64(w.opts.seed), 1))
	var forum int64
	topicsInForum := w.opts.topics
	for _, k := range kinds {
		for range counts[k] {
			c := &conversation{index: len(w.convs), kind: k, users: 1}
			switch k {
			case tgPrivate:
				c.chat = 1_000_000 + int64(c.index)
				c.interval = telegramInterval
			case tgGroup:
				c.users = max(w.opts.users, 1)
				c.chat = -(1_000_000 + int64(c.index))
				c.interval = telegramGroupInterval
				w.tg.SetChat(telegramtest.Chat{ID: c.chat, Type: telegramtest.ChatGroup, Title: "group " + strconv.Itoa(c.index)})
			case tgTopic:
				if topicsInForum >= w.opts.topics {
					forum = -(1_000_000_000_000 + int64(c.index))
					topicsInForum = 0
					w.tg.SetChat(telegramtest.Chat{ID: forum, Type: telegramtest.ChatSupergroup, IsForum: true, Title: "forum " + strconv.Itoa(c.index)})
				}
				topicsInForum++
				c.chat = forum
				c.topic = 100 + topicsInForum
				c.interval = telegramGroupInterval
			case discordChannel:
				c.users = max(w.opts.users, 1)
				if err := w.addChannel(c); err != nil {
					return err
				}
			case discordDM:
				// Each DM is with a user of its own.
				u := w.dc.AddUser("dm" + strconv.Itoa(c.index))
				ch, err := w.dc.DM(u.ID)
				if err != nil {
					return err
				}
				c.channel, c.dmUser = ch.ID, u.ID
				c.interval = discordInterval
			}
			w.addConversation(c, rng)
		}
	}
	return nil
}

// addChannel gives c a Discord channel of its own in the load guild.
func (w *world) addChannel(c *conversation) error {
	ch, err := w.dc.AddChannel(w.guild.ID, "load-"+strconv.Itoa(c.index))
	if err != nil {
		return err
	}
	c.channel = ch.ID
	c.interval = discordInterval
	return nil
}

// addConversation names c's destination, writes its expected answers and
// adds it to the world.
func (w *world) addConversation(c *conversation, rng *rand.Rand) {
	if c.kind.telegram() {
		c.dest = "telegram:" + strconv.FormatInt(c.chat, 10)
	} else {
		c.dest = "discord:" + c.channel
	}
	for u := range c.users {
		for t := range w.opts.turns {
			a := &answer{conv: c, user: u, turn: t, done: make(chan struct{})}
			a.tag = fmt.Sprintf("A%d-%d-%d", c.index, u, t)
			a.tokens = newTokens(a.tag, w.opts.tokens)
			if w.opts.drop > 0 && rng.Float64() < w.opts.drop {
				a.dropAfter = max(1, w.opts.tokens/2)
			}
			c.answers = append(c.answers, a)
			w.answers[a.tag] = a
		}
	}
	w.convs = append(w.convs, c)
}

// tagInQuestion finds the answer tag in a user's message as Palaver
// forwards it (possibly prefixed with the author's name).
var tagInQuestion = regexp.MustCompile(`ask (A\d+-\d+-\d+):`)

// script is the fake model: it answers a question with its answer's
// tokens at the configured rate, timing each token.
func (w *world) script(req llmtest.Request) llmtest.Script {
	last := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			last = m.Content
		}
	}
	match := tagInQuestion.FindStringSubmatch(last)
	if match == nil {
		return llmtest.Echo(req)
	}
	a := w.answers[match[1]]
	if a == nil {
		return llmtest.Echo(req)
	}
	a.mu.Lock()
	a.served = true
	a.mu.Unlock()
	sc := llmtest.Script{Content: a.tokens, Interval: time.Duration(float64(time.Second) / w.opts.rate), Sent: a.tokenSent}
	if a.dropAfter > 0 {
		sc.Fail, sc.FailAfter = llmtest.FailDrop, a.dropAfter
	}
	return sc
}

// tgUser is the Telegram user u of conversation c.
func tgUser(c *conversation, u int) telegramtest.User {
	id := 5_000_000 + int64(c.index)*maxCrowd + int64(u)
	if c.kind == tgPrivate {
		id = c.chat
	}
	return telegramtest.User{ID: id, FirstName: "user" + strconv.Itoa(u), Username: "user_" + strconv.FormatInt(id, 10)}
}

// ask pushes the question of a to the platform, as its user would.
func (w *world) ask(a *answer) error {
	c := a.conv
	a.mu.Lock()
	a.asked = time.Now()
	a.mu.Unlock()
	q := a.question()
	switch c.kind {
	case tgPrivate:
		w.tg.SendText(c.chat, tgUser(c, a.user), q)
	case tgGroup:
		w.tg.SendText(c.chat, tgUser(c, a.user), "@"+w.tg.Bot().Username+" "+q)
	case tgTopic:
		w.tg.SendText(c.chat, tgUser(c, a.user), "@"+w.tg.Bot().Username+" "+q, telegramtest.InThread(c.topic))
	case discordChannel:
		user := w.dcUsers[a.user]
		if a.user%10 == 0 { // one user in ten asks with /chat
			_, err := w.dc.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: q}}, user.ID, c.channel)
			return err
		}
		_, err := w.dc.SendMessage(discordtest.UserMessage{ChannelID: c.channel, AuthorID: user.ID,
			Content: discordtest.Mention(w.botID) + " " + q})
		return err
	case discordDM:
		_, err := w.dc.SendMessage(discordtest.UserMessage{ChannelID: c.channel, AuthorID: c.dmUser, Content: q})
		return err
	}
	return nil
}

// drive runs every conversation's users: conversations start spread over
// the ramp; the users of a shared conversation ask a moment apart (their
// answers queue); a user asks again -think after the model finished the
// previous answer. It returns when every user has asked every question
// (and the model has finished all but the last) or ctx ends.
func (w *world) drive(ctx context.Context) error {
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	n := len(w.convs)
	for i, c := range w.convs {
		offset := time.Duration(0)
		if n > 1 {
			offset = w.opts.ramp * time.Duration(i) / time.Duration(n)
		}
		for u := range c.users {
			wg.Go(func() {
				at := start.Add(offset + time.Duration(u)*w.stagger)
				if !sleepUntil(ctx, at) {
					return
				}
				for t := range w.opts.turns {
					a := c.answers[u*w.opts.turns+t]
					if err := w.ask(a); err != nil {
						errOnce.Do(func() { firstErr = fmt.Errorf("ask %s: %w", a.tag, err) })
						return
					}
					if t == w.opts.turns-1 {
						return // the settling wait watches the last answers
					}
					select {
					case <-a.done:
					case <-ctx.Done():
						return
					}
					if !sleepUntil(ctx, time.Now().Add(w.opts.think)) {
						return
					}
				}
			})
		}
	}
	if w.opts.inject429 > 0 {
		wg.Go(func() { w.inject(ctx) })
	}
	wg.Wait()
	return firstErr
}

// userStagger separates the questions of the users of one conversation.
const userStagger = 150 * time.Millisecond

// inject spreads -inject-429 forced 429s over the answers that are
// streaming, one at a time, on their destinations.
func (w *world) inject(ctx context.Context) {
	rng := rand.New(rand.NewPCG(uint64(w.opts.seed), 2))
	streamFor := time.Duration(float64(w.opts.tokens) / w.opts.rate * float64(time.Second))
	every := (w.opts.ramp + streamFor) / time.Duration(w.opts.inject429+1)
	for range w.opts.inject429 {
		if !sleepUntil(ctx, time.Now().Add(every)) {
			return
		}
		// Pick a conversation whose answer is streaming now.
		for range 100 {
			c := w.convs[rng.IntN(len(w.convs))]
			if !c.streaming() {
				continue
			}
			if c.kind.telegram() {
				w.tg.InjectFlood(c.chat, 1, 1)
			} else {
				w.dc.InjectRateLimit(c.channel, 1, time.Second)
			}
			w.injected.Add(1)
			break
		}
	}
}

// streaming reports whether one of c's answers has started and not ended.
func (c *conversation) streaming() bool {
	for _, a := range c.answers {
		_, first, _, _ := a.timing()
		if first.IsZero() {
			continue
		}
		select {
		case <-a.done:
		default:
			return true
		}
	}
	return false
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// slowProxy forwards to target after delaying each request by d: a slow
// platform, as seen from a bot far from its data centre.
func slowProxy(target string, d time.Duration) *httptest.Server {
	u, _ := url.Parse(target) // httptest URLs parse
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !sleepUntil(r.Context(), time.Now().Add(d)) {
			return
		}
		rp.ServeHTTP(rw, r)
	}))
}

// h2Proxy serves target over TLS with HTTP/2, as DeepInfra serves its
// API, and returns the server and its certificate (PEM): Palaver's model
// streams then share a few connections instead of one each.
func h2Proxy(target string) (*httptest.Server, []byte) {
	u, _ := url.Parse(target) // httptest URLs parse
	u.Path = ""
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewUnstartedServer(rp)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, ca
}

func (w *world) close() {
	for _, p := range w.proxies {
		p.Close()
	}
	w.tg.Close()
	w.dc.Close()
	w.up.Close()
}
