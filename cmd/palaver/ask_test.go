package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

// thinker is an upstream that reasons, then answers.
func thinker(t *testing.T) *llmtest.Server {
	t.Helper()
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	up.SetScriptFunc(func(llmtest.Request) llmtest.Script {
		return llmtest.Script{Reasoning: llmtest.Tokens("Let me think."), Content: llmtest.Tokens("The answer.")}
	})
	return up
}

// With stdout not a terminal (a file, a pipe), stdout holds the answer
// alone: full reasoning goes to stderr, collapsed and hidden nowhere.
func TestAsk_Reasoning_NotTerminal(t *testing.T) {
	up := thinker(t)
	tests := []struct {
		name       string
		config     string // chat.reasoning
		flag       string // --reasoning
		wantStderr string
	}{
		{"Full", "", "full", "Let me think.\n\n"},
		{"Collapsed", "", "collapsed", ""},
		{"Hidden", "", "hidden", ""},
		{"ConfigFull", "full", "", "Let me think.\n\n"},
		{"ConfigHiddenFlagFull", "hidden", "full", "Let me think.\n\n"},
		{"DefaultCollapsed", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := ""
			if tt.config != "" {
				extra = "chat:\n  reasoning: " + tt.config + "\n"
			}
			args := []string{"ask", "--config", upstreamConfig(t, up.URL, extra)}
			if tt.flag != "" {
				args = append(args, "--reasoning", tt.flag)
			}
			var stdout, stderr bytes.Buffer
			if code := Main(t.Context(), append(args, "why?"), strings.NewReader(""), &stdout, &stderr); code != 0 {
				t.Fatalf("exit code %d\nstderr: %s", code, stderr.String())
			}
			if got := stdout.String(); got != "The answer.\n" {
				t.Errorf("stdout = %q, want the answer alone", got)
			}
			if got := stderr.String(); got != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", got, tt.wantStderr)
			}
		})
	}
}

// On a terminal, full reasoning is shown faint before the answer, and
// collapsed reasoning is one "thinking" line that the answer erases.
func TestAsk_Reasoning_Terminal(t *testing.T) {
	up := thinker(t)
	cfg := upstreamConfig(t, up.URL, "")
	tests := []struct {
		mode, color string // color: NO_COLOR's value
		want        string // what the terminal shows, "\r\n" read as "\n"
	}{
		{"full", "", faint + "Let me think." + plain + "\n\nThe answer.\n"},
		{"full", "1", "Let me think.\n\nThe answer.\n"},
		{"collapsed", "", faint + "💭 thinking…" + plain + eraseLine + "The answer.\n"},
		{"collapsed", "1", "💭 thinking…" + eraseLine + "The answer.\n"},
		{"hidden", "", "The answer.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/NO_COLOR="+tt.color, func(t *testing.T) {
			t.Setenv("NO_COLOR", tt.color)
			master, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer master.Close()
			screen := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(master) // EIO once the terminal is closed
				screen <- string(b)
			}()
			var stderr bytes.Buffer
			code := Main(t.Context(), []string{"ask", "--config", cfg, "--reasoning", tt.mode, "why?"}, strings.NewReader(""), tty, &stderr)
			tty.Close()
			got := strings.ReplaceAll(<-screen, "\r\n", "\n")
			if code != 0 {
				t.Fatalf("exit code %d\nstderr: %s", code, stderr.String())
			}
			if got != tt.want {
				t.Errorf("terminal shows %q, want %q", got, tt.want)
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr = %q, want nothing", stderr.String())
			}
		})
	}
}

func TestAsk_Reasoning_BadWord(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"ask", "--reasoning", "dim", "why?"}, strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "want hidden, collapsed or full (as chat.reasoning), got \"dim\"") {
		t.Errorf("code %d, stderr %q", code, stderr.String())
	}
}

// A provider that cannot be reached is one sentence on stderr: no log
// lines, no Go error text, and next steps for a command line.
func TestAsk_Unreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := upstreamConfig(t, "http://"+addr+"/v1", "llm:\n  max_retries: 0\n")
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"ask", "--config", cfg, "hi"}, strings.NewReader(""), &stdout, &stderr)
	want := "palaver ask: Palaver could not reach the model server at " + addr +
		": is it running? Check the provider's base_url in the config, then try again.\n"
	if code != 1 || stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("code %d\nstdout %q\nstderr %q\nwant   %q", code, stdout.String(), stderr.String(), want)
	}
	checkCommandSentence(t, "ask", stderr.String())
}

// isTerminal is false for a character device that is not a terminal.
func TestIsTerminal_DevNull(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("isTerminal(/dev/null) = true")
	}
}
