package telegram_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

const streamed = "Here is a **streamed** answer with `code` and a list:\n\n- one\n- two\n- three\n\nThat is all there is to say about it, really, at some length."

func TestBot_PrivateStreaming(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format string
		drafts bool
		refuse bool
	}{
		{"Drafts", "", true, false},
		{"Edits", "", false, false},
		{"DraftsRefused", "", true, true},
		{"HTMLDrafts", "html", true, false},
		{"HTMLEdits", "html", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, withOptions(func(o *telegram.Options) { o.Drafts, o.Format = tc.drafts, tc.format }))
			r.tg.SetRefuseDrafts(tc.refuse, "")
			r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(streamed), Interval: 15 * time.Millisecond})
			r.tg.SendText(alice.ID, alice, "tell me")

			m := r.final(alice.ID, "That is all")
			switch {
			case tc.format == "html":
				if want := visible(t, streamed); m.Text != want || m.Rich != nil {
					t.Errorf("final text = %q (rich %v), want the HTML of %q", m.Text, m.Rich, want)
				}
			case m.Rich == nil || m.Rich.Markdown != streamed:
				t.Errorf("final message = %q (rich %+v), want a rich message of the answer's Markdown", m.Text, m.Rich)
			}
			// The first sign of life: Telegram's "Thinking…" placeholder
			// in a draft; else the first text itself, which comes before
			// "typing…" would (TestBot_FirstDraftBeforeFirstToken has a
			// slow one).
			drafts := r.tg.Drafts(alice.ID)
			if tc.drafts && !tc.refuse {
				if first := r.tg.CallsTo("sendMessageDraft"); tc.format == "html" && (len(first) == 0 || first[0].Params["text"] != "") {
					t.Errorf("first HTML draft = %+v, want Telegram's placeholder (an empty text)", first)
				}
				if first := r.tg.CallsTo("sendRichMessageDraft"); tc.format == "" && (len(first) == 0 || !strings.Contains(richParam(t, first[0]).Markdown, "<tg-thinking>")) {
					t.Errorf("first rich draft = %+v, want the thinking block", first)
				}
			}
			if n := len(r.tg.BotMessages(alice.ID)); n != 1 {
				t.Errorf("bot messages = %d, want 1: %q", n, texts(r.tg.BotMessages(alice.ID)))
			}
			switch {
			case tc.drafts && !tc.refuse:
				if len(drafts) == 0 || drafts[len(drafts)-1].Updates < 2 || !drafts[len(drafts)-1].CanStop {
					t.Errorf("drafts = %+v, want one draft updated several times, with a Stop button", drafts)
				}
			default:
				if m.EditCount < 2 {
					t.Errorf("edits = %d, want several visible updates", m.EditCount)
				}
			}
			if n := r.count429(); n != 0 {
				t.Errorf("%d calls refused with 429", n)
			}
		})
	}
}

func TestBot_Group(t *testing.T) {
	r := newRig(t)
	r.tg.SendText(group, alice, "just chatting among ourselves")
	r.tg.SendText(group, alice, "@palaver_bot what is up?")
	m := r.final(group, "what is up?")
	if reqs := r.chatRequests(); len(reqs) != 1 {
		t.Fatalf("upstream requests = %d, want 1 (the unaddressed message ignored)", len(reqs))
	}
	last := r.lastRequest().Messages
	if got := last[len(last)-1]; !strings.HasSuffix(got.Content, "what is up?") || strings.Contains(got.Content, "@palaver_bot") || got.Name == "" && !strings.Contains(got.Content, "Alice") {
		t.Errorf("upstream user message = %+v, want the text without the mention, with the author", got)
	}
	if m.ReplyTo == 0 {
		t.Error("the answer does not reply to the question")
	}

	// A reply to the bot's message is for the bot, without a mention.
	r.tg.SendText(group, bob, "and then?", telegramtest.ReplyTo(m.ID))
	r.final(group, "and then?")

	// A reply to someone else is not.
	r.tg.SendText(group, bob, "nice", telegramtest.ReplyTo(m.ReplyTo))
	r.tg.SendText(group, alice, "/chat third")
	r.final(group, ": third")
	if reqs := r.chatRequests(); len(reqs) != 3 {
		t.Errorf("upstream requests = %d, want 3", len(reqs))
	}
}

func TestBot_ModelKeyboardSurvivesRestart(t *testing.T) {
	r := newRig(t)
	r.tg.SendText(alice.ID, alice, "/model")
	picker, err := r.tg.WaitMessage(r.ctx(), alice.ID, func(m telegramtest.Message) bool { return len(m.ReplyMarkup) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	bs := buttons(t, picker)
	if _, ok := bs["✓ fake/echo"]; !ok {
		t.Fatalf("buttons %v: the current model is not marked", bs)
	}
	const chosen = "fake/deepseek-ai/DeepSeek-V3-0324-Turbo"
	data, ok := bs[chosen]
	if !ok || len(data) > 64 {
		t.Fatalf("buttons %v: no button for %s within 64 bytes", bs, chosen)
	}
	r.tg.PressButton(alice.ID, picker.ID, alice, data)
	r.tg.WaitFor(r.ctx(), func() bool { return len(r.tg.CallbackAnswers()) == 1 })
	// The confirmation replaces the picker through the chat's schedule,
	// after the button's acknowledgement.
	r.tg.WaitFor(r.ctx(), func() bool { m, _ := r.tg.Message(alice.ID, picker.ID); return m.EditCount > 0 })
	if got, _ := r.tg.Message(alice.ID, picker.ID); !strings.Contains(got.Text, chosen) || got.ReplyMarkup != nil {
		t.Errorf("picker after the choice = %q (markup %s), want a confirmation", got.Text, got.ReplyMarkup)
	}

	r.tg.SendText(alice.ID, alice, "first")
	r.final(alice.ID, "echo: first")
	if got := r.lastRequest().Model; got != "deepseek-ai/DeepSeek-V3-0324-Turbo" {
		t.Errorf("upstream model = %q, want the chosen one", got)
	}

	r.restart()
	r.tg.SendText(alice.ID, alice, "second")
	r.final(alice.ID, "echo: second")
	req := r.lastRequest()
	if req.Model != "deepseek-ai/DeepSeek-V3-0324-Turbo" {
		t.Errorf("upstream model after restart = %q, want the chosen one", req.Model)
	}
	var contents []string
	for _, m := range req.Messages {
		contents = append(contents, m.Content)
	}
	if !slices.Contains(contents, "first") || !slices.Contains(contents, "echo: first") {
		t.Errorf("history after restart = %q, want the first exchange", contents)
	}
}

func TestBot_Reset(t *testing.T) {
	r := newRig(t)
	r.tg.SendText(alice.ID, alice, "remember me")
	r.final(alice.ID, "echo: remember me")
	r.tg.SendText(alice.ID, alice, "/reset")
	r.final(alice.ID, "History forgotten")
	r.tg.SendText(alice.ID, alice, "fresh")
	r.final(alice.ID, "echo: fresh")
	for _, m := range r.lastRequest().Messages {
		if strings.Contains(m.Content, "remember me") {
			t.Errorf("history after /reset still has %q", m.Content)
		}
	}
}

func TestBot_LongAnswer(t *testing.T) {
	r := newRig(t)
	var b strings.Builder
	for i := 0; b.Len() < 12000; i++ {
		fmt.Fprintf(&b, "Paragraph %d explains a <detail> & more, at some length so that it takes space.\n\n", i)
		if i%3 == 0 {
			b.WriteString("```go\n")
			for j := range 12 {
				fmt.Fprintf(&b, "x := compute(%d, %d) // marker-%d-%d\n", i, j, i, j)
			}
			b.WriteString("```\n\n")
		}
	}
	answer := b.String()
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(answer)})
	r.tg.SendText(alice.ID, alice, "a long one please")
	last := r.final(alice.ID, "Paragraph "+strings.TrimPrefix(lastParagraph(answer), "Paragraph "))
	_ = last
	msgs := r.tg.BotMessages(alice.ID)
	if len(msgs) < 3 {
		t.Fatalf("answer in %d messages, want at least 3", len(msgs))
	}
	var all strings.Builder
	for _, m := range msgs {
		if telegramtest.UTF16Len(m.Text) > telegram.MaxMessageLen {
			t.Errorf("message %d is %d long", m.ID, telegramtest.UTF16Len(m.Text))
		}
		if m.ParseMode != "HTML" {
			t.Errorf("message %d went as %q, want HTML", m.ID, m.ParseMode)
		}
		if err := telegramtest.ValidateHTML(m.Source); err != nil {
			t.Errorf("message %d: %v", m.ID, err)
		}
		all.WriteString(m.Text)
	}
	for _, line := range strings.Split(answer, "\n") {
		if i := strings.Index(line, "marker-"); i >= 0 && !strings.Contains(all.String(), line[i:]) {
			t.Errorf("%q is missing from the messages", line[i:])
		}
		if strings.HasPrefix(line, "Paragraph") && !strings.Contains(all.String(), line) {
			t.Errorf("%q is missing from the messages", line)
		}
	}
}

func lastParagraph(s string) string {
	ps := strings.Split(strings.TrimSpace(s), "\n\n")
	for i := len(ps) - 1; i >= 0; i-- {
		if strings.HasPrefix(ps[i], "Paragraph") {
			return ps[i]
		}
	}
	return ""
}

func TestBot_RateLimitPausesOnlyThatChat(t *testing.T) {
	r := newRig(t, withOptions(func(o *telegram.Options) { o.Drafts = false }))
	long := strings.Repeat("word ", 150) + "END"
	r.up.SetScript(llmtest.Script{Content: llmtest.Tokens(long), Interval: 10 * time.Millisecond})
	const a, b = int64(3001), int64(3002)
	r.tg.SendText(a, telegramtest.User{ID: a, FirstName: "A"}, "go")
	if _, err := r.tg.WaitMessage(r.ctx(), a, func(m telegramtest.Message) bool { return m.From.ID == r.tg.Bot().ID }); err != nil {
		t.Fatal(err)
	}
	r.tg.InjectFlood(a, 1, 1)
	r.tg.SendText(b, telegramtest.User{ID: b, FirstName: "B"}, "go")

	r.final(a, "END")
	r.final(b, "END")
	calls := r.tg.Calls()
	refused := slices.IndexFunc(calls, func(c telegramtest.Call) bool { return c.ErrorCode == 429 })
	if refused < 0 {
		t.Fatal("the injected 429 never happened")
	}
	nextA := refused + 1 + slices.IndexFunc(calls[refused+1:], func(c telegramtest.Call) bool { return c.Params["chat_id"] == fmt.Sprint(a) })
	toB := 0
	for _, c := range calls[refused+1 : nextA] {
		if c.Params["chat_id"] == fmt.Sprint(b) && c.Method != "sendChatAction" {
			toB++
		}
	}
	if toB < 3 {
		t.Errorf("chat B got %d updates while A was paused, want B to keep going", toB)
	}
	if m := r.final(a, "END"); m.Text != visible(t, long) {
		t.Errorf("final text of A = %q…, want the whole answer", m.Text[:40])
	}
}

func TestBot_UpstreamFailure(t *testing.T) {
	r := newRig(t)
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens("partial answer then"), Fail: llmtest.FailErrorChunk, FailAfter: 2, FailMessage: "model overloaded"})
	r.tg.SendText(alice.ID, alice, "hi")
	m := r.final(alice.ID, "⚠️")
	if !strings.Contains(m.Text, "model overloaded") || len(m.Text) > 400 {
		t.Errorf("failure shown as %q, want a short reason", m.Text)
	}
}

func TestBot_Stop(t *testing.T) {
	for _, how := range []string{"Button", "Command"} {
		t.Run(how, func(t *testing.T) {
			r := newRig(t, withOptions(func(o *telegram.Options) { o.Drafts = false }))
			r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(strings.Repeat("slow ", 500)), Interval: 20 * time.Millisecond})
			r.tg.SendText(alice.ID, alice, "go on forever")
			m, err := r.tg.WaitMessage(r.ctx(), alice.ID, func(m telegramtest.Message) bool {
				return m.From.ID == r.tg.Bot().ID && strings.Contains(m.Text, "slow")
			})
			if err != nil {
				t.Fatal(err)
			}
			if how == "Button" {
				data, ok := buttons(t, m)["⏹ Stop"]
				if !ok {
					t.Fatalf("answer in progress has no Stop button: %s", m.ReplyMarkup)
				}
				r.tg.PressButton(alice.ID, m.ID, alice, data)
			} else {
				r.tg.SendText(alice.ID, alice, "/stop")
			}
			if err := r.up.WaitDisconnect(r.ctx()); err != nil {
				t.Fatalf("upstream connection not closed: %v", err)
			}
			r.final(alice.ID, "(stopped)")
		})
	}
}

func TestBot_ForumTopics(t *testing.T) {
	r := newRig(t)
	const forum = int64(-1_000_000_005_001)
	r.tg.SetChat(telegramtest.Chat{ID: forum, Type: telegramtest.ChatSupergroup, Title: "Forum", IsForum: true})
	r.tg.SendText(forum, alice, "@palaver_bot in topic seven", telegramtest.InThread(7))
	m := r.final(forum, "in topic seven")
	if m.ThreadID != 7 {
		t.Errorf("answer in thread %d, want 7", m.ThreadID)
	}
	r.tg.SendText(forum, alice, "@palaver_bot in topic nine", telegramtest.InThread(9))
	m = r.final(forum, "in topic nine")
	if m.ThreadID != 9 {
		t.Errorf("answer in thread %d, want 9", m.ThreadID)
	}
	for _, msg := range r.lastRequest().Messages {
		if strings.Contains(msg.Content, "seven") {
			t.Errorf("topic 9 sees topic 7's history: %q", msg.Content)
		}
	}
}

func TestBot_OffsetPersisted(t *testing.T) {
	r := newRig(t)
	r.tg.SendText(alice.ID, alice, "once")
	r.final(alice.ID, "echo: once")
	r.restart()
	r.tg.SendText(alice.ID, alice, "twice")
	r.final(alice.ID, "echo: twice")
	if err := r.tg.WaitUpdatesConsumed(r.ctx()); err != nil {
		t.Fatal(err)
	}
	var asked []string
	for _, req := range r.chatRequests() {
		asked = append(asked, req.Messages[len(req.Messages)-1].Content)
	}
	if !slices.Equal(asked, []string{"once", "twice"}) {
		t.Errorf("upstream was asked %q, want each message once", asked)
	}
}

func TestBot_GroupSettingsNeedAdmin(t *testing.T) {
	r := newRig(t, withOptions(func(o *telegram.Options) { o.Admins = []int64{bob.ID + 100} }))
	r.tg.SendText(group, bob, "/model@palaver_bot fake/deepseek-ai/DeepSeek-V3-0324-Turbo")
	r.final(group, "administrators")
	r.tg.SetMember(group, bob.ID, telegramtest.StatusAdministrator)
	r.tg.SendText(group, bob, "/model@palaver_bot fake/deepseek-ai/DeepSeek-V3-0324-Turbo")
	r.final(group, "Model set to fake/deepseek-ai/DeepSeek-V3-0324-Turbo")
	r.tg.SendText(group, bob, "/model@other_bot fake/echo")
	r.tg.SendText(group, alice, "@palaver_bot which model?")
	r.final(group, "which model?")
	if got := r.lastRequest().Model; got != "deepseek-ai/DeepSeek-V3-0324-Turbo" {
		t.Errorf("model = %q; a command for another bot changed it?", got)
	}
}

func TestBot_MigratedGroupKeepsConversation(t *testing.T) {
	r := newRig(t)
	const newID = int64(-1_000_000_004_001)
	r.tg.SendText(group, alice, "@palaver_bot before the upgrade")
	r.final(group, "before the upgrade")
	r.tg.MigrateChat(group, newID)
	r.tg.SendText(newID, alice, "@palaver_bot after the upgrade")
	r.final(newID, "after the upgrade")
	var contents []string
	for _, m := range r.lastRequest().Messages {
		contents = append(contents, m.Content)
	}
	if !slices.ContainsFunc(contents, func(s string) bool { return strings.Contains(s, "before the upgrade") }) {
		t.Errorf("history after migration = %q, want the old group's", contents)
	}
}

func TestBot_AccessLists(t *testing.T) {
	r := newRig(t, withOptions(func(o *telegram.Options) { o.AllowedUsers = []int64{alice.ID} }))
	r.tg.SendText(bob.ID, bob, "let me in")
	r.final(bob.ID, "private")
	r.tg.SendText(alice.ID, alice, "hello")
	r.final(alice.ID, "echo: hello")
	if n := len(r.chatRequests()); n != 1 {
		t.Errorf("upstream requests = %d, want only Alice's", n)
	}
}

func TestBot_RecoversInterruptedAnswer(t *testing.T) {
	r := newRig(t)
	r.tg.SendText(alice.ID, alice, "hello")
	m := r.final(alice.ID, "echo: hello")
	r.stop()

	// Record answers as a crash would have left them: one shown in a
	// message, one not shown yet.
	store, err := sessions.OpenBolt(r.path, sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rich := ""
	if m.Rich != nil {
		rich = fmt.Sprintf(`,"rich":[%d]`, m.ID)
	}
	shown := sessions.Progress{
		Destination: "telegram:1001",
		Reply:       []byte(fmt.Sprintf(`{"chat":%d,"private":true,"messages":[%d]%s}`, alice.ID, m.ID, rich)),
		Shown:       sessions.View{Content: "half an answer"},
	}
	unseen := sessions.Progress{Destination: "telegram:1002", Shown: sessions.View{Content: "never shown"}}
	ctx := r.ctx()
	if err := store.SetProgress(ctx, sessions.Key{Platform: "telegram", Chat: "1001"}, 0, &shown); err != nil {
		t.Fatal(err)
	}
	if err := store.SetProgress(ctx, sessions.Key{Platform: "telegram", Chat: "1002"}, 0, &unseen); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	r.start()
	got := r.final(alice.ID, "half an answer")
	if got.ID != m.ID || !strings.Contains(got.Text, "Interrupted") {
		t.Errorf("recovered message %d = %q, want message %d edited with the note", got.ID, got.Text, m.ID)
	}
	if got := r.final(bob.ID, "never shown"); !strings.Contains(got.Text, "Interrupted") {
		t.Errorf("recovered answer = %q, want the note", got.Text)
	}
}

func TestBot_Commands(t *testing.T) {
	r := newRig(t)
	if err := r.tg.WaitFor(r.ctx(), func() bool { return len(r.tg.Commands("default")) > 0 }); err != nil {
		t.Fatal("setMyCommands was not called")
	}
	for _, tc := range []struct{ send, want string }{
		{"/help", "/model"},
		{"/models", "fake/deepseek-ai/DeepSeek-R1-0528-Turbo"},
		{"/system Be brief.", "System prompt set."},
		{"/system", "Be brief."},
		{"/settings", "Model: fake/echo"},
		{"/stop", "Nothing to stop."},
		{"/retry", "no message to answer again"},
		{"/frobnicate", "Unknown command"},
	} {
		r.tg.SendText(alice.ID, alice, tc.send)
		r.final(alice.ID, tc.want)
	}
	r.tg.SendText(alice.ID, alice, "question")
	r.final(alice.ID, "echo: question")
	if got := r.lastRequest().Messages[0]; got.Role != llm.RoleSystem || got.Content != "Be brief." {
		t.Errorf("system message = %+v, want the one set", got)
	}
}

func TestBot_DeletedAnswerEndsStream(t *testing.T) {
	r := newRig(t, withOptions(func(o *telegram.Options) { o.Drafts = false }))
	r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(strings.Repeat("more ", 500)), Interval: 20 * time.Millisecond})
	r.tg.SendText(alice.ID, alice, "go")
	m, err := r.tg.WaitMessage(r.ctx(), alice.ID, func(m telegramtest.Message) bool {
		return m.From.ID == r.tg.Bot().ID && strings.Contains(m.Text, "more")
	})
	if err != nil {
		t.Fatal(err)
	}
	// The user deletes the answer (the fake's deleteMessage stands in for
	// the Telegram client).
	resp, err := r.tg.Client().PostForm(fmt.Sprintf(strings.Replace(r.tg.Endpoint(), "%s", r.tg.Token(), 1), "deleteMessage"),
		map[string][]string{"chat_id": {fmt.Sprint(alice.ID)}, "message_id": {fmt.Sprint(m.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := r.up.WaitDisconnect(r.ctx()); err != nil {
		t.Fatalf("upstream not closed after the answer was deleted: %v", err)
	}
}

func TestBot_ModelPickerPages(t *testing.T) {
	r := newRig(t)
	var models []llmtest.ModelInfo
	for i := range 25 {
		models = append(models, llmtest.ModelInfo{ID: fmt.Sprintf("model-%02d", i)})
	}
	models = append(models, llmtest.ModelInfo{ID: "echo"})
	r.up.SetModels(models)
	r.tg.SendText(alice.ID, alice, "/model")
	picker, err := r.tg.WaitMessage(r.ctx(), alice.ID, func(m telegramtest.Message) bool { return len(m.ReplyMarkup) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	next, ok := buttons(t, picker)["2 ▶"]
	if !ok {
		t.Fatalf("first page %v has no next-page button", buttons(t, picker))
	}
	r.tg.PressButton(alice.ID, picker.ID, alice, next)
	if err := r.tg.WaitFor(r.ctx(), func() bool {
		m, _ := r.tg.Message(alice.ID, picker.ID)
		return strings.Contains(string(m.ReplyMarkup), "model-1")
	}); err != nil {
		t.Fatal("the picker did not turn to page 2")
	}
	page2, _ := r.tg.Message(alice.ID, picker.ID)
	r.tg.PressButton(alice.ID, picker.ID, alice, buttons(t, page2)["fake/model-15"])
	r.final(alice.ID, "Model set to fake/model-15")
	r.tg.SendText(alice.ID, alice, "which?")
	r.final(alice.ID, "which?")
	if got := r.lastRequest().Model; got != "model-15" {
		t.Errorf("upstream model = %q, want model-15", got)
	}
}

func TestBot_RunRefusedToken(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	store, err := sessions.OpenBolt(t.TempDir()+"/p.db", sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{})}, "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, router, nil, nil)
	const token = "555:WRONG-secret"
	var states []string // OnState runs in Run's goroutine
	bot, err := telegram.New(telegram.Options{Token: token, APIEndpoint: tg.Endpoint(),
		OnState: func(s string) { states = append(states, s) }}, m, store)
	if err != nil {
		t.Fatal(err)
	}
	err = bot.Run(t.Context())
	if err == nil || strings.Contains(err.Error(), "WRONG-secret") {
		t.Errorf("Run = %v, want an error without the token", err)
	}
	if want := []string{"connecting"}; !slices.Equal(states, want) {
		t.Errorf("states = %q, want %q", states, want)
	}
}

// OnState follows the connection: connecting until getMe, up while polls
// succeed, retrying once a poll fails (here ended with 409 by a second
// poller, as when two instances run), up again after a good poll.
func TestBot_OnState(t *testing.T) {
	states := make(chan string, 16)
	r := newRig(t, withOptions(func(o *telegram.Options) {
		o.OnState = func(s string) { states <- s }
	}))
	ctx := r.ctx()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("state = %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no state %q: %v", want, ctx.Err())
		}
	}
	expect("connecting")
	expect("up")

	if err := r.tg.WaitFor(ctx, func() bool { return r.tg.Pollers() == 1 }); err != nil {
		t.Fatalf("the bot never polled: %v", err)
	}
	resp, err := r.tg.Client().Get(r.tg.URL() + "/bot" + r.tg.Token() + "/getUpdates?timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expect("retrying")
	expect("up")
	select {
	case s := <-states:
		t.Errorf("extra state %q", s)
	default:
	}
}
