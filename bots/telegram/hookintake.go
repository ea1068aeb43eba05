package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// Webhook intake limits.
const (
	// stagedName is the State value holding the staged albums.
	stagedName = "telegram/albums"
	// maxStagedBytes caps the staged albums' updates together, well under
	// a store value's limit (etcd's request limit is 1.5 MiB): past it,
	// the oldest albums are handed over before their wait ends.
	maxStagedBytes = 512 << 10
	// recentCap is how many update ids taken by webhook are remembered to
	// recognise one delivered again.
	recentCap = 4096
)

// hookIntake hands the updates of webhook requests to the Manager while
// this process leads with a webhook: one at a time, as the poller does,
// each before its request is answered 200.
//
// Albums need more: Telegram posts the updates of a chat one at a time,
// the next only once the last is answered, so an album's items cannot be
// held unanswered until the rest comes. Each item is staged in the store
// instead (the State value "telegram/albums") and answered once staged;
// the album is handed over as one message AlbumWait after its last item
// came, or when another update of its chat comes (which follows it), or
// when it has maxAlbum items. A new leader hands over the albums staged
// by the one before; one handed over already is refused by the store as
// a duplicate.
type hookIntake struct {
	b   *Bot
	ctx context.Context // ends when leadership is lost or Run ends
	// turn is held while an update is handed over or staged; close takes
	// it for good.
	turn chan struct{}
	// kick wakes runAlbums when the staged albums change.
	kick chan struct{}

	// Used under turn:
	albums []*stagedAlbum // oldest first; at most one per chat
	loaded bool           // whether the albums staged before were read
}

// stagedAlbum is an album whose items are staged.
type stagedAlbum struct {
	key     albumKey
	ids     []int
	items   []incoming
	raws    []json.RawMessage
	due     time.Time     // when it is handed over
	backoff time.Duration // the wait after a failed handover
}

// stagedAlbums is the stored form of the staged albums: each album's raw
// updates, in order.
type stagedAlbums struct {
	Albums [][]json.RawMessage `json:"albums"`
}

func newHookIntake(b *Bot, ctx context.Context) *hookIntake {
	return &hookIntake{b: b, ctx: ctx, turn: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
}

// acquire takes the turn, failing when leadership is lost or req ends
// first.
func (in *hookIntake) acquire(req context.Context) bool {
	select {
	case in.turn <- struct{}{}:
	case <-in.ctx.Done():
		return false
	case <-req.Done():
		return false
	}
	if in.ctx.Err() != nil {
		<-in.turn
		return false
	}
	return true
}

func (in *hookIntake) release() { <-in.turn }

// close waits for the update being handed over and takes no more.
func (in *hookIntake) close() { in.turn <- struct{}{} }

// take hands over the update of a webhook request, returning the status
// to answer: 200 once it is handed over or staged (or malformed beyond
// use, as the poller skips it), 400 for a body without an update_id, 500
// when the store cannot save it and 503 when leadership was lost first.
func (in *hookIntake) take(req context.Context, body []byte) int {
	id := updateID(body)
	if id < 0 {
		in.b.log.Warn("refused a webhook request without an update")
		return http.StatusBadRequest
	}
	u, decodeErr := decodeUpdate(body)
	if !in.acquire(req) {
		return http.StatusServiceUnavailable
	}
	defer in.release()
	b := in.b
	if b.handled.has(id) {
		return http.StatusOK // delivered again: Telegram missed the answer
	}
	if decodeErr != nil {
		b.log.Warn("skip update", "update_id", id, "error", decodeErr)
		b.handled.add(id)
		return http.StatusOK
	}
	if albumOf(u) != (albumKey{}) {
		if in.stage(id, u, body) != nil {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	// The chat's staged album came before this update.
	if chat := chatOf(u); chat != 0 && in.flushChat(chat, albumKey{}) != nil {
		return http.StatusInternalServerError
	}
	if b.dispatch(in.ctx, u) != nil {
		return http.StatusInternalServerError
	}
	b.handled.add(id)
	in.saved(u.Message)
	return http.StatusOK
}

// saved forgets that msg could not be saved (b.unsaved), now that it is:
// a later failure is explained again. The notes of messages Telegram
// gave up on are dropped once there are recentCap of them.
func (in *hookIntake) saved(msg *tgbotapi.Message) {
	if msg != nil && msg.Chat != nil {
		delete(in.b.unsaved, [2]int64{msg.Chat.ID, int64(msg.MessageID)})
	}
	if len(in.b.unsaved) >= recentCap {
		clear(in.b.unsaved)
	}
}

// chatOf is the chat an update comes from, 0 when unknown.
func chatOf(u incoming) int64 {
	switch {
	case u.Message != nil && u.Message.Chat != nil:
		return u.Message.Chat.ID
	case u.CallbackQuery != nil && u.CallbackQuery.Message != nil && u.CallbackQuery.Message.Chat != nil:
		return u.CallbackQuery.Message.Chat.ID
	case u.Stopped != nil:
		return u.Stopped.Chat.ID
	}
	return 0
}

// stage adds an album's item to the staged albums and saves them. An
// error means it is not staged: the request is answered 500.
func (in *hookIntake) stage(id int, u incoming, raw json.RawMessage) error {
	if !in.loaded && !in.load() {
		return errNotLoaded
	}
	k := albumOf(u)
	// Another album of the chat came first; a full album is complete.
	if err := in.flushChat(k.chat, k); err != nil {
		return err
	}
	a := in.find(k)
	if a != nil && len(a.ids) >= maxAlbum {
		if err := in.flush(a); err != nil {
			return err
		}
		a = nil
	}
	for in.size()+len(raw) > maxStagedBytes && len(in.albums) > 0 {
		oldest := in.albums[0]
		if err := in.flush(oldest); err != nil {
			return err
		}
		if oldest == a {
			a = nil
		}
	}
	if a == nil {
		a = &stagedAlbum{key: k}
		in.albums = append(in.albums, a)
	}
	a.add(id, u, raw)
	a.due = time.Now().Add(in.b.opts.AlbumWait)
	if err := in.save(); err != nil {
		in.b.log.Error("stage an album's item", "update_id", id, "error", err)
		a.pop()
		if len(a.ids) == 0 {
			in.remove(a)
		}
		return err
	}
	in.b.handled.add(id)
	select {
	case in.kick <- struct{}{}:
	default:
	}
	return nil
}

// errNotLoaded refuses to stage while the albums staged before cannot be
// read: saving would overwrite them.
var errNotLoaded = errors.New("telegram: the staged albums cannot be read")

func (a *stagedAlbum) add(id int, u incoming, raw json.RawMessage) {
	a.ids, a.items, a.raws = append(a.ids, id), append(a.items, u), append(a.raws, raw)
}

func (a *stagedAlbum) pop() {
	n := len(a.ids) - 1
	a.ids, a.items, a.raws = a.ids[:n], a.items[:n], a.raws[:n]
}

func (in *hookIntake) find(k albumKey) *stagedAlbum {
	for _, a := range in.albums {
		if a.key == k {
			return a
		}
	}
	return nil
}

func (in *hookIntake) remove(a *stagedAlbum) {
	in.albums = slices.DeleteFunc(in.albums, func(o *stagedAlbum) bool { return o == a })
}

// size is the length of the staged updates together.
func (in *hookIntake) size() int {
	n := 0
	for _, a := range in.albums {
		for _, r := range a.raws {
			n += len(r)
		}
	}
	return n
}

// flushChat hands over the staged album of chat, unless it is except.
func (in *hookIntake) flushChat(chat int64, except albumKey) error {
	for _, a := range slices.Clone(in.albums) {
		if a.key.chat == chat && a.key != except {
			if err := in.flush(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush hands a staged album over as one message and unstages it. When
// the store cannot save it, it stays staged and is tried again after a
// backoff.
func (in *hookIntake) flush(a *stagedAlbum) error {
	msgs := make([]*tgbotapi.Message, len(a.items))
	for i, it := range a.items {
		msgs[i] = it.Message
	}
	if err := in.b.dispatchAlbum(in.ctx, msgs, a.items[0].Topic); err != nil {
		a.backoff = min(max(a.backoff*2, backoffMin), backoffMax)
		a.due = time.Now().Add(a.backoff)
		in.b.log.Warn("holding an album until the store can save it", "update_id", a.ids[0], "retry_in", a.backoff)
		return err
	}
	in.remove(a)
	in.saved(msgs[0])
	if err := in.save(); err != nil {
		// Still staged in the store: whoever hands it over again is
		// refused as a duplicate.
		in.b.log.Error("unstage an album handed over", "update_id", a.ids[0], "error", err)
	}
	return nil
}

// save stores the staged albums (deleting the value when there are none).
func (in *hookIntake) save() error {
	var v []byte
	if len(in.albums) > 0 {
		var st stagedAlbums
		for _, a := range in.albums {
			st.Albums = append(st.Albums, a.raws)
		}
		var err error
		if v, err = json.Marshal(st); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(in.ctx), updateTimeout)
	defer cancel()
	return in.b.state.SetValue(ctx, stagedName, v)
}

// load reads the albums staged before (by this process or the leader
// before it), to be handed over AlbumWait from now. It reports whether
// they could be read.
func (in *hookIntake) load() bool {
	raw, err := in.b.state.Value(in.ctx, stagedName)
	if err != nil {
		if in.ctx.Err() == nil {
			in.b.log.Error("read the staged albums", "error", err)
		}
		return false
	}
	in.loaded = true
	if len(raw) == 0 {
		return true
	}
	var st stagedAlbums
	if err := json.Unmarshal(raw, &st); err != nil {
		in.b.log.Warn("ignore unreadable staged albums", "error", err)
		return true
	}
	due := time.Now().Add(in.b.opts.AlbumWait)
	for _, raws := range st.Albums {
		a := &stagedAlbum{due: due}
		for _, r := range raws {
			u, err := decodeUpdate(r)
			if err != nil || albumOf(u) == (albumKey{}) {
				continue
			}
			a.key = albumOf(u)
			a.add(updateID(r), u, r)
			in.b.handled.add(updateID(r))
		}
		if len(a.ids) > 0 {
			in.albums = append(in.albums, a)
		}
	}
	return true
}

// runAlbums hands over the staged albums when their wait ends, until
// leadership is lost or Run ends.
func (in *hookIntake) runAlbums() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var next time.Time
		if !in.acquire(in.ctx) {
			return
		}
		if !in.loaded && !in.load() {
			next = time.Now().Add(backoffMin)
		}
		now := time.Now()
		for _, a := range slices.Clone(in.albums) {
			if in.ctx.Err() == nil && !a.due.After(now) {
				_ = in.flush(a) // on failure it stays, due later
			}
		}
		for _, a := range in.albums {
			if next.IsZero() || a.due.Before(next) {
				next = a.due
			}
		}
		in.release()
		var due <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			due = timer.C
		}
		select {
		case <-in.ctx.Done():
			return
		case <-in.kick:
		case <-due:
		}
	}
}

// recentIDs remembers the last recentCap update ids added.
type recentIDs struct {
	set  map[int]bool
	ring []int
	next int
}

func (r *recentIDs) has(id int) bool { return r.set[id] }

func (r *recentIDs) add(id int) {
	if r.set == nil {
		r.set, r.ring = make(map[int]bool, recentCap), make([]int, 0, recentCap)
	}
	if r.set[id] {
		return
	}
	if len(r.ring) < recentCap {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % recentCap
	}
	r.set[id] = true
}
