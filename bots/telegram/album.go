package telegram

import (
	"context"
	"encoding/json"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/sessions"
)

// maxAlbum is the number of items merged into one message: Telegram's
// largest album. Further items with the same media_group_id (which
// Telegram does not send) make messages of their own.
const maxAlbum = 10

// albumKey identifies an album: Telegram gives each item of an album (the
// photos or files a user sends at once) the same media_group_id and
// delivers them as separate updates, usually in one batch.
type albumKey struct {
	chat  int64
	group string
}

// albumOf is the album of an update's message; the zero key for none.
func albumOf(u incoming) albumKey {
	if u.Message == nil || u.Message.MediaGroupID == "" || u.Message.Chat == nil {
		return albumKey{}
	}
	return albumKey{u.Message.Chat.ID, u.Message.MediaGroupID}
}

// batchItem is one update of a getUpdates batch, decoded (or not: err).
type batchItem struct {
	id  int
	u   incoming
	err error
}

type batch []batchItem

// decodeBatch decodes the updates of a batch from offset on: those before
// it are confirmed already, and updates without an id are malformed.
func decodeBatch(raws []json.RawMessage, offset int) batch {
	out := make(batch, 0, len(raws))
	for _, raw := range raws {
		id := updateID(raw)
		if id < offset {
			continue
		}
		u, err := decodeUpdate(raw)
		out = append(out, batchItem{id: id, u: u, err: err})
	}
	return out
}

// tailAlbum is the album of the batch's last update; the zero key when it
// is not an album's item.
func (bt batch) tailAlbum() albumKey {
	if len(bt) == 0 || bt[len(bt)-1].err != nil {
		return albumKey{}
	}
	return albumOf(bt[len(bt)-1].u)
}

// first is the index of the album's first item in the batch.
func (bt batch) first(k albumKey) int {
	for i, it := range bt {
		if it.err == nil && albumOf(it.u) == k {
			return i
		}
	}
	return len(bt)
}

// handleBatch hands the batch's updates to the Manager in order. The
// items of an album become one message at the place of its first item,
// with the items after it in the batch merged in (up to maxAlbum). It
// returns the offset past the last update handled, and held when the
// store could not save a message: that update and the ones after it stay
// unconfirmed. When ctx ends, it stops before the next update. The items merged into an album handed over are remembered
// (b.merged) until confirmed, so that delivered again they are not
// answered alone.
func (b *Bot) handleBatch(ctx context.Context, bt batch, offset int) (next int, held bool) {
	next = offset
	for i, it := range bt {
		if ctx.Err() != nil {
			// Leadership was lost (or Run is ending): no further update
			// is taken, and the rest stay unconfirmed for the next poll.
			return next, false
		}
		if b.merged[it.id] {
			next = it.id + 1
			continue
		}
		var err error
		switch k := albumOf(it.u); {
		case it.err != nil:
			b.log.Warn("skip update", "update_id", it.id, "error", it.err)
		case k != albumKey{}:
			items := []*tgbotapi.Message{it.u.Message}
			var ids []int
			for _, o := range bt[i+1:] {
				if len(items) < maxAlbum && o.err == nil && albumOf(o.u) == k {
					items = append(items, o.u.Message)
					ids = append(ids, o.id)
				}
			}
			if err = b.dispatchAlbum(ctx, items, it.u.Topic); err == nil {
				for _, id := range ids {
					b.merged[id] = true
				}
			}
		default:
			err = b.dispatch(ctx, it.u)
		}
		if err != nil {
			// The store could not save the message: the update stays
			// unconfirmed, and Telegram delivers it again.
			return next, true
		}
		next = it.id + 1
	}
	return next, false
}

// dispatchAlbum handles an album's items as one message, within
// updateTimeout: the first item's (whose id the Manager dedupes by, so an
// album delivered again is refused as a duplicate), with the files of
// every item in order and the caption of whichever item has one.
func (b *Bot) dispatchAlbum(ctx context.Context, items []*tgbotapi.Message, topic int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), updateTimeout)
	defer cancel()
	m := *items[0]
	var files []sessions.Attachment
	for _, it := range items {
		files = append(files, b.attachments(it)...)
		if m.Text == "" && m.Caption == "" && it.Caption != "" {
			m.Caption, m.CaptionEntities = it.Caption, it.CaptionEntities
		}
		if m.ReplyToMessage == nil {
			m.ReplyToMessage = it.ReplyToMessage
		}
	}
	return b.onMessage(ctx, &m, topic, files)
}
