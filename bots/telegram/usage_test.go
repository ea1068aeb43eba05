package telegram_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// expensive is the model only admins may choose in these tests.
const expensive = "fake/deepseek-ai/DeepSeek-R1-0528-Turbo"

// withUsage restricts expensive to admins and makes bob a configured
// admin.
func withUsage(r *rig) {
	r.cfg.Usage.Restricted = []string{expensive}
	r.opts.Admins = []int64{bob.ID}
}

// answerUsing scripts the next answer to report the given usage.
func (r *rig) answerUsing(content string, prompt, completion int) {
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(content),
		Usage: &llm.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}})
}

// /usage after an answer shows the asker's tokens today and this month.
func TestBot_Usage(t *testing.T) {
	r := newRig(t, withUsage)
	r.answerUsing("counted answer", 1000, 234)
	r.tg.SendText(alice.ID, alice, "hello")
	r.final(alice.ID, "counted answer")

	r.tg.SendText(alice.ID, alice, "/usage")
	m := r.final(alice.ID, "Your usage")
	got := m.Text
	checkUsageGolden(t, "private.golden", fmt.Sprintf("%s\n--- entities\n%+v\n", m.Text, m.Entities))
	for _, want := range []string{
		"Today: 1,234 tokens (1,000 prompt + 234 answer",
		"This month: 1,234 tokens (1,000 prompt + 234 answer",
		"By model this month",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("/usage = %q, want it to contain %q", got, want)
		}
	}
	for _, hidden := range []string{"This conversation", "This group", "**"} {
		if strings.Contains(got, hidden) {
			t.Errorf("/usage in a private chat = %q, want no %q", got, hidden)
		}
	}
	if cmds := r.tg.Commands("default"); !hasCommand(cmds, "usage") {
		t.Errorf("registered commands %+v lack /usage", cmds)
	}
}

// A restricted model is refused to a non-admin, by command and by the
// picker, even in their private chat; a configured admin may choose it.
func TestBot_ModelRestricted(t *testing.T) {
	r := newRig(t, withUsage)
	r.tg.SendText(alice.ID, alice, "/model "+expensive)
	r.final(alice.ID, "is for admins only here")

	r.tg.SendText(alice.ID, alice, "/model")
	picker, err := r.tg.WaitMessage(r.ctx(), alice.ID, func(m telegramtest.Message) bool { return len(m.ReplyMarkup) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	data, ok := buttons(t, picker)[expensive]
	if !ok {
		t.Fatalf("picker %v lacks %s", buttons(t, picker), expensive)
	}
	q := r.tg.PressButton(alice.ID, picker.ID, alice, data)
	if err := r.tg.WaitFor(r.ctx(), func() bool { return answered(r.tg, q) != nil }); err != nil {
		t.Fatal("the press was not answered")
	}
	if got := answered(r.tg, q).Text; !strings.Contains(got, "is for admins only here") {
		t.Errorf("picker press answered %q, want the refusal", got)
	}

	r.tg.SendText(alice.ID, alice, "which?")
	r.final(alice.ID, "echo: which?")
	if got := r.lastRequest().Model; got != "echo" {
		t.Errorf("alice's upstream model = %q, want echo", got)
	}

	r.tg.SendText(bob.ID, bob, "/model "+expensive)
	r.final(bob.ID, "Model set to "+expensive)
}

// Messages in a group carry the group and their author's admin status;
// a configured admin's /usage there shows the group's totals and its top
// users.
func TestBot_UsageGroup(t *testing.T) {
	r := newRig(t, withUsage)
	r.answerUsing("group answer", 500, 100)
	r.tg.SendText(group, alice, "@palaver_bot what is up?")
	r.final(group, "group answer")
	r.tg.SendText(group, bob, "/chat anything?")
	r.final(group, "anything?")
	r.tg.SendText(alice.ID, alice, "private")
	r.final(alice.ID, "echo: private")

	msgs := r.handled()
	if len(msgs) != 3 {
		t.Fatalf("handled %d messages, want 3", len(msgs))
	}
	for i, want := range []struct {
		group string
		admin bool
	}{{"-4001", false}, {"-4001", true}, {"", false}} {
		if got := msgs[i]; got.Group != want.group || got.Author.Admin != want.admin {
			t.Errorf("message %d (%q): Group, Admin = %q, %v; want %q, %v", i, got.Text, got.Group, got.Author.Admin, want.group, want.admin)
		}
	}

	r.tg.SendText(group, bob, "/usage@palaver_bot")
	got := r.final(group, "This group").Text
	for _, want := range []string{"This conversation", "Top users this month", "1. Alice — 600 tokens (500 prompt + 100 answer"} {
		if !strings.Contains(got, want) {
			t.Errorf("admin's /usage = %q, want it to contain %q", got, want)
		}
	}
	r.tg.SendText(group, alice, "/usage@palaver_bot")
	got = r.finalAfter(group, "Your usage", r.lastBotMessage(group)).Text
	if strings.Contains(got, "This group") || strings.Contains(got, "Top users") {
		t.Errorf("member's /usage = %q, want only her own usage", got)
	}
}

// lastBotMessage is the id of the bot's latest message in chat.
func (r *rig) lastBotMessage(chat int64) int {
	ms := r.tg.BotMessages(chat)
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].ID
}

// answered is the answer to callback query q, nil before it.
func answered(tg *telegramtest.Server, q string) *telegramtest.CallbackAnswer {
	for _, a := range tg.CallbackAnswers() {
		if a.QueryID == q {
			return &a
		}
	}
	return nil
}

func hasCommand(cmds []telegramtest.BotCommand, name string) bool {
	for _, c := range cmds {
		if c.Command == name {
			return true
		}
	}
	return false
}

// checkUsageGolden compares a /usage reply as Telegram shows it (text and
// entities) with testdata/usage/name; go test -update rewrites it.
func checkUsageGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "usage", name)
	// -update is the package's golden-file flag (render_test.go).
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("/usage differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
