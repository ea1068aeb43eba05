package console

import (
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

// TestChat_Run_Usage checks /usage in the terminal chat: the Manager's
// report, without its Markdown markers in a plain output.
func TestChat_Run_Usage(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	m := newManager(t, t.TempDir(), up)
	runPlain(t, m, "hello there\n") // returns once the answer is in
	out := runPlain(t, m, "/usage\n/help\n")
	for _, want := range []string{
		"Your usage",
		"Today: ",
		"By model this month",
		"- fake/echo: ",
		"cost unknown",
		"Days and months end at midnight UTC.",
		"/usage — the tokens you used today and this month",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "**") || strings.Contains(out, "`") {
		t.Errorf("Markdown markers in a plain output:\n%s", out)
	}
}
