package sessions

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/palaver-bot/palaver/llm"
)

// damageKeys are the conversations of the store damageStore writes.
var damageKeys = []Key{
	{Platform: "telegram", Chat: "1"},
	{Platform: "telegram", Chat: "-100", Thread: "7"},
	{Platform: "discord", Chat: "42"},
}

// damageStore writes a small store of several pages (history, settings,
// progress, a queued message, a value) at a new path, closes it and returns
// the path and each conversation's history texts. The last commit sets the
// value "marker", so that falling back to the previous commit loses only
// that value.
func damageStore(t *testing.T) (string, map[Key][]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "palaver.db")
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := make(map[Key][]string)
	for i := range 30 {
		key := damageKeys[i%len(damageKeys)]
		// Entries of about 1 KiB spread the history over many pages.
		text := fmt.Sprintf("%d %s", i, strings.Repeat("word ", 200))
		if err := s.Append(ctx, key, true, Entry{Role: llm.RoleUser, Text: text, Time: time.Unix(int64(i), 0)}); err != nil {
			t.Fatal(err)
		}
		want[key] = append(want[key], text)
	}
	model := "fake/echo"
	if err := s.SaveSettings(ctx, damageKeys[0], Settings{Model: model}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueued(ctx, Queued{Key: damageKeys[1], ID: 3, Question: Entry{Role: llm.RoleUser, Text: "waiting"}, Destination: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgress(ctx, damageKeys[2], 0, &Progress{Destination: "d", Shown: View{Content: "half"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // writes the progress record
		t.Fatal(err)
	}
	s, err = OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetValue(ctx, "marker", []byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// fileMeta returns the page size of a bbolt file's data and the meta record
// bbolt uses (the valid one with the higher txid), and which page holds it.
func fileMeta(t *testing.T, data []byte) (pageSize int, m boltMeta, page int) {
	t.Helper()
	r := bytes.NewReader(data)
	m0, _, _, err := readMeta(r, 0)
	if err != nil || m0.problem() != "" {
		t.Fatalf("meta page 0: %v %s", err, m0.problem())
	}
	pageSize = int(m0.pageSize)
	m1, _, _, err := readMeta(r, int64(pageSize))
	if err != nil || m1.problem() != "" {
		t.Fatalf("meta page 1: %v %s", err, m1.problem())
	}
	if m1.txid > m0.txid {
		return pageSize, m1, 1
	}
	return pageSize, m0, 0
}

// writeDamaged writes data to a new file with an old modification time and
// returns its path.
func writeDamaged(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "palaver.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertUntouched fails t unless the file at path still holds data and
// still has the modification time writeDamaged gave it.
func assertUntouched(t *testing.T, path string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("file changed: %d bytes, was %d", len(got), len(data))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC); !info.ModTime().Equal(want) {
		t.Errorf("modification time = %v, want %v", info.ModTime(), want)
	}
}

// assertOpenFails opens the file at path, which holds data, and checks that
// OpenBolt fails with an error that wraps target, names the path and
// contains every one of want, and that the file is untouched.
func assertOpenFails(t *testing.T, path string, data []byte, target error, want ...string) {
	t.Helper()
	s, err := OpenBolt(path, BoltOptions{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("OpenBolt succeeded")
	}
	if !errors.Is(err, target) {
		t.Errorf("err = %v, want %v", err, target)
	}
	for _, w := range append([]string{path}, want...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %q, want it to contain %q", err, w)
		}
	}
	assertUntouched(t, path, data)
}

// assertHistories checks that the store at path opens and holds want.
func assertHistories(t *testing.T, path string, want map[Key][]string) *BoltStore {
	t.Helper()
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for key, texts := range want {
		h, err := s.History(context.Background(), key, 0)
		if err != nil {
			t.Fatalf("History(%s): %v", key, err)
		}
		var got []string
		for _, e := range h {
			got = append(got, e.Text)
		}
		if !slices.Equal(got, texts) {
			t.Errorf("History(%s) has %d entries, want %d", key, len(got), len(texts))
		}
	}
	return s
}

func TestOpenBolt_Truncated(t *testing.T) {
	path, want := damageStore(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize, m, _ := fileMeta(t, data)
	needed := int(m.pgid) * pageSize
	t.Logf("file %d bytes, %d pages of %d in use (%d bytes)", len(data), m.pgid, pageSize, needed)
	if m.pgid < 8 {
		t.Fatalf("test store uses %d pages, want more for a meaningful test", m.pgid)
	}
	// Every page boundary (0 bytes is an empty file, which becomes a new
	// store), and cuts inside the header and inside pages.
	var sizes []int
	for n := pageSize; n < len(data); n += pageSize {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 1, 19, 20, 50, 80, 100, pageSize-1, pageSize+1, 2*pageSize+100, needed-1)
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cut := writeDamaged(t, data[:n])
			switch {
			case n >= needed:
				// Nothing the last commit uses was cut off.
				assertHistories(t, cut, want)
			case n < 20: // too short to show the bbolt magic number
				assertOpenFails(t, cut, data[:n], ErrNotStore, "not a bbolt database", "backup")
			default:
				assertOpenFails(t, cut, data[:n], ErrDamaged, "truncated", "backup", "palaver store check")
			}
		})
	}
}

func TestOpenBolt_DamagedMeta(t *testing.T) {
	path, want := damageStore(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize, m, newer := fileMeta(t, data)
	zero := func(page int) func([]byte) {
		return func(b []byte) { clear(b[page*pageSize : (page+1)*pageSize]) }
	}
	flip := func(page int, off int) func([]byte) {
		return func(b []byte) { b[page*pageSize+boltPageHeader+off] ^= 0xff }
	}
	tests := []struct {
		name   string
		damage []func([]byte)
		// marker is whether the last commit survives, when the store opens.
		marker bool
		err    error
		want   string
	}{
		{"ZeroOlder", []func([]byte){zero(1 - newer)}, true, nil, ""},
		{"ZeroNewer", []func([]byte){zero(newer)}, false, nil, ""},
		{"ChecksumNewer", []func([]byte){flip(newer, 48)}, false, nil, ""},
		{"ZeroBoth", []func([]byte){zero(0), zero(1)}, false, ErrNotStore, "restore it from a backup"},
		{"ChecksumBoth", []func([]byte){flip(0, 48), flip(1, 48)}, false, ErrDamaged, "checksum mismatch"},
		{"VersionBoth", []func([]byte){flip(0, 4), flip(1, 4)}, false, ErrDamaged, "format version"},
		// A valid checksum over a high-water mark past the end of the
		// file: bbolt would trust it and fault.
		{"HighWaterMarkPastEnd", []func([]byte){func(b []byte) {
			for page := range 2 {
				rec := b[page*pageSize+boltPageHeader:]
				copy(rec[40:48], native64(m.pgid+100))
				reseal(rec)
			}
		}}, false, ErrDamaged, "truncated"},
		{"RootPastEnd", []func([]byte){func(b []byte) {
			for page := range 2 {
				rec := b[page*pageSize+boltPageHeader:]
				copy(rec[16:24], native64(m.pgid+100))
				reseal(rec)
			}
		}}, false, ErrDamaged, "root at page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(data)
			for _, d := range tt.damage {
				d(b)
			}
			p := writeDamaged(t, b)
			if tt.err != nil {
				assertOpenFails(t, p, b, tt.err, tt.want)
				return
			}
			s := assertHistories(t, p, want)
			v, err := s.Value(context.Background(), "marker")
			if err != nil {
				t.Fatal(err)
			}
			if got := v != nil; got != tt.marker {
				t.Errorf("marker kept = %v, want %v", got, tt.marker)
			}
		})
	}
}

// native64 encodes v as the bbolt meta record does on this machine.
func native64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// reseal recomputes the checksum of the meta record rec.
func reseal(rec []byte) {
	m, _, _, _ := readMeta(bytes.NewReader(append(make([]byte, boltPageHeader), rec[:boltMetaSize]...)), 0)
	copy(rec[56:64], native64(m.sum))
}

func TestOpenBolt_GarbageWithMagic(t *testing.T) {
	b := randomBytes(t, 64<<10)
	binary.NativeEndian.PutUint32(b[boltPageHeader:], boltMagic)
	path := writeDamaged(t, b)
	assertOpenFails(t, path, b, ErrDamaged, "meta page")
}

func TestOpenBolt_NewerSchema(t *testing.T) {
	path, _ := damageStore(t)
	writeBolt(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("3"))
	})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := writeDamaged(t, data)
	assertOpenFails(t, p, data, ErrNotStore, `schema version is "3"`, "written by a newer palaver")
}

func TestViewStore_Fault(t *testing.T) {
	path, want := damageStore(t)
	// A mapping longer than its file faults (SIGBUS) when read past the
	// end, as bbolt's map of a truncated store does.
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(short)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pageSize := os.Getpagesize()
	mem, err := syscall.Mmap(int(f.Fd()), 0, 4*pageSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)

	debug.SetPanicOnFault(false)
	for _, tt := range []struct {
		name string
		fn   func(*bolt.Tx) error
		want string
	}{
		{"Fault", func(*bolt.Tx) error {
			if mem[2*pageSize] == 'x' {
				return errors.New("read past the end of the file")
			}
			return nil
		}, "reading it failed"},
		{"Panic", func(*bolt.Tx) error { panic("assertion failed: page 9") }, "page 9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := viewStore(path, time.Second, tt.fn)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrDamaged and %q", err, tt.want)
			}
			if debug.SetPanicOnFault(false) {
				t.Error("SetPanicOnFault left on")
			}
		})
	}
	// The handles were closed: the store opens for writing.
	assertHistories(t, path, want)
}

func TestCheckBolt(t *testing.T) {
	path, want := damageStore(t)
	r, err := CheckBolt(path, time.Second)
	if err != nil {
		t.Fatalf("CheckBolt: %v", err)
	}
	got := make(map[string]BucketReport)
	for _, b := range r.Buckets {
		got[b.Name] = b
	}
	var entries int
	for _, texts := range want {
		entries += len(texts)
	}
	for _, w := range []BucketReport{
		{Name: "conversations", Conversations: len(want), Entries: entries},
		{Name: "progress", Conversations: 1, Entries: 1},
		{Name: "queued", Conversations: 1, Entries: 1},
		{Name: "values", Entries: 1},
		{Name: "meta", Entries: 2},
	} {
		g := got[w.Name]
		if g.Conversations != w.Conversations || g.Entries != w.Entries || g.Bytes <= 0 {
			t.Errorf("bucket %s = %+v, want %d conversations, %d entries and some bytes", w.Name, g, w.Conversations, w.Entries)
		}
	}
	if r.PageSize == 0 || r.InUse == 0 || r.InUse > r.Size || r.ProblemCount != 0 {
		t.Errorf("report = %+v", r)
	}
}

func TestCheckBolt_Problems(t *testing.T) {
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx) error
		want   string
	}{
		{"BadEntry", func(tx *bolt.Tx) error {
			return historyBucket(tx, []byte(damageKeys[0].String())).Put(seqKey(2), []byte("{not json"))
		}, "conversation telegram:1: history: decode entry 2"},
		{"Gap", func(tx *bolt.Tx) error {
			return historyBucket(tx, []byte(damageKeys[0].String())).Delete(seqKey(4))
		}, "history jumps from entry 3 to 5"},
		{"Sequence", func(tx *bolt.Tx) error {
			return historyBucket(tx, []byte(damageKeys[0].String())).SetSequence(99)
		}, "the sequence is 99"},
		{"BadSettings", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketConversations).Bucket([]byte(damageKeys[0].String())).Put(keySettings, []byte("[]"))
		}, "settings"},
		{"BadProgress", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketProgress).Put([]byte("nokey"), []byte("{}"))
		}, `progress: malformed conversation key "nokey"`},
		{"BadQueued", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketQueued).Put([]byte("short"), []byte("{}"))
		}, `queued: malformed key "short"`},
		{"MissingBucket", func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketValues)
		}, "bucket values is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := damageStore(t)
			writeBolt(t, path, tt.damage)
			r, err := CheckBolt(path, time.Second)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want ErrDamaged and the path", err)
			}
			if r == nil || !slices.ContainsFunc(r.Problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("report = %+v, want a problem %q", r, tt.want)
			}
		})
	}
}

func TestCheckBolt_Refusals(t *testing.T) {
	path, _ := damageStore(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize, _, _ := fileMeta(t, data)
	cut := data[:3*pageSize]
	truncated := writeDamaged(t, cut)
	if _, err := CheckBolt(truncated, time.Second); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("CheckBolt(truncated) = %v, want ErrDamaged, truncated", err)
	}
	assertUntouched(t, truncated, cut)

	empty := writeDamaged(t, nil)
	if r, err := CheckBolt(empty, time.Second); err != nil || r.Size != 0 {
		t.Errorf("CheckBolt(empty) = %+v, %v; want an empty report", r, err)
	}
	if _, err := CheckBolt(filepath.Join(t.TempDir(), "none.db"), time.Second); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckBolt(missing) = %v, want ErrNotExist", err)
	}

	mustOpenBoltAt(t, path, BoltOptions{})
	if _, err := CheckBolt(path, 20*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("CheckBolt(open store) = %v, want ErrLocked", err)
	}
	if _, err := BackupBolt(path, new(bytes.Buffer), 20*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("BackupBolt(open store) = %v, want ErrLocked", err)
	}
}

func TestBackupBolt(t *testing.T) {
	path, want := damageStore(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := BackupBolt(path, &buf, time.Second)
	if err != nil {
		t.Fatalf("BackupBolt: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Errorf("BackupBolt = %d, wrote %d bytes", n, buf.Len())
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("BackupBolt changed the store")
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckBolt(copyPath, time.Second); err != nil {
		t.Errorf("CheckBolt(copy): %v", err)
	}
	s := assertHistories(t, copyPath, want)
	if v, err := s.Value(context.Background(), "marker"); err != nil || string(v) != "last" {
		t.Errorf("copy's marker = %q, %v", v, err)
	}

	pageSize, _, _ := fileMeta(t, before)
	if _, err := BackupBolt(writeDamaged(t, before[:3*pageSize]), io.Discard, time.Second); !errors.Is(err, ErrDamaged) {
		t.Errorf("BackupBolt(truncated) = %v, want ErrDamaged", err)
	}
}
