package sessions

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged reports a store file that is a bbolt database, or was one, but
// cannot be read safely: cut short (a partial copy, a disk that filled up
// while copying, a crashed file system), meta pages that fail their
// checksums, or pages that cannot be read. OpenBolt, CheckBolt and BackupBolt
// return it without writing to the file. The remedy is to restore a backup
// (see "palaver store backup").
//
// A file with no bbolt header at all is ErrNotStore instead: nothing in it
// says whether it was ever a store.
var ErrDamaged = errors.New("store file is damaged")

// damaged is the ErrDamaged error for the file at path, saying what is wrong
// and what to do.
func damaged(path, what string) error {
	return fmt.Errorf("sessions: open store %s: %w: %s; the file was left untouched: stop palaver, replace it with a backup (or move it aside to start an empty store) and run \"palaver store check\"", path, ErrDamaged, what)
}

// checkBoltFile checks, without writing to it, that the existing non-empty
// file at path is a palaver store of this schema (or an empty bbolt
// database) that bbolt can open safely.
func checkBoltFile(path string, timeout time.Duration) error {
	return viewStore(path, timeout, nil)
}

// viewStore opens the existing file at path read-only, waiting up to timeout
// for another process to release it, checks its header (checkBoltHeader) and
// its palaver meta (checkMeta), and runs fn, if not nil, in a read
// transaction. Memory faults and panics while reading, which only a damaged
// file causes, become errors wrapping ErrDamaged instead of crashing the
// process. Nothing is written to the file.
//
// The freelist is loaded here as the read-write open of OpenBolt will load
// it, so that a fault there happens under this protection first.
func viewStore(path string, timeout time.Duration, fn func(*bolt.Tx) error) (err error) {
	prev := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(prev)
		if r := recover(); r != nil {
			err = damaged(path, fmt.Sprintf("reading it failed (%v)", r))
		}
	}()
	// This first handle holds a shared lock, which keeps a writer out while
	// the header is read with plain reads. Opening it reads only the two
	// meta pages, which bbolt makes sure lie inside the file.
	lock, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		if !errors.Is(err, bolterrors.ErrTimeout) {
			if herr := checkBoltHeader(path); herr != nil {
				return herr
			}
		}
		return openError(path, err)
	}
	defer lock.Close()
	if err := checkBoltHeader(path); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout, PreLoadFreelist: true})
	if err != nil {
		return openError(path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if err := checkMeta(tx, path); err != nil {
			return err
		}
		if fn == nil {
			return nil
		}
		return fn(tx)
	})
}

// checkMeta accepts the meta bucket of a palaver store of this schema or
// of an older one that OpenBolt upgrades (schemaUpgrades), or a database
// with no buckets at all.
func checkMeta(tx *bolt.Tx, path string) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		k, _ := tx.Cursor().First()
		if k == nil {
			return nil
		}
		return fmt.Errorf("sessions: open store %s: %w: it is a bbolt database of another application (no palaver meta bucket); choose another storage.path", path, ErrNotStore)
	}
	if app := meta.Get(keyApp); string(app) != boltApp {
		return fmt.Errorf("sessions: open store %s: %w: its meta says app %q; choose another storage.path", path, ErrNotStore, app)
	}
	if schema := meta.Get(keySchema); string(schema) != boltSchema && !slices.Contains(schemaUpgrades, string(schema)) {
		if newerSchema(string(schema)) {
			return fmt.Errorf("sessions: open store %s: %w: its schema version is %q, written by a newer palaver, and this palaver reads version %s; run the newer palaver, or restore a backup made before the upgrade", path, ErrNotStore, schema, boltSchema)
		}
		return fmt.Errorf("sessions: open store %s: %w: its schema version is %q and this palaver reads version %s", path, ErrNotStore, schema, boltSchema)
	}
	return nil
}

// schemaUpgrades are the older schemas OpenBolt upgrades to boltSchema.
var schemaUpgrades = []string{"1"}

// newerSchema reports whether schema is a version number above boltSchema.
func newerSchema(schema string) bool {
	n, err := strconv.Atoi(schema)
	cur, _ := strconv.Atoi(boltSchema)
	return err == nil && n > cur
}

// openError turns a bbolt open error into one that names the path and says
// what to do.
func openError(path string, err error) error {
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("sessions: open store %s: the file is in use by another process (probably another palaver; stop it or use another storage.path): %w: %w", path, ErrLocked, err)
	case errors.As(err, &pathErr):
		return fmt.Errorf("sessions: open store: %w", err)
	default:
		// bbolt reports files that are not databases as ErrInvalid,
		// ErrChecksum, ErrVersionMismatch or "file size too small".
		return fmt.Errorf("sessions: open store %s: %w: the file is not a bbolt database (%w); choose another storage.path", path, ErrNotStore, err)
	}
}

// The bbolt file format (go.etcd.io/bbolt v1.5, internal/common): a page
// starts with a 16-byte header; pages 0 and 1 hold a meta record after it,
// in the machine's byte order:
//
//	magic uint32, version uint32, pageSize uint32, flags uint32,
//	root {pgid, sequence uint64}, freelist pgid, pgid (high-water mark),
//	txid uint64, checksum uint64
//
// The checksum is FNV-64a over the record up to the checksum. Every commit
// writes the meta page txid%2, so the two pages hold the last two commits.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaSize   = 64
	boltMetaSummed = 56 // bytes of the record covered by the checksum
	boltNoFreelist = ^uint64(0)
	// bbolt looks for the second meta page, when the first is invalid, at
	// 1 KiB << 0..14; palaver uses the OS page size, within that range.
	boltMinPageSize = 1 << 10
	boltMaxPageSize = 1 << 24
)

// boltMeta is a decoded bbolt meta record.
type boltMeta struct {
	magic, version, pageSize uint32
	root, freelist, pgid     uint64
	txid                     uint64
	checksum                 uint64
	sum                      uint64 // the checksum computed from the record
}

// readMeta reads the meta record of the page at off. complete is false when
// the file ends before the record does; hasMagic reports whether the bbolt
// magic number is there.
func readMeta(f io.ReaderAt, off int64) (m boltMeta, complete, hasMagic bool, err error) {
	buf := make([]byte, boltPageHeader+boltMetaSize)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return m, false, false, err
	}
	b := buf[boltPageHeader:max(n, boltPageHeader)]
	e := binary.NativeEndian
	if len(b) >= 4 {
		m.magic = e.Uint32(b)
	}
	if len(b) < boltMetaSize {
		return m, false, m.magic == boltMagic, nil
	}
	m.version = e.Uint32(b[4:])
	m.pageSize = e.Uint32(b[8:])
	m.root = e.Uint64(b[16:])
	m.freelist = e.Uint64(b[32:])
	m.pgid = e.Uint64(b[40:])
	m.txid = e.Uint64(b[48:])
	m.checksum = e.Uint64(b[56:])
	h := fnv.New64a()
	h.Write(b[:boltMetaSummed])
	m.sum = h.Sum64()
	return m, true, m.magic == boltMagic, nil
}

// problem says what is wrong with a complete meta record, "" if nothing is:
// the same test as bbolt's Meta.Validate.
func (m boltMeta) problem() string {
	switch {
	case m.magic != boltMagic:
		return "no bbolt magic number"
	case m.version != boltVersion:
		return fmt.Sprintf("bbolt format version %d, not %d", m.version, boltVersion)
	case m.checksum != m.sum:
		return "checksum mismatch"
	}
	return ""
}

// checkBoltHeader reads the two meta pages of the file at path with plain
// reads, picks the one bbolt will use (the valid one with the higher
// transaction id) and checks it against the file: a sane page size, page
// references below the high-water mark, and a file long enough to hold
// every page below it. bbolt memory-maps the file and trusts the meta page,
// so reading a truncated file faults (SIGBUS) instead of failing. The error
// wraps ErrNotStore when no page carries the bbolt magic number, ErrDamaged
// otherwise.
func checkBoltHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sessions: open store: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sessions: open store: %w", err)
	}
	size := info.Size()
	read := func(off int64) (boltMeta, bool, bool, error) {
		m, complete, magic, err := readMeta(f, off)
		if err != nil {
			err = fmt.Errorf("sessions: open store %s: read meta page: %w", path, err)
		}
		return m, complete, magic, err
	}

	// Find the page size as bbolt does: from meta page 0 if it is valid,
	// else from the first valid meta record at 1 KiB << i.
	m0, complete0, sawMagic, err := read(0)
	if err != nil {
		return err
	}
	var pageSize int64
	if complete0 && m0.problem() == "" {
		pageSize = int64(m0.pageSize)
	} else {
		for i := range 15 {
			off := int64(boltMinPageSize) << i
			if off >= size {
				break
			}
			m, complete, magic, err := read(off)
			if err != nil {
				return err
			}
			sawMagic = sawMagic || magic
			if complete && m.problem() == "" {
				pageSize = int64(m.pageSize)
				break
			}
		}
	}
	switch {
	case pageSize == 0 && !sawMagic:
		return fmt.Errorf("sessions: open store %s: %w: the file is not a bbolt database (no meta page carries the bbolt magic number); choose another storage.path, or if it was a palaver store, restore it from a backup", path, ErrNotStore)
	case pageSize == 0 && !complete0:
		return damaged(path, fmt.Sprintf("it is truncated: %d bytes long, which ends inside its first meta page", size))
	case pageSize == 0:
		return damaged(path, fmt.Sprintf("neither of its two meta pages is valid (meta page 0: %s)", m0.problem()))
	case pageSize < boltMinPageSize || pageSize > boltMaxPageSize || pageSize&(pageSize-1) != 0:
		return damaged(path, fmt.Sprintf("its meta page gives an impossible page size, %d bytes", pageSize))
	case size < 2*pageSize:
		return damaged(path, fmt.Sprintf("it is truncated: %d bytes long, shorter than its two meta pages of %d bytes", size, pageSize))
	}

	// Pick the meta page bbolt will use.
	m1, _, _, err := read(pageSize)
	if err != nil {
		return err
	}
	p0, p1 := m0.problem(), m1.problem()
	var m boltMeta
	switch {
	case p0 != "" && p1 != "":
		return damaged(path, fmt.Sprintf("neither of its two meta pages is valid (meta page 0: %s; meta page 1: %s)", p0, p1))
	case p0 != "":
		m = m1
	case p1 != "" || m0.txid >= m1.txid:
		m = m0
	default:
		m = m1
	}

	hwm := m.pgid
	switch {
	case int64(m.pageSize) != pageSize:
		return damaged(path, fmt.Sprintf("its meta pages disagree on the page size (%d and %d bytes)", pageSize, m.pageSize))
	case m.root < 2 || m.root >= hwm:
		return damaged(path, fmt.Sprintf("its meta page puts the root at page %d, outside the %d pages in use", m.root, hwm))
	case m.freelist != boltNoFreelist && (m.freelist < 2 || m.freelist >= hwm):
		return damaged(path, fmt.Sprintf("its meta page puts the freelist at page %d, outside the %d pages in use", m.freelist, hwm))
	case hwm > uint64(size/pageSize):
		return damaged(path, fmt.Sprintf("it is truncated: %d bytes long, but its last commit (transaction %d) uses %d pages of %d bytes (%d bytes)", size, m.txid, hwm, pageSize, hwm*uint64(pageSize)))
	}
	return nil
}
