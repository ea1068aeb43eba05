package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// openControl opens the store of storeFixture and serves its control socket
// with timeout, until the end of the test.
func openControl(t *testing.T, timeout time.Duration) (store *sessions.BoltStore, ctl *control) {
	t.Helper()
	_, path := storeFixture(t)
	store, err := sessions.OpenBolt(path, sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctl, err = listenControl(store, slog.New(slog.DiscardHandler), timeout)
	if err != nil {
		t.Fatalf("listenControl: %v", err)
	}
	t.Cleanup(func() { ctl.Close() })
	return store, ctl
}

// send writes req to the control socket at sock, closes its writing side
// and returns the answer line. (The server closes a connection with unread
// input, so reading past the line can fail with ECONNRESET.)
func send(t *testing.T, sock, req string) string {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	conn.(*net.UnixConn).CloseWrite()
	answer, err := bufio.NewReader(io.LimitReader(conn, 2*maxControlLine)).ReadString('\n')
	if err != nil {
		t.Fatalf("read answer %q: %v", answer, err)
	}
	return answer
}

// staleSocket leaves a socket at path that nothing listens on, as a palaver
// killed with SIGKILL does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

// TestMain_StoreBackup_Live backs up the store of a running palaver (the
// core that run, serve and chat open) while a goroutine keeps appending to
// it.
func TestMain_StoreBackup_Live(t *testing.T) {
	config, store := storeFixture(t)
	cfg, err := LoadConfig(config, true, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := openCore(t.Context(), cfg, slog.New(slog.DiscardHandler), sessions.Observer{}, sessions.TurnObserver{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if c.control == nil {
		t.Fatal("openCore made no control socket")
	}
	if info, err := os.Stat(controlPath(store)); err != nil || info.Mode().Perm() != 0o600 || info.Mode().Type() != fs.ModeSocket {
		t.Fatalf("control socket: %v, %v; want a socket of mode 0600", info, err)
	}

	// The writer appends "0", "1", ... and publishes how many are
	// committed.
	key := sessions.Key{Platform: "telegram", Chat: "live"}
	committed := make(chan int, 1)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			e := sessions.Entry{Role: llm.RoleUser, Text: strconv.Itoa(i), Time: time.Unix(int64(i), 0)}
			if err := c.store.Append(context.Background(), key, true, e); err != nil {
				done <- err
				return
			}
			select {
			case <-committed:
			default:
			}
			committed <- i + 1
		}
	}()
	before := 0
	for before < 100 {
		before = <-committed
	}

	backup := filepath.Join(t.TempDir(), "backup.db")
	code, stdout, stderr := runMain("store", "backup", backup, "--config", config)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if code != 0 {
		t.Fatalf("exit code = %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "checked OK (written by the running palaver)") {
		t.Errorf("stdout = %q", stdout)
	}
	if _, err := sessions.CheckBolt(backup, time.Second); err != nil {
		t.Fatalf("CheckBolt(backup): %v", err)
	}
	if got := histories(t, backup); len(got[0]) != 12/2 || len(got[1]) != 12/2 {
		t.Errorf("backup holds %d and %d entries of the fixture, want 6 and 6", len(got[0]), len(got[1]))
	}
	s, err := sessions.OpenBolt(backup, sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := s.History(context.Background(), key, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Retention may have pruned the oldest; what is left must run without
	// a gap up to at least the last entry committed before the request.
	if len(h) == 0 {
		t.Fatal("backup holds none of the entries written while palaver ran")
	}
	first, _ := strconv.Atoi(h[0].Text)
	for i, e := range h {
		if e.Text != strconv.Itoa(first+i) {
			t.Fatalf("backup history entry %d = %q, want %d", i, e.Text, first+i)
		}
	}
	t.Logf("%d entries committed before the request; the backup holds %d..%d", before, first, first+len(h)-1)
	if last := first + len(h); last < before {
		t.Errorf("backup holds entries up to %d, want at least the %d committed before the request", last, before)
	}
}

func TestControl_Requests(t *testing.T) {
	store, ctl := openControl(t, time.Minute)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, []byte("old backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, req, want string
	}{
		{"OK", "backup " + filepath.Join(dir, "new.db") + "\n", "ok "},
		{"Force", "backup --force " + existing + "\n", "ok "},
		{"ErrExists", "backup " + existing + "\n", "error backup file " + existing + " exists; pass --force"},
		{"ErrStoreItself", "backup --force " + store.Path() + "\n", "error backup file " + store.Path() + " is the store itself"},
		{"ErrDirectory", "backup " + dir + "\n", "is a directory"},
		{"ErrRelative", "backup backup.db\n", `error backup path "backup.db" is not absolute`},
		{"ErrUnknown", "GET / HTTP/1.1\r\n", `error unknown request "GET / HTTP/1.1\r"`},
		{"ErrEmpty", "\n", "error unknown request"},
		{"ErrNoNewline", "backup /tmp/x", "error read request: connection closed before the end of the line"},
		{"ErrLong", "backup /" + strings.Repeat("a", maxControlLine) + "\n", "error read request: line longer than 8192 bytes"},
		{"ErrMissingDir", "backup " + filepath.Join(dir, "none", "b.db") + "\n", "error sessions: back up store:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := send(t, ctl.path, tt.req)
			if !strings.Contains(got, tt.want) {
				t.Errorf("answer = %q, want %q", got, tt.want)
			}
			if len(got) > maxControlLine {
				t.Errorf("answer of %d bytes, want at most %d", len(got), maxControlLine)
			}
		})
	}
	if _, err := sessions.CheckBolt(existing, time.Second); err != nil {
		t.Errorf("forced backup: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "existing.db" && n != "new.db" {
			t.Errorf("left behind %s", n)
		}
	}
}

// TestControl_Timeout: a client that sends no request gets an error line
// once the read deadline passes, and the next client is served.
func TestControl_Timeout(t *testing.T) {
	_, ctl := openControl(t, 10*time.Millisecond)
	conn, err := net.Dial("unix", ctl.path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	answer, err := io.ReadAll(conn)
	if err != nil || !strings.HasPrefix(string(answer), "error read request:") || !strings.Contains(string(answer), "timeout") {
		t.Errorf("answer = %q, %v; want a timeout error line", answer, err)
	}
	if got := send(t, ctl.path, "backup "+filepath.Join(t.TempDir(), "b.db")+"\n"); !strings.HasPrefix(got, "ok ") {
		t.Errorf("next answer = %q, want ok", got)
	}
}

func TestListenControl_Stale(t *testing.T) {
	_, path := storeFixture(t)
	staleSocket(t, controlPath(path))
	store, err := sessions.OpenBolt(path, sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctl, err := listenControl(store, slog.New(slog.DiscardHandler), time.Minute)
	if err != nil {
		t.Fatalf("listenControl over a stale socket: %v", err)
	}
	info, err := os.Stat(ctl.path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("control socket: %v, %v; want mode 0600", info, err)
	}
	if got := send(t, ctl.path, "backup "+filepath.Join(t.TempDir(), "b.db")+"\n"); !strings.HasPrefix(got, "ok ") {
		t.Errorf("answer = %q, want ok", got)
	}
	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(ctl.path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".ctl") {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestListenControl_InTheWay(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, sock string)
		want  string
	}{
		{
			name: "ErrFile",
			setup: func(t *testing.T, sock string) {
				if err := os.WriteFile(sock, []byte("notes"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: "not a socket",
		},
		{
			name: "ErrListening",
			setup: func(t *testing.T, sock string) {
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
			},
			want: "another process is listening",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path := storeFixture(t)
			sock := controlPath(path)
			tt.setup(t, sock)
			before, err := os.Lstat(sock)
			if err != nil {
				t.Fatal(err)
			}
			store, err := sessions.OpenBolt(path, sessions.BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ctl, err := listenControl(store, slog.New(slog.DiscardHandler), time.Minute)
			if err == nil {
				ctl.Close()
				t.Fatal("listenControl succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
			after, err := os.Lstat(sock)
			if err != nil || !os.SameFile(before, after) {
				t.Errorf("the file in the way was replaced (%v)", err)
			}
		})
	}
}

// TestMain_StoreBackup_Unreachable: the store is held by a process that
// does not answer on the control socket (an older palaver, or one of
// another user), here with a stale socket left beside it.
func TestMain_StoreBackup_Unreachable(t *testing.T) {
	config, store := storeFixture(t)
	holdStore(t, store)
	staleSocket(t, controlPath(store))
	backup := filepath.Join(t.TempDir(), "backup.db")
	code, _, stderr := runMain("store", "backup", backup, "--config", config)
	if code != 1 || !strings.Contains(stderr, "palaver seems to be running, but it does not answer") || !strings.Contains(stderr, "connection refused") {
		t.Errorf("exit code %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(backup); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup file written: %v", err)
	}
}
