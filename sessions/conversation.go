package sessions

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// Key identifies a conversation: a Discord channel, thread or DM; a Telegram
// chat or forum topic; a terminal user. Thread is empty when the platform
// conversation has no thread.
type Key struct {
	Platform string
	Chat     string
	Thread   string
}

// String is the key's stable text form, "platform:chat" or
// "platform:chat:thread", used in logs and as the store key.
func (k Key) String() string {
	if k.Thread == "" {
		return k.Platform + ":" + k.Chat
	}
	return k.Platform + ":" + k.Chat + ":" + k.Thread
}

// ParseKey is the inverse of Key.String. Chat ids never contain ':'.
func ParseKey(s string) (Key, bool) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return Key{}, false
	}
	k := Key{Platform: parts[0], Chat: parts[1]}
	if len(parts) == 3 {
		k.Thread = parts[2]
	}
	return k, true
}

// Settings are a conversation's own choices. Zero fields mean "use the
// configured default".
type Settings struct {
	Model        string        `json:"model,omitempty"` // "provider/model"
	SystemPrompt *string       `json:"system_prompt,omitempty"`
	Temperature  *float64      `json:"temperature,omitempty"`
	MaxTokens    int           `json:"max_tokens,omitempty"`
	Reasoning    ReasoningMode `json:"reasoning,omitempty"`
}

// Entry is one message of a conversation's history.
type Entry struct {
	// Seq is the entry's position, assigned by the store on Append (from 1).
	Seq  uint64 `json:"-"`
	Role string `json:"role"` // llm.RoleUser or llm.RoleAssistant
	// MsgID is the platform's id of a user's message, when it has one.
	MsgID string `json:"msg_id,omitempty"`
	// Unordered marks a MsgID from a platform that does not deliver a
	// conversation's messages in id order (Discord): a message is refused
	// as a duplicate only when its id is among the conversation's last
	// RecentMessages unordered ids (two connections of a shard being
	// handed over, a replay after a resume), never for coming after a
	// later one.
	Unordered  bool      `json:"unordered,omitempty"`
	AuthorID   string    `json:"author_id,omitempty"`
	AuthorName string    `json:"author_name,omitempty"`
	Text       string    `json:"text"`
	Reasoning  string    `json:"reasoning,omitempty"` // stored, never sent upstream
	Model      string    `json:"model,omitempty"`
	Usage      llm.Usage `json:"usage,omitzero"`
	// Status is empty for a complete answer, else "stopped", "failed" or
	// "interrupted".
	Status string    `json:"status,omitempty"`
	Time   time.Time `json:"time"`
	// Group is the group or server a user's message was sent in
	// (Message.Group), so that answering it again (/retry) is counted
	// against the same limits; empty elsewhere.
	Group string `json:"group,omitempty"`

	// The fields below describe the files sent with a user's message
	// (added with schema 2; absent from older entries).

	// Attachments are the files of the message not read yet: all of them
	// while it waits for its turn, afterwards those that could not be
	// fetched, prepared or transcribed. /retry reads them again; the
	// model reads a placeholder for each ("[voice message, not
	// transcribed]").
	Attachments []Attachment `json:"attachments,omitempty"`
	// Images are the pictures read from the message, kept in the store's
	// blobs by content (see Image). A model that sees images gets the
	// newest of them (Config.MaxImages per prompt); others read "[image]".
	Images []Image `json:"images,omitempty"`
	// Inline is what the model reads of the message's files besides Text,
	// which stays what the user wrote: text files and PDFs as blocks that
	// name the file and its type, voice messages as their transcripts.
	Inline string `json:"inline,omitempty"`

	// read is what the turn that read the message's files tells the
	// sender with its answer; set while that turn runs, never stored.
	read *filesRead
}

// Image is a picture of a history entry, prepared for vision models
// (scaled, re-encoded) and stored once per content: entries refer to it
// by its hash, and the store deletes it when no entry refers to it.
type Image struct {
	// SHA256 is the hex SHA-256 of the encoded image: its key in the store.
	SHA256 string `json:"sha256"`
	// MIME is "image/jpeg" or "image/png".
	MIME string `json:"mime"`
	// Size is the encoded image's length in bytes; Width and Height its
	// size in pixels.
	Size   int `json:"size"`
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Data is the encoded image while it is not stored yet: the commit
	// that adds its entry to the history stores it in the same
	// transaction. Entries read from the store leave it nil (see
	// Store.Blob).
	Data []byte `json:"-"`
}

// Progress records an answer being shown, so that after a crash or restart
// the adapter can finalise it with an "interrupted" note.
type Progress struct {
	Key Key `json:"-"`
	// ID is the turn's id: its queued record (the question not yet in the
	// history) has the same. 0 for a record of a release before turns had
	// ids, whose question is in the history.
	ID          uint64 `json:"-"`
	Destination string `json:"destination"`
	// Reply is the adapter's own record of the reply (message ids), opaque here.
	Reply   []byte    `json:"reply,omitempty"`
	Shown   View      `json:"shown"`
	Started time.Time `json:"started"`
	// Committed is set once the answer is in the history: Shown is its
	// final view, to be shown again (not marked interrupted) after a crash.
	Committed bool `json:"committed,omitempty"`
}

// Queued is a user's message waiting for the answer before it in its
// conversation. It is recorded durably while it waits, so that a restart
// neither loses it nor leaves its reply saying "queued" for ever.
type Queued struct {
	Key Key    `json:"-"`
	ID  uint64 `json:"-"`
	// Question is the message as it would enter the history.
	Question    Entry  `json:"question"`
	Destination string `json:"destination"`
	// Reply is the adapter's record of the reply showing its place in the
	// queue, once it was shown.
	Reply []byte `json:"reply,omitempty"`
	// Owner names the process that recorded the message, on a store
	// several processes share (set by the store: see Owners); empty
	// otherwise.
	Owner string `json:"owner,omitempty"`
}

// ErrDuplicate reports a user's message the store has accepted before: a
// platform delivering it again after a restart.
var ErrDuplicate = errors.New("message accepted before")

// Commit is one durable change to a conversation (Store.Commit).
type Commit struct {
	// Entries are appended to the history. A user entry with a MsgID is
	// refused with ErrDuplicate when the conversation accepted that message
	// (or a later one) before, unless it comes from the queued record
	// QueuedID. Their images are stored with them (Image.Data).
	Entries []Entry
	// Replace holds entries that take the place of the history's entries
	// with the same Seq, before Entries are appended: a question whose
	// files a /retry read again. One whose Seq is no longer in the
	// history (pruned, reset) is skipped.
	Replace []Entry
	// QueuedID, when non-zero, is the queued record whose message Entries
	// holds; it is dropped.
	QueuedID uint64
	// Progress, when not nil, becomes turn ProgressID's progress record;
	// DropProgress removes that record instead.
	ProgressID   uint64
	Progress     *Progress
	DropProgress bool
	// Usage, when not nil, is the answer's usage, added to the usage
	// counters in the same transaction (see UsageStore).
	Usage *UsageRecord
}

// Store keeps conversations. Implementations are safe for concurrent use.
// The bbolt implementation is BoltStore; another backend (etcd) can satisfy
// the same interface.
type Store interface {
	// Settings returns a conversation's settings; the zero value for a
	// conversation never seen.
	Settings(ctx context.Context, key Key) (Settings, error)
	// SaveSettings replaces a conversation's settings.
	SaveSettings(ctx context.Context, key Key, s Settings) error
	// History returns up to limit of the newest entries, oldest first.
	History(ctx context.Context, key Key, limit int) ([]Entry, error)
	// Append adds entries in one transaction, assigns their Seq, stores
	// their images (Image.Data), prunes the oldest entries beyond the
	// store's retention, and, when done is true, clears every progress
	// record of the conversation in the same transaction. Every method
	// that deletes entries (pruning, DeleteLast, Reset, Move over a
	// conversation, Commit's Replace) deletes with them the images no
	// remaining entry refers to.
	Append(ctx context.Context, key Key, done bool, entries ...Entry) error
	// DeleteLast removes the newest entries while pred holds (for /retry),
	// returning what was removed, newest first.
	DeleteLast(ctx context.Context, key Key, pred func(Entry) bool) ([]Entry, error)
	// Reset deletes a conversation's history, keeping its settings.
	Reset(ctx context.Context, key Key) error
	// Move renames a conversation (settings and history) from one key to
	// another, replacing any conversation at the new key.
	Move(ctx context.Context, from, to Key) error
	// Commit makes c one transaction, durable when it returns (see
	// Commit); a refused user entry (ErrDuplicate) writes nothing.
	Commit(ctx context.Context, key Key, c Commit) error
	// SetProgress records (or, with p nil, clears) turn id's answer in
	// progress. It may be written behind: durable within a fraction of a
	// second.
	SetProgress(ctx context.Context, key Key, id uint64, p *Progress) error
	// SaveProgress records p durably before it returns (where the answer
	// is shown changed: a crash must not forget a message id).
	SaveProgress(ctx context.Context, key Key, id uint64, p Progress) error
	// Progresses lists every recorded answer in progress.
	Progresses(ctx context.Context) ([]Progress, error)
	// SetQueued records q (for q.Key and q.ID) durably before it returns;
	// a new record is refused like a user entry in Commit (ErrDuplicate).
	SetQueued(ctx context.Context, q Queued) error
	// QueuedMessages lists every recorded queued message, by key and id.
	QueuedMessages(ctx context.Context) ([]Queued, error)
	// Blob returns the stored image whose hex SHA-256 is hash (see
	// Image), or an error wrapping ErrNoBlob when none is stored.
	Blob(ctx context.Context, hash string) ([]byte, error)
	// Value and SetValue keep small adapter state (a Telegram update offset).
	Value(ctx context.Context, name string) ([]byte, error)
	SetValue(ctx context.Context, name string, v []byte) error
}
