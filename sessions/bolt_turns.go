package sessions

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/palaver-bot/palaver/llm"
)

func queuedKey(name []byte, id uint64) []byte {
	k := make([]byte, 0, len(name)+9)
	k = append(k, name...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

// SetQueued records q durably: it returns once the record is committed. A
// new record whose question the conversation accepted before is refused
// with ErrDuplicate (see acceptMessage); updating a record keeps it.
func (s *BoltStore) SetQueued(ctx context.Context, q Queued) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	name, err := keyName(q.Key)
	if err != nil {
		return err
	}
	v, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("sessions: encode queued message of %s: %w", q.Key, err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketQueued)
		if err != nil {
			return err
		}
		k := queuedKey(name, q.ID)
		if b.Get(k) == nil {
			if err := acceptMessage(tx, name, q.Question); err != nil {
				return err
			}
		}
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("sessions: record queued message of %s: %w", q.Key, err)
	}
	return nil
}

// Commit makes c one transaction, durable when it returns: it replaces
// the entries of c.Replace, appends c.Entries to key's history (refusing
// with ErrDuplicate a user entry the conversation accepted before, unless
// it comes from the queued record c.QueuedID: see acceptMessage), storing
// their images and deleting those no entry refers to any more, drops that
// queued record, adds c.Usage to the usage counters, and makes c.Progress
// (or with c.DropProgress nothing) turn c.ProgressID's progress record,
// replacing any record pending write-behind.
func (s *BoltStore) Commit(ctx context.Context, key Key, c Commit) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	name, err := keyName(key)
	if err != nil {
		return err
	}
	values, err := encodeEntries(c.Entries)
	if err != nil {
		return fmt.Errorf("sessions: encode entry of %s: %w", key, err)
	}
	replaced, err := encodeEntries(c.Replace)
	if err != nil {
		return fmt.Errorf("sessions: encode entry of %s: %w", key, err)
	}
	var progress []byte
	if c.Progress != nil {
		if progress, err = json.Marshal(c.Progress); err != nil {
			return fmt.Errorf("sessions: encode progress of %s: %w", key, err)
		}
	}
	pk := progressKey(name, c.ProgressID)
	var dropped map[string]pendingProgress
	err = s.update(func(tx *bolt.Tx) error {
		for _, e := range c.Entries {
			if e.Role != llm.RoleUser || c.QueuedID != 0 {
				continue
			}
			if err := acceptMessage(tx, name, e); err != nil {
				return err
			}
		}
		if err := replaceEntries(tx, name, c.Replace, replaced); err != nil {
			return err
		}
		if err := s.appendHistory(tx, name, c.Entries, values); err != nil {
			return err
		}
		if b := tx.Bucket(bucketQueued); b != nil && c.QueuedID != 0 {
			if err := b.Delete(queuedKey(name, c.QueuedID)); err != nil {
				return err
			}
		}
		if c.Usage != nil {
			if err := addUsage(tx, *c.Usage); err != nil {
				return err
			}
		}
		if progress == nil && !c.DropProgress {
			return nil
		}
		// Replace a record pending write-behind, in this transaction so
		// that a later flush cannot bring it back.
		dropped = s.takePending(string(pk))
		if progress == nil {
			return tx.Bucket(bucketProgress).Delete(pk)
		}
		return tx.Bucket(bucketProgress).Put(pk, progress)
	})
	if err != nil {
		s.restorePending(dropped)
		return fmt.Errorf("sessions: commit to %s: %w", key, err)
	}
	return nil
}

// SaveProgress records p as turn id's progress record in key durably: it
// returns once the record is committed, replacing any record pending
// write-behind.
func (s *BoltStore) SaveProgress(ctx context.Context, key Key, id uint64, p Progress) error {
	return s.Commit(ctx, key, Commit{ProgressID: id, Progress: &p})
}

// takePending removes and returns the pending record under k, if any.
func (s *BoltStore) takePending(k string) map[string]pendingProgress {
	s.mu.Lock()
	defer s.mu.Unlock()
	pp, ok := s.pending[k]
	if !ok {
		return nil
	}
	delete(s.pending, k)
	return map[string]pendingProgress{k: pp}
}

// dropPending removes and returns the pending records of every turn of
// conversation name.
func (s *BoltStore) dropPending(name []byte) map[string]pendingProgress {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[string]pendingProgress
	for k, pp := range s.pending {
		if isProgressOf([]byte(k), name) {
			if out == nil {
				out = make(map[string]pendingProgress)
			}
			out[k] = pp
			delete(s.pending, k)
		}
	}
	return out
}

// restorePending puts back records taken by a transaction that failed,
// unless newer ones replaced them meanwhile.
func (s *BoltStore) restorePending(dropped map[string]pendingProgress) {
	if len(dropped) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, pp := range dropped {
		if _, ok := s.pending[k]; !ok {
			s.pending[k] = pp
		}
	}
}

// deleteProgress deletes every progress record of conversation name.
func deleteProgress(tx *bolt.Tx, name []byte) error {
	c := tx.Bucket(bucketProgress).Cursor()
	for k, _ := c.Seek(name); k != nil && bytes.HasPrefix(k, name); {
		if !isProgressOf(k, name) {
			k, _ = c.Next()
			continue
		}
		if err := c.Delete(); err != nil {
			return err
		}
		k, _ = c.Seek(name)
	}
	return nil
}

// progressKey is the progress bucket's key of turn id in conversation
// name: name 0x00 id, or for id 0 (a record of a release before turns had
// ids) the name alone.
func progressKey(name []byte, id uint64) []byte {
	if id == 0 {
		return name
	}
	return queuedKey(name, id)
}

// isProgressOf reports whether k is a progress key of conversation name.
func isProgressOf(k, name []byte) bool {
	return bytes.Equal(k, name) || len(k) == len(name)+9 && bytes.HasPrefix(k, name) && k[len(name)] == 0
}

// parseProgressKey is the inverse of progressKey.
func parseProgressKey(k []byte) (Key, uint64, bool) {
	var id uint64
	if i := len(k) - 9; i >= 1 && k[i] == 0 {
		id = binary.BigEndian.Uint64(k[i+1:])
		k = k[:i]
	}
	key, ok := ParseKey(string(k))
	return key, id, ok
}

// acceptMessage refuses with ErrDuplicate user entry e when conversation
// name accepted its message before, and otherwise records it as accepted,
// in tx. An ordered id (Telegram's) must come after the last one accepted
// (keyLastMessage); an unordered one (Discord's, Entry.Unordered) must not
// be among the conversation's RecentMessages last unordered ones
// (keyRecentMessages). An entry without MsgID is always accepted and not
// recorded.
func acceptMessage(tx *bolt.Tx, name []byte, e Entry) error {
	if e.MsgID == "" {
		return nil
	}
	conv, err := tx.Bucket(bucketConversations).CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	if e.Unordered {
		recent, err := RememberMessage(conv.Get(keyRecentMessages), e.MsgID)
		if err != nil {
			return err
		}
		return conv.Put(keyRecentMessages, recent)
	}
	if last := conv.Get(keyLastMessage); last != nil && !messageAfter(e.MsgID, string(last)) {
		return fmt.Errorf("%w: message %s (last accepted %s)", ErrDuplicate, e.MsgID, last)
	}
	return conv.Put(keyLastMessage, []byte(e.MsgID))
}

// RecentMessages is how many unordered message ids (Discord's, which come
// in no order, see Entry.Unordered) a conversation remembers, so that a
// message delivered again (to a second gateway connection while a shard
// moves between processes, or by a retry) is refused with ErrDuplicate.
// It bounds the record to 8 bytes per id, 2 KiB per conversation: far
// more than a conversation accepts while a delivery can come twice (a
// shard hand-over lasts seconds; a user may send a few messages a
// minute).
const RecentMessages = 256

// maxMessageID bounds the length of an unordered message id (Discord's
// snowflakes have at most 20 digits).
const maxMessageID = 64

// RememberMessage returns recent, a conversation's record of the
// unordered messages it accepted last, with id added to it, or an error
// wrapping ErrDuplicate when id is in it already. The record keeps
// the last RecentMessages ids, oldest first, each as 8 bytes big-endian:
// its value when it is a decimal number (Discord's snowflakes), else its
// FNV-1a hash. recent is not modified. Store backends keep the record
// with the conversation and update it in the transaction that accepts
// the message.
func RememberMessage(recent []byte, id string) ([]byte, error) {
	if len(recent)%8 != 0 {
		return nil, fmt.Errorf("sessions: malformed record of recent messages (%d bytes, not a multiple of 8)", len(recent))
	}
	if id == "" || len(id) > maxMessageID {
		return nil, fmt.Errorf("sessions: message id %.80q: want 1 to %d bytes", id, maxMessageID)
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		h := fnv.New64a()
		h.Write([]byte(id))
		n = h.Sum64()
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	for i := 0; i < len(recent); i += 8 {
		if bytes.Equal(recent[i:i+8], k[:]) {
			return nil, fmt.Errorf("%w: message %s (among the last %d accepted)", ErrDuplicate, id, RecentMessages)
		}
	}
	if len(recent) >= 8*RecentMessages {
		recent = recent[len(recent)-8*(RecentMessages-1):]
	}
	out := make([]byte, 0, len(recent)+8)
	return append(append(out, recent...), k[:]...), nil
}

// messageAfter reports whether message id a comes after b: platforms
// number a conversation's messages in increasing order (Telegram message
// ids, Discord snowflakes). Ids that are not numbers only differ.
func messageAfter(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a != b
	}
	return x > y
}

// QueuedMessages lists every recorded queued message, by key and id.
func (s *BoltStore) QueuedMessages(ctx context.Context) ([]Queued, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var out []Queued
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQueued)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			i := len(k) - 9 // the name, 0x00, an 8-byte id
			if i < 1 || k[i] != 0 {
				return fmt.Errorf("malformed queued key %q", k)
			}
			key, ok := ParseKey(string(k[:i]))
			if !ok {
				return fmt.Errorf("malformed queued key %q", k)
			}
			var q Queued
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("decode queued message of %s: %w", key, err)
			}
			q.Key, q.ID = key, binary.BigEndian.Uint64(k[i+1:])
			out = append(out, q)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: list queued messages: %w", err)
	}
	return out, nil
}

// keyLastMessage, in a conversation's bucket, is the platform id of the
// last ordered user message accepted there, and keyRecentMessages the
// record of its last unordered ones (RememberMessage); see acceptMessage.
var (
	keyLastMessage    = []byte("last_message")
	keyRecentMessages = []byte("recent_messages")
)

// encodeEntries encodes history entries for the store.
func encodeEntries(entries []Entry) ([][]byte, error) {
	values := make([][]byte, len(entries))
	for i, e := range entries {
		v, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		values[i] = v
	}
	return values, nil
}
