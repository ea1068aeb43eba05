package discord_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// threadAnswer waits for a finished bot answer containing want in a
// thread of parentID named name, and returns both.
func (r *rig) threadAnswer(t *testing.T, parentID, name, want string) (discordtest.Thread, discordtest.Message) {
	t.Helper()
	var th discordtest.Thread
	m, err := r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
		if m.AuthorID != r.dc.AppID() || !done(m) || !strings.Contains(m.Text(), want) {
			return false
		}
		for _, x := range r.dc.Threads(parentID) {
			if x.ID == m.ChannelID && x.Name == name {
				th = x
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("no finished answer containing %q in a thread %q of %s; threads: %+v", want, name, parentID, r.dc.Threads(parentID))
	}
	return th, m
}

// mention posts a message mentioning the bot.
func (r *rig) mention(t *testing.T, channelID, userID, text string) discordtest.Message {
	t.Helper()
	m, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: channelID, AuthorID: userID,
		Content: discordtest.Mention(r.dc.AppID()) + " " + text})
	must(t, err)
	return m
}

// threadCalls counts the thread creations the bot asked for in channelID.
func (r *rig) threadCalls(channelID string) int {
	n := 0
	for _, c := range r.dc.Calls() {
		if c.Method == "POST" && strings.HasSuffix(c.Route, "/threads") && c.ChannelID == channelID {
			n++
		}
	}
	return n
}

// requestHas reports whether an upstream request holds a message with
// exactly this content.
func requestHas(req llmtest.Request, role, content string) bool {
	return slices.ContainsFunc(req.Messages, func(m llm.Message) bool { return m.Role == role && m.Content == content })
}

func TestBot_Threads(t *testing.T) {
	r := newRig(t, func(r *rig) { r.opts.Threads = true })

	t.Run("TenMentionsTenThreads", func(t *testing.T) {
		ch := r.channel("busy")
		r.up.SetScriptFunc(func(req llmtest.Request) llmtest.Script {
			sc := llmtest.Echo(req)
			sc.Content = append(sc.Content, llmtest.Tokens(" with a few more words to stream")...)
			sc.Interval = 5 * time.Millisecond
			return sc
		})
		t.Cleanup(func() { r.up.SetScriptFunc(llmtest.Echo) })
		users := make([]discordtest.User, 10)
		for i := range users {
			users[i] = r.dc.AddUser(fmt.Sprintf("user%d", i))
			must(t, r.dc.AddMember(r.guild.ID, users[i].ID, 0))
		}
		before := r.count429()
		var wg sync.WaitGroup
		for i, u := range users {
			wg.Go(func() {
				if _, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: u.ID,
					Content: fmt.Sprintf("%s question **%d**", discordtest.Mention(r.dc.AppID()), i)}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for i := range users {
			want := fmt.Sprintf("echo: user%d: question **%d** with a few more words to stream", i, i)
			th, m := r.threadAnswer(t, ch.ID, fmt.Sprintf("question %d", i), want)
			if m.Text() != want {
				t.Errorf("answer in %s: %q, want exactly %q", th.Name, m.Text(), want)
			}
			if th.OwnerID != r.dc.AppID() || th.StarterID == "" {
				t.Errorf("thread %+v, want the bot's, started from the question", th)
			}
		}
		if n := len(r.dc.Threads(ch.ID)); n != 10 {
			t.Errorf("%d threads, want 10", n)
		}
		if got := r.botTexts(ch.ID); len(got) != 0 {
			t.Errorf("bot messages in the channel: %q, want none", got)
		}
		if id, n := r.dc.MaxWritesInWindow(channelWindow); n > 5 {
			t.Errorf("channel %s received %d writes within %v, want at most 5", id, n, channelWindow)
		}
		if n := r.count429() - before; n != 0 {
			t.Errorf("%d requests were refused with 429", n)
		}
	})

	t.Run("ChatOpensThread", func(t *testing.T) {
		ch := r.channel("slash")
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "a slash question"}}, r.user.ID, ch.ID)
		q, _ := r.dc.Message(st.OriginalID)
		if st.ResponseType != discordtest.ResponseMessage || q.Text() != "> a slash question" || q.Flags&discordtest.FlagEphemeral != 0 {
			t.Errorf("interaction answered with type %d %q (flags %d), want the question in the channel", st.ResponseType, q.Text(), q.Flags)
		}
		th, m := r.threadAnswer(t, ch.ID, "a slash question", "echo: alice: a slash question")
		if th.StarterID != st.OriginalID {
			t.Errorf("thread started from %q, want the question %q", th.StarterID, st.OriginalID)
		}
		if m.ReferenceID != "" {
			t.Errorf("first answer in the thread replies to %q", m.ReferenceID)
		}
	})

	t.Run("FollowUpInThread", func(t *testing.T) {
		ch := r.channel("follow")
		r.mention(t, ch.ID, r.user.ID, "first question")
		th, a := r.threadAnswer(t, ch.ID, "first question", "echo: alice: first question")
		r.mention(t, th.ID, r.user.ID, "second question")
		r.final(t, th.ID, "echo: alice: second question")
		req := r.lastRequest(t)
		if !requestHas(req, llm.RoleUser, "alice: first question") || !requestHas(req, llm.RoleAssistant, a.Text()) {
			t.Errorf("follow-up request %+v lacks the thread's first turn", req.Messages)
		}
		_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: th.ID, AuthorID: r.user.ID, Content: "third question", ReplyTo: a.ID})
		must(t, err)
		r.final(t, th.ID, "echo: alice: third question")
		if n := len(r.dc.Threads(ch.ID)); n != 1 {
			t.Errorf("%d threads, want the one", n)
		}
	})

	t.Run("InheritsChannelSettings", func(t *testing.T) {
		ch := r.channel("settings")
		r.slash(t, "model", []discordtest.Option{{Name: "name", Value: "deepseek-ai/DeepSeek-V3-0324-Turbo"}}, r.mod.ID, ch.ID)
		r.slash(t, "system", []discordtest.Option{{Name: "prompt", Value: "Answer like a pirate."}}, r.mod.ID, ch.ID)
		r.mention(t, ch.ID, r.user.ID, "ahoy")
		th, _ := r.threadAnswer(t, ch.ID, "ahoy", "echo: alice: ahoy")
		req := r.lastRequest(t)
		if req.Model != "deepseek-ai/DeepSeek-V3-0324-Turbo" || !requestHas(req, llm.RoleSystem, "Answer like a pirate.") {
			t.Errorf("thread's request: model %q, messages %+v; want the channel's model and system prompt", req.Model, req.Messages)
		}
		// The thread's settings are its own from then on.
		r.slash(t, "system", []discordtest.Option{{Name: "prompt", Value: "Be brief."}}, r.mod.ID, th.ID)
		r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "in the channel"}}, r.user.ID, ch.ID)
		r.threadAnswer(t, ch.ID, "in the channel", "echo: alice: in the channel")
		if req := r.lastRequest(t); !requestHas(req, llm.RoleSystem, "Answer like a pirate.") {
			t.Errorf("channel's next thread: %+v, want the channel's prompt", req.Messages)
		}
	})

	t.Run("NoThreadInThreadOrDM", func(t *testing.T) {
		ch := r.channel("nested")
		users, err := r.dc.StartThread(ch.ID, "users' thread", r.user.ID)
		must(t, err)
		r.mention(t, users.ID, r.user.ID, "inside a thread")
		r.final(t, users.ID, "echo: alice: inside a thread")
		dm, err := r.dc.DM(r.user.ID)
		must(t, err)
		_, err = r.dc.SendMessage(discordtest.UserMessage{ChannelID: dm.ID, AuthorID: r.user.ID, Content: "in a DM"})
		must(t, err)
		r.final(t, dm.ID, "echo: in a DM")
		if n := r.threadCalls(ch.ID) + r.threadCalls(users.ID) + r.threadCalls(dm.ID); n != 0 {
			t.Errorf("%d thread creations, want none", n)
		}
	})

	t.Run("RefusedAnswersInChannel", func(t *testing.T) {
		ch := r.channel("denied")
		r.dc.DenyThreads(ch.ID)
		for _, q := range []string{"no thread", "still none"} {
			um := r.mention(t, ch.ID, r.user.ID, q)
			if a := r.final(t, ch.ID, "echo: alice: "+q); a.ReferenceID != um.ID {
				t.Errorf("answer replies to %q, want the question %q", a.ReferenceID, um.ID)
			}
		}
		if n := r.threadCalls(ch.ID); n != 1 {
			t.Errorf("%d thread creations, want 1 (then a pause)", n)
		}
	})

	t.Run("ChatRefusedAnswersInChannel", func(t *testing.T) {
		ch := r.channel("denied-slash")
		r.dc.DenyThreads(ch.ID)
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "slash without thread"}}, r.user.ID, ch.ID)
		if a := r.final(t, ch.ID, "echo: alice: slash without thread"); a.ReferenceID != st.OriginalID {
			t.Errorf("answer replies to %q, want the question %q", a.ReferenceID, st.OriginalID)
		}
		if n := len(r.dc.Threads(ch.ID)); n != 0 {
			t.Errorf("%d threads, want none", n)
		}
	})

	t.Run("RateLimitedAnswersInChannel", func(t *testing.T) {
		ch := r.channel("crowded")
		r.dc.LimitThreads(1, time.Minute)
		t.Cleanup(func() { r.dc.LimitThreads(0, 0) })
		before := r.count429()
		r.mention(t, ch.ID, r.user.ID, "gets a thread")
		r.threadAnswer(t, ch.ID, "gets a thread", "echo: alice: gets a thread")
		for _, q := range []string{"refused once", "not tried"} {
			r.mention(t, ch.ID, r.user.ID, q)
			r.final(t, ch.ID, "echo: alice: "+q)
		}
		if n, calls := r.count429()-before, r.threadCalls(ch.ID); n != 1 || calls != 2 {
			t.Errorf("%d × 429 in %d thread creations, want 1 in 2 (the limit's retry-after is respected)", n, calls)
		}
	})

	t.Run("DeletedWhileStreaming", func(t *testing.T) {
		ch := r.channel("doomed")
		r.up.Enqueue(slow(strings.Repeat("word ", 400), 20*time.Millisecond))
		before := r.up.Disconnects()
		r.mention(t, ch.ID, r.user.ID, "long one")
		a, err := r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
			return m.AuthorID == r.dc.AppID() && stoppable(m) && strings.Contains(m.Text(), "word")
		})
		must(t, err)
		must(t, r.dc.DeleteThread(a.ChannelID))
		if err := r.up.WaitDisconnect(r.ctx()); err != nil || r.up.Disconnects() <= before {
			t.Fatalf("the answer did not stop: %v", err)
		}
		r.mention(t, ch.ID, r.user.ID, "after the deletion")
		r.threadAnswer(t, ch.ID, "after the deletion", "echo: alice: after the deletion")
	})
}

func TestBot_ThreadFollowAll(t *testing.T) {
	r := newRig(t, func(r *rig) { r.opts.Threads, r.opts.ThreadFollowAll = true, true })
	if gs := r.dc.GatewaySessions(); len(gs) != 1 || gs[0].Intents&discordtest.IntentMessageContent == 0 {
		t.Fatalf("gateway sessions %+v, want one with MESSAGE_CONTENT", gs)
	}
	ch := r.channel("general")
	r.mention(t, ch.ID, r.user.ID, "first question")
	th, _ := r.threadAnswer(t, ch.ID, "first question", "echo: alice: first question")
	_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: th.ID, AuthorID: r.user.ID, Content: "a plain follow-up"})
	must(t, err)
	r.final(t, th.ID, "echo: alice: a plain follow-up")
	if req := r.lastRequest(t); !requestHas(req, llm.RoleUser, "alice: first question") {
		t.Errorf("follow-up request %+v lacks the first question", req.Messages)
	}

	users, err := r.dc.StartThread(ch.ID, "users' thread", r.user.ID)
	must(t, err)
	_, err = r.dc.SendMessage(discordtest.UserMessage{ChannelID: users.ID, AuthorID: r.user.ID, Content: "not for the bot"})
	must(t, err)
	_, err = r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID, Content: "nor this"})
	must(t, err)
	// The bot handles events in order: once this mention is answered the
	// messages before it were seen, and stop waits for their handlers.
	r.mention(t, users.ID, r.user.ID, "this one is")
	r.final(t, users.ID, "echo: alice: this one is")
	r.stop()
	if got := r.botTexts(users.ID); len(got) != 1 {
		t.Errorf("bot messages in a thread it did not create: %q, want only the answer to the mention", got)
	}
	for _, req := range r.chatRequests() {
		if requestHas(req, llm.RoleUser, "alice: not for the bot") || requestHas(req, llm.RoleUser, "alice: nor this") {
			t.Errorf("a message not meant for the bot went upstream: %+v", req.Messages)
		}
	}
}
