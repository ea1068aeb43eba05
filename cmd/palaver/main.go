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

// usage is printed for -h and for an unknown command.
const usage = `Usage: palaver <command> [flags]

Commands:
  run       run the configured Telegram and Discord bots (and the endpoint if gateway.enabled)
  chat      talk to a model in this terminal
  serve     serve the OpenAI-compatible endpoint (default 127.0.0.1:8000)
  models    list the models the providers offer
  ask Q     answer one question, streamed to stdout ("-" reads it from stdin)
  check     validate the config and report what it enables
  store     check the store (store check) or copy it (store backup FILE)
  version   print the version

Every command takes --config FILE (default config.yaml, else built-in defaults).
Run "palaver <command> -h" for a command's flags.
`

// Main runs palaver with args (without the program name) and returns the
// process exit code. Interrupts (Ctrl-C) are the commands' own business.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func(context.Context, *env, []string) error{
		"run":     cmdRun,
		"chat":    cmdChat,
		"serve":   cmdServe,
		"models":  cmdModels,
		"ask":     cmdAsk,
		"check":   cmdCheck,
		"store":   cmdStore,
		"version": cmdVersion,
	}
	name := args[0]
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "palaver: unknown command %q\n\n%s", name, usage)
		return 2
	}
	e := &env{name: name, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	err := cmd(ctx, e, args[1:])
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
	name           string
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	configPath     string
	configGiven    bool
}

// flags returns a flag set with --config for the command.
func (e *env) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("palaver "+e.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Func("config", "config `file` (default config.yaml, else built-in defaults)", func(s string) error {
		e.configPath, e.configGiven = s, true
		return nil
	})
	return fs
}

// parse parses args, allowing flags after positional arguments too.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
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
