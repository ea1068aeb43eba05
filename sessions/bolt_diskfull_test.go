package sessions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

// mountTmpfs mounts a tmpfs of size bytes on a new temporary directory,
// unmounted at the end of the test, and returns the directory. It skips the
// test where mounting is not permitted.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root and CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes to a new file at path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{64 << 10, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill: %v", err)
				}
				break
			}
		}
	}
}

func TestBoltStore_DiskFull(t *testing.T) {
	dir := mountTmpfs(t, 4<<20)
	path := filepath.Join(dir, "palaver.db")
	filler := filepath.Join(dir, "filler")
	ctx := context.Background()
	key := Key{Platform: "telegram", Chat: "1"}

	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }() // before the unmount
	var committed []string
	appendText := func(text string) error {
		err := s.Append(ctx, key, true, Entry{Role: llm.RoleUser, Text: text, Time: time.Unix(1, 0)})
		if err == nil {
			committed = append(committed, text)
		}
		return err
	}
	assertHistory := func(s *BoltStore) {
		t.Helper()
		h, err := s.History(ctx, key, 0)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		var got []string
		for _, e := range h {
			got = append(got, e.Text)
		}
		if !slices.Equal(got, committed) {
			t.Fatalf("History has %d entries, want the %d committed", len(got), len(committed))
		}
	}
	big := func(i int) string { return fmt.Sprintf("%d %s", i, strings.Repeat("x", 3000)) }
	for i := range 20 {
		if err := appendText(big(i)); err != nil {
			t.Fatalf("Append before the disk is full: %v", err)
		}
	}

	fill(t, filler)
	var appendErr error
	for i := 20; i < 2000 && appendErr == nil; i++ {
		appendErr = appendText(big(i))
	}
	if appendErr == nil {
		t.Fatal("Append never failed on a full disk")
	}
	t.Logf("after %d entries: %v", len(committed), appendErr)
	if !errors.Is(appendErr, syscall.ENOSPC) {
		t.Errorf("Append error = %v, want one wrapping ENOSPC", appendErr)
	}
	assertHistory(s) // the store stays readable, nothing committed is lost
	if err := appendText(big(-1)); err == nil {
		t.Error("Append succeeded with the disk still full")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := appendText(fmt.Sprint("after ", i)); err != nil {
			t.Fatalf("Append after space came back: %v", err)
		}
	}
	assertHistory(s)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckBolt(path, time.Second); err != nil {
		t.Errorf("CheckBolt after a full disk: %v", err)
	}
	s, err = OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	assertHistory(s)
}
