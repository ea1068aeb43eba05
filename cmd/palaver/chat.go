package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/term"

	"github.com/palaver-bot/palaver/bots/console"
	"github.com/palaver-bot/palaver/bots/console/termmd"
	"github.com/palaver-bot/palaver/sessions"
)

// Files `palaver chat` keeps beside the store (in storage.path's
// directory).
const (
	// chatLogName is where the chat's logs go, so that they never print
	// into the conversation (--verbose sends them to stderr instead).
	chatLogName = "palaver-chat.log"
	// chatHistoryName is the terminal's input history, shared by every
	// --user name (console.HistoryEntries entries).
	chatHistoryName = "palaver-chat-history"
	// chatLogMax is the size past which the log is moved to
	// palaver-chat.log.old (replacing the one there) when a chat starts.
	chatLogMax = 8 << 20
)

// cmdChat runs the terminal chat on the same Manager, store and providers
// as the bots. In a terminal the input is edited in place with a history
// and answers are rendered as Markdown; with stdin or stdout not a
// terminal each line read is a message. Ctrl-C stops an answer.
func cmdChat(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	name := fs.String("user", "", "conversation name (one history per name; default your login name)")
	verbose := fs.Bool("verbose", false, "write logs to stderr instead of "+chatLogName+" beside the store")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	dir := filepath.Dir(cfg.Storage.Path)
	logOut, logFile := e.stderr, ""
	if !*verbose {
		logFile = filepath.Join(dir, chatLogName)
		f, err := openChatLog(logFile)
		if err != nil {
			return fmt.Errorf("chat log: %w (or use --verbose to log to stderr)", err)
		}
		defer f.Close()
		logOut = f
	}
	log := newLogger(cfg, logOut)
	c, err := openCore(ctx, cfg, log, sessions.Observer{}, sessions.TurnObserver{}, nil)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			fmt.Fprintf(e.stderr, "palaver chat: %v\n", err)
		}
	}()

	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)

	who := *name
	if who == "" {
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
	}
	style := e.getenv("GLAMOUR_STYLE") // glamour's own name for it
	if !slices.Contains(termmd.Styles, style) {
		style = ""
	}
	chat := console.New(c.manager, e.stdin, e.stdout, console.Options{
		User:        who,
		Color:       isTerminal(e.stdout) && e.getenv("NO_COLOR") == "",
		Interrupts:  interrupts,
		Logger:      log,
		LogFile:     logFile,
		Terminal:    isTTY(e.stdin) && isTTY(e.stdout),
		HistoryFile: filepath.Join(dir, chatHistoryName),
		MaxInput:    cfg.Chat.MaxMessage,
		Style:       style,
	})
	return chat.Run(ctx)
}

// isTTY reports whether f is a terminal (not merely a character device,
// as /dev/null is).
func isTTY(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// openChatLog opens the chat's log for appending, first moving a log
// larger than chatLogMax aside to path+".old".
func openChatLog(path string) (*os.File, error) {
	if st, err := os.Stat(path); err == nil && st.Size() > chatLogMax {
		if err := os.Rename(path, path+".old"); err != nil {
			return nil, fmt.Errorf("rotate: %w", err)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return f, nil
}
