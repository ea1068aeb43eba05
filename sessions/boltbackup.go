package sessions

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BackupBolt writes a consistent copy of the store file at path to w, after
// the checks OpenBolt makes, and returns the bytes written. It reads the file
// in a read-only transaction and never writes to it. It fails with ErrLocked
// while another process (a running palaver) has the file open: bbolt allows
// one process per file; that process can copy it with BoltStore.Backup.
func BackupBolt(path string, w io.Writer, timeout time.Duration) (int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("sessions: back up store: %w", err)
	}
	if info.Size() == 0 {
		return 0, fmt.Errorf("sessions: back up store %s: the file is empty, nothing to back up", path)
	}
	var n int64
	err = viewStore(path, timeout, func(tx *bolt.Tx) error {
		var err error
		if n, err = tx.WriteTo(w); err != nil {
			return fmt.Errorf("sessions: back up store %s: %w", path, err)
		}
		return nil
	})
	return n, err
}

// BackupBoltFile writes a checked copy of the store file at src to the file
// dst with BackupBolt, as BoltStore.Backup does for an open store, and
// returns its size. It fails with ErrLocked while another process has src
// open.
func BackupBoltFile(src, dst string, timeout time.Duration) (int64, error) {
	if err := notStore(src, dst); err != nil {
		return 0, err
	}
	return writeChecked(dst, func(w io.Writer) (int64, error) {
		return BackupBolt(src, w, timeout)
	})
}

// Backup writes a consistent copy of the open store, as of one read
// transaction, to the file dst and returns its size. Writers carry on while
// it copies; the copy holds every transaction committed before Backup was
// called. The copy goes to a temporary file next to dst (mode 0600), is
// synced and checked with CheckBolt, and only then renamed to dst, replacing
// a file there, and the directory synced: dst is either as it was or a
// complete, checked copy, and no temporary file is left behind. dst must not
// be the store file itself. Cancelling ctx stops the copy.
//
// A long copy delays a commit that has to grow the file's memory map until
// the copy ends, and keeps the pages freed meanwhile from being reused.
func (s *BoltStore) Backup(ctx context.Context, dst string) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	if err := notStore(s.path, dst); err != nil {
		return 0, err
	}
	return writeChecked(dst, func(w io.Writer) (int64, error) {
		var n int64
		err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
			if cerr := ctx.Err(); cerr != nil {
				err = cerr // WriteTo does not wrap its writer's error
			}
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("sessions: back up store %s: %w", s.path, err)
		}
		return n, nil
	})
}

// notStore refuses a backup dst that is the store file src: renaming over
// the file of an open store would send every later commit to a deleted
// file.
func notStore(src, dst string) error {
	si, serr := os.Stat(src)
	di, derr := os.Stat(dst)
	if serr == nil && derr == nil && os.SameFile(si, di) {
		return fmt.Errorf("sessions: back up store: %s is the store file itself", dst)
	}
	return nil
}

// writeChecked runs write on a new temporary file next to dst, syncs it,
// checks it with CheckBolt and renames it to dst (see BoltStore.Backup).
func writeChecked(dst string, write func(io.Writer) (int64, error)) (n int64, err error) {
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, filepath.Base(dst)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("sessions: back up store: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if n, err = write(tmp); err != nil {
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("sessions: back up store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("sessions: back up store: %w", err)
	}
	if _, err := CheckBolt(tmp.Name(), DefaultLockTimeout); err != nil {
		return 0, fmt.Errorf("sessions: back up store: the copy failed its check, so %s was not written (run palaver store check on the store): %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("sessions: back up store: %w", err)
	}
	// Make the rename durable.
	d, err := os.Open(dir)
	if err != nil {
		return 0, fmt.Errorf("sessions: back up store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return 0, fmt.Errorf("sessions: back up store: sync %s: %w", dir, err)
	}
	return n, nil
}

// ctxWriter fails every write once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
