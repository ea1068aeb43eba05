package telegram_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// pressRetry presses the Retry button of a finished answer and waits for
// the press to be acknowledged, returning the acknowledgement.
func (r *rig) pressRetry(chat int64, m telegramtest.Message, who telegramtest.User) telegramtest.CallbackAnswer {
	r.t.Helper()
	data, ok := buttons(r.t, m)["🔄 Retry"]
	if !ok {
		r.t.Fatalf("answer %q has no Retry button: %s", m.Text, m.ReplyMarkup)
	}
	id := r.tg.PressButton(chat, m.ID, who, data)
	var got telegramtest.CallbackAnswer
	err := r.tg.WaitFor(r.ctx(), func() bool {
		i := slices.IndexFunc(r.tg.CallbackAnswers(), func(a telegramtest.CallbackAnswer) bool { return a.QueryID == id })
		if i >= 0 {
			got = r.tg.CallbackAnswers()[i]
		}
		return i >= 0
	})
	if err != nil {
		r.t.Fatalf("Retry press not acknowledged: %v", err)
	}
	return got
}

// historyOf is the contents of the messages of the last upstream request.
func (r *rig) historyOf() []string {
	var out []string
	for _, m := range r.lastRequest().Messages {
		out = append(out, m.Content)
	}
	return out
}

// Retry under a finished answer answers its question again in a new
// message, which replaces the old answer in the history; the old message
// loses its button.
func TestBot_Retry(t *testing.T) {
	for _, format := range []string{"auto", "html"} {
		t.Run(format, func(t *testing.T) {
			r := newRig(t, withOptions(func(o *telegram.Options) { o.Format = format }))
			r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("the first answer")},
				llmtest.Script{Content: llmtest.Tokens("the second answer")})
			r.tg.SendText(alice.ID, alice, "what is it?")
			first := r.final(alice.ID, "the first answer")

			if a := r.pressRetry(alice.ID, first, alice); a.ShowAlert {
				t.Errorf("Retry acknowledged with an alert %q", a.Text)
			}
			second := r.finalAfter(alice.ID, "the second answer", first.ID)
			if _, ok := buttons(t, second)["🔄 Retry"]; !ok {
				t.Errorf("the new answer has no Retry button: %s", second.ReplyMarkup)
			}
			if err := r.tg.WaitFor(r.ctx(), func() bool {
				m, _ := r.tg.Message(alice.ID, first.ID)
				return m.ReplyMarkup == nil
			}); err != nil {
				t.Error("the old answer kept its Retry button")
			}

			r.tg.SendText(alice.ID, alice, "and then?")
			r.final(alice.ID, "echo: and then?")
			h := r.historyOf()
			if !slices.Contains(h, "the second answer") || slices.Contains(h, "the first answer") || strings.Count(strings.Join(h, "\n"), "what is it?") != 1 {
				t.Errorf("history = %q, want the question once with the second answer", h)
			}

			// The older answer's button no longer works.
			if a := r.pressRetry(alice.ID, second, alice); a.ShowAlert || !strings.Contains(a.Text, "latest answer") {
				t.Errorf("Retry under an older answer acknowledged with %+v, want a note that only the latest can", a)
			}
		})
	}
}

// In a group, only the asker and the group's administrators may retry an
// answer: someone else's press is refused with an alert and asks nothing.
func TestBot_RetryInGroup(t *testing.T) {
	r := newRig(t)
	r.tg.SendText(group, alice, "@palaver_bot hello there")
	m := r.final(group, "hello there")

	a := r.pressRetry(group, m, bob)
	if !a.ShowAlert || !strings.Contains(a.Text, "Only the person who asked") {
		t.Errorf("Bob's press acknowledged with %+v, want an alert", a)
	}
	if n := len(r.chatRequests()); n != 1 {
		t.Errorf("upstream requests = %d, want 1: Bob's press asked again", n)
	}

	r.tg.SetMember(group, bob.ID, telegramtest.StatusAdministrator)
	if a := r.pressRetry(group, m, bob); a.ShowAlert {
		t.Errorf("the administrator's press acknowledged with an alert %q", a.Text)
	}
	again := r.finalAfter(group, "hello there", m.ID)
	if again.ReplyTo != m.ReplyTo {
		t.Errorf("new answer %d replies to %d, want a new message replying to the question %d", again.ID, again.ReplyTo, m.ReplyTo)
	}
	if n := len(r.chatRequests()); n != 2 {
		t.Errorf("upstream requests = %d, want 2", n)
	}
}

// The answer of /retry has a Retry button that names the question it
// answers, so that it works like any answer's.
func TestBot_RetryAfterRetryCommand(t *testing.T) {
	r := newRig(t)
	r.tg.SendText(alice.ID, alice, "once")
	r.final(alice.ID, "echo: once")
	r.tg.SendText(alice.ID, alice, "/retry")
	var m telegramtest.Message
	err := r.tg.WaitFor(r.ctx(), func() bool {
		var answers []telegramtest.Message
		for _, b := range r.tg.BotMessages(alice.ID) {
			if strings.Contains(b.Text, "echo: once") && strings.Contains(string(b.ReplyMarkup), "retry:") {
				answers = append(answers, b)
			}
		}
		if len(answers) == 2 {
			m = answers[1]
		}
		return len(answers) == 2
	})
	if err != nil {
		t.Fatalf("no second answer with a Retry button: %q", texts(r.tg.BotMessages(alice.ID)))
	}
	if a := r.pressRetry(alice.ID, m, alice); a.ShowAlert || strings.Contains(a.Text, "latest") {
		t.Errorf("Retry under /retry's answer acknowledged with %+v", a)
	}
	if err := r.tg.WaitFor(r.ctx(), func() bool { return len(r.chatRequests()) == 3 }); err != nil {
		t.Fatal("the press asked nothing")
	}
}
