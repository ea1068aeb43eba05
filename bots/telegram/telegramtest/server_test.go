package telegramtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

const (
	userID  = 42
	groupID = -100
)

var alice = telegramtest.User{ID: userID, FirstName: "Alice", Username: "alice"}

// fakeClock is a clock the test advances by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newBot starts a server and a real telegram-bot-api client on it.
func newBot(t *testing.T, opts telegramtest.Options) (*telegramtest.Server, *tgbotapi.BotAPI) {
	t.Helper()
	srv := telegramtest.NewServer(opts)
	t.Cleanup(srv.Close)
	bot, err := tgbotapi.NewBotAPIWithAPIEndpoint(srv.Token(), srv.Endpoint())
	if err != nil {
		t.Fatalf("NewBotAPIWithAPIEndpoint: %v", err)
	}
	return srv, bot
}

// apiError returns the Bot API error in err, failing the test if there is none.
func apiError(t *testing.T, err error) *tgbotapi.Error {
	t.Helper()
	var e *tgbotapi.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want a *tgbotapi.Error", err)
	}
	return e
}

func TestServer_GetMe(t *testing.T) {
	_, bot := newBot(t, telegramtest.Options{})
	if bot.Self.UserName != "palaver_bot" || !bot.Self.IsBot {
		t.Errorf("Self = %+v, want the default bot", bot.Self)
	}
}

func TestServer_WrongToken(t *testing.T) {
	srv := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(srv.Close)
	_, err := tgbotapi.NewBotAPIWithAPIEndpoint("1:wrong", srv.Endpoint())
	if e := apiError(t, err); e.Code != 401 || e.Message != "Unauthorized" {
		t.Errorf("error = %d %q, want 401 Unauthorized", e.Code, e.Message)
	}
}

func TestServer_UnknownMethod(t *testing.T) {
	_, bot := newBot(t, telegramtest.Options{})
	_, err := bot.MakeRequest("noSuchMethod", nil)
	if e := apiError(t, err); e.Code != 404 || e.Message != "Not Found: method not found" {
		t.Errorf("error = %d %q, want 404 Not Found: method not found", e.Code, e.Message)
	}
}

func TestServer_SendEdit(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{Flood: telegramtest.FloodLimits{Disabled: true}})
	msg := tgbotapi.NewMessage(userID, "<b>Hi</b> &amp; welcome")
	msg.ParseMode = tgbotapi.ModeHTML
	msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData("Stop", "stop")))
	sent, err := bot.Send(msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sent.Text != "Hi & welcome" || len(sent.Entities) != 1 || sent.Entities[0].Type != "bold" || sent.Entities[0].Length != 2 {
		t.Errorf("sent = %q %+v, want parsed text and a bold entity", sent.Text, sent.Entities)
	}

	edit := tgbotapi.NewEditMessageText(userID, sent.MessageID, "<i>Bye</i>")
	edit.ParseMode = tgbotapi.ModeHTML
	if _, err := bot.Send(edit); err != nil {
		t.Fatalf("edit: %v", err)
	}
	m, ok := srv.Message(userID, sent.MessageID)
	if !ok {
		t.Fatal("message gone")
	}
	if m.Text != "Bye" || m.Source != "<i>Bye</i>" || m.EditCount != 1 || m.ReplyMarkup != nil {
		t.Errorf("after edit: %+v; want text Bye, one edit, keyboard removed", m)
	}

	t.Run("ErrNotModified", func(t *testing.T) {
		_, err := bot.Send(edit)
		e := apiError(t, err)
		if e.Code != 400 || !strings.HasPrefix(e.Message, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same") {
			t.Errorf("error = %d %q", e.Code, e.Message)
		}
	})
	t.Run("ErrMessageNotFound", func(t *testing.T) {
		_, err := bot.Send(tgbotapi.NewEditMessageText(userID, 999, "x"))
		if e := apiError(t, err); e.Message != "Bad Request: message to edit not found" {
			t.Errorf("error = %q", e.Message)
		}
		_, err = bot.Request(tgbotapi.NewDeleteMessage(userID, 999))
		if e := apiError(t, err); e.Message != "Bad Request: message to delete not found" {
			t.Errorf("error = %q", e.Message)
		}
	})
	t.Run("ErrCantParse", func(t *testing.T) {
		bad := tgbotapi.NewMessage(userID, "<div>x</div>")
		bad.ParseMode = tgbotapi.ModeHTML
		_, err := bot.Send(bad)
		if e := apiError(t, err); e.Message != `Bad Request: can't parse entities: Unsupported start tag "div" at byte offset 0` {
			t.Errorf("error = %q", e.Message)
		}
	})
	t.Run("ErrTooLong", func(t *testing.T) {
		_, err := bot.Send(tgbotapi.NewMessage(userID, strings.Repeat("😀", 2049)))
		if e := apiError(t, err); e.Message != "Bad Request: message is too long" {
			t.Errorf("error = %q", e.Message)
		}
		if _, err := bot.Send(tgbotapi.NewMessage(userID, strings.Repeat("😀", 2048))); err != nil {
			t.Errorf("4096 UTF-16 units: %v", err)
		}
	})
	t.Run("ErrEmpty", func(t *testing.T) {
		_, err := bot.Send(tgbotapi.NewMessage(userID, ""))
		if e := apiError(t, err); e.Message != "Bad Request: message text is empty" {
			t.Errorf("error = %q", e.Message)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if _, err := bot.Request(tgbotapi.NewDeleteMessage(userID, sent.MessageID)); err != nil {
			t.Fatal(err)
		}
		if _, ok := srv.Message(userID, sent.MessageID); ok {
			t.Error("message still there after delete")
		}
	})
}

func TestServer_Flood(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	srv, bot := newBot(t, telegramtest.Options{Now: clock.Now})
	send := func(chat int64) error {
		_, err := bot.Send(tgbotapi.NewMessage(chat, "x"))
		return err
	}
	for i := range 3 { // the burst
		if err := send(userID); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	e := apiError(t, send(userID))
	if e.Code != 429 || e.Message != "Too Many Requests: retry after 1" || e.RetryAfter != 1 {
		t.Errorf("error = %d %q retry_after %d, want 429 retry after 1", e.Code, e.Message, e.RetryAfter)
	}
	clock.Advance(time.Second)
	if err := send(userID); err != nil {
		t.Errorf("after waiting: %v", err)
	}

	t.Run("GroupPerMinute", func(t *testing.T) {
		sent := 0
		for range 40 {
			if err := send(groupID); err == nil {
				sent++
			}
			clock.Advance(time.Second)
		}
		// 20 at once, then one every 3 s: 40 s of sends allow ~33.
		if sent < 30 || sent > 34 {
			t.Errorf("sent %d of 40 at 1/s, want the 20/min group limit to refuse some", sent)
		}
	})
	t.Run("Inject", func(t *testing.T) {
		srv.InjectFlood(7, 2, 9)
		for i := range 2 {
			if e := apiError(t, send(7)); e.RetryAfter != 9 {
				t.Errorf("injected %d: retry_after %d, want 9", i, e.RetryAfter)
			}
		}
		if err := send(7); err != nil {
			t.Errorf("after injections: %v", err)
		}
	})
	t.Run("Disabled", func(t *testing.T) {
		srv.SetFlood(telegramtest.FloodLimits{Disabled: true})
		for i := range 10 {
			if err := send(8); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
	})
}

func TestServer_GetUpdates(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	// A long poll blocks until an update is pushed.
	got := make(chan []tgbotapi.Update, 1)
	go func() {
		u, err := bot.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
		if err != nil {
			t.Errorf("GetUpdates: %v", err)
		}
		got <- u
	}()
	if err := srv.WaitFor(ctx, func() bool { return srv.Pollers() == 1 }); err != nil {
		t.Fatal(err)
	}
	sent := srv.SendText(userID, alice, "/start hello @palaver_bot")
	var ups []tgbotapi.Update
	select {
	case ups = <-got:
	case <-ctx.Done():
		t.Fatal("long poll did not return")
	}
	if len(ups) != 1 || ups[0].Message == nil || ups[0].Message.Text != "/start hello @palaver_bot" {
		t.Fatalf("updates = %+v", ups)
	}
	m := ups[0].Message
	if !m.IsCommand() || m.Command() != "start" || m.From.UserName != "alice" || m.MessageID != sent.ID {
		t.Errorf("message = %+v, want the /start command from alice", m)
	}

	// Until confirmed by offset, the update is delivered again.
	again, err := bot.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(again) != 1 {
		t.Fatalf("unconfirmed: %d updates, %v", len(again), err)
	}
	if _, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: ups[0].UpdateID + 1}); err != nil {
		t.Fatal(err)
	}
	if n := srv.PendingUpdates(); n != 0 {
		t.Errorf("PendingUpdates = %d after confirming, want 0", n)
	}

	t.Run("Timeout", func(t *testing.T) {
		u, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: ups[0].UpdateID + 1, Timeout: 1})
		if err != nil || len(u) != 0 {
			t.Errorf("GetUpdates = %d updates, %v; want none after the timeout", len(u), err)
		}
	})
	t.Run("ReplyAndTopic", func(t *testing.T) {
		srv.SetChat(telegramtest.Chat{ID: -1001, Type: telegramtest.ChatSupergroup, Title: "Forum", IsForum: true})
		botMsg := tgbotapi.NewMessage(-1001, "answer")
		sentMsg, err := bot.Send(botMsg)
		if err != nil {
			t.Fatal(err)
		}
		srv.SendText(-1001, alice, "follow-up", telegramtest.ReplyTo(sentMsg.MessageID), telegramtest.InThread(5))
		// telegram-bot-api lacks message_thread_id: read the raw update.
		resp, err := bot.MakeRequest("getUpdates", tgbotapi.Params{"offset": "-1"})
		if err != nil {
			t.Fatal(err)
		}
		var raw []struct {
			Message struct {
				ThreadID       int  `json:"message_thread_id"`
				IsTopic        bool `json:"is_topic_message"`
				ReplyToMessage struct {
					MessageID int `json:"message_id"`
					From      struct {
						IsBot bool `json:"is_bot"`
					} `json:"from"`
				} `json:"reply_to_message"`
			} `json:"message"`
		}
		if err := json.Unmarshal(resp.Result, &raw); err != nil || len(raw) != 1 {
			t.Fatalf("decode: %v, %d updates", err, len(raw))
		}
		if r := raw[0].Message; r.ThreadID != 5 || !r.IsTopic || r.ReplyToMessage.MessageID != sentMsg.MessageID || !r.ReplyToMessage.From.IsBot {
			t.Errorf("update message = %+v, want topic 5 replying to the bot", r)
		}
	})
}

func TestServer_GetUpdatesConflict(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := bot.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Wait until the first poll is waiting, then poll again.
	if err := srv.WaitFor(ctx, func() bool { return srv.Pollers() == 1 }); err != nil {
		t.Fatal(err)
	}
	if _, err := bot.GetUpdates(tgbotapi.UpdateConfig{}); err != nil {
		t.Fatal(err)
	}
	if e := apiError(t, <-errc); e.Code != 409 || !strings.HasPrefix(e.Message, "Conflict: terminated by other getUpdates request") {
		t.Errorf("first poll = %d %q, want 409 Conflict", e.Code, e.Message)
	}
}

func TestServer_Migrate(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	srv.MigrateChat(groupID, -1009)
	_, err := bot.Send(tgbotapi.NewMessage(groupID, "hi"))
	e := apiError(t, err)
	if e.Message != "Bad Request: group chat was upgraded to a supergroup chat" || e.MigrateToChatID != -1009 {
		t.Errorf("error = %q migrate_to %d", e.Message, e.MigrateToChatID)
	}
	if _, err := bot.Send(tgbotapi.NewMessage(-1009, "hi")); err != nil {
		t.Errorf("send to new id: %v", err)
	}
	if got := srv.Chat(-1009).Type; got != telegramtest.ChatSupergroup {
		t.Errorf("new chat type = %q", got)
	}
}

func TestServer_Drafts(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	draft := func(chat int64, text string) error {
		_, err := bot.MakeRequest("sendMessageDraft", tgbotapi.Params{
			"chat_id": strings.TrimSpace(jsonInt(chat)), "draft_id": "7", "text": text, "parse_mode": "HTML",
		})
		return err
	}
	for _, text := range []string{"", "<b>Hel</b>", "<b>Hello</b>"} {
		if err := draft(userID, text); err != nil {
			t.Fatalf("draft %q: %v", text, err)
		}
	}
	ds := srv.Drafts(userID)
	if len(ds) != 1 || ds[0].Text != "Hello" || ds[0].Updates != 3 {
		t.Errorf("Drafts = %+v, want one draft 'Hello' updated 3 times", ds)
	}
	if e := apiError(t, draft(groupID, "x")); e.Code != 400 {
		t.Errorf("group draft: %d %q, want 400", e.Code, e.Message)
	}
	srv.SetRefuseDrafts(true, "")
	if e := apiError(t, draft(userID, "x")); e.Code != 400 {
		t.Errorf("refused draft: %d %q, want 400", e.Code, e.Message)
	}
}

func TestServer_CallbacksMembersCommands(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	msg := tgbotapi.NewMessage(userID, "answer")
	msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData("Stop", "stop:1")))
	sent, err := bot.Send(msg)
	if err != nil {
		t.Fatal(err)
	}
	id := srv.PressButton(userID, sent.MessageID, alice, "stop:1")
	ups, err := bot.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(ups) != 1 || ups[0].CallbackQuery == nil {
		t.Fatalf("updates = %+v, %v", ups, err)
	}
	if cq := ups[0].CallbackQuery; cq.ID != id || cq.Data != "stop:1" || cq.Message.MessageID != sent.MessageID {
		t.Errorf("callback = %+v", cq)
	}
	if _, err := bot.Request(tgbotapi.NewCallback(id, "Stopped")); err != nil {
		t.Fatal(err)
	}
	if a := srv.CallbackAnswers(); len(a) != 1 || a[0].Text != "Stopped" {
		t.Errorf("answers = %+v", a)
	}
	if _, err := bot.Request(tgbotapi.NewCallback(id, "again")); err == nil {
		t.Error("second answer accepted, want an invalid query id error")
	}

	markup := tgbotapi.NewEditMessageReplyMarkup(userID, sent.MessageID, tgbotapi.InlineKeyboardMarkup{InlineKeyboard: [][]tgbotapi.InlineKeyboardButton{}})
	if _, err := bot.Request(markup); err != nil {
		t.Fatalf("remove keyboard: %v", err)
	}
	if m, _ := srv.Message(userID, sent.MessageID); m.ReplyMarkup != nil {
		t.Errorf("keyboard not removed: %s", m.ReplyMarkup)
	}

	srv.SetMember(groupID, userID, telegramtest.StatusAdministrator)
	member, err := bot.GetChatMember(tgbotapi.GetChatMemberConfig{ChatConfigWithUser: tgbotapi.ChatConfigWithUser{ChatID: groupID, UserID: userID}})
	if err != nil || !member.IsAdministrator() {
		t.Errorf("GetChatMember = %+v, %v; want administrator", member, err)
	}

	cmds := tgbotapi.NewSetMyCommands(tgbotapi.BotCommand{Command: "chat", Description: "Ask the model"})
	if _, err := bot.Request(cmds); err != nil {
		t.Fatal(err)
	}
	if got := srv.Commands("default"); len(got) != 1 || got[0].Command != "chat" {
		t.Errorf("Commands = %+v", got)
	}
	bad := tgbotapi.NewSetMyCommands(tgbotapi.BotCommand{Command: "Bad-Name", Description: "x"})
	if _, err := bot.Request(bad); err == nil {
		t.Error("invalid command name accepted")
	}
}

func TestServer_JSONBody(t *testing.T) {
	srv := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(srv.Close)
	body := `{"chat_id": 42, "text": "<b>json</b>", "parse_mode": "HTML", "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}}`
	resp, err := srv.Client().Post(srv.URL()+"/bot"+srv.Token()+"/sendMessage", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ms := srv.BotMessages(42)
	if len(ms) != 1 || ms[0].Text != "json" || string(ms[0].ReplyMarkup) != `{"inline_keyboard":[[{"text":"a","callback_data":"b"}]]}` {
		t.Errorf("messages = %+v", ms)
	}
}

func TestServer_WaitMessage(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	go func() {
		if _, err := bot.Send(tgbotapi.NewMessage(userID, "done")); err != nil {
			t.Errorf("Send: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := srv.WaitMessage(ctx, userID, func(m telegramtest.Message) bool { return m.Text == "done" })
	if err != nil || m.From.ID != srv.Bot().ID {
		t.Errorf("WaitMessage = %+v, %v", m, err)
	}
	short, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := srv.WaitMessage(short, userID, func(telegramtest.Message) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitMessage on a cancelled ctx = %v, want context.Canceled", err)
	}
}

func jsonInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
