package sessions

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxProblems caps the problems a StoreReport lists; more are only counted.
const maxProblems = 20

// StoreReport describes a store file as CheckBolt read it.
type StoreReport struct {
	Size     int64 // file size in bytes; 0 for an empty file (a new store)
	PageSize int
	InUse    int64 // bytes below the high-water mark of the last commit
	TxID     int   // the last committed transaction
	// Buckets are the top-level buckets in key order.
	Buckets []BucketReport
	// Problems are the first inconsistencies found (at most maxProblems,
	// 20); ProblemCount counts them all. Both are zero for a consistent
	// store.
	Problems     []string
	ProblemCount int
}

// BucketReport counts the contents of one top-level bucket.
type BucketReport struct {
	Name string
	// Conversations is how many conversations have records in the bucket.
	Conversations int
	// Entries counts history entries in "conversations" and records
	// elsewhere.
	Entries int
	// Bytes is the size of every key and value in the bucket.
	Bytes int64
}

// CheckBolt checks the store file at path without writing to it: the
// checks OpenBolt makes, then every record of the palaver layout decoded
// (settings, history entries and their sequences, progress and queued
// records, images: each entry's image stored, each stored image referred
// to by as many entries as its count says, usage counters), then bbolt's
// own consistency check of every page (Tx.Check).
// It fails with ErrLocked while another process (a running palaver) has the
// file open. When the file cannot be opened the report is nil; when records
// or pages are inconsistent the report lists them and the error wraps
// ErrDamaged. An empty file, which OpenBolt turns into a new store, is
// consistent.
func CheckBolt(path string, timeout time.Duration) (*StoreReport, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sessions: check store: %w", err)
	}
	if info.IsDir() {
		return nil, fmt.Errorf("sessions: check store %s: is a directory", path)
	}
	r := &StoreReport{Size: info.Size()}
	if r.Size == 0 {
		return r, nil
	}
	err = viewStore(path, timeout, func(tx *bolt.Tx) error {
		r.PageSize = tx.DB().Info().PageSize
		r.InUse = tx.Size()
		r.TxID = tx.ID()
		// Reading every record here first means that a page the file does
		// not hold faults in this goroutine, where viewStore recovers it,
		// rather than in the goroutine of Tx.Check.
		c := checker{r: r, images: make(map[string]uint64), blobs: make(map[string]bool), refs: make(map[string]uint64)}
		c.walk(tx)
		for err := range tx.Check() {
			c.problemf("bbolt: %v", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.ProblemCount > 0 {
		return r, fmt.Errorf("sessions: check store %s: %w: %d problems, the first: %s", path, ErrDamaged, r.ProblemCount, r.Problems[0])
	}
	return r, nil
}

// checker collects what CheckBolt finds.
type checker struct {
	r *StoreReport
	// images counts the references of history entries to each image;
	// blobs and refs are what the blobs and blob_refs buckets hold.
	images map[string]uint64
	blobs  map[string]bool
	refs   map[string]uint64
}

func (c *checker) problemf(format string, args ...any) {
	c.r.ProblemCount++
	if len(c.r.Problems) < maxProblems {
		c.r.Problems = append(c.r.Problems, fmt.Sprintf(format, args...))
	}
}

// walk reads and decodes every record of tx's top-level buckets.
func (c *checker) walk(tx *bolt.Tx) {
	_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		br := BucketReport{Name: string(name)}
		br.Entries, br.Bytes = c.touch(b)
		switch string(name) {
		case string(bucketConversations):
			br.Conversations, br.Entries = c.conversations(b)
		case string(bucketProgress):
			br.Conversations = c.progress(b)
		case string(bucketQueued):
			br.Conversations = c.queued(b)
		case string(bucketBlobs):
			c.readBlobs(b)
		case string(bucketBlobRefs):
			c.readRefs(b)
		case string(bucketUsageCounters), string(bucketUsageRecords), string(bucketUsageNames):
			c.checkUsage(name, b)
		}
		c.r.Buckets = append(c.r.Buckets, br)
		return nil
	})
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return // an empty bbolt database: OpenBolt lays it out
	}
	required := [][]byte{bucketConversations, bucketProgress, bucketValues}
	if string(meta.Get(keySchema)) == boltSchema {
		required = append(required, bucketBlobs, bucketBlobRefs)
	}
	for _, name := range required {
		if tx.Bucket(name) == nil {
			c.problemf("bucket %s is missing", name)
		}
	}
	c.crossCheckImages()
}

// readBlobs notes the images the blobs bucket holds.
func (c *checker) readBlobs(b *bolt.Bucket) {
	_ = b.ForEach(func(k, v []byte) error {
		switch {
		case v == nil:
			c.problemf("blobs: %q is a bucket, not an image", k)
		case !validHash(string(k)):
			c.problemf("blobs: key %q is not a hex SHA-256", k)
		case fmt.Sprintf("%x", sha256.Sum256(v)) != string(k):
			c.problemf("blobs: image %s does not match its hash", k)
		}
		c.blobs[string(k)] = true
		return nil
	})
}

// readRefs notes the reference counts of the blob_refs bucket.
func (c *checker) readRefs(b *bolt.Bucket) {
	_ = b.ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			c.problemf("blob_refs: the count of %s is not 8 bytes", k)
		}
		c.refs[string(k)] = refCount(v)
		return nil
	})
}

// crossCheckImages compares the images history entries refer to with the
// stored images and their counts: an image missing from the store (an
// entry that shows nothing), one no entry refers to (an orphan, taking
// space for ever) and a count that disagrees (a later deletion would
// delete an image in use, or never delete it) are problems.
func (c *checker) crossCheckImages() {
	for _, h := range slices.Sorted(maps.Keys(c.images)) {
		switch n := c.images[h]; {
		case !c.blobs[h]:
			c.problemf("image %s is missing: %d history entries refer to it", h, n)
		case c.refs[h] != n:
			c.problemf("image %s: %d history entries refer to it but its count is %d", h, n, c.refs[h])
		}
	}
	for _, h := range slices.Sorted(maps.Keys(c.blobs)) {
		if c.images[h] == 0 {
			c.problemf("image %s is orphaned: no history entry refers to it", h)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(c.refs)) {
		if !c.blobs[h] && c.images[h] == 0 {
			c.problemf("blob_refs: a count for image %s, which is neither stored nor referred to", h)
		}
	}
}

// touch reads every key and value under b, nested buckets included, and
// returns how many values there are and their size with their keys.
func (c *checker) touch(b *bolt.Bucket) (values int, size int64) {
	var sum uint32
	_ = b.ForEach(func(k, v []byte) error {
		sum = crc32.Update(sum, crc32.IEEETable, k)
		size += int64(len(k))
		if v != nil {
			sum = crc32.Update(sum, crc32.IEEETable, v)
			values++
			size += int64(len(v))
			return nil
		}
		n, sz := c.touch(b.Bucket(k))
		values += n
		size += sz
		return nil
	})
	_ = sum // computed to read every byte; its value does not matter
	return values, size
}

// conversations decodes the conversations bucket: one bucket per
// conversation key, each with its settings and history.
func (c *checker) conversations(b *bolt.Bucket) (convs, entries int) {
	_ = b.ForEach(func(k, v []byte) error {
		if v != nil {
			c.problemf("conversations: %q is a value, not a conversation bucket", k)
			return nil
		}
		convs++
		if _, ok := ParseKey(string(k)); !ok {
			c.problemf("conversations: malformed conversation key %q", k)
		}
		conv := b.Bucket(k)
		if st := conv.Get(keySettings); st != nil {
			var s Settings
			if err := json.Unmarshal(st, &s); err != nil {
				c.problemf("conversation %s: settings: %v", k, err)
			}
		}
		if hist := conv.Bucket(bucketHistory); hist != nil {
			entries += c.history(k, hist)
		}
		return nil
	})
	return convs, entries
}

// history decodes a conversation's history and checks that its sequences
// are contiguous and end at the bucket's sequence (see BoltStore).
func (c *checker) history(name []byte, hist *bolt.Bucket) int {
	var (
		n    int
		last uint64 // the sequence of the last well-formed key, 0 before it
	)
	cur := hist.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		n++
		if v == nil {
			c.problemf("conversation %s: history: unexpected bucket %q", name, k)
			continue
		}
		e, err := decodeEntry(k, v)
		if err != nil {
			c.problemf("conversation %s: history: %v", name, err)
		}
		for _, im := range e.Images {
			c.images[im.SHA256]++
		}
		if len(k) != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(k)
		if last > 0 && seq != last+1 {
			c.problemf("conversation %s: history jumps from entry %d to %d", name, last, seq)
		}
		last = seq
	}
	if last > 0 && last != hist.Sequence() {
		c.problemf("conversation %s: newest history entry is %d but the sequence is %d", name, last, hist.Sequence())
	}
	return n
}

// progress decodes the progress records and returns how many there are.
func (c *checker) progress(b *bolt.Bucket) int {
	var n int
	_ = b.ForEach(func(k, v []byte) error {
		n++
		if _, ok := ParseKey(string(k)); !ok {
			c.problemf("progress: malformed conversation key %q", k)
		}
		if v == nil {
			c.problemf("progress: %q is a bucket, not a record", k)
			return nil
		}
		var p Progress
		if err := json.Unmarshal(v, &p); err != nil {
			c.problemf("progress of %s: %v", k, err)
		}
		return nil
	})
	return n
}

// queued decodes the queued records and returns how many conversations
// have some.
func (c *checker) queued(b *bolt.Bucket) int {
	convs := make(map[string]bool)
	_ = b.ForEach(func(k, v []byte) error {
		i := len(k) - 9 // the name, 0x00, an 8-byte id
		if i < 1 || k[i] != 0 {
			c.problemf("queued: malformed key %q", k)
			return nil
		}
		if _, ok := ParseKey(string(k[:i])); !ok {
			c.problemf("queued: malformed conversation key %q", k[:i])
		}
		convs[string(k[:i])] = true
		if v == nil {
			c.problemf("queued: %q is a bucket, not a record", k)
			return nil
		}
		var q Queued
		if err := json.Unmarshal(v, &q); err != nil {
			c.problemf("queued message %d of %s: %v", binary.BigEndian.Uint64(k[i+1:]), k[:i], err)
		}
		return nil
	})
	return len(convs)
}
