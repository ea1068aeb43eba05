package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

// Keys as a terminal sends them.
const (
	keyEnter  = "\r"
	keyUp     = "\x1b[A"
	keyLeft   = "\x1b[D"
	keyHome   = "\x1b[H"
	keyF5     = "\x1b[15~"
	keyCtrlC  = "\x03"
	keyCtrlD  = "\x04"
	keyCtrlE  = "\x05"
	keyCtrlL  = "\x0c"
	pasteOpen = "\x1b[200~"
	pasteEnd  = "\x1b[201~"
)

// waitLimit bounds every wait for the terminal; nothing asserts on time.
const waitLimit = 20 * time.Second

// chatTerm is `palaver chat` running in this process on a pseudo-terminal:
// keys are written to the terminal's master side and the screen's bytes
// read from it.
type chatTerm struct {
	t      *testing.T
	master *os.File
	stderr *syncBuffer

	mu      sync.Mutex
	out     bytes.Buffer
	seen    int           // stripped output before this was matched by a wait
	changed chan struct{} // capacity 1: output arrived
	code    chan int      // Main's exit code
}

// startChat runs `palaver chat --config cfg args...` on a new 100×30
// pseudo-terminal.
func startChat(t *testing.T, cfg string, args ...string) *chatTerm {
	t.Helper()
	t.Setenv("TERM", "xterm-256color")
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: 30, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	ct := &chatTerm{t: t, master: master, stderr: &syncBuffer{}, changed: make(chan struct{}, 1), code: make(chan int, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			ct.mu.Lock()
			ct.out.Write(buf[:n])
			ct.mu.Unlock()
			select {
			case ct.changed <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		ct.code <- Main(ctx, append([]string{"chat", "--config", cfg, "--user", "tester"}, args...), tty, tty, ct.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ct.code:
		case <-time.After(waitLimit):
			t.Error("palaver chat did not end")
		}
		tty.Close()
		master.Close()
	})
	return ct
}

// screen is everything the terminal received, without escape sequences.
func (ct *chatTerm) screen() string { return ansi.Strip(ct.raw()) }

// waitFor waits until want appears in the output after what earlier waits
// matched, and moves past it.
func (ct *chatTerm) waitFor(want string) {
	ct.t.Helper()
	deadline := time.After(waitLimit)
	for {
		s := ct.screen()
		if i := strings.Index(s[ct.seen:], want); i >= 0 {
			ct.seen += i + len(want)
			return
		}
		select {
		case <-ct.changed:
		case <-deadline:
			ct.t.Fatalf("no %q on the terminal; after the last match it shows:\n%s", want, s[ct.seen:])
		}
	}
}

// raw is everything the terminal received.
func (ct *chatTerm) raw() string {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.out.String()
}

// waitRaw waits until the terminal has received the bytes seq.
func (ct *chatTerm) waitRaw(seq string) {
	ct.t.Helper()
	deadline := time.After(waitLimit)
	for {
		if strings.Contains(ct.raw(), seq) {
			return
		}
		select {
		case <-ct.changed:
		case <-deadline:
			ct.t.Fatalf("the terminal never received %q", seq)
		}
	}
}

// send types keys.
func (ct *chatTerm) send(keys ...string) {
	ct.t.Helper()
	for _, k := range keys {
		if _, err := io.WriteString(ct.master, k); err != nil {
			ct.t.Fatal(err)
		}
	}
}

// exit waits for palaver chat to end and returns its exit code.
func (ct *chatTerm) exit() int {
	ct.t.Helper()
	select {
	case code := <-ct.code:
		ct.code <- code // for the cleanup
		return code
	case <-time.After(waitLimit):
		ct.t.Fatalf("palaver chat did not end; the terminal shows:\n%s", ct.screen())
		return -1
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lastUser is the last user message of the last chat request up received.
func lastUser(t *testing.T, up *llmtest.Server) string {
	t.Helper()
	reqs := up.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if msgs := reqs[i].Request.Messages; reqs[i].Path == "/v1/chat/completions" && len(msgs) > 0 {
			return msgs[len(msgs)-1].Content
		}
	}
	t.Fatal("no chat request")
	return ""
}

// chatRequests counts the chat requests up received.
func chatRequests(up *llmtest.Server) int {
	n := 0
	for _, r := range up.Requests() {
		if r.Path == "/v1/chat/completions" {
			n++
		}
	}
	return n
}

func TestChat_Terminal_PasteIsOneMessage(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	ct := startChat(t, upstreamConfig(t, up.URL, ""))
	ct.waitFor("Palaver — talking to fake/echo")

	ct.send(pasteOpen+"first line\rsecond line\r\rthird"+pasteEnd, keyEnter)
	ct.waitFor("echo: first line")
	ct.waitFor("third")
	if got, want := lastUser(t, up), "first line\nsecond line\n\nthird"; got != want {
		t.Errorf("the model was asked %q, want %q", got, want)
	}
	if n := chatRequests(up); n != 1 {
		t.Errorf("%d chat requests, want 1: a paste is one message", n)
	}
	ct.send(keyCtrlD)
	if code := ct.exit(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TestChat_Terminal_EditAndHistory edits a message with the arrow keys,
// leaves, and recalls it with ↑ in a second run.
func TestChat_Terminal_EditAndHistory(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	cfg := upstreamConfig(t, up.URL, "")

	ct := startChat(t, cfg)
	ct.waitFor("Palaver — talking to")
	ct.send("helo", keyLeft, "l", keyCtrlE, " world", keyF5, keyHome, "Say ", keyEnter)
	ct.waitFor("echo: Say hello world")
	if got := lastUser(t, up); got != "Say hello world" {
		t.Errorf("the model was asked %q, want %q (escape sequences are keys, not text)", got, "Say hello world")
	}
	ct.send(keyCtrlD)
	if code := ct.exit(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	history, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), chatHistoryName))
	if err != nil || !strings.Contains(string(history), `"Say hello world"`) {
		t.Fatalf("history file: %q, %v; want the message", history, err)
	}

	ct2 := startChat(t, cfg)
	ct2.waitFor("Resuming: 2 earlier messages are in context")
	ct2.send(keyUp, keyEnter)
	ct2.waitFor("you› Say hello world")
	ct2.waitFor("echo: Say hello world")
	ct2.waitFor("Send a message") // the answer has ended
	if n := chatRequests(up); n != 2 {
		t.Errorf("%d chat requests, want 2", n)
	}
	if strings.Contains(ct2.raw(), "\x1b[2J") {
		t.Fatal("the screen was cleared before Ctrl-L")
	}
	ct2.send(keyCtrlL)
	ct2.waitRaw("\x1b[2J") // the screen is cleared
	ct2.send(keyCtrlC)
	ct2.waitFor("Press Ctrl-C again")
	ct2.send(keyCtrlC)
	if code := ct2.exit(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestChat_Terminal_CtrlCStopsAnswer(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	words := strings.Repeat("slowly ", 2000)
	up.Enqueue(llmtest.Script{Content: llmtest.Tokens("Beginning " + words), Interval: 5 * time.Millisecond})
	ct := startChat(t, upstreamConfig(t, up.URL, ""))
	ct.waitFor("Palaver — talking to")
	ct.send("tell me", keyEnter)
	ct.waitFor("Beginning")
	ct.send("typed meanwhile") // stays in the input, not in the answer
	ct.send(keyCtrlC)
	ct.waitFor("(stopped)")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := up.WaitDisconnect(ctx); err != nil {
		t.Errorf("the model's stream was not abandoned: %v", err)
	}
	ct.send(keyEnter)
	ct.waitFor("echo: typed meanwhile")
	if strings.Contains(ct.screen(), "slowly typed meanwhile") {
		t.Error("what was typed during the answer was spliced into it")
	}
	ct.send("/quit", keyEnter)
	if code := ct.exit(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestChat_Terminal_LogsGoToFile(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{Content: llmtest.Tokens("partial answer"), Fail: llmtest.FailErrorChunk, FailAfter: 1, FailMessage: "the GPU caught fire"})
	cfg := upstreamConfig(t, up.URL, "")
	logFile := filepath.Join(filepath.Dir(cfg), chatLogName)
	ct := startChat(t, cfg)
	ct.waitFor("Logs go to " + logFile)
	ct.send("hi", keyEnter)
	ct.waitFor("⚠️")
	ct.send(keyCtrlD)
	if code := ct.exit(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	logs, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(logs), "answer failed") {
		t.Fatalf("log file: %q, %v; want the failure logged", logs, err)
	}
	if s := ct.screen(); strings.Contains(s, "level=") || strings.Contains(s, "answer failed") {
		t.Errorf("a log line printed into the conversation:\n%s", s)
	}
	if s := ct.stderr.String(); s != "" {
		t.Errorf("stderr = %q, want nothing", s)
	}
}

func TestChat_Terminal_Markdown(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{
		Reasoning: llmtest.Tokens("Let me think about that."),
		Content:   llmtest.Tokens("# Heading\n\nSome **bold** text.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```go\nfunc main() {}\n```\n"),
	})
	ct := startChat(t, upstreamConfig(t, up.URL, "chat:\n  reasoning: full\n"))
	ct.waitFor("Palaver — talking to")
	ct.send("/help", keyEnter)
	ct.waitFor("/quit")
	ct.waitFor("Ctrl-J")
	ct.send("show me", keyEnter)
	ct.waitFor("Let me think about that.")
	ct.waitFor("func main() {}")
	ct.send("/settings", keyEnter)
	ct.waitFor("Model:")
	ct.waitFor("fake/echo")
	ct.waitFor("History: 2 recent messages")
	s := ct.screen()
	for _, raw := range []string{"**bold**", "```", "# Heading", "|---", "`/quit`", "`fake/echo`"} {
		if strings.Contains(s, raw) {
			t.Errorf("the terminal shows Markdown syntax %q:\n%s", raw, s)
		}
	}
	ct.send(keyCtrlD)
	if code := ct.exit(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TestChat_PipedLines checks that without a terminal each line read is a
// message, answered in order, as before the terminal mode existed.
func TestChat_PipedLines(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	cfg := upstreamConfig(t, up.URL, "")
	var stdout, stderr syncBuffer
	code := Main(context.Background(), []string{"chat", "--config", cfg, "--user", "script"},
		strings.NewReader("one\ntwo\n/model\nthree\n"), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d; stderr %s", code, stderr.String())
	}
	out := stdout.String()
	last := -1
	for _, want := range []string{"echo: one", "echo: two", "echo: three"} {
		i := strings.Index(out, want)
		if i < last {
			t.Errorf("%q out of order in:\n%s", want, out)
		}
		last = i
	}
	var asked []string
	for _, r := range up.Requests() {
		if r.Path == "/v1/chat/completions" {
			asked = append(asked, r.Request.Messages[len(r.Request.Messages)-1].Content)
		}
	}
	if strings.Join(asked, ",") != "one,two,three" {
		t.Errorf("the model was asked %q, want one, two, three in order", asked)
	}
	if strings.Contains(out, "\x1b[") || stderr.String() != "" {
		t.Errorf("stdout %q, stderr %q: want no escape sequences, no logs", out, stderr.String())
	}
}

func TestChat_Verbose(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.Enqueue(llmtest.Script{Status: 400, Body: `{"error":{"message":"bad model"}}`})
	cfg := upstreamConfig(t, up.URL, "log:\n  level: debug\n")
	var stdout, stderr syncBuffer
	code := Main(context.Background(), []string{"chat", "--config", cfg, "--verbose"}, strings.NewReader("hi\n"), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d; stderr %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "level=") {
		t.Errorf("stderr = %q, want the logs with --verbose", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), chatLogName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log file with --verbose: %v, want none", err)
	}
}
