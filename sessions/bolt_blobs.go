package sessions

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Buckets of the images kept for history entries (schema 2; see BoltStore).
var (
	bucketBlobs    = []byte("blobs")
	bucketBlobRefs = []byte("blob_refs")
)

// ErrNoBlob reports an image the store does not hold.
var ErrNoBlob = errors.New("image not in the store")

// Blob returns the stored image whose hex SHA-256 is hash, or an error
// wrapping ErrNoBlob.
func (s *BoltStore) Blob(ctx context.Context, hash string) ([]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if !validHash(hash) {
		return nil, fmt.Errorf("sessions: read image: %q is not a hex SHA-256", hash)
	}
	var data []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketBlobs); b != nil {
			data = bytes.Clone(b.Get([]byte(hash)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: read image %s: %w", hash, err)
	}
	if data == nil {
		return nil, fmt.Errorf("sessions: read image %s: %w", hash, ErrNoBlob)
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

// holdImages counts one more reference to each of ims, from an entry
// entering the history, storing the image (Image.Data) the first time.
// An image that is neither stored nor carries its data is an error: the
// entry would refer to nothing.
func holdImages(tx *bolt.Tx, ims []Image) error {
	if len(ims) == 0 {
		return nil
	}
	blobs, refs := tx.Bucket(bucketBlobs), tx.Bucket(bucketBlobRefs)
	for _, im := range ims {
		if !validHash(im.SHA256) {
			return fmt.Errorf("image %q: not a hex SHA-256", im.SHA256)
		}
		k := []byte(im.SHA256)
		n := refCount(refs.Get(k))
		if n == 0 || blobs.Get(k) == nil {
			if im.Data == nil {
				return fmt.Errorf("image %s: not stored, and no data to store", im.SHA256)
			}
			if err := blobs.Put(k, im.Data); err != nil {
				return err
			}
		}
		if err := refs.Put(k, binary.BigEndian.AppendUint64(nil, n+1)); err != nil {
			return err
		}
	}
	return nil
}

// releaseImages counts one reference less to each of ims, from an entry
// leaving the history, and deletes the images no entry refers to.
func releaseImages(tx *bolt.Tx, ims []Image) error {
	if len(ims) == 0 {
		return nil
	}
	blobs, refs := tx.Bucket(bucketBlobs), tx.Bucket(bucketBlobRefs)
	for _, im := range ims {
		k := []byte(im.SHA256)
		n := refCount(refs.Get(k))
		if n > 1 {
			if err := refs.Put(k, binary.BigEndian.AppendUint64(nil, n-1)); err != nil {
				return err
			}
			continue
		}
		if err := refs.Delete(k); err != nil {
			return err
		}
		if err := blobs.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// releaseEncoded is releaseImages for an encoded history entry. Entries
// without images, most of them, are not decoded.
func releaseEncoded(tx *bolt.Tx, v []byte) error {
	if !bytes.Contains(v, []byte(`"images":`)) {
		return nil
	}
	var e struct {
		Images []Image `json:"images"`
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return fmt.Errorf("decode entry's images: %w", err)
	}
	return releaseImages(tx, e.Images)
}

// releaseHistory releases the images of every entry of hist, a history
// about to be deleted.
func releaseHistory(tx *bolt.Tx, hist *bolt.Bucket) error {
	if hist == nil {
		return nil
	}
	return hist.ForEach(func(_, v []byte) error {
		if v == nil {
			return nil
		}
		return releaseEncoded(tx, v)
	})
}

// refCount decodes a blob_refs value; a missing or malformed one is 0.
func refCount(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// replaceEntries puts each of entries, encoded as values, in place of the
// history entry with its Seq in conversation name, moving the references
// of their images; an entry whose Seq is gone is skipped.
func replaceEntries(tx *bolt.Tx, name []byte, entries []Entry, values [][]byte) error {
	hist := historyBucket(tx, name)
	if hist == nil {
		return nil
	}
	for i, e := range entries {
		k := seqKey(e.Seq)
		old := hist.Get(k)
		if e.Seq == 0 || old == nil {
			continue
		}
		// Hold first: an image both entries have must not be deleted in
		// between.
		if err := holdImages(tx, e.Images); err != nil {
			return err
		}
		if err := releaseEncoded(tx, old); err != nil {
			return err
		}
		if err := hist.Put(k, values[i]); err != nil {
			return err
		}
	}
	return nil
}
