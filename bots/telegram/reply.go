package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/sessions"
)

// reasoningLimit is the most of a model's reasoning shown, in UTF-16
// units: its newest part, so that it fits one message with room to spare.
const reasoningLimit = 3000

// stopData is the callback data of the Stop button.
const stopData = "stop"

// errRelayout is returned inside a reply when Telegram refused a request
// in a way that changes how the view is laid out (a rich message refused,
// drafts or rich methods unknown): the view is laid out again and shown.
var errRelayout = errors.New("telegram: lay the view out again")

// reply is one answer in a chat: the messages it has sent so far, edited
// as the answer grows, and in private chats a live draft of its last part.
// It shows an answer as rich messages (Bot API 10.1) unless the Bot's
// format or Telegram says otherwise, and as Telegram HTML messages then.
// It implements sessions.Reply, sessions.Typer and sessions.Drafter.
type reply struct {
	b       *Bot
	private bool
	// restored is set on a reply rebuilt after a restart, which only
	// shows a final view.
	restored bool

	mu       sync.Mutex
	chat     int64
	topic    int
	replyTo  int // the user's message, answered in groups
	question int // the question answered, 0 for none: the Retry button's
	draftID  int64
	drafted  bool // a draft of the answer's text was shown
	parts    []sentPart
	content  partRenderer // renders the answer as HTML, again only where it grew
	rich     richRenderer // cuts the answer into rich messages
	// mode is the format the reply keeps to (formatRich or formatHTML),
	// "" to follow the Bot's; forceHTML is set when Telegram refused a
	// rich message that was not the answer's text.
	mode      string
	forceHTML bool
	// fallback holds the rich parts shown as HTML messages instead: Telegram
	// refused them (or they nest too deep, or have too wide a table).
	fallback map[int]*partRenderer
	gen      int         // changes whenever the layout rules change
	cache    layoutCache // the view last laid out
}

// layoutCache is a view and its pieces, so that Draft and Show lay a view
// out once.
type layoutCache struct {
	ok             bool
	v              sessions.View
	gen            int
	drafting, rich bool
	pieces         []piece
}

// keyboard is the inline keyboard under a message of an answer.
type keyboard uint8

const (
	kbNone  keyboard = iota
	kbStop           // the answer is running: Stop
	kbRetry          // the answer is finished: Retry
)

// sentPart is one message of the answer as last shown.
type sentPart struct {
	id   int
	text string // the HTML or rich Markdown last shown (or tried, when plain)
	// rich is the message's kind (sendRichMessage), which it keeps: a
	// piece of the other kind is shown in it as plain text.
	rich bool
	// plain is set when Telegram refused the message's markup: it is
	// shown as plain text (a text message without parse_mode, or a rich
	// message of one paragraph block) from then on.
	plain bool
	kb    keyboard
	known bool // false after a restart: the text shown is unknown
}

// piece is one message-sized part of a view: its HTML or, for a rich
// message, its rich Markdown, and the same text without markup for when
// Telegram refuses the markup (made only then).
type piece struct {
	html  string
	md    string // rich Markdown; "" for an HTML piece
	plain func() string
	cost  richCost // of a rich piece
	// part is the answer's rich part the piece shows (rich mode), -1 for
	// one that shows only reasoning or status.
	part int
}

func (p piece) rich() bool { return p.md != "" }

// text is what the piece sends: its rich Markdown or its HTML.
func (p piece) text() string {
	if p.rich() {
		return p.md
	}
	return p.html
}

// plainPiece is a piece whose text has no markup to lose.
func plainPiece(html, plain string) piece {
	return piece{html: html, plain: func() string { return plain }, part: -1}
}

func (b *Bot) newReply(p place) *reply {
	r := &reply{b: b, private: p.private, chat: p.chat, topic: p.topic}
	if !p.private {
		r.replyTo = p.msgID
	}
	return r
}

// newAnswer is the reply to p's message, the question it answers.
func (b *Bot) newAnswer(p place) *reply {
	r := b.newReply(p)
	r.question = p.msgID
	return r
}

// Destination is the chat: the topics of a group share its budget.
func (r *reply) Destination() sessions.Destination {
	interval := r.b.opts.GroupEditInterval
	if r.private {
		interval = r.b.opts.EditInterval
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Every chat has the per-chat limit; a group also the group's.
	windows := []sessions.Window{r.b.opts.Window, r.b.opts.GroupWindow}
	if r.private {
		windows = windows[:1]
	}
	return sessions.Destination{ID: Platform + ":" + strconv.FormatInt(r.chat, 10), Interval: interval, Windows: windows, Budget: Platform}
}

// key is the conversation the reply answers in.
func (r *reply) key() sessions.Key { return chatKey(r.chat, r.topic) }

// Typing is the first sign of life of an answer: in a private chat with
// drafts, a draft showing Telegram's "Thinking…" placeholder with a Stop
// button; elsewhere "typing…" in the chat or topic. A flood refusal is a
// *sessions.RateLimitError. The engine calls it when the answer starts and
// every few seconds until its first view; "typing…" draws on the bot's
// budget (charge), a draft does not.
func (r *reply) Typing(ctx context.Context, charge func() bool) error {
	r.mu.Lock()
	chat, topic := r.chat, r.topic
	err := errNoPlaceholder
	if r.private && !r.restored && len(r.parts) == 0 && !r.drafted && r.b.drafting() {
		err = r.placeholder(ctx)
	}
	r.mu.Unlock()
	if err == nil {
		return nil
	}
	if rl := rateLimit(err); rl != nil {
		return rl
	}
	if !errors.Is(err, errNoPlaceholder) && !r.b.draftsOff.Load() {
		return err
	}
	// No draft: "typing…", when the bot's budget has a request for it.
	if !charge() {
		return nil
	}
	err = r.b.api.typing(ctx, chat, topic)
	if rl := rateLimit(err); rl != nil {
		return rl
	}
	return err
}

// errNoPlaceholder says that a reply shows no placeholder draft.
var errNoPlaceholder = errors.New("telegram: no placeholder draft")

// placeholder shows the answer's first draft: "Thinking…" with a Stop
// button, rich (a thinking block) in rich mode, else Telegram's own
// placeholder. A refused rich draft is tried again as HTML; a refused
// HTML draft turns drafts off. r.mu must be held.
func (r *reply) placeholder(ctx context.Context) error {
	o := outgoing{chat: r.chat, thread: r.topic} // an empty text: Telegram's placeholder
	rich := r.richMode()
	var err error
	if rich {
		ro := o
		ro.text, ro.rich = "<tg-thinking>Thinking…</tg-thinking>", true
		err = r.b.api.draft(ctx, r.draftIDFor(0, true), ro, true)
		if isMethodMissing(err) {
			r.richRefused(err, -1)
		}
	}
	if !rich || isMethodMissing(err) || isRefused(err) {
		err = r.b.api.draft(ctx, r.draftIDFor(0, false), o, true)
	}
	if apiError(err) != nil && rateLimit(err) == nil {
		r.b.refuseDrafts(err)
	}
	return err
}

// snapshot is a reply's record for recovery after a restart.
type snapshot struct {
	Chat     int64 `json:"chat"`
	Topic    int   `json:"topic,omitempty"`
	ReplyTo  int   `json:"reply_to,omitempty"`
	Question int   `json:"question,omitempty"`
	Private  bool  `json:"private,omitempty"`
	Messages []int `json:"messages,omitempty"`
	// Rich lists the Messages that are rich messages.
	Rich []int `json:"rich,omitempty"`
}

// Snapshot records where the answer is shown (chat, topic, message ids
// and their kinds) and the question it answers, for the Manager's progress
// record.
func (r *reply) Snapshot() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{Chat: r.chat, Topic: r.topic, ReplyTo: r.replyTo, Question: r.question, Private: r.private}
	for _, p := range r.parts {
		s.Messages = append(s.Messages, p.id)
		if p.rich {
			s.Rich = append(s.Rich, p.id)
		}
	}
	raw, _ := json.Marshal(s) // ints and bools always encode
	return raw
}

// Show makes v the visible answer: it lays v out in message-sized pieces,
// edits the messages whose piece changed, sends the new ones and, while
// the answer runs in a private chat with drafts, streams the last piece as
// a draft. It makes one request per call (more when Telegram refuses a
// message's markup and it goes again differently) and returns
// sessions.ErrMore while more pieces need one.
func (r *reply) Show(ctx context.Context, v sessions.View) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.show(ctx, v)
	if to := migratedTo(err); to != 0 {
		// The group became a supergroup: the answer starts over there.
		r.b.log.Info("reply follows a migrated chat", "from", r.chat, "to", to)
		r.chat, r.replyTo, r.parts = to, 0, nil
		m, err2 := r.show(ctx, v)
		n, err = n+m, err2
	}
	if (v.Final && err == nil) || errors.Is(err, sessions.ErrReplyGone) {
		r.b.drafts.remove(r.draftID)
	}
	return n, err
}

// maxRelayouts bounds how often one Show lays the view out again: every
// time, a part or the whole reply turned to HTML, or drafts went off.
const maxRelayouts = 4

func (r *reply) show(ctx context.Context, v sessions.View) (int, error) {
	requests := 0
	for range maxRelayouts {
		n, err := r.showOnce(ctx, v, requests)
		requests += n
		if !errors.Is(err, errRelayout) {
			return requests, err
		}
	}
	return requests, sessions.ErrMore
}

// drafting reports whether v goes (mostly) as a draft: an answer running
// in a private chat, with drafts on.
func (r *reply) drafting(v sessions.View) bool {
	return !v.Final && r.private && !r.restored && r.b.drafting()
}

// stoppable reports whether v is of an answer that can be stopped: running
// and not waiting in the queue.
func stoppable(v sessions.View) bool {
	return !v.Final && (v.Content != "" || v.Reasoning != "" || !strings.HasPrefix(v.Status, "⏳"))
}

// messages is how many of a view's pieces go as messages: all but a
// draft's last, and the ones sent already.
func (r *reply) messages(pieces int, drafting bool) int {
	if !drafting {
		return pieces
	}
	return max(pieces-1, min(len(r.parts), pieces))
}

// keyboardFor is the keyboard of piece i of n of v.
func (r *reply) keyboardFor(v sessions.View, i, n int) keyboard {
	switch {
	case i != n-1:
		return kbNone
	case stoppable(v):
		return kbStop
	case v.Final && r.question != 0:
		return kbRetry
	}
	return kbNone
}

// showOnce shows v as laid out now, made being the requests this Show
// made already; errRelayout asks for another pass.
func (r *reply) showOnce(ctx context.Context, v sessions.View, made int) (int, error) {
	drafting := r.drafting(v)
	pieces := r.pieces(v, drafting)
	if len(pieces) == 0 {
		return 0, nil
	}
	nmsg := r.messages(len(pieces), drafting)
	requests := 0
	for i := range nmsg {
		kb := r.keyboardFor(v, i, len(pieces))
		if made+requests > 0 && r.needsRequest(i, pieces[i], kb) {
			return requests, sessions.ErrMore // one request per Show
		}
		n, err := r.showPart(ctx, i, pieces[i], kb)
		requests += n
		if err != nil {
			return requests, err
		}
	}
	if nmsg < len(pieces) {
		if made+requests > 0 {
			return requests, sessions.ErrMore
		}
		n, err := r.showDraft(ctx, nmsg, pieces[nmsg], stoppable(v))
		return requests + n, err
	}
	// Pieces can shrink (a status line merged back): delete leftovers.
	for len(r.parts) > len(pieces) {
		if made+requests > 0 {
			return requests, sessions.ErrMore
		}
		last := r.parts[len(r.parts)-1]
		err := r.b.api.delete(ctx, r.chat, last.id)
		requests++
		if err != nil && !isMessageGone(err) && !strings.Contains(err.Error(), "message to delete not found") {
			return requests, r.classify(err)
		}
		r.parts = r.parts[:len(r.parts)-1]
	}
	return requests, nil
}

// needsRequest reports whether showing p as part i takes a request.
func (r *reply) needsRequest(i int, p piece, kb keyboard) bool {
	if i >= len(r.parts) {
		return true
	}
	sp := r.parts[i]
	return !sp.known || sp.text != p.text() || sp.kb != kb
}

// markup is the inline keyboard of kb.
func (r *reply) markup(kb keyboard) *tgbotapi.InlineKeyboardMarkup {
	switch kb {
	case kbStop:
		return stopKeyboard()
	case kbRetry:
		return retryKeyboard(r.question)
	}
	return nil
}

// showPart edits part i to p, or sends it when it is new. A message keeps
// the kind it was sent with: a piece of the other kind, or one whose
// markup Telegram refused, is shown in it as plain text.
func (r *reply) showPart(ctx context.Context, i int, p piece, kb keyboard) (int, error) {
	o := outgoing{chat: r.chat, thread: r.topic, text: p.text(), rich: p.rich(), keyboard: r.markup(kb)}
	if i < len(r.parts) {
		sp := &r.parts[i]
		if sp.known && sp.text == p.text() && sp.kb == kb {
			return 0, nil
		}
		if sp.plain || sp.rich != p.rich() {
			o.plain, o.rich, o.text = true, sp.rich, r.plainText(p, sp.rich)
		}
		err := r.b.api.edit(ctx, sp.id, o)
		requests := 1
		if !o.plain && (o.rich && isRefused(err) || !o.rich && isParseError(err)) {
			r.b.log.Warn("Telegram refused the markup of a message; showing it as plain text", "chat", r.chat, "rich", o.rich, "error", err)
			sp.plain, o.plain, o.text = true, true, r.plainText(p, sp.rich)
			err = r.b.api.edit(ctx, sp.id, o)
			requests++
		}
		if err != nil && !isNotModified(err) {
			return requests, r.classify(err)
		}
		sp.text, sp.kb, sp.known = p.text(), kb, true
		return requests, nil
	}
	if i == 0 {
		o.replyTo = r.replyTo
	}
	id, err := r.b.api.send(ctx, o)
	requests := 1
	if p.rich() && err != nil && r.richRefused(err, p.part) {
		return requests, errRelayout
	}
	plain := false
	if !p.rich() && isParseError(err) {
		r.b.log.Warn("Telegram refused the HTML; sending plain text", "chat", r.chat, "error", err)
		o.text, o.plain, plain = p.plain(), true, true
		id, err = r.b.api.send(ctx, o)
		requests++
	}
	if err != nil {
		return requests, r.classify(err)
	}
	r.parts = append(r.parts, sentPart{id: id, text: p.text(), rich: p.rich(), plain: plain, kb: kb, known: true})
	return requests, nil
}

// plainText is p without markup, to show in a message of the rich kind
// or not: a text message's within Telegram's length limit.
func (r *reply) plainText(p piece, rich bool) string {
	if rich {
		return p.plain()
	}
	return clipUTF16(p.plain(), MaxMessageLen)
}

// Draft reports whether Show(v) would show v as a draft only, making no
// request that a chat's limit counts (sessions.Drafter): an answer running
// in a private chat with drafts, whose messages (the earlier parts of a
// long answer) show already what v holds. The engine charges such a view
// to no budget. A refusal that changes the layout during Show (a rich
// draft refused) can still make it send a message.
func (r *reply) Draft(v sessions.View) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.drafting(v) {
		return false
	}
	pieces := r.pieces(v, true)
	if len(pieces) == 0 || len(r.parts) > len(pieces) {
		return false
	}
	for i := range r.messages(len(pieces), true) {
		if r.needsRequest(i, pieces[i], r.keyboardFor(v, i, len(pieces))) {
			return false
		}
	}
	return true
}

// draftSpan is how many draft ids an answer has: its id base's low bits
// number its pieces, twice (a piece drafted rich or as HTML).
const draftSpan = 1 << 10

// draftIDFor is the draft id of piece i drafted rich or not: a draft id
// is never used by both methods. r.mu must be held.
func (r *reply) draftIDFor(i int, rich bool) int64 {
	if r.draftID == 0 {
		r.draftID = r.b.drafts.add(r)
	}
	id := r.draftID + 1 + 2*int64(min(i, draftSpan/2-1))
	if !rich {
		id++
	}
	return min(id, r.draftID+draftSpan-1)
}

// showDraft streams piece i as the answer's live draft, with a Stop button
// while the answer can be stopped. A draft is a preview, not a message:
// Telegram charges it to no chat's limit, so it reports no requests. A
// refusal other than a rate limit turns drafts off for the process (a rich
// draft's refused markup only its part's richness) and asks for another
// layout.
func (r *reply) showDraft(ctx context.Context, i int, p piece, stop bool) (int, error) {
	o := outgoing{chat: r.chat, thread: r.topic, text: p.text(), rich: p.rich()}
	err := r.b.api.draft(ctx, r.draftIDFor(i, p.rich()), o, stop)
	if p.rich() && err != nil {
		if isRefused(err) {
			// Drafts refused, or this rich Markdown? An HTML draft (the
			// placeholder) tells.
			perr := r.b.api.draft(ctx, r.draftIDFor(i, false), outgoing{chat: r.chat, thread: r.topic}, stop)
			if rl := rateLimit(perr); rl != nil {
				return 0, rl
			}
			if apiError(perr) != nil {
				r.b.refuseDrafts(perr)
				return 0, errRelayout
			}
			if perr != nil {
				return 0, perr
			}
		}
		if r.richRefused(err, p.part) {
			return 0, errRelayout
		}
	}
	if !p.rich() && isParseError(err) {
		o.text, o.plain = clipUTF16(p.plain(), MaxMessageLen), true
		err = r.b.api.draft(ctx, r.draftIDFor(i, false), o, stop)
	}
	if err == nil {
		r.drafted = true
		return 0, nil
	}
	if rl := rateLimit(err); rl != nil {
		return 0, rl
	}
	if apiError(err) != nil {
		r.b.refuseDrafts(err)
		return 0, errRelayout
	}
	return 0, err
}

// classify turns a refusal into the error the engine understands.
func (r *reply) classify(err error) error {
	if rl := rateLimit(err); rl != nil {
		return rl
	}
	if isMessageGone(err) {
		return fmt.Errorf("telegram: %w: %w", sessions.ErrReplyGone, err)
	}
	return err
}

func stopKeyboard() *tgbotapi.InlineKeyboardMarkup {
	kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData("⏹ Stop", stopData)))
	return &kb
}

// layout arranges a view into message-sized pieces: the reasoning (in a
// quote), the content as rendered by a partRenderer, and the status line in
// italics, the reasoning and status sharing a message with the content
// when they fit.
func layout(v sessions.View, content []renderedPart) []piece {
	var pieces []piece
	for _, part := range content {
		md := part.md
		pieces = append(pieces, piece{html: part.html, plain: func() string { return clipUTF16(PlainText(md), MaxMessageLen) }, part: -1})
	}
	if reasoning := strings.TrimSpace(v.Reasoning); reasoning != "" && v.ReasoningMode != sessions.ReasoningHidden {
		h := RenderReasoning(reasoning, reasoningLimit)
		if v.ReasoningMode == sessions.ReasoningFull {
			h = strings.Replace(h, "<blockquote expandable>", "<blockquote>", 1)
		}
		plain := func() string { return clipUTF16(reasoning, reasoningLimit) }
		if len(pieces) > 0 && TextLen(h)+2+TextLen(pieces[0].html) <= MaxMessageLen {
			content := pieces[0].plain
			pieces[0] = piece{html: h + "\n\n" + pieces[0].html, plain: func() string { return plain() + "\n\n" + content() }, part: pieces[0].part}
		} else {
			pieces = append([]piece{{html: h, plain: plain, part: -1}}, pieces...)
		}
	}
	if status := strings.TrimSpace(v.Status); status != "" {
		status = clipUTF16(status, 1000)
		h := RenderStatus(status)
		if n := len(pieces); n > 0 && TextLen(pieces[n-1].html)+2+TextLen(h) <= MaxMessageLen {
			content := pieces[n-1].plain
			pieces[n-1] = piece{html: pieces[n-1].html + "\n\n" + h, plain: func() string { return content() + "\n\n" + status }, part: pieces[n-1].part}
		} else {
			pieces = append(pieces, plainPiece(h, status))
		}
	}
	if len(pieces) == 0 && v.Final {
		pieces = []piece{plainPiece("…", "…")}
	}
	return pieces
}

// clipUTF16 shortens s to at most n UTF-16 units, marking the cut. It
// reads no more of s than the units it keeps.
func clipUTF16(s string, n int) string {
	units, end := 0, -1 // end: where the text stops when it has to be cut
	for i, r := range s {
		w := 1
		if r > 0xFFFF {
			w = 2
		}
		if units+w > n-1 && end < 0 {
			end = i
		}
		if units += w; units > n {
			return s[:end] + "…"
		}
	}
	return s
}
