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
)

// Timing of the world, scaled so that a cycle takes a second or two: the
// model writes tokenRate tokens a second, Palaver edits a private chat
// and a Discord channel every editInterval and a Telegram group every
// groupInterval, and the fake platforms enforce limits of the platforms'
// shape that those intervals respect.
const (
	tokenRate     = 40
	minWords      = 4
	maxWords      = 30
	editInterval  = 100 * time.Millisecond
	groupInterval = 200 * time.Millisecond
)

// floodLimits are the fake Telegram's limits: Telegram's shape (a burst,
// then one request per interval per chat, a per-minute cap per group) at
// the pace of the short intervals above.
var floodLimits = telegramtest.FloodLimits{
	ChatInterval:   editInterval,
	ChatBurst:      3,
	GroupPerMinute: int(time.Minute / groupInterval * 2),
}

// discordLimit is the fake Discord's limit on message creates and edits
// per channel, over a sliding discordWindow: Discord's 5 per 5 s at the
// pace of editInterval.
const (
	discordLimit  = 5
	discordWindow = 5 * editInterval
)

// Platforms.
const (
	telegram = "telegram"
	discord  = "discord"
)

// conv is one conversation the harness talks in: a Telegram private chat
// or group, or a Discord channel where users mention the bot.
type conv struct {
	name     string
	platform string
	chat     int64  // the Telegram chat
	channel  string // the Discord channel
	// shared is true where a reply names the message it answers: a
	// Telegram group, a Discord channel.
	shared  bool
	tgUsers []telegramtest.User
	dcUsers []string
}

// key is the conversation's key in Palaver's store.
func (c *conv) key() sessions.Key {
	if c.platform == discord {
		return sessions.Key{Platform: discord, Chat: c.channel}
	}
	return sessions.Key{Platform: telegram, Chat: strconv.FormatInt(c.chat, 10)}
}

// question is one user message the harness sent. Its text carries the tag
// Q<n>, and the model's answer starts with A<n>, so that both are found in
// the store and in the chat.
type question struct {
	n    int
	conv *conv
	text string // as sent
	// ref is the user's message id; order, on Telegram, the same as a
	// number (ids grow in a chat); update the Telegram update carrying it.
	ref    string
	order  int
	update int
	cycle  int  // the cycle that sent it; the final phase is cycles+1
	final  bool // sent in the final phase, with no kill to follow
	words  int  // the answer's length in tokens, the tag included
	// kill is how long before the kill a Discord mention went out (Discord
	// never delivers a gateway event again), 0 when no kill followed.
	kill time.Duration
}

func (q *question) tag() string       { return fmt.Sprintf("Q%04d", q.n) }
func (q *question) answerTag() string { return fmt.Sprintf("A%04d", q.n) }

// answer is the model's full answer to q.
func (q *question) answer() string { return replytext.Answer(q.answerTag(), q.n, q.words) }

var (
	questionTag = regexp.MustCompile(`\bQ(\d{4,})\b`)
	answerTag   = regexp.MustCompile(`^A(\d{4,})\b`)
)

// world is everything around Palaver: the fake model, the fake Telegram
// and (unless left out) the fake Discord, the conversations and every
// question sent so far.
type world struct {
	// windowed holds the replies a check found left in the commit window
	// (see leftInWindow).
	windowed map[string]bool

	dir   string
	up    *llmtest.Server
	tg    *telegramtest.Server
	dc    *discordtest.Server // nil without Discord
	guild discordtest.Guild
	convs []*conv

	// noteFor and noteless keep, from one check to the next, which note
	// alone in a private chat was taken as the reply to which question
	// (by the note's message id), and which questions found none: a note
	// names no question, and a new note must not be taken for an old one.
	noteFor  map[int]string
	noteless map[int]bool

	mu        sync.Mutex
	questions []*question       // in the order sent
	byN       map[int]*question // by number
	asked     map[int]int       // model requests per question
}

// newWorld starts the fakes and lays out two private Telegram chats, a
// Telegram group of two users and, withDiscord, a Discord channel of two
// users.
func newWorld(dir string, withDiscord bool) (*world, error) {
	w := &world{
		windowed: map[string]bool{},
		dir:      dir,
		up:       llmtest.NewServer(),
		tg:       telegramtest.NewServer(telegramtest.Options{Flood: floodLimits}),
		byN:      map[int]*question{},
		asked:    map[int]int{},
		noteFor:  map[int]string{},
		noteless: map[int]bool{},
	}
	w.up.SetScriptFunc(w.script)
	for i := range 2 {
		id := int64(1001 + i)
		u := telegramtest.User{ID: id, FirstName: "Private" + strconv.Itoa(i+1), Username: "private" + strconv.Itoa(i+1)}
		w.convs = append(w.convs, &conv{name: "private " + strconv.FormatInt(id, 10), platform: telegram, chat: id, tgUsers: []telegramtest.User{u}})
	}
	group := &conv{name: "group -2001", platform: telegram, chat: -2001, shared: true}
	for i := range 2 {
		id := int64(3001 + i)
		group.tgUsers = append(group.tgUsers, telegramtest.User{ID: id, FirstName: "Member" + strconv.Itoa(i+1), Username: "member" + strconv.Itoa(i+1)})
	}
	w.tg.SetChat(telegramtest.Chat{ID: group.chat, Type: telegramtest.ChatGroup, Title: "crash test"})
	w.convs = append(w.convs, group)
	if !withDiscord {
		return w, nil
	}
	w.dc = discordtest.NewServer(discordtest.Options{
		NoEcho: true, MessageLimit: discordLimit, MessageWindow: discordWindow,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	w.guild = w.dc.AddGuild("crash")
	ch, err := w.dc.AddChannel(w.guild.ID, "crash")
	if err != nil {
		w.close()
		return nil, fmt.Errorf("discord channel: %w", err)
	}
	channel := &conv{name: "channel #crash", platform: discord, channel: ch.ID, shared: true}
	for i := range 2 {
		u := w.dc.AddUser("user" + strconv.Itoa(i+1))
		if err := w.dc.AddMember(w.guild.ID, u.ID, 0); err != nil {
			w.close()
			return nil, fmt.Errorf("discord member: %w", err)
		}
		channel.dcUsers = append(channel.dcUsers, u.ID)
	}
	w.convs = append(w.convs, channel)
	return w, nil
}

func (w *world) close() {
	w.tg.Close()
	if w.dc != nil {
		w.dc.Close()
	}
	w.up.Close()
}

// script is the fake model: the answer to the question tagged in the last
// user message, at tokenRate.
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
	return llmtest.Script{Content: llmtest.Tokens(q.answer()), Interval: time.Second / tokenRate}
}

// send posts a question from a user of c, as the platform delivers it:
// in a Telegram group and a Discord channel it mentions the bot.
func (w *world) send(rng *rand.Rand, c *conv, cycle int, final bool) (*question, error) {
	w.mu.Lock()
	q := &question{n: len(w.questions) + 1, conv: c, cycle: cycle, final: final, words: minWords + rng.IntN(maxWords-minWords+1)}
	w.questions = append(w.questions, q)
	w.byN[q.n] = q
	w.mu.Unlock()
	q.text = q.tag() + " please tell me about " + replytext.Vocabulary[rng.IntN(len(replytext.Vocabulary))]
	if c.platform == discord {
		m, err := w.dc.SendMessage(discordtest.UserMessage{ChannelID: c.channel, AuthorID: c.dcUsers[rng.IntN(len(c.dcUsers))],
			Content: discordtest.Mention(w.dc.BotUser().ID) + " " + q.text})
		if err != nil {
			return nil, fmt.Errorf("send to discord: %w", err)
		}
		q.ref = m.ID
		return q, nil
	}
	if c.shared {
		q.text = "@" + w.tg.Bot().Username + " " + q.text
	}
	// Only this goroutine pushes updates: the newest is this question's.
	m := w.tg.SendText(c.chat, c.tgUsers[rng.IntN(len(c.tgUsers))], q.text)
	q.ref, q.order, q.update = strconv.Itoa(m.ID), m.ID, w.tg.LastUpdateID()
	return q, nil
}

// discordSessions returns the ids of the fake Discord's gateway sessions
// that have a connection.
func (w *world) discordSessions() []string {
	var ids []string
	for _, g := range w.dc.GatewaySessions() {
		if g.Connected {
			ids = append(ids, g.ID)
		}
	}
	return ids
}

// discordConnected reports whether a gateway session other than those in
// old is connected: a new process receives mentions.
func (w *world) discordConnected(old []string) bool {
	return slices.ContainsFunc(w.discordSessions(), func(id string) bool { return !slices.Contains(old, id) })
}

// discordReady reports whether a new process is connected and registered
// its commands after since, which it does once it has finalised what the
// last run left.
func (w *world) discordReady(old []string, since time.Time) bool {
	return w.discordConnected(old) && slices.ContainsFunc(w.dc.Calls(), func(c discordtest.Call) bool {
		return c.Method == "PUT" && strings.HasSuffix(c.Route, "/commands") && !c.Time.Before(since)
	})
}

// sent returns the questions sent so far, in order.
func (w *world) sent() []*question {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*question(nil), w.questions...)
}

// question returns question n, nil if the harness never sent it.
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

// storePath is where Palaver keeps its store.
func (w *world) storePath() string { return filepath.Join(w.dir, "palaver.db") }

// writeConfig writes the config of every `palaver run`: the defaults,
// except where the fakes are, short intervals with the fakes' limits as
// Palaver's windows, no per-user rate and room in the queue for every
// message a cycle sends (a refused message would not be the kind of loss
// this harness looks for).
func (w *world) writeConfig(queue int) (string, error) {
	q := strconv.Quote
	cfg := strings.Join([]string{
		"storage:",
		"  path: " + q(w.storePath()),
		"providers:",
		"  crash:",
		"    base_url: " + q(w.up.URL),
		"models:",
		"  default: crash/echo",
		"  aliases: {}",
		"chat:",
		"  user_rate: 0",
		"  queue: " + strconv.Itoa(queue),
		"telegram:",
		"  token: " + q(w.tg.Token()),
		"  api_endpoint: " + q(w.tg.Endpoint()),
		"  format: html", // the checks read the HTML path's text
		"  edit_interval: " + editInterval.String(),
		"  group_edit_interval: " + groupInterval.String(),
		fmt.Sprintf("  window: {requests: %d, per: %s}", floodLimits.ChatBurst, time.Duration(floodLimits.ChatBurst)*floodLimits.ChatInterval),
		fmt.Sprintf("  group_window: {requests: %d, per: 1m}", floodLimits.GroupPerMinute/2),
	}, "\n") + "\n"
	if w.dc != nil {
		cfg += strings.Join([]string{
			"discord:",
			"  token: " + q(w.dc.Token()),
			"  api_base: " + q(w.dc.URL()),
			"  guilds: [" + q(w.guild.ID) + "]",
			"  edit_interval: " + editInterval.String(),
			fmt.Sprintf("  window: {requests: %d, per: %s}", discordLimit, discordWindow),
		}, "\n") + "\n"
	}
	cfg += "log:\n  level: info\n"
	path := filepath.Join(w.dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}
