package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/palaver-bot/palaver/sessions"
)

// storeUsage is printed for "palaver store" without a known subcommand.
const storeUsage = `Usage:
  palaver store check [FILE] [--config FILE]
      check the store (FILE, else storage.path) without writing to it
  palaver store backup FILE [--force] [--config FILE]
      write a checked copy of the store at storage.path to FILE

check needs palaver stopped: bbolt lets one process at a time open the
store. backup works either way: a running palaver writes the copy itself.
`

// cmdStore runs "palaver store check" and "palaver store backup".
func cmdStore(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(e.stderr, storeUsage)
			return &exitError{code: 2, err: errors.New("no store command given")}
		}
		fmt.Fprint(e.stdout, storeUsage)
		return nil
	}
	switch args[0] {
	case "check":
		e.cmd = command{name: "store check", args: "[FILE] [flags]", summary: "check the store (FILE, else storage.path) without writing to it"}
		return storeCheck(e, args[1:])
	case "backup":
		e.cmd = command{name: "store backup", args: "FILE [flags]", summary: "write a checked copy of the store at storage.path to FILE"}
		return storeBackup(ctx, e, args[1:])
	}
	fmt.Fprint(e.stderr, storeUsage)
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q", args[0])}
}

// storeCheck prints a summary of the store, one line per bucket, and fails
// with every problem found when it is not consistent.
func storeCheck(e *env, args []string) error {
	flags := e.flags()
	pos, err := parse(flags, args)
	if err != nil {
		return err
	}
	var path string
	switch len(pos) {
	case 0:
		cfg, err := e.config()
		if err != nil {
			return err
		}
		path = cfg.Storage.Path
	case 1:
		path = pos[0]
	default:
		return &exitError{code: 2, err: fmt.Errorf("want at most one FILE, got %d arguments", len(pos))}
	}
	r, err := sessions.CheckBolt(path, sessions.DefaultLockTimeout)
	if r != nil {
		printReport(e, path, r)
	}
	if err != nil {
		if r != nil {
			err = fmt.Errorf("%w\nstop palaver and restore the newest backup over %s (see \"Backup, restore and damaged stores\" in the README)", err, path)
		}
		return storeHint("check", err)
	}
	fmt.Fprintf(e.stdout, "store: %s — OK\n", path)
	return nil
}

// printReport writes r, one line per bucket, then its problems.
func printReport(e *env, path string, r *sessions.StoreReport) {
	if r.Size == 0 {
		fmt.Fprintf(e.stdout, "%s: empty file; palaver starts a new store in it\n", path)
		return
	}
	fmt.Fprintf(e.stdout, "%s: %d bytes, %d in use (pages of %d bytes), last transaction %d\n", path, r.Size, r.InUse, r.PageSize, r.TxID)
	fmt.Fprintf(e.stdout, "  %-14s %13s %9s %12s\n", "bucket", "conversations", "entries", "bytes")
	for _, b := range r.Buckets {
		fmt.Fprintf(e.stdout, "  %-14s %13d %9d %12d\n", b.Name, b.Conversations, b.Entries, b.Bytes)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(e.stdout, "problem: %s\n", p)
	}
	if more := r.ProblemCount - len(r.Problems); more > 0 {
		fmt.Fprintf(e.stdout, "problem: and %d more\n", more)
	}
}

// storeBackup copies the store at storage.path to FILE with
// sessions.BackupBoltFile: a temporary file next to FILE, synced, checked
// with sessions.CheckBolt and only then renamed to FILE, so FILE is either
// the previous file or a complete, checked copy. An existing FILE is
// replaced only with --force. When a running palaver holds the store, that
// palaver writes the same copy, asked through its control socket (see
// requestBackup).
func storeBackup(ctx context.Context, e *env, args []string) error {
	flags := e.flags()
	force := flags.Bool("force", false, "replace FILE if it exists")
	pos, err := parse(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{code: 2, err: errors.New("want the backup FILE: palaver store backup FILE")}
	}
	dst := pos[0]
	cfg, err := e.config()
	if err != nil {
		return err
	}
	src := cfg.Storage.Path
	if err := backupTarget(src, dst, *force); err != nil {
		return err
	}
	how := ""
	n, err := sessions.BackupBoltFile(src, dst, sessions.DefaultLockTimeout)
	if errors.Is(err, sessions.ErrLocked) {
		how = " (written by the running palaver)"
		n, err = requestBackup(ctx, src, dst, *force)
	}
	if err != nil {
		return storeHint("backup", err)
	}
	fmt.Fprintf(e.stdout, "backup: %s → %s, %d bytes, checked OK%s\n", src, dst, n, how)
	return nil
}

// backupTarget refuses a dst that is the store itself, a directory, or an
// existing file when force is false.
func backupTarget(src, dst string, force bool) error {
	info, err := os.Stat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("backup file: %w", err)
	case info.IsDir():
		return fmt.Errorf("backup file %s is a directory; name a file", dst)
	}
	if srcInfo, err := os.Stat(src); err == nil && os.SameFile(info, srcInfo) {
		return fmt.Errorf("backup file %s is the store itself (storage.path)", dst)
	}
	if !force {
		return fmt.Errorf("backup file %s exists; pass --force to replace it", dst)
	}
	return nil
}

// storeHint adds to err from the store functions what to do about it.
func storeHint(cmd string, err error) error {
	switch {
	case errors.Is(err, sessions.ErrLocked):
		return fmt.Errorf("%w\npalaver store %s needs the store to itself: stop palaver, run this again, then start palaver (palaver store backup works while it runs; copying its file with cp can give a torn, unusable copy)", err, cmd)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (there is no store there yet: palaver creates it on first use)", err)
	}
	return err
}
