package console

import (
	"context"
	"reflect"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/palaver-bot/palaver/bots/console/termmd"
	"github.com/palaver-bot/palaver/sessions"
)

// screenRecorder stands for the program: it keeps what was printed, as
// lines, and the live area.
type screenRecorder struct {
	printed []string
	live    string
}

func (s *screenRecorder) send(msg tea.Msg) {
	switch msg := msg.(type) {
	case liveMsg:
		s.live = string(msg)
	default:
		// tea.Println's message, whose body is printed as lines.
		body := reflect.ValueOf(msg).FieldByName("messageBody").String()
		s.printed = append(s.printed, strings.Split(ansi.Strip(body), "\n")...)
	}
}

func newTestReply(t *testing.T) (*termReply, *screenRecorder) {
	t.Helper()
	md, err := termmd.New(termmd.Options{Width: 60})
	if err != nil {
		t.Fatal(err)
	}
	rec := &screenRecorder{}
	c := &Chat{key: sessions.Key{Platform: Platform, Chat: "t"}, md: md}
	c.ui = &ui{send: rec.send, md: md}
	return c.newTermReply(), rec
}

func TestTermReply_Show(t *testing.T) {
	r, rec := newTestReply(t)
	ctx := context.Background()
	views := []sessions.View{
		{Status: "💭 Thinking… 1 s"},
		{Reasoning: "Let me think.", ReasoningMode: sessions.ReasoningFull},
		{Reasoning: "Let me think.", ReasoningMode: sessions.ReasoningFull, Content: "# Title\n\nFirst para"},
		{Reasoning: "Let me think.", ReasoningMode: sessions.ReasoningFull, Content: "# Title\n\nFirst paragraph.\n\nSecond"},
	}
	lives := []string{"Thinking… 1 s", "💭 Let me think.", "First para", "Second"}
	for i, v := range views {
		if _, err := r.Show(ctx, v); err != nil {
			t.Fatal(err)
		}
		if live := ansi.Strip(rec.live); !strings.Contains(live, lives[i]) {
			t.Errorf("view %d: live area %q, want %q in it", i, live, lives[i])
		}
	}
	final := views[3]
	final.Content += " paragraph."
	final.Status, final.Final = "(stopped)", true
	if _, err := r.Show(ctx, final); err != nil {
		t.Fatal(err)
	}
	if rec.live != "" {
		t.Errorf("live area after the final view = %q, want empty", rec.live)
	}
	want := []string{
		"bot›",
		"💭 Reasoning",
		"  Let me think.",
		"",
		"   Title ",
		"",
		"  First paragraph.",
		"",
		"  Second paragraph.",
		"",
		"(stopped)",
	}
	if got := strings.Join(rec.printed, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("printed:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestTermReply_Show_Collapsed(t *testing.T) {
	r, rec := newTestReply(t)
	v := sessions.View{Reasoning: "one two three", ReasoningMode: sessions.ReasoningCollapsed, Content: "Answer.", Final: true}
	if _, err := r.Show(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rec.printed, "\n")
	if !strings.Contains(got, "Reasoned for 3 words") || strings.Contains(got, "one two three") {
		t.Errorf("printed:\n%s\nwant the reasoning collapsed to one line", got)
	}
}
