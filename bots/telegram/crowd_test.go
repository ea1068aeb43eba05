package telegram_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// crowdScale is how much faster than real time the crowd tests run: the
// fake enforces Telegram's own flood limits (one message a second per chat
// with bursts of 3, 20 a minute per group, 30 a second per bot) on a clock
// running crowdScale times faster than the real one, and the bot's
// intervals and windows are Palaver's defaults divided by crowdScale. A
// minute of Telegram's passes in half a second.
const crowdScale = 120

// withTelegramTime runs the rig at Telegram's limits and Palaver's default
// pacing, crowdScale times faster (see crowdScale).
func withTelegramTime() rigOption {
	return func(r *rig) {
		start := time.Now()
		r.fake.Now = func() time.Time { return start.Add(time.Since(start) * crowdScale) }
		r.fake.Flood = telegramtest.FloodLimits{} // Telegram's
		r.opts.EditInterval = time.Second / crowdScale
		r.opts.GroupEditInterval = 3 * time.Second / crowdScale
		r.opts.Window = sessions.Window{Requests: 3, Per: 3 * time.Second / crowdScale}
		r.opts.GroupWindow = sessions.Window{Requests: 20, Per: time.Minute / crowdScale}
	}
}

// crowdUser is the i-th member of a crowd.
func crowdUser(i int) telegramtest.User {
	return telegramtest.User{ID: int64(5000 + i), FirstName: "User" + strconv.Itoa(i)}
}

// repliesTo returns the bot's messages in chat that reply to message id.
func (r *rig) repliesTo(chat int64, id int) []telegramtest.Message {
	var out []telegramtest.Message
	for _, m := range r.tg.BotMessages(chat) {
		if m.ReplyTo == id {
			out = append(out, m)
		}
	}
	return out
}

// A burst of 100 commands in one group is answered in full at the group's
// pace, without a 429; an answer that ends meanwhile is shown complete
// before the notices still waiting.
func TestBot_CommandBurstInGroup(t *testing.T) {
	r := newRig(t, withTelegramTime())
	const commands = 100
	const answer = "The answer is forty-two, and it arrives while the notices wait."
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(answer), Interval: 5 * time.Millisecond})

	var sent []telegramtest.Message
	var question telegramtest.Message
	for i := range commands {
		if i == 5 {
			question = r.tg.SendText(group, alice, "@palaver_bot what is the answer?")
		}
		cmd := "/help"
		if i%2 == 1 {
			cmd = "/settings"
		}
		sent = append(sent, r.tg.SendText(group, crowdUser(i%7), cmd+"@palaver_bot"))
	}

	ctx := r.ctx()
	if err := r.tg.WaitFor(ctx, func() bool {
		for _, m := range sent {
			if len(r.repliesTo(group, m.ID)) == 0 {
				return false
			}
		}
		return len(r.repliesTo(group, question.ID)) > 0
	}); err != nil {
		t.Fatalf("not every command was answered: %d bot messages for %d commands and a question", len(r.tg.BotMessages(group)), commands)
	}
	help := visible(t, sessions.Help())
	for i, m := range sent {
		got := r.repliesTo(group, m.ID)
		if len(got) != 1 {
			t.Errorf("command %d answered %d times: %q", i, len(got), texts(got))
			continue
		}
		if i%2 == 0 && got[0].Text != help {
			t.Errorf("/help answered %q, want %q", got[0].Text, help)
		}
		if i%2 == 1 && !strings.HasPrefix(got[0].Text, "Model: fake/echo") {
			t.Errorf("/settings answered %q, want the settings", got[0].Text)
		}
	}
	final := r.final(group, "forty-two")
	if want := visible(t, answer); final.Text != want {
		t.Errorf("answer = %q, want %q", final.Text, want)
	}
	if n := r.count429(); n != 0 {
		t.Errorf("%d calls refused with 429, want none", n)
	}

	// The call that showed the answer's final view (its Retry button) came
	// before most notices: its final view does not wait behind them.
	calls := r.tg.Calls()
	finalAt, noticesAfter := -1, 0
	for i, c := range calls {
		if !c.OK() || c.MessageID != final.ID || !strings.Contains(c.Params["reply_markup"], "retry:") {
			continue
		}
		finalAt = i
		break
	}
	if finalAt < 0 {
		t.Fatalf("no call showed the answer's final view")
	}
	for _, c := range calls[finalAt+1:] {
		if c.OK() && c.Method == "sendMessage" && c.MessageID != final.ID {
			noticesAfter++
		}
	}
	t.Logf("%d of %d notices went after the answer's final view", noticesAfter, commands)
	if noticesAfter < commands/2 {
		t.Errorf("%d notices went after the answer's final view, want most of the %d: it waited behind them", noticesAfter, commands)
	}
}

// 20 members mentioning the bot in one group at once all get their exact
// answer, without a 429.
func TestBot_GroupCrowd(t *testing.T) {
	r := newRig(t, withTelegramTime())
	const users = 20
	var questions []telegramtest.Message
	for i := range users {
		questions = append(questions, r.tg.SendText(group, crowdUser(i), fmt.Sprintf("@palaver_bot question %d.", i)))
	}
	for i, q := range questions {
		want := visible(t, fmt.Sprintf("echo: User%d: question %d.", i, i))
		m := r.final(group, fmt.Sprintf(": question %d.", i))
		if m.Text != want || m.ReplyTo != q.ID {
			t.Errorf("answer %d = %q replying to %d, want %q replying to %d", i, m.Text, m.ReplyTo, want, q.ID)
		}
	}
	if n := r.count429(); n != 0 {
		t.Errorf("%d calls refused with 429, want none", n)
	}
}
