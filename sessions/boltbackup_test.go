package sessions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// assertOnly fails unless dir holds exactly the named files (no temporary
// file left behind).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
		return
	}
	for i := range got {
		if got[i] != names[i] {
			t.Errorf("%s holds %q, want %q", dir, got, names)
			return
		}
	}
}

func TestBoltStore_Backup(t *testing.T) {
	path, want := damageStore(t)
	s := mustOpenBoltAt(t, path, BoltOptions{})
	dir := t.TempDir()
	dst := filepath.Join(dir, "backup.db")

	n, err := s.Backup(context.Background(), dst)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if info, err := os.Stat(dst); err != nil || info.Size() != n || info.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, %v; want %d bytes, mode 0600", info, err, n)
	}
	if _, err := CheckBolt(dst, time.Second); err != nil {
		t.Errorf("CheckBolt(backup): %v", err)
	}
	assertHistories(t, dst, want)

	// A second backup replaces the first and holds what was added since.
	key := damageKeys[0]
	mustAppend(t, s, key, "later")
	want[key] = append(want[key], "later")
	dst2 := filepath.Join(dir, "backup2.db")
	if _, err := s.Backup(context.Background(), dst2); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	assertHistories(t, dst2, want)
	assertOnly(t, dir, "backup.db", "backup2.db")
}

// cancelAfter is a context whose Err reports Canceled from its n-th call
// on: a cancellation in the middle of a copy, without timing.
type cancelAfter struct {
	context.Context
	n atomic.Int32
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) <= 0 {
		return context.Canceled
	}
	return nil
}

func TestBoltStore_Backup_Errors(t *testing.T) {
	path, _ := damageStore(t)
	s := mustOpenBoltAt(t, path, BoltOptions{})
	closed := mustOpenBolt(t, BoltOptions{})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "backup.db")
	midway := &cancelAfter{Context: context.Background()}
	midway.n.Store(3) // begin, then the first meta page
	tests := []struct {
		name  string
		store *BoltStore
		ctx   context.Context
		dst   string
		want  error
	}{
		{"ErrStoreItself", s, context.Background(), path, nil},
		{"ErrCanceledMidway", s, midway, dst, context.Canceled},
		{"ErrClosed", closed, context.Background(), dst, ErrStoreClosed},
		{"ErrNoDir", s, context.Background(), filepath.Join(dir, "none", "b.db"), os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := tt.store.Backup(tt.ctx, tt.dst)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Backup = %d, %v; want an error wrapping %v", n, err, tt.want)
			}
			assertOnly(t, dir)
		})
	}
	if _, err := s.History(context.Background(), damageKeys[0], 0); err != nil {
		t.Errorf("store after failed backups: %v", err)
	}
}

func TestBackupBoltFile(t *testing.T) {
	path, want := damageStore(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "backup.db")
	if _, err := BackupBoltFile(path, path, time.Second); err == nil {
		t.Error("BackupBoltFile(store, store) succeeded")
	}
	n, err := BackupBoltFile(path, dst, time.Second)
	if err != nil {
		t.Fatalf("BackupBoltFile: %v", err)
	}
	if info, err := os.Stat(dst); err != nil || info.Size() != n {
		t.Errorf("backup file: %v, %v; want %d bytes", info, err, n)
	}
	assertHistories(t, dst, want)

	mustOpenBoltAt(t, path, BoltOptions{})
	if _, err := BackupBoltFile(path, filepath.Join(dir, "locked.db"), 20*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("BackupBoltFile(open store) = %v, want ErrLocked", err)
	}
	assertOnly(t, dir, "backup.db")
}
