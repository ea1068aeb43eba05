// Command palaver brings large language models into Discord and Telegram,
// serves them to local programs as an OpenAI-compatible endpoint, and
// offers a terminal chat.
//
//	palaver run      all configured bots (and the endpoint if enabled)
//	palaver chat     a terminal chat
//	palaver serve    the OpenAI-compatible endpoint only
//	palaver models   list the providers' models
//	palaver ask Q    one answer, streamed to stdout ("-" reads Q from stdin)
//	palaver check    validate the config
//	palaver store    check the store file, or back it up
//	palaver usage    the tokens and cost recorded, by user, model, day…
//	palaver health   ask a running palaver's /healthz
//	palaver version  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a process exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// command is one palaver command.
type command struct {
	name    string
	args    string // what follows the name in its usage line
	summary string // one line, for the command list and its -h
	run     func(context.Context, *env, []string) error
}

// commands lists palaver's commands in the order the usage shows them.
var commands = []command{
	{"run", "[flags]", "run the configured Telegram and Discord bots (and the endpoint if gateway.enabled)", cmdRun},
	{"chat", "[flags]", "talk to a model in this terminal (logs go to palaver-chat.log beside the store)", cmdChat},
	{"serve", "[flags]", "serve the OpenAI-compatible endpoint (default 127.0.0.1:8000)", cmdServe},
	{"models", "[flags]", "list the models the providers offer", cmdModels},
	{"ask", "[flags] QUESTION", "answer one question, streamed to stdout (QUESTION \"-\" reads it from stdin)", cmdAsk},
	{"check", "[flags]", "validate the config and report what it enables", cmdCheck},
	{"store", "check|backup FILE [flags]", "check the store (store check) or copy it while palaver runs (store backup FILE)", cmdStore},
	{"usage", "[--from DAY] [--to DAY] [--by COLUMNS] [--csv|--json] [flags]", "show who used which models and what it cost, by user, conversation, platform, key, model and day", cmdUsage},
	{"health", "[--url URL] [flags]", "ask a running palaver's /healthz; exit 0 when every component is up", cmdHealth},
	{"version", "", "print the version", cmdVersion},
	{"help", "[COMMAND]", "show the commands, or one command's flags", nil},
}

// lookup finds a command by name.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// writeUsage writes the command list.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: palaver <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nEvery command takes --config FILE (default config.yaml, else built-in defaults).\n"+
		"Run \"palaver help <command>\" or \"palaver <command> -h\" for a command's flags; \"palaver --version\" prints the version.\n")
}

// Main runs palaver with args (without the program name) and returns the
// process exit code. Interrupts (Ctrl-C) are the commands' own business.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeUsage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		writeUsage(stdout)
		return 0
	case "-v", "-version", "--version":
		name, args = "version", []string{"version"}
	case "help":
		if len(args) < 2 || args[1] == "help" {
			writeUsage(stdout)
			return 0
		}
		// palaver help CMD is palaver CMD -h.
		name, args = args[1], []string{args[1], "-h"}
	}
	cmd, ok := lookup(name)
	if !ok || cmd.run == nil {
		fmt.Fprintf(stderr, "palaver: unknown command %q\n\n", name)
		writeUsage(stderr)
		return 2
	}
	e := &env{cmd: cmd, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	if slices.ContainsFunc(args[1:], func(a string) bool { return a == "-h" || a == "-help" || a == "--help" }) {
		e.helpOut = stdout
	}
	err := cmd.run(ctx, e, args[1:])
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "palaver %s: %v\n", name, ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "palaver %s: %v\n", name, err)
	return 1
}

// env is what a command may use of the process.
type env struct {
	cmd            command
	stdin          io.Reader
	stdout, stderr io.Writer
	helpOut        io.Writer // where a command's usage goes when asked for (-h); nil otherwise
	getenv         func(string) string
	configPath     string
	configGiven    bool
}

// flags returns a flag set with --config for the command.
func (e *env) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("palaver "+e.cmd.name, flag.ContinueOnError)
	// parse reports a mistake itself, in one line; the usage is printed
	// only when asked for.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		if e.helpOut == nil {
			return
		}
		fs.SetOutput(e.helpOut)
		defer fs.SetOutput(io.Discard)
		summary := strings.ToUpper(e.cmd.summary[:1]) + e.cmd.summary[1:]
		fmt.Fprintf(e.helpOut, "Usage: palaver %s %s\n\n%s.\n\nFlags:\n", e.cmd.name, e.cmd.args, summary)
		fs.PrintDefaults()
	}
	fs.Func("config", "config `file` (default config.yaml, else built-in defaults)", func(s string) error {
		e.configPath, e.configGiven = s, true
		return nil
	})
	return fs
}

// parse parses args, allowing flags after positional arguments too. A
// mistake is an exit-2 error that says where to find the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: 2, err: fmt.Errorf("%w (see %s -h)", err, fs.Name())}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
		if len(pos) > 0 && pos[len(pos)-1] == "--" {
			return append(pos[:len(pos)-1], args...), nil
		}
	}
}

// config loads and validates the config named by --config.
func (e *env) config() (*Config, error) {
	cfg, err := LoadConfig(e.configPath, e.configGiven, e.getenv)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return cfg, nil
}
