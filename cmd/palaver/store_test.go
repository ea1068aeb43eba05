package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// storeKeys are the conversations writeStore fills.
var storeKeys = []sessions.Key{
	{Platform: "telegram", Chat: "1"},
	{Platform: "discord", Chat: "2"},
}

// storeFixture writes a config and a store of a few pages at its
// storage.path, and returns the config path and the store path.
func storeFixture(t *testing.T) (config, store string) {
	t.Helper()
	config = upstreamConfig(t, "http://127.0.0.1:1/v1", "")
	store = filepath.Join(filepath.Dir(config), "palaver.db")
	s, err := sessions.OpenBolt(store, sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		e := sessions.Entry{Role: llm.RoleUser, Text: fmt.Sprintf("%d %s", i, strings.Repeat("word ", 300)), Time: time.Unix(int64(i), 0)}
		if err := s.Append(context.Background(), storeKeys[i%2], true, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return config, store
}

// histories reads every storeKeys conversation of the store at path.
func histories(t *testing.T, path string) [][]string {
	t.Helper()
	s, err := sessions.OpenBolt(path, sessions.BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt(%s): %v", path, err)
	}
	defer s.Close()
	var out [][]string
	for _, key := range storeKeys {
		h, err := s.History(context.Background(), key, 0)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, e := range h {
			texts = append(texts, e.Text)
		}
		out = append(out, texts)
	}
	return out
}

// holdStore opens the store at path until the end of the test, as a running
// palaver does.
func holdStore(t *testing.T, path string) {
	t.Helper()
	s, err := sessions.OpenBolt(path, sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
}

// truncate cuts the file at path to 3 pages, fewer than a store uses.
func truncate(t *testing.T, path string) {
	t.Helper()
	if err := os.Truncate(path, 3*int64(os.Getpagesize())); err != nil {
		t.Fatal(err)
	}
}

// runMain runs Main with args and returns its exit code and output.
func runMain(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMain_StoreCheck(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, store string)
		args   func(config, store string) []string
		code   int
		stdout []string
		stderr []string
	}{
		{
			name:   "OK",
			code:   0,
			stdout: []string{"conversations", "  conversations              2        12", "OK"},
		},
		{
			name: "File",
			args: func(_, store string) []string {
				return []string{"store", "check", store}
			},
			code:   0,
			stdout: []string{"OK"},
		},
		{
			name:   "ErrTruncated",
			setup:  truncate,
			code:   1,
			stderr: []string{"store file is damaged", "truncated", "backup"},
		},
		{
			name: "ErrBadRecord",
			setup: func(t *testing.T, store string) {
				db, err := bolt.Open(store, 0o600, &bolt.Options{Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				err = db.Update(func(tx *bolt.Tx) error {
					hist := tx.Bucket([]byte("conversations")).Bucket([]byte("telegram:1")).Bucket([]byte("history"))
					return hist.Put([]byte{0, 0, 0, 0, 0, 0, 0, 2}, []byte("{oops"))
				})
				if err != nil {
					t.Fatal(err)
				}
			},
			code:   1,
			stdout: []string{"problem: conversation telegram:1: history: decode entry 2"},
			stderr: []string{"1 problems", "restore the newest backup"},
		},
		{
			name:   "ErrLocked",
			setup:  holdStore,
			code:   1,
			stderr: []string{"in use by another process", "stop palaver, run this again"},
		},
		{
			name:   "ErrMissing",
			setup:  func(t *testing.T, store string) { os.Remove(store) },
			code:   1,
			stderr: []string{"no store there yet"},
		},
		{
			name: "ErrArgs",
			args: func(config, store string) []string {
				return []string{"store", "check", store, store}
			},
			code:   2,
			stderr: []string{"at most one FILE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config, store := storeFixture(t)
			if tt.setup != nil {
				tt.setup(t, store)
			}
			args := []string{"store", "check", "--config", config}
			if tt.args != nil {
				args = tt.args(config, store)
			}
			code, stdout, stderr := runMain(args...)
			if code != tt.code {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestMain_StoreBackup(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the store and the backup path; it returns the
		// contents the backup path must have afterwards when the command
		// fails (nil: no file).
		setup  func(t *testing.T, store, backup string) []byte
		args   []string
		code   int
		stderr string
	}{
		{name: "OK", code: 0},
		{
			name: "Force",
			setup: func(t *testing.T, store, backup string) []byte {
				os.WriteFile(backup, []byte("old backup"), 0o600)
				return nil
			},
			args: []string{"--force"},
			code: 0,
		},
		{
			name: "ErrExists",
			setup: func(t *testing.T, store, backup string) []byte {
				os.WriteFile(backup, []byte("old backup"), 0o600)
				return []byte("old backup")
			},
			code:   1,
			stderr: "exists; pass --force",
		},
		{
			name: "ErrLocked",
			setup: func(t *testing.T, store, backup string) []byte {
				holdStore(t, store)
				return nil
			},
			code:   1,
			stderr: "palaver seems to be running, but it does not answer on its control socket",
		},
		{
			name: "ErrDamaged",
			setup: func(t *testing.T, store, backup string) []byte {
				truncate(t, store)
				return nil
			},
			code:   1,
			stderr: "truncated",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config, store := storeFixture(t)
			want := histories(t, store)
			dir := t.TempDir()
			backup := filepath.Join(dir, "backup.db")
			var keep []byte
			if tt.setup != nil {
				keep = tt.setup(t, store, backup)
			}
			code, stdout, stderr := runMain(append([]string{"store", "backup", backup, "--config", config}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() != "backup.db" {
					t.Errorf("left behind %s", e.Name())
				}
			}
			if code != 0 {
				got, err := os.ReadFile(backup)
				if keep == nil && !os.IsNotExist(err) {
					t.Errorf("backup file written by a failed backup (%v)", err)
				}
				if keep != nil && !bytes.Equal(got, keep) {
					t.Errorf("backup file = %q, want it unchanged", got)
				}
				return
			}
			if !strings.Contains(stdout, "checked OK") {
				t.Errorf("stdout = %q", stdout)
			}
			if info, err := os.Stat(backup); err != nil || info.Mode().Perm() != 0o600 {
				t.Errorf("backup file: %v, %v; want mode 0600", info, err)
			}
			if got := histories(t, backup); !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("backup histories differ from the store's")
			}
		})
	}
}

func TestMain_StoreBackup_Refusals(t *testing.T) {
	config, store := storeFixture(t)
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"ErrNoFile", []string{"store", "backup", "--config", config}, 2, "want the backup FILE"},
		{"ErrStoreItself", []string{"store", "backup", store, "--force", "--config", config}, 1, "is the store itself"},
		{"ErrDirectory", []string{"store", "backup", t.TempDir(), "--config", config}, 1, "is a directory"},
		{"ErrUnknown", []string{"store", "repair"}, 2, `unknown command "repair"`},
		{"ErrNone", []string{"store"}, 2, "Usage:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runMain(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit code %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

// TestBinary_DamagedStore runs the real binary on a truncated store: it
// must exit with one clear message, not die of a memory fault.
func TestBinary_DamagedStore(t *testing.T) {
	bin := palaverBinary(t)
	config, store := storeFixture(t)
	truncate(t, store)
	before, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"chat", "--config", config},
		{"store", "check", "--config", config},
	} {
		t.Run(args[0], func(t *testing.T) {
			cmd := exec.Command(bin, args...)
			cmd.Stdin = strings.NewReader("hello\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit code = %d (%v), want 1", code, err)
			}
			msg := stderr.String()
			if !strings.Contains(msg, "store file is damaged") || !strings.Contains(msg, store) {
				t.Errorf("stderr = %q, want the path and \"store file is damaged\"", msg)
			}
			for _, crash := range []string{"SIGBUS", "fatal error", "goroutine "} {
				if strings.Contains(msg, crash) {
					t.Errorf("stderr shows a crash (%q):\n%s", crash, msg)
				}
			}
		})
	}
	after, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the damaged store was changed")
	}
}
