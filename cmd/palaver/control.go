package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/palaver-bot/palaver/sessions"
)

// The control socket lets "palaver store backup" copy the store of a
// running palaver, which holds bbolt's exclusive lock on the file. Every
// palaver that opens the store listens on a Unix socket next to it,
// controlPath(storage.path), of mode 0600, so that only the store's owner
// can connect, and answers one request per connection, one connection at a
// time (later ones wait):
//
//	backup [--force] <absolute path>\n   →   ok <bytes>\n | error <reason>\n
//
// The backup is written by BoltStore.Backup; the path is refused, as by the
// command itself, when it is the store, a directory, or (without --force) an
// existing file.
const (
	// controlSuffix is added to storage.path to name the socket.
	controlSuffix = ".ctl"
	// maxControlLine caps a request or answer line, newline included: room
	// for a path of PATH_MAX (4096) bytes and the words around it.
	maxControlLine = 8 << 10
	// controlTimeout bounds how long the server waits for a request and
	// for its answer to be taken. The backup itself is not bounded: it
	// takes about as long as reading the file.
	controlTimeout = 10 * time.Second
)

// controlPath is the control socket of the store at store.
func controlPath(store string) string { return store + controlSuffix }

// control serves the control socket of an open store until Close.
type control struct {
	store   *sessions.BoltStore
	path    string
	ln      *net.UnixListener
	log     *slog.Logger
	timeout time.Duration
	cancel  context.CancelFunc
	done    chan struct{}
}

// listenControl creates the control socket of store and serves it until
// Close; timeout bounds each connection's request and answer (see
// controlTimeout). A socket left at the path by a palaver that crashed
// (connecting is refused) is replaced; anything else there is an error and
// is left alone.
func listenControl(store *sessions.BoltStore, log *slog.Logger, timeout time.Duration) (*control, error) {
	path := controlPath(store.Path())
	if err := checkStale(path); err != nil {
		return nil, err
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &control{store: store, path: path, ln: ln, log: log, timeout: timeout, cancel: cancel, done: make(chan struct{})}
	go c.serve(ctx)
	return c, nil
}

// checkStale returns nil when nothing is at path, or when a socket there
// refuses connections: the socket of a palaver that did not shut down
// cleanly.
func checkStale(path string) error {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("control socket: %w", err)
	case info.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("control socket %s: a file that is not a socket is in the way; move it away", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("control socket %s: another process is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

// listenPrivate listens on a Unix socket of mode 0600 at path, replacing a
// socket there. The socket is made in a new directory of mode 0700 and
// renamed into place once its mode is set, so no other user can connect in
// between.
func listenPrivate(path string) (*net.UnixListener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".ctl")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // it is renamed; Close removes c.path
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Close stops serving, cancelling a backup in progress, and removes the
// socket. It is safe to call on a nil *control.
func (c *control) Close() error {
	if c == nil {
		return nil
	}
	c.cancel()
	err := c.ln.Close()
	<-c.done
	if rerr := os.Remove(c.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("control socket: close: %w", err)
	}
	return nil
}

// serve accepts connections until ctx ends, handling one at a time.
func (c *control) serve(ctx context.Context) {
	defer close(c.done)
	for {
		conn, err := c.ln.Accept()
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			if conn != nil {
				conn.Close()
			}
			return
		}
		if err != nil {
			// Running out of file descriptors, say: try again shortly.
			c.log.Warn("control socket: accept", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		c.handle(ctx, conn)
	}
}

// handle reads one request from conn and writes its answer.
func (c *control) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetReadDeadline(time.Now().Add(c.timeout))
	answer := c.answer(ctx, conn)
	conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := io.WriteString(conn, answer); err != nil {
		c.log.Warn("control socket: answer", "error", err)
	}
}

// answer reads a request from r, carries it out and returns the answer
// line.
func (c *control) answer(ctx context.Context, r io.Reader) string {
	line, err := readControlLine(r)
	if err != nil {
		return errorLine(fmt.Errorf("read request: %w", err))
	}
	dst, force, err := parseBackupRequest(line)
	if err != nil {
		return errorLine(err)
	}
	if err := backupTarget(c.store.Path(), dst, force); err != nil {
		return errorLine(err)
	}
	start := time.Now()
	n, err := c.store.Backup(ctx, dst)
	if err != nil {
		c.log.Warn("store backup failed", "path", dst, "error", err)
		return errorLine(err)
	}
	c.log.Info("store backup written", "path", dst, "bytes", n, "duration", time.Since(start))
	return fmt.Sprintf("ok %d\n", n)
}

// parseBackupRequest parses "backup [--force] PATH" (without the newline).
func parseBackupRequest(line string) (path string, force bool, err error) {
	rest, ok := strings.CutPrefix(line, "backup ")
	if !ok {
		return "", false, fmt.Errorf("unknown request %.40q; want \"backup [--force] PATH\"", line)
	}
	path, force = strings.CutPrefix(rest, "--force ")
	if !filepath.IsAbs(path) {
		return "", false, fmt.Errorf("backup path %q is not absolute", path)
	}
	return path, force, nil
}

// readControlLine reads a line of at most maxControlLine bytes and returns
// it without its newline.
func readControlLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxControlLine)).ReadString('\n')
	switch {
	case err == nil:
		return strings.TrimSuffix(line, "\n"), nil
	case errors.Is(err, io.EOF) && len(line) == maxControlLine:
		return "", fmt.Errorf("line longer than %d bytes", maxControlLine)
	case errors.Is(err, io.EOF):
		return "", errors.New("connection closed before the end of the line")
	}
	return "", err
}

// errorLine is the answer line for err: "error ", its text on one line,
// cut to fit maxControlLine.
func errorLine(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if limit := maxControlLine - len("error \n"); len(msg) > limit {
		msg = msg[:limit]
	}
	return "error " + msg + "\n"
}

// requestBackup asks the palaver that holds the store at store, through its
// control socket, to write a backup to dst, and returns its size.
func requestBackup(ctx context.Context, store, dst string, force bool) (int64, error) {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return 0, fmt.Errorf("backup file: %w", err)
	}
	if strings.Contains(abs, "\n") {
		return 0, fmt.Errorf("backup file %q: a name with a newline cannot be sent to the running palaver", dst)
	}
	sock := controlPath(store)
	d := net.Dialer{Timeout: controlTimeout}
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return 0, fmt.Errorf("the store %s is in use, so palaver seems to be running, but it does not answer on its control socket %s (%w); run this as the user palaver runs as, from the directory it was started in if storage.path is relative, or stop palaver, run this again and start it", store, sock, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req := "backup "
	if force {
		req += "--force "
	}
	if _, err := io.WriteString(conn, req+abs+"\n"); err != nil {
		return 0, fmt.Errorf("control socket %s: %w", sock, err)
	}
	// No deadline: the answer comes when the copy is written and checked.
	line, err := readControlLine(conn)
	if err != nil {
		return 0, fmt.Errorf("control socket %s: read answer: %w", sock, err)
	}
	if reason, ok := strings.CutPrefix(line, "error "); ok {
		return 0, fmt.Errorf("the running palaver did not write the backup: %s", reason)
	}
	if size, ok := strings.CutPrefix(line, "ok "); ok {
		if n, err := strconv.ParseInt(size, 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("control socket %s: unexpected answer %.40q", sock, line)
}
