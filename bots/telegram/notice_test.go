package telegram_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// A notice longer than a message (/models with hundreds of models) goes
// as several messages, one request at a time on the group's schedule, the
// first replying to the command.
func TestBot_LongNotice(t *testing.T) {
	r := newRig(t, withTelegramTime())
	var models []llmtest.ModelInfo
	for i := range 300 {
		models = append(models, llmtest.ModelInfo{ID: fmt.Sprintf("family/a-rather-long-model-name-%03d", i)})
	}
	r.up.SetModels(models)
	cmd := r.tg.SendText(group, alice, "/models@palaver_bot")
	last := "fake/family/a-rather-long-model-name-299"
	r.final(group, last)
	msgs := r.tg.BotMessages(group)
	if len(msgs) < 3 {
		t.Fatalf("/models answered in %d messages, want at least 3", len(msgs))
	}
	var all strings.Builder
	for i, m := range msgs {
		if n := telegramtest.UTF16Len(m.Text); n > telegram.MaxMessageLen {
			t.Errorf("message %d is %d long", i, n)
		}
		want := 0 // only the first part replies to the command
		if i == 0 {
			want = cmd.ID
		}
		if m.ReplyTo != want {
			t.Errorf("part %d replies to %d, want %d", i, m.ReplyTo, want)
		}
		all.WriteString(m.Text + "\n")
	}
	for _, md := range models {
		if !strings.Contains(all.String(), "fake/"+md.ID+"\n") {
			t.Errorf("%s is missing from the list", md.ID)
		}
	}
	if n := r.count429(); n != 0 {
		t.Errorf("%d calls refused with 429, want none", n)
	}
}
