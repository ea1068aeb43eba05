package etcdstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palaver-bot/palaver/sessions"
)

// blobChunk is the size of the chunks an image is kept in: one chunk, and
// its key, fits in etcd's default request limit of 1.5 MiB. It is part
// of the schema (processes that cut the same image differently would mix
// their chunks).
const blobChunk = 1 << 20

// stagingTTL is the lease of the chunks of an image written ahead of the
// commit that stores it: chunks no commit took go away with it.
const stagingTTL = 60

func (s *Store) blobPrefix(hash string) string { return s.p + "blobs/" + hash + "/" }
func (s *Store) refsKey(hash string) string    { return s.blobPrefix(hash) + "refs" }
func (s *Store) chunkKey(hash string, i int) string {
	return fmt.Sprintf("%sdata/%04d", s.blobPrefix(hash), i)
}

// Blob returns the stored image whose hex SHA-256 is hash, or an error
// wrapping sessions.ErrNoBlob. The data is checked against hash.
func (s *Store) Blob(ctx context.Context, hash string) ([]byte, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if !validHash(hash) {
		return nil, fmt.Errorf("etcd store: read image: %q is not a hex SHA-256", hash)
	}
	resp, err := s.cli.Get(ctx, s.blobPrefix(hash), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd store: read image %s: %w", hash, err)
	}
	var data []byte
	stored := false
	for _, kv := range resp.Kvs { // in key order: data/0000, data/0001, …, refs
		switch k := string(kv.Key[len(s.blobPrefix(hash)):]); {
		case k == "refs":
			stored = true
		case strings.HasPrefix(k, "data/"):
			data = append(data, kv.Value...)
		}
	}
	if !stored {
		return nil, fmt.Errorf("etcd store: read image %s: %w", hash, sessions.ErrNoBlob)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hash {
		return nil, fmt.Errorf("etcd store: read image %s: its data (%d bytes) does not match its hash", hash, len(data))
	}
	return data, nil
}

// validHash reports whether h is a lower-case hex SHA-256.
func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && h == strings.ToLower(h)
}

// checkImages refuses images whose hash is not a hex SHA-256.
func checkImages(ims []sessions.Image) error {
	for _, im := range ims {
		if !validHash(im.SHA256) {
			return fmt.Errorf("image %q: not a hex SHA-256", im.SHA256)
		}
	}
	return nil
}

// holds are the references a write adds to images, with the data offered
// for those not stored yet.
type holds struct {
	count map[string]int
	data  map[string][]byte
}

func (h *holds) add(ims []sessions.Image) {
	if len(ims) == 0 {
		return
	}
	if h.count == nil {
		h.count, h.data = make(map[string]int), make(map[string][]byte)
	}
	for _, im := range ims {
		h.count[im.SHA256]++
		if im.Data != nil {
			h.data[im.SHA256] = im.Data
		}
	}
}

// holdOps adds hs to t: a stored image's reference count goes up; an
// image not stored is written ahead in chunks (see stager) and t stores
// it, requiring that its chunks are still there. An image neither stored
// nor carrying its data is an error.
func (s *Store) holdOps(ctx context.Context, t *txn, st *stager, hs holds) error {
	if len(hs.count) == 0 {
		return nil
	}
	hashes := slices.Sorted(maps.Keys(hs.count))
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = s.refsKey(h)
	}
	kvs, err := s.read(ctx, keys...)
	if err != nil {
		return err
	}
	for i, h := range hashes {
		kv := kvs[keys[i]]
		t.unchanged(keys[i], modRev(kv))
		if kv != nil {
			t.put(keys[i], []byte(strconv.Itoa(refCount(kv.Value)+hs.count[h])))
			continue
		}
		data, ok := hs.data[h]
		if !ok {
			return fmt.Errorf("image %s: not stored, and no data to store", h)
		}
		chunks, err := st.stage(ctx, h, data)
		if err != nil {
			return fmt.Errorf("image %s: %w", h, err)
		}
		for _, k := range chunks {
			// Still there, and now kept for good: the put keeps the value
			// and drops the staging lease.
			t.exists(k)
			t.put(k, nil, clientv3.WithIgnoreValue())
		}
		t.put(keys[i], []byte(strconv.Itoa(hs.count[h])))
	}
	return nil
}

// refCount decodes a reference count; a malformed one is 0.
func refCount(v []byte) int {
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// stager writes images ahead of the commit that stores them, each chunk
// in a transaction of its own, under a lease of its own: the commit takes
// the chunks off the lease, and done revokes it, deleting the chunks no
// commit took.
type stager struct {
	s     *Store
	lease clientv3.LeaseID
}

// stage writes the chunks of data that are not there yet and returns
// their keys.
func (st *stager) stage(ctx context.Context, hash string, data []byte) ([]string, error) {
	s := st.s
	if st.lease == 0 {
		resp, err := s.cli.Grant(ctx, stagingTTL)
		if err != nil {
			return nil, fmt.Errorf("stage: %w", err)
		}
		st.lease = resp.ID
	}
	var keys []string
	for i := 0; i == 0 || i*blobChunk < len(data); i++ {
		k := s.chunkKey(hash, i)
		chunk := data[i*blobChunk : min(len(data), (i+1)*blobChunk)]
		_, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, string(chunk), clientv3.WithLease(st.lease))).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("stage chunk %d: %w", i, s.txnError(err))
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// done revokes the staging lease, if one was taken.
func (st *stager) done() {
	if st.lease == 0 {
		return
	}
	ctx, cancel := st.s.opCtx(context.Background())
	defer cancel()
	if _, err := st.s.cli.Revoke(ctx, st.lease); err != nil {
		st.s.log.Warn("etcd store: revoke the lease of staged images (they expire with it)", slog.Any("error", err))
	}
}

// releaseImages counts in rel the images of the encoded entry v, which
// leaves the history. Entries without images, most of them, are not
// decoded.
func releaseImages(rel map[string]int, v []byte) {
	if !bytes.Contains(v, []byte(`"images":`)) {
		return
	}
	var e struct {
		Images []sessions.Image `json:"images"`
	}
	if json.Unmarshal(v, &e) != nil {
		return
	}
	for _, im := range e.Images {
		rel[im.SHA256]++
	}
}

// releaseOp adds to t a release record of rel, the references the write
// drops, and returns its key ("" for none). The counts go down, and the
// images no entry refers to are deleted, right after the write (drain),
// in transactions of a bounded size: a history of many images does not
// fit in one.
func (s *Store) releaseOp(t *txn, rel map[string]int) string {
	if len(rel) == 0 {
		return ""
	}
	v, _ := json.Marshal(rel) // a map of strings to ints always encodes
	k := s.releaseKey(newID())
	t.put(k, v)
	return k
}

// drainAfter drains the release record k a write made. The write
// succeeded whatever happens here: a record left behind is drained by a
// later sweep.
func (s *Store) drainAfter(ctx context.Context, k string) {
	if k == "" {
		return
	}
	if err := s.drain(ctx, k); err != nil {
		s.log.Warn("etcd store: release images (a later sweep will)", slog.String("record", k), slog.Any("error", err))
	}
}

// drain applies the release record at k, a batch of images per
// transaction, until it is gone. Several processes may drain one record:
// each transaction requires the record and the counts it changes to be as
// read.
func (s *Store) drain(ctx context.Context, k string) error {
	batch := max(1, s.cfg.MaxTxnOps-1)
	for attempt := 0; attempt < maxAttempts; {
		resp, err := s.cli.Get(ctx, k)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		rkv := resp.Kvs[0]
		var rel map[string]int
		if err := json.Unmarshal(rkv.Value, &rel); err != nil {
			s.log.Error("etcd store: deleting a malformed release record", slog.String("record", k), slog.Any("error", err))
			rel = nil
		}
		hashes := slices.Sorted(maps.Keys(rel))
		now := hashes[:min(batch, len(hashes))]
		keys := make([]string, len(now))
		for i, h := range now {
			keys[i] = s.refsKey(h)
		}
		kvs, err := s.read(ctx, keys...)
		if err != nil {
			return err
		}
		t := &txn{}
		t.unchanged(k, rkv.ModRevision)
		for i, h := range now {
			kv := kvs[keys[i]]
			t.unchanged(keys[i], modRev(kv))
			if n := refCount(kv.GetValue()) - rel[h]; n > 0 {
				t.put(keys[i], []byte(strconv.Itoa(n)))
			} else {
				if kv != nil && n < 0 {
					s.log.Warn("etcd store: an image had fewer references than entries released", slog.String("image", h))
				}
				t.del(s.blobPrefix(h), clientv3.WithPrefix())
			}
			delete(rel, h)
		}
		if len(rel) == 0 {
			t.del(k)
		} else {
			v, _ := json.Marshal(rel)
			t.put(k, v)
		}
		tr, err := s.cli.Txn(ctx).If(t.cmps...).Then(t.ops...).Commit()
		if err != nil {
			return s.txnError(err)
		}
		if !tr.Succeeded {
			attempt++ // another writer changed a count: read again
		}
	}
	return errors.New("gave up: other writers keep changing the same counts")
}

// drainAll drains every release record: those a stopped process left.
func (s *Store) drainAll(ctx context.Context) error {
	resp, err := s.cli.Get(ctx, s.p+"release/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	var errs []error
	for _, kv := range resp.Kvs {
		if err := s.drain(ctx, string(kv.Key)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", kv.Key, err))
		}
	}
	return errors.Join(errs...)
}
