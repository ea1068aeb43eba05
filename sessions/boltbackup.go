package sessions

import (
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BackupBolt writes a consistent copy of the store file at path to w, after
// the checks OpenBolt makes, and returns the bytes written. It reads the file
// in a read-only transaction and never writes to it. It fails with ErrLocked
// while another process (a running palaver) has the file open: bbolt allows
// one process per file.
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
