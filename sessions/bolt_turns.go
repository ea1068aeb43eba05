package sessions

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
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
// new record whose question has a MsgID not above the conversation's last
// accepted message is refused with ErrDuplicate; updating a record keeps it.
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
			if err := acceptMessage(tx, name, q.Question.MsgID); err != nil {
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

// RemoveQueued drops the record of key's queued message id, if any.
func (s *BoltStore) RemoveQueued(ctx context.Context, key Key, id uint64) error {
	return s.moveQueued(ctx, key, id, nil)
}

// moveQueued appends values to key's history and drops the record of
// key's queued message id, in one transaction.
func (s *BoltStore) moveQueued(ctx context.Context, key Key, id uint64, values [][]byte) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	name, err := keyName(key)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		if err := s.appendHistory(tx, name, values); err != nil {
			return err
		}
		b := tx.Bucket(bucketQueued)
		if b == nil {
			if len(values) == 0 {
				return errRollback // nothing recorded, nothing to write
			}
			return nil
		}
		return b.Delete(queuedKey(name, id))
	})
	if err != nil {
		return fmt.Errorf("sessions: move queued message of %s: %w", key, err)
	}
	return nil
}

// Commit makes c one transaction, durable when it returns: it appends
// c.Entries to key's history (refusing with ErrDuplicate a user entry whose
// MsgID is not above the conversation's last accepted message, unless it
// comes from the queued record c.QueuedID), drops that queued record, and
// makes c.Progress key's progress record, replacing any record pending
// write-behind.
func (s *BoltStore) Commit(ctx context.Context, key Key, c Commit) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	name, err := keyName(key)
	if err != nil {
		return err
	}
	values := make([][]byte, len(c.Entries))
	for i, e := range c.Entries {
		if values[i], err = json.Marshal(e); err != nil {
			return fmt.Errorf("sessions: encode entry of %s: %w", key, err)
		}
	}
	var progress []byte
	if c.Progress != nil {
		if progress, err = json.Marshal(c.Progress); err != nil {
			return fmt.Errorf("sessions: encode progress of %s: %w", key, err)
		}
	}
	err = s.replaceProgress(name, func(tx *bolt.Tx) error {
		for _, e := range c.Entries {
			if e.Role != llm.RoleUser || c.QueuedID != 0 {
				continue
			}
			if err := acceptMessage(tx, name, e.MsgID); err != nil {
				return err
			}
		}
		if err := s.appendHistory(tx, name, values); err != nil {
			return err
		}
		if b := tx.Bucket(bucketQueued); b != nil && c.QueuedID != 0 {
			if err := b.Delete(queuedKey(name, c.QueuedID)); err != nil {
				return err
			}
		}
		if progress == nil {
			return nil
		}
		return tx.Bucket(bucketProgress).Put(name, progress)
	}, progress != nil)
	if err != nil {
		return fmt.Errorf("sessions: commit to %s: %w", key, err)
	}
	return nil
}

// SaveProgress records p as key's progress record durably: it returns once
// the record is committed, replacing any record pending write-behind.
func (s *BoltStore) SaveProgress(ctx context.Context, key Key, p Progress) error {
	return s.Commit(ctx, key, Commit{Progress: &p})
}

// replaceProgress runs fn in a write transaction; when drop is true, the
// conversation's pending progress record is discarded in the same
// transaction (fn writes a newer one), and restored if the transaction
// fails. Dropping it inside the transaction orders it against flush, which
// reads pending inside its own write transaction.
func (s *BoltStore) replaceProgress(name []byte, fn func(*bolt.Tx) error, drop bool) error {
	var (
		dropped    pendingProgress
		hadPending bool
	)
	err := s.update(func(tx *bolt.Tx) error {
		if drop {
			s.mu.Lock()
			dropped, hadPending = s.pending[string(name)]
			delete(s.pending, string(name))
			s.mu.Unlock()
		}
		return fn(tx)
	})
	if err != nil && hadPending {
		s.mu.Lock()
		if _, ok := s.pending[string(name)]; !ok {
			s.pending[string(name)] = dropped
		}
		s.mu.Unlock()
	}
	return err
}

// acceptMessage checks msgID against the last message accepted in
// conversation name and records it as the last: ErrDuplicate when it is
// not above it (compared as numbers when both are; equal otherwise). An
// empty msgID is always accepted and not recorded.
func acceptMessage(tx *bolt.Tx, name []byte, msgID string) error {
	if msgID == "" {
		return nil
	}
	conv, err := tx.Bucket(bucketConversations).CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	if last := conv.Get(keyLastMessage); last != nil && !messageAfter(msgID, string(last)) {
		return fmt.Errorf("%w: message %s (last accepted %s)", ErrDuplicate, msgID, last)
	}
	return conv.Put(keyLastMessage, []byte(msgID))
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
// last user message accepted there (see acceptMessage).
var keyLastMessage = []byte("last_message")
