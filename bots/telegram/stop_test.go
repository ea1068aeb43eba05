package telegram_test

import (
	"cmp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// slowAnswer is an answer that takes about ten seconds to stream.
func slowAnswer() llmtest.Script {
	return llmtest.Script{Content: llmtest.Tokens(strings.Repeat("slow ", 500)), Interval: 20 * time.Millisecond}
}

// streamingDraft waits for a draft of chat whose text contains want and
// has a Stop button.
func (r *rig) streamingDraft(chat int64, want string) telegramtest.Draft {
	r.t.Helper()
	var d telegramtest.Draft
	err := r.tg.WaitFor(r.ctx(), func() bool {
		for _, x := range r.tg.Drafts(chat) {
			if strings.Contains(x.Text, want) && x.CanStop {
				d = x
				return true
			}
		}
		return false
	})
	if err != nil {
		r.t.Fatalf("no draft showing %q with a Stop button: %+v", want, r.tg.Drafts(chat))
	}
	return d
}

// The Stop button of a draft stops the answer at once: the model's stream
// is closed, and what was written stays as the final message with the
// "(stopped)" note, once. Pressing it again, after the answer ended, does
// nothing.
func TestBot_NativeStop(t *testing.T) {
	for _, format := range []string{"rich", "html"} {
		t.Run(format, func(t *testing.T) {
			r := newRig(t, withOptions(func(o *telegram.Options) { o.Format = format }))
			r.up.Enqueue(slowAnswer())
			r.tg.SendText(alice.ID, alice, "go on forever")
			d := r.streamingDraft(alice.ID, "slow")
			if !d.KeepOnStop {
				t.Errorf("draft %+v: keep_on_stop not set, the partial text would vanish", d)
			}
			if err := r.tg.StopGeneration(alice.ID, d.DraftID); err != nil {
				t.Fatal(err)
			}
			if err := r.up.WaitDisconnect(r.ctx()); err != nil {
				t.Fatalf("upstream connection not closed: %v", err)
			}
			m := r.final(alice.ID, "(stopped)")
			if !strings.Contains(m.Text, "slow") {
				t.Errorf("final message %q lacks the partial answer", m.Text)
			}
			if (format == "rich") != (m.Rich != nil) {
				t.Errorf("final message rich = %v, want the %s format", m.Rich != nil, format)
			}
			for _, c := range r.tg.CallsTo("getUpdates") {
				if !strings.Contains(c.Params["allowed_updates"], "stopped_message_generation") {
					t.Fatalf("getUpdates asks for %s: the Stop button's update never comes", c.Params["allowed_updates"])
				}
			}

			// Again, after the answer ended: nothing more.
			if err := r.tg.StopGeneration(alice.ID, d.DraftID); err != nil {
				t.Fatal(err)
			}
			if err := r.tg.WaitUpdatesConsumed(r.ctx()); err != nil {
				t.Fatal(err)
			}
			r.tg.SendText(alice.ID, alice, "/settings")
			r.final(alice.ID, "Model:")
			if ms := r.tg.BotMessages(alice.ID); len(ms) != 2 {
				t.Errorf("bot messages = %q, want the stopped answer and the settings", texts(ms))
			}
			if n := len(r.chatRequests()); n != 1 {
				t.Errorf("upstream requests = %d, want 1", n)
			}
		})
	}
}

// The Stop button of a draft left by an earlier run of the bot, whose
// answer that run's shutdown finalised, stops nothing: a new answer running
// in the same chat goes on.
func TestBot_NativeStopAfterRestart(t *testing.T) {
	r := newRig(t)
	r.up.Enqueue(slowAnswer())
	r.tg.SendText(alice.ID, alice, "go on forever")
	old := r.streamingDraft(alice.ID, "slow")
	r.stopWithin(0) // the answer interrupted at once
	r.start()
	r.final(alice.ID, "Interrupted")

	// The second answer waits after its first words until the old
	// draft's Stop has been handled.
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("the second answer runs to its end " + strings.Repeat("word ", 20)), Sent: func(i, n int) {
		if i == 3 {
			<-release
		}
	}})
	r.tg.SendText(alice.ID, alice, "second")
	r.streamingDraft(alice.ID, "second answer")
	if err := r.tg.StopGeneration(alice.ID, old.DraftID); err != nil {
		t.Fatal(err)
	}
	if err := r.tg.WaitUpdatesConsumed(r.ctx()); err != nil {
		t.Fatal(err)
	}
	close(release)
	m := r.final(alice.ID, "runs to its end")
	if strings.Contains(m.Text, "(stopped)") || !strings.HasSuffix(strings.TrimSpace(m.Text), "word") {
		t.Errorf("second answer = %q, want it whole: the old draft's Stop stopped it", m.Text)
	}
}

// The first sign of life goes out before the model's first token: in a
// private chat, as soon as the message is accepted, a draft with
// Telegram's "Thinking…" placeholder and a Stop button; in a group
// "typing…", a second later (it costs a request of the bot's budget,
// which a first text coming sooner would have needed).
func TestBot_FirstDraftBeforeFirstToken(t *testing.T) {
	for _, tc := range []struct {
		name, format string
		chat         int64
		method       string // of the first sign, "" for typing
	}{
		{"PrivateRich", "auto", alice.ID, "sendRichMessageDraft"},
		{"PrivateHTML", "html", alice.ID, "sendMessageDraft"},
		{"Group", "auto", group, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, withOptions(func(o *telegram.Options) { o.Format = tc.format }))
			release := make(chan struct{})
			var sent atomic.Bool
			r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("held answer"), Sent: func(i, n int) {
				if i == 0 {
					<-release
				}
				sent.Store(true)
			}})
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			text := "think first"
			if tc.chat == group {
				text = "@palaver_bot " + text
			}
			r.tg.SendText(tc.chat, alice, text)
			err := r.tg.WaitFor(r.ctx(), func() bool {
				if tc.method == "" {
					return len(r.tg.ChatActions(tc.chat)) > 0
				}
				return len(r.tg.CallsTo(tc.method)) > 0
			})
			if err != nil {
				t.Fatalf("no first sign of life (%s): calls %v", cmp.Or(tc.method, "typing"), methods(r.tg.Calls()))
			}
			if sent.Load() {
				t.Fatal("the model sent a token before the first sign of life")
			}
			if tc.method != "" {
				c := r.tg.CallsTo(tc.method)[0]
				if c.Params["can_stop"] != "true" || c.Params["keep_on_stop"] != "true" {
					t.Errorf("first draft %v: want a Stop button that keeps the draft", c.Params)
				}
				if tc.method == "sendMessageDraft" && c.Params["text"] != "" {
					t.Errorf("first draft text = %q, want Telegram's placeholder (empty)", c.Params["text"])
				}
				if tc.method == "sendRichMessageDraft" && !strings.Contains(richParam(t, c).Markdown, "<tg-thinking>") {
					t.Errorf("first rich draft = %q, want the thinking block", c.Params["rich_message"])
				}
			} else if n := len(r.tg.CallsTo("sendMessageDraft")) + len(r.tg.CallsTo("sendRichMessageDraft")); n != 0 {
				t.Errorf("%d drafts in a group", n)
			}
			close(release)
			r.final(tc.chat, "held answer")
		})
	}
}

// methods lists the methods of calls, for failure messages.
func methods(calls []telegramtest.Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Method
	}
	return out
}
