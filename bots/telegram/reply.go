package telegram

import (
	"context"
	"encoding/json"
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

// reply is one answer in a chat: the messages it has sent so far, edited
// as the answer grows, and in private chats a live draft of its last part.
// It implements sessions.Reply and sessions.Typer.
type reply struct {
	b       *Bot
	private bool

	mu      sync.Mutex
	chat    int64
	topic   int
	replyTo int // the user's message, answered in groups
	draftID int64
	parts   []sentPart
	content partRenderer // renders the answer, again only where it grew
}

// sentPart is one message of the answer as last shown.
type sentPart struct {
	id    int
	html  string // the HTML last shown (or tried, when plain)
	plain bool   // Telegram refused the HTML: the part goes as plain text
	stop  bool   // it carries the Stop button
	known bool   // false after a restart: the text shown is unknown
}

// piece is one message-sized part of a view: its HTML, and the same text
// without markup for when Telegram refuses the HTML (made only then).
type piece struct {
	html  string
	plain func() string
}

// plainPiece is a piece whose text has no markup to lose.
func plainPiece(html, plain string) piece {
	return piece{html: html, plain: func() string { return plain }}
}

func (b *Bot) newReply(p place) *reply {
	r := &reply{b: b, private: p.private, chat: p.chat, topic: p.topic}
	if !p.private {
		r.replyTo = p.msgID
	}
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

// Typing shows "typing…" in the chat or topic. A flood refusal is a
// *sessions.RateLimitError.
func (r *reply) Typing(ctx context.Context) error {
	r.mu.Lock()
	chat, topic := r.chat, r.topic
	r.mu.Unlock()
	err := r.b.api.typing(ctx, chat, topic)
	if rl := rateLimit(err); rl != nil {
		return rl
	}
	return err
}

// snapshot is a reply's record for recovery after a restart.
type snapshot struct {
	Chat     int64 `json:"chat"`
	Topic    int   `json:"topic,omitempty"`
	ReplyTo  int   `json:"reply_to,omitempty"`
	Private  bool  `json:"private,omitempty"`
	Messages []int `json:"messages,omitempty"`
}

// Snapshot records where the answer is shown (chat, topic, message ids),
// for the Manager's progress record.
func (r *reply) Snapshot() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{Chat: r.chat, Topic: r.topic, ReplyTo: r.replyTo, Private: r.private}
	for _, p := range r.parts {
		s.Messages = append(s.Messages, p.id)
	}
	raw, _ := json.Marshal(s) // ints and bools always encode
	return raw
}

// Show makes v the visible answer: it renders v into message-sized pieces,
// edits the messages whose piece changed, sends the new ones and, while
// the answer runs in a private chat with drafts, streams the last piece as
// a draft. It makes one request per call (two when Telegram refuses the
// HTML and the text goes again as plain text) and returns sessions.ErrMore
// while more pieces need one.
func (r *reply) Show(ctx context.Context, v sessions.View) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.show(ctx, v)
	if to := migratedTo(err); to != 0 {
		// The group became a supergroup: the answer starts over there.
		r.b.log.Info("reply follows a migrated chat", "from", r.chat, "to", to)
		r.chat, r.replyTo, r.parts = to, 0, nil
		m, err := r.show(ctx, v)
		return n + m, err
	}
	return n, err
}

func (r *reply) show(ctx context.Context, v sessions.View) (int, error) {
	pieces := layout(v, r.content.render(v.Content))
	if len(pieces) == 0 {
		return 0, nil
	}
	drafting := !v.Final && r.private && r.b.opts.Drafts && !r.b.draftsOff.Load()
	nmsg := len(pieces)
	if drafting {
		// Messages already sent stay messages; the rest is a draft.
		nmsg = max(len(pieces)-1, min(len(r.parts), len(pieces)))
	}
	stoppable := !v.Final && (v.Content != "" || v.Reasoning != "" || !strings.HasPrefix(v.Status, "⏳"))
	requests := 0
	for i := range nmsg {
		stop := stoppable && i == len(pieces)-1
		if requests > 0 && r.needsRequest(i, pieces[i], stop) {
			return requests, sessions.ErrMore // one request per Show
		}
		n, err := r.showPart(ctx, i, pieces[i], stop)
		requests += n
		if err != nil {
			return requests, err
		}
	}
	if nmsg < len(pieces) {
		if requests > 0 {
			return requests, sessions.ErrMore
		}
		n, err := r.showDraft(ctx, nmsg, pieces[nmsg])
		requests += n
		if err == nil || !r.b.draftsOff.Load() {
			return requests, err
		}
		// Drafts were refused: show this piece as a message from now on.
		n, err = r.showPart(ctx, nmsg, pieces[nmsg], stoppable)
		requests += n
		if err != nil {
			return requests, err
		}
	}
	// Pieces can shrink (a status line merged back): delete leftovers.
	for len(r.parts) > len(pieces) {
		if requests > 0 {
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
func (r *reply) needsRequest(i int, p piece, stop bool) bool {
	if i >= len(r.parts) {
		return true
	}
	sp := r.parts[i]
	return !sp.known || sp.html != p.html || sp.stop != stop
}

// showPart edits part i to p, or sends it when it is new.
func (r *reply) showPart(ctx context.Context, i int, p piece, stop bool) (int, error) {
	o := outgoing{chat: r.chat, thread: r.topic, text: p.html}
	if stop {
		o.keyboard = stopKeyboard()
	}
	if i < len(r.parts) {
		sp := &r.parts[i]
		if sp.known && sp.html == p.html && sp.stop == stop {
			return 0, nil
		}
		if sp.plain {
			o.text, o.plain = p.plain(), true
		}
		err := r.b.api.edit(ctx, sp.id, o)
		requests := 1
		if isParseError(err) {
			r.b.log.Warn("Telegram refused the HTML; showing plain text", "chat", r.chat, "error", err)
			sp.plain, o.text, o.plain = true, p.plain(), true
			err = r.b.api.edit(ctx, sp.id, o)
			requests++
		}
		if err != nil && !isNotModified(err) {
			return requests, r.classify(err)
		}
		sp.html, sp.stop, sp.known = p.html, stop, true
		return requests, nil
	}
	if i == 0 {
		o.replyTo = r.replyTo
	}
	id, err := r.b.api.send(ctx, o)
	requests := 1
	plain := false
	if isParseError(err) {
		r.b.log.Warn("Telegram refused the HTML; sending plain text", "chat", r.chat, "error", err)
		o.text, o.plain, plain = p.plain(), true, true
		id, err = r.b.api.send(ctx, o)
		requests++
	}
	if err != nil {
		return requests, r.classify(err)
	}
	r.parts = append(r.parts, sentPart{id: id, html: p.html, plain: plain, stop: stop, known: true})
	return requests, nil
}

// Draft reports whether v would be shown as a draft (sessions.Drafter):
// in a private chat with drafts on, a view not final is, apart from the
// parts of a long answer that became messages (rare).
func (r *reply) Draft(v sessions.View) bool {
	return !v.Final && r.private && r.b.opts.Drafts && !r.b.draftsOff.Load()
}

// showDraft streams piece i as the answer's live draft. A refusal other
// than a rate limit turns drafts off for the process and returns an error.
// A draft is a preview, not a message: Telegram charges it to no chat's
// limit, so it reports no requests to the chat's window (the engine still
// paces it by the edit interval and counts it in the bot's budget).
func (r *reply) showDraft(ctx context.Context, i int, p piece) (int, error) {
	if r.draftID == 0 {
		r.draftID = r.b.draftSeq.Add(1) << 8
	}
	o := outgoing{chat: r.chat, thread: r.topic, text: p.html}
	err := r.b.api.draft(ctx, r.draftID+int64(i)+1, o)
	if isParseError(err) {
		o.text, o.plain = p.plain(), true
		err = r.b.api.draft(ctx, r.draftID+int64(i)+1, o)
	}
	if err == nil {
		return 0, nil
	}
	if rl := rateLimit(err); rl != nil {
		return 0, rl
	}
	if apiError(err) != nil {
		if r.b.draftsOff.CompareAndSwap(false, true) {
			r.b.log.Warn("drafts refused; streaming by editing messages instead", "error", err)
		}
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
		pieces = append(pieces, piece{html: part.html, plain: func() string { return clipUTF16(PlainText(md), MaxMessageLen) }})
	}
	if reasoning := strings.TrimSpace(v.Reasoning); reasoning != "" && v.ReasoningMode != sessions.ReasoningHidden {
		h := RenderReasoning(reasoning, reasoningLimit)
		if v.ReasoningMode == sessions.ReasoningFull {
			h = strings.Replace(h, "<blockquote expandable>", "<blockquote>", 1)
		}
		plain := func() string { return clipUTF16(reasoning, reasoningLimit) }
		if len(pieces) > 0 && TextLen(h)+2+TextLen(pieces[0].html) <= MaxMessageLen {
			content := pieces[0].plain
			pieces[0] = piece{html: h + "\n\n" + pieces[0].html, plain: func() string { return plain() + "\n\n" + content() }}
		} else {
			pieces = append([]piece{{html: h, plain: plain}}, pieces...)
		}
	}
	if status := strings.TrimSpace(v.Status); status != "" {
		status = clipUTF16(status, 1000)
		h := RenderStatus(status)
		if n := len(pieces); n > 0 && TextLen(pieces[n-1].html)+2+TextLen(h) <= MaxMessageLen {
			content := pieces[n-1].plain
			pieces[n-1] = piece{html: pieces[n-1].html + "\n\n" + h, plain: func() string { return content() + "\n\n" + status }}
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
