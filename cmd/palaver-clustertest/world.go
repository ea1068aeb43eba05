package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/cmd/internal/replytext"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore/etcdtest"
)

// Kinds of conversation.
const (
	tgPrivate = "telegram-private"
	tgGroup   = "telegram-group"
	dcChannel = "discord-channel"
)

// Platforms, as sessions.Key names them.
const (
	telegram = "telegram"
	discord  = "discord"
)

// identifyWindow is Discord's spacing of IDENTIFYs per bucket, which the
// fake enforces (an IDENTIFY too soon is answered with Invalid Session).
const identifyWindow = 5 * time.Second

// etcdPrefix is where the palaver processes keep their keys; probePrefix
// is the commit probe's, apart so that its member record is not taken
// for a palaver process.
const (
	etcdPrefix  = "/palaver/"
	probePrefix = "/clustertest-probe/"
)

// historyLimit is storage.history_limit, as docs/scaling.md advises.
const historyLimit = 200

// conv is one conversation the harness talks in, with one user asking.
type conv struct {
	name    string
	kind    string
	chat    int64             // the Telegram chat
	tgUser  telegramtest.User // the Telegram user asking
	channel string            // the Discord channel
	shard   int               // the Discord shard its guild is on
	dcUser  string            // the Discord user asking
}

func (c *conv) platform() string {
	if c.kind == dcChannel {
		return discord
	}
	return telegram
}

// key is the conversation's key in Palaver's store.
func (c *conv) key() sessions.Key {
	if c.kind == dcChannel {
		return sessions.Key{Platform: discord, Chat: c.channel}
	}
	return sessions.Key{Platform: telegram, Chat: strconv.FormatInt(c.chat, 10)}
}

// question is one user message the harness sent. Its text carries the tag
// Q<n>, and the model's answer starts with A<n>, so that both are found in
// the store and in the chats.
type question struct {
	n      int
	conv   *conv
	phase  string
	text   string
	ref    string    // the user's message id
	order  int       // on Telegram, the message id as a number
	sent   time.Time // just before it was sent
	tokens int       // the answer's length in tokens, the tag included

	// Set by the conversation's driver once the question is settled.
	mu       sync.Mutex
	outcome  string // see the outcome constants
	retryRef string // the /retry message sent after a note, "" for none
	retried  string // the /retry's outcome: "answered", or why not
}

func (q *question) tag() string       { return fmt.Sprintf("Q%05d", q.n) }
func (q *question) answerTag() string { return fmt.Sprintf("A%05d", q.n) }

// answer is the model's full answer to q.
func (q *question) answer() string { return replytext.Answer(q.answerTag(), q.n, q.tokens) }

var (
	questionTag = regexp.MustCompile(`\bQ(\d{5,})\b`)
	answerTag   = regexp.MustCompile(`^A(\d{5,})\b`)
)

// world is everything around the palaver processes: etcd, the fakes, the
// conversations and every question sent so far.
type world struct {
	opts   options
	dir    string
	etcd   *etcdtest.Cluster
	up     *llmtest.Server
	tg     *telegramtest.Server
	dc     *discordtest.Server
	guilds []discordtest.Guild
	convs  []*conv

	mu        sync.Mutex
	rng       *rand.Rand
	questions []*question
	byN       map[int]*question
	byConv    map[*conv][]*question
	asked     map[int]int // model requests per question
}

// newWorld starts etcd and the fakes and lays out the conversations:
// two in five are Discord channels (at least one per shard, in a guild on
// that shard), one in five Telegram groups, the rest Telegram private
// chats.
func newWorld(dir string, opts options) (*world, error) {
	w := &world{
		opts:   opts,
		dir:    dir,
		rng:    rand.New(rand.NewPCG(opts.seed, 0xc105_7e57)),
		byN:    map[int]*question{},
		byConv: map[*conv][]*question{},
		asked:  map[int]int{},
	}
	etcd, err := etcdtest.New(filepath.Join(dir, "etcd"), 3, etcdtest.Options{Fsync: opts.fsync})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	w.etcd = etcd
	w.up = llmtest.NewServer()
	w.up.SetScriptFunc(w.script)
	w.tg = telegramtest.NewServer(telegramtest.Options{})
	w.dc = discordtest.NewServer(discordtest.Options{
		NoEcho:            true,
		Shards:            opts.shards,
		SessionStartLimit: discordtest.SessionStartLimit{MaxConcurrency: opts.maxConcurrency},
		IdentifyWindow:    identifyWindow,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := w.layout(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// layout makes the conversations.
func (w *world) layout() error {
	n, shards := w.opts.conversations, w.opts.shards
	channels := max(shards, 2*n/5)
	groups := max(1, n/5)
	private := n - channels - groups
	if private < 1 {
		return fmt.Errorf("-conversations %d leaves no Telegram private chat beside %d Discord channels (one per shard at least) and %d group", n, channels, groups)
	}
	for i := range private {
		id := int64(100001 + i)
		u := telegramtest.User{ID: id, FirstName: "Private" + strconv.Itoa(i+1), Username: "private" + strconv.Itoa(i+1)}
		w.convs = append(w.convs, &conv{name: "private " + strconv.FormatInt(id, 10), kind: tgPrivate, chat: id, tgUser: u})
	}
	for i := range groups {
		id := -int64(200001 + i)
		u := telegramtest.User{ID: int64(300001 + i), FirstName: "Member" + strconv.Itoa(i+1), Username: "member" + strconv.Itoa(i+1)}
		w.tg.SetChat(telegramtest.Chat{ID: id, Type: telegramtest.ChatGroup, Title: "group " + strconv.Itoa(i+1)})
		w.convs = append(w.convs, &conv{name: "group " + strconv.FormatInt(id, 10), kind: tgGroup, chat: id, tgUser: u})
	}
	for s := range shards {
		g, err := w.dc.AddGuildOnShard(fmt.Sprintf("shard %d", s), s, shards)
		if err != nil {
			return fmt.Errorf("discord guild: %w", err)
		}
		w.guilds = append(w.guilds, g)
	}
	for i := range channels {
		s := i % shards
		g := w.guilds[s]
		ch, err := w.dc.AddChannel(g.ID, "talk-"+strconv.Itoa(i+1))
		if err != nil {
			return fmt.Errorf("discord channel: %w", err)
		}
		u := w.dc.AddUser("user" + strconv.Itoa(i+1))
		if err := w.dc.AddMember(g.ID, u.ID, 0); err != nil {
			return fmt.Errorf("discord member: %w", err)
		}
		w.convs = append(w.convs, &conv{name: fmt.Sprintf("channel #talk-%d (shard %d)", i+1, s), kind: dcChannel,
			channel: ch.ID, shard: s, dcUser: u.ID})
	}
	return nil
}

func (w *world) close() {
	if w.tg != nil {
		w.tg.Close()
	}
	if w.dc != nil {
		w.dc.Close()
	}
	if w.up != nil {
		w.up.Close()
	}
	if w.etcd != nil {
		w.etcd.Close()
	}
}

// script is the fake model: the answer to the question tagged in the last
// user message, at opts.rate tokens a second.
func (w *world) script(req llmtest.Request) llmtest.Script {
	last := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			last = m.Content
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var q *question
	if match := questionTag.FindStringSubmatch(last); match != nil {
		n, _ := strconv.Atoi(match[1])
		q = w.byN[n]
	}
	if q == nil {
		return llmtest.Echo(req) // not a question of the harness: the check says so
	}
	w.asked[q.n]++
	return llmtest.Script{Content: llmtest.Tokens(q.answer()), Interval: time.Duration(float64(time.Second) / w.opts.rate)}
}

// newQuestion records a question of c, not sent yet.
func (w *world) newQuestion(c *conv, phase string) *question {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := &question{n: len(w.questions) + 1, conv: c, phase: phase}
	q.tokens = max(minTokens, w.opts.tokens/4+w.rng.IntN(w.opts.tokens-w.opts.tokens/4+1))
	q.text = q.tag() + " please tell me about " + replytext.Vocabulary[w.rng.IntN(len(replytext.Vocabulary))]
	w.questions = append(w.questions, q)
	w.byN[q.n] = q
	w.byConv[c] = append(w.byConv[c], q)
	return q
}

// send posts q as its conversation's user: in a Telegram group and a
// Discord channel it mentions the bot.
func (w *world) send(q *question) error {
	c := q.conv
	q.sent = time.Now()
	if c.kind == dcChannel {
		m, err := w.dc.SendMessage(discordtest.UserMessage{ChannelID: c.channel, AuthorID: c.dcUser,
			Content: discordtest.Mention(w.dc.BotUser().ID) + " " + q.text})
		if err != nil {
			return fmt.Errorf("send to discord: %w", err)
		}
		q.ref = m.ID
		return nil
	}
	text := q.text
	if c.kind == tgGroup {
		text = "@" + w.tg.Bot().Username + " " + text
	}
	m := w.tg.SendText(c.chat, c.tgUser, text)
	q.ref, q.order = strconv.Itoa(m.ID), m.ID
	return nil
}

// sendRetry sends /retry in q's Telegram conversation and returns its
// message id.
func (w *world) sendRetry(q *question) int {
	return w.tg.SendText(q.conv.chat, q.conv.tgUser, "/retry").ID
}

// sent returns the questions sent so far, in order.
func (w *world) sent() []*question {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*question(nil), w.questions...)
}

// convQuestions returns c's questions, oldest first.
func (w *world) convQuestions(c *conv) []*question {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.byConv[c])
}

// question returns question n, nil if the harness never made it.
func (w *world) question(n int) *question {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byN[n]
}

// modelRequests returns how many times the model was asked question n.
func (w *world) modelRequests(n int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.asked[n]
}

// writeConfig writes the config of one palaver process: the defaults,
// except where etcd and the fakes are, its own member name and metrics
// listener, no per-user rate, and Discord's per-bot budget divided among
// the processes (each budgets its own requests: together they must stay
// within Discord's 50 a second).
func (w *world) writeConfig(member, metricsAddr string, processes int) (string, error) {
	q := strconv.Quote
	var eps, guilds []string
	for _, ep := range w.etcd.Endpoints() {
		eps = append(eps, q(ep))
	}
	for _, g := range w.guilds {
		guilds = append(guilds, q(g.ID))
	}
	cfg := strings.Join([]string{
		"storage:",
		"  history_limit: " + strconv.Itoa(historyLimit),
		"  etcd:",
		"    endpoints: [" + strings.Join(eps, ", ") + "]",
		"    prefix: " + q(etcdPrefix),
		"cluster:",
		"  member: " + q(member),
		"  failover: " + w.opts.failover.String(),
		"providers:",
		"  fake:",
		"    base_url: " + q(w.up.URL),
		"models:",
		"  default: fake/echo",
		"  aliases: {}",
		"chat:",
		"  user_rate: 0",
		"telegram:",
		"  token: " + q(w.tg.Token()),
		"  api_endpoint: " + q(w.tg.Endpoint()),
		"  format: html", // the checks read the HTML path's text
		"discord:",
		"  token: " + q(w.dc.Token()),
		"  api_base: " + q(w.dc.URL()),
		"  guilds: [" + strings.Join(guilds, ", ") + "]",
		"  shards: " + strconv.Itoa(w.opts.shards),
		"metrics:",
		"  listen: " + q(metricsAddr),
		"log:",
		"  level: info",
		"",
	}, "\n")
	path := filepath.Join(w.dir, member+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}
