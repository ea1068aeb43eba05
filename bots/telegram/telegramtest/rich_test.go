package telegramtest_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

// richParams is a sendRichMessage request with markdown md.
func richParams(chat int64, md string) tgbotapi.Params {
	raw, _ := json.Marshal(map[string]string{"markdown": md})
	return tgbotapi.Params{"chat_id": strconv.FormatInt(chat, 10), "rich_message": string(raw)}
}

func TestServer_SendRichMessage(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{Flood: telegramtest.FloodLimits{Disabled: true}})
	const md = "## Figures\n\n| city | people |\n|---|--:|\n| Lyon | 522 |\n\n```go\nx := 1 // <b>\n```\n\n*\\(stopped\\)*"
	p := richParams(userID, md)
	p["reply_markup"] = `{"inline_keyboard":[[{"text":"Retry","callback_data":"retry:1"}]]}`
	resp, err := bot.MakeRequest("sendRichMessage", p)
	if err != nil {
		t.Fatalf("sendRichMessage: %v", err)
	}
	var sent struct {
		MessageID   int             `json:"message_id"`
		Text        string          `json:"text"`
		RichMessage json.RawMessage `json:"rich_message"`
	}
	if err := json.Unmarshal(resp.Result, &sent); err != nil || sent.MessageID == 0 || sent.Text != "" || len(sent.RichMessage) == 0 {
		t.Errorf("result = %s (%v), want a message with rich content and no text", resp.Result, err)
	}
	m, _ := srv.Message(userID, sent.MessageID)
	if m.Rich == nil || m.Rich.Markdown != md || m.ReplyMarkup == nil {
		t.Fatalf("message = %+v, want the rich Markdown and the keyboard", m)
	}
	for _, want := range []string{"Figures", "city | people", "Lyon | 522", "x := 1 // <b>", "(stopped)"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("visible text %q lacks %q", m.Text, want)
		}
	}

	// An edit keeps the kind: rich content for a rich message only.
	edit := richParams(userID, md+"\n\nmore")
	edit["message_id"] = strconv.Itoa(m.ID)
	if _, err := bot.MakeRequest("editMessageText", edit); err != nil {
		t.Errorf("rich edit: %v", err)
	}
	if _, err := bot.MakeRequest("editMessageText", edit); apiError(t, err).Message == "" || !strings.Contains(err.Error(), "not modified") {
		t.Errorf("unchanged rich edit: %v, want message is not modified", err)
	}
	text := tgbotapi.Params{"chat_id": strconv.Itoa(userID), "message_id": strconv.Itoa(m.ID), "text": "plain"}
	if _, err := bot.MakeRequest("editMessageText", text); apiError(t, err).Code != 400 {
		t.Errorf("text edit of a rich message: %v, want 400", err)
	}
	plain, err := bot.Send(tgbotapi.NewMessage(userID, "text"))
	if err != nil {
		t.Fatal(err)
	}
	toRich := richParams(userID, "rich")
	toRich["message_id"] = strconv.Itoa(plain.MessageID)
	if _, err := bot.MakeRequest("editMessageText", toRich); apiError(t, err).Code != 400 {
		t.Errorf("rich edit of a text message: %v, want 400", err)
	}
}

func TestServer_RichMessageRefused(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{Flood: telegramtest.FloodLimits{Disabled: true}})
	table := func(cols int) string {
		return "|" + strings.Repeat(" a |", cols) + "\n|" + strings.Repeat("---|", cols) + "\n"
	}
	nested := strings.Repeat("> ", telegramtest.MaxRichDepth) + "deep"
	for _, tt := range []struct {
		name string
		raw  string // rich_message
		want string // in the description
	}{
		{"Missing", "", "rich_message is empty"},
		{"NotJSON", "markdown", "can't parse rich message JSON object"},
		{"NoField", `{}`, "exactly one of"},
		{"TwoFields", `{"markdown":"a","html":"b"}`, "exactly one of"},
		{"UnknownTag", `{"markdown":"a <blink>b</blink>"}`, "can't parse rich message: unsupported tag <blink>"},
		{"UnclosedTag", `{"markdown":"<details><summary>s</summary>\n\nx"}`, "can't parse rich message: unclosed tag <details>"},
		{"ThinkingOutsideDraft", `{"markdown":"<tg-thinking>hm</tg-thinking>"}`, "thinking block is allowed only in drafts"},
		{"ThinkingBlockOutsideDraft", `{"blocks":[{"type":"thinking","text":"hm"}]}`, "thinking block is allowed only in drafts"},
		{"TooLong", mdJSON(strings.Repeat("é", telegramtest.MaxRichText+1)), "rich message is too long"},
		{"TooManyBlocks", mdJSON(strings.Repeat("- item\n", telegramtest.MaxRichBlocks)), "too many blocks"},
		{"TooWide", mdJSON(table(telegramtest.MaxRichColumns + 1)), "too many columns"},
		{"TooDeep", mdJSON(nested), "nesting is too deep"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bot.MakeRequest("sendRichMessage", tgbotapi.Params{"chat_id": strconv.Itoa(userID), "rich_message": tt.raw})
			if e := apiError(t, err); e.Code != 400 || !strings.Contains(e.Message, tt.want) {
				t.Errorf("error = %d %q, want 400 with %q", e.Code, e.Message, tt.want)
			}
		})
	}
	for _, ok := range []string{
		mdJSON(strings.Repeat("é", telegramtest.MaxRichText)),
		mdJSON(table(telegramtest.MaxRichColumns)),
		`{"html":"<h3>Hi</h3><details><summary>More</summary><p>in</p></details>"}`,
		`{"blocks":[{"type":"paragraph","text":"plain <not> markup"}]}`,
	} {
		if _, err := bot.MakeRequest("sendRichMessage", tgbotapi.Params{"chat_id": strconv.Itoa(userID), "rich_message": ok}); err != nil {
			t.Errorf("%.60s…: %v", ok, err)
		}
	}
	if ms := srv.BotMessages(userID); len(ms) != 4 || ms[3].Text != "plain <not> markup" {
		t.Errorf("messages = %q, want the four accepted", texts(ms))
	}
}

func mdJSON(md string) string {
	raw, _ := json.Marshal(map[string]string{"markdown": md})
	return string(raw)
}

func texts(ms []telegramtest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

func TestServer_NoRichMethods(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{NoRichMethods: true, Flood: telegramtest.FloodLimits{Disabled: true}})
	for _, method := range []string{"sendRichMessage", "sendRichMessageDraft"} {
		p := richParams(userID, "x")
		p["draft_id"] = "1"
		_, err := bot.MakeRequest(method, p)
		if e := apiError(t, err); e.Code != 404 || e.Message != "Not Found: method not found" {
			t.Errorf("%s: %d %q, want 404 Not Found: method not found", method, e.Code, e.Message)
		}
	}
	// editMessageText does not know rich_message: without text, nothing.
	m, err := bot.Send(tgbotapi.NewMessage(userID, "text"))
	if err != nil {
		t.Fatal(err)
	}
	edit := richParams(userID, "rich")
	edit["message_id"] = strconv.Itoa(m.MessageID)
	if _, err := bot.MakeRequest("editMessageText", edit); !strings.Contains(apiError(t, err).Message, "message text is empty") {
		t.Errorf("rich edit on an old server: %v, want message text is empty", err)
	}
	srv.SetRichMethods(true)
	if _, err := bot.MakeRequest("sendRichMessage", richParams(userID, "now")); err != nil {
		t.Errorf("after SetRichMethods(true): %v", err)
	}
}

// A draft sent with can_stop has a Stop button: pressing it sends the bot
// a stopped_message_generation update, which it gets only when it asks for
// that type in allowed_updates.
func TestServer_StopGeneration(t *testing.T) {
	srv, bot := newBot(t, telegramtest.Options{})
	draft := func(method string, id int, p tgbotapi.Params) {
		t.Helper()
		p["chat_id"], p["draft_id"] = strconv.Itoa(userID), strconv.Itoa(id)
		if _, err := bot.MakeRequest(method, p); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
	draft("sendMessageDraft", 7, tgbotapi.Params{"text": ""})
	if err := srv.StopGeneration(userID, 7); !errors.Is(err, telegramtest.ErrNotStoppable) {
		t.Errorf("StopGeneration without can_stop = %v, want ErrNotStoppable", err)
	}
	draft("sendMessageDraft", 7, tgbotapi.Params{"text": "partial", "can_stop": "true", "keep_on_stop": "true"})
	p := richParams(userID, "<tg-thinking>Thinking…</tg-thinking>")
	p["can_stop"] = "true"
	draft("sendRichMessageDraft", 8, p)
	ds := srv.Drafts(userID)
	if len(ds) != 2 || !ds[0].CanStop || !ds[0].KeepOnStop || ds[1].Rich == nil || ds[1].Text != "Thinking…" || ds[1].KeepOnStop {
		t.Fatalf("drafts = %+v", ds)
	}

	// A bot that lists only messages never gets the update.
	if err := srv.StopGeneration(userID, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := bot.MakeRequest("getUpdates", tgbotapi.Params{"allowed_updates": `["message"]`}); err != nil {
		t.Fatal(err)
	}
	if n := srv.PendingUpdates(); n != 0 {
		t.Errorf("%d updates pending, want the unwanted type dropped", n)
	}

	if err := srv.StopGeneration(userID, 8); err != nil {
		t.Fatal(err)
	}
	resp, err := bot.MakeRequest("getUpdates", tgbotapi.Params{"allowed_updates": `["message","stopped_message_generation"]`})
	if err != nil {
		t.Fatal(err)
	}
	var us []struct {
		Stopped *struct {
			Chat    struct{ ID int64 } `json:"chat"`
			DraftID int64              `json:"draft_id"`
		} `json:"stopped_message_generation"`
	}
	if err := json.Unmarshal(resp.Result, &us); err != nil || len(us) != 1 || us[0].Stopped == nil || us[0].Stopped.DraftID != 8 || us[0].Stopped.Chat.ID != userID {
		t.Errorf("updates = %s (%v), want the stop of draft 8", resp.Result, err)
	}
	if d := srv.Drafts(userID)[1]; !d.Stopped {
		t.Errorf("draft %+v not marked stopped", d)
	}
}
