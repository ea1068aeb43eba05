package discord_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
)

// TestBot runs the end-to-end scenarios that can share one bot (a
// discordgo session takes a second to close).
func TestBot(t *testing.T) {
	models := llmtest.DefaultModels()
	for i := range 40 {
		models = append(models, llmtest.ModelInfo{ID: fmt.Sprintf("family/model-%02d", i), OwnedBy: "x"})
	}
	r := newRig(t, func(r *rig) {
		r.cfg.Queue = 10
		r.up.SetModels(models)
	})

	t.Run("ChatStreamsIntoOriginalResponse", func(t *testing.T) {
		ch := r.channel("chat")
		text := "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
		r.up.Enqueue(slow(text, 15*time.Millisecond))
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "count"}}, r.user.ID, ch.ID)
		if st.ResponseType != discordtest.ResponseDeferredMessage {
			t.Errorf("first response type %d, want a deferred message (5)", st.ResponseType)
		}
		m := r.original(t, st, func(m discordtest.Message) bool { return done(m) && strings.Contains(m.Text(), "sixteen") })
		if m.Text() != text {
			t.Errorf("final content %q, want %q", m.Text(), text)
		}
		partial := 0
		for _, v := range m.Versions {
			if v.Text() != "" && v.Text() != text && strings.HasPrefix(text, v.Text()) {
				partial++
			}
		}
		if partial < 2 {
			t.Errorf("%d partial versions shown, want several: %d versions", partial, len(m.Versions))
		}
		if got := r.lastRequest(t).Messages; got[len(got)-1].Content != "alice: count" {
			t.Errorf("upstream got %q", got[len(got)-1].Content)
		}
	})

	t.Run("Autocomplete", func(t *testing.T) {
		ch := r.channel("auto")
		tests := []struct {
			typed     string
			want      int
			firstEcho bool
		}{
			{"", 25, true},
			{"MODEL-1", 10, false},
			{"model-39", 1, false},
			{"nothing-like-it", 0, false},
		}
		for _, tt := range tests {
			choices, err := r.dc.SendAutocomplete(r.ctx(), "model",
				[]discordtest.Option{{Name: "name", Value: tt.typed, Focused: true}}, r.user.ID, ch.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(choices) != tt.want {
				t.Errorf("typed %q: %d choices, want %d", tt.typed, len(choices), tt.want)
			}
			for _, c := range choices {
				if !strings.Contains(strings.ToLower(c.Name), strings.ToLower(tt.typed)) || c.Value != c.Name {
					t.Errorf("typed %q: choice %+v", tt.typed, c)
				}
			}
			if tt.firstEcho && (len(choices) == 0 || choices[0].Name != "fake/echo") {
				t.Errorf("typed %q: first choice %v, want the current model fake/echo", tt.typed, choices)
			}
		}
	})

	t.Run("ModelNeedsManageChannels", func(t *testing.T) {
		ch := r.channel("model")
		st := r.slash(t, "model", []discordtest.Option{{Name: "name", Value: "fake/family/model-07"}}, r.user.ID, ch.ID)
		m, _ := r.dc.Message(st.OriginalID)
		if m.Flags&discordtest.FlagEphemeral == 0 || !strings.Contains(m.Text(), "Only members who can manage") {
			t.Errorf("ordinary user's /model: %q flags %d, want an ephemeral refusal", m.Text(), m.Flags)
		}
		st = r.slash(t, "model", []discordtest.Option{{Name: "name", Value: "fake/family/model-07"}}, r.mod.ID, ch.ID)
		m, _ = r.dc.Message(st.OriginalID)
		if m.Flags&discordtest.FlagEphemeral != 0 || !strings.Contains(m.Text(), "fake/family/model-07") {
			t.Errorf("manager's /model: %q flags %d", m.Text(), m.Flags)
		}
		st = r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "hi"}}, r.user.ID, ch.ID)
		r.original(t, st, func(m discordtest.Message) bool { return done(m) && strings.Contains(m.Text(), "echo: alice: hi") })
		if got := r.lastRequest(t).Model; got != "family/model-07" {
			t.Errorf("upstream model %q, want family/model-07", got)
		}
		st = r.slash(t, "model", nil, r.user.ID, ch.ID)
		if m, _ := r.dc.Message(st.OriginalID); !strings.Contains(m.Text(), "fake/family/model-07") {
			t.Errorf("/model without a name: %q", m.Text())
		}
	})

	t.Run("MentionAndReply", func(t *testing.T) {
		ch := r.channel("mention")
		ignored, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID, Content: "not for the bot"})
		must(t, err)
		um, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
			Content: discordtest.Mention(r.dc.AppID()) + " hello there"})
		must(t, err)
		a := r.final(t, ch.ID, "echo: alice: hello there")
		if a.ReferenceID != um.ID {
			t.Errorf("answer replies to %q, want the user's message %q", a.ReferenceID, um.ID)
		}
		_, err = r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID, Content: "and again", ReplyTo: a.ID})
		must(t, err)
		r.final(t, ch.ID, "echo: alice: and again")
		for _, m := range r.dc.Messages(ch.ID) {
			if m.ReferenceID == ignored.ID {
				t.Errorf("the bot answered a message that was not for it: %q", m.Text())
			}
		}
		reqs := r.chatRequests()
		last := reqs[len(reqs)-1].Messages
		if n := len(last); n < 3 || !strings.Contains(last[n-3].Content, "hello there") {
			t.Errorf("the reply did not continue the channel's conversation: %+v", last)
		}
	})

	t.Run("DM", func(t *testing.T) {
		dm, err := r.dc.DM(r.user.ID)
		must(t, err)
		_, err = r.dc.SendMessage(discordtest.UserMessage{ChannelID: dm.ID, AuthorID: r.user.ID, Content: "private question"})
		must(t, err)
		r.final(t, dm.ID, "echo: private question")
		_, err = r.dc.SendMessage(discordtest.UserMessage{ChannelID: dm.ID, AuthorID: r.user.ID, Content: "follow-up"})
		must(t, err)
		r.final(t, dm.ID, "echo: follow-up")
		if n := len(r.lastRequest(t).Messages); n < 3 {
			t.Errorf("the DM conversation sent %d messages upstream, want its history", n)
		}
	})

	t.Run("LongAnswer", func(t *testing.T) {
		ch := r.channel("long")
		var paras []string
		for i := 0; len(strings.Join(paras, "\n\n")) < 9000; i++ {
			paras = append(paras, fmt.Sprintf("Paragraph %d says something about the topic at some length, so that it takes a line or two.", i))
		}
		text := strings.Join(paras, "\n\n")
		r.up.Enqueue(llmtest.Script{Content: llmtest.Tokens(text)})
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "write a lot"}}, r.user.ID, ch.ID)
		last := paras[len(paras)-1]
		r.final(t, ch.ID, last)
		st, _ = r.dc.InteractionState(st.ID)
		ids := append([]string{st.OriginalID}, st.FollowupIDs...)
		if len(ids) < 3 {
			t.Errorf("%d messages for a %d-character answer, want at least 3", len(ids), len(text))
		}
		var got []string
		for _, id := range ids {
			m, _ := r.dc.Message(id)
			if n := len([]rune(m.Text())); n > discord.TextLimitV2 {
				t.Errorf("message %s has %d characters", id, n)
			}
			got = append(got, m.Text())
		}
		if a, b := strings.Fields(strings.Join(got, "\n")), strings.Fields(text); strings.Join(a, " ") != strings.Join(b, " ") {
			t.Errorf("joined messages differ from the answer:\n got %.200q…\nwant %.200q…", strings.Join(a, " "), strings.Join(b, " "))
		}
	})

	t.Run("LongAnswerAtFullRate", func(t *testing.T) {
		// An answer that keeps the channel's budget busy and grows past
		// a message's 4000 characters twice: the new messages must not
		// burst past the channel's window.
		ch := r.channel("long-stream")
		text := strings.TrimSpace(strings.Repeat("stream words across messages ", 340))
		r.up.Enqueue(slow(text, time.Millisecond))
		before := r.count429()
		_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
			Content: discordtest.Mention(r.dc.AppID()) + " stream"})
		must(t, err)
		_, err = r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
			var all []string
			for _, m := range r.dc.Messages(ch.ID) {
				if m.AuthorID == r.dc.AppID() {
					if !done(m) {
						return false
					}
					all = append(all, m.Text())
				}
			}
			return len(all) == 3 && strings.Join(strings.Fields(strings.Join(all, " ")), " ") == text
		})
		if err != nil {
			t.Fatalf("the answer was not shown in full in three messages: %q", r.botTexts(ch.ID))
		}
		if id, n := r.dc.MaxWritesInWindow(channelWindow); n > 5 {
			t.Errorf("channel %s received %d writes within %v, want at most 5", id, n, channelWindow)
		}
		if n := r.count429() - before; n != 0 {
			t.Errorf("%d requests were refused with 429", n)
		}
	})

	t.Run("TenMembersInOneChannel", func(t *testing.T) {
		// Ten members mention the bot in one channel at once while a
		// moderator asks with /chat: every question gets its exact
		// answer, channel messages and interaction webhooks sharing the
		// channel's window, without a 429.
		ch := r.channel("busy")
		const more = " with a few more words to stream"
		r.up.SetScriptFunc(func(req llmtest.Request) llmtest.Script {
			sc := llmtest.Echo(req)
			sc.Content = append(sc.Content, llmtest.Tokens(more)...)
			sc.Interval = 5 * time.Millisecond
			return sc
		})
		t.Cleanup(func() { r.up.SetScriptFunc(llmtest.Echo) })
		members := make([]discordtest.User, 10)
		for i := range members {
			members[i] = r.dc.AddUser(fmt.Sprintf("member%d", i))
			must(t, r.dc.AddMember(r.guild.ID, members[i].ID, 0))
		}
		const slashes = 3
		before := r.count429()
		questions := make([]discordtest.Message, len(members))
		var wg sync.WaitGroup
		for i, u := range members {
			wg.Go(func() {
				m, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: u.ID,
					Content: fmt.Sprintf("%s question %d", discordtest.Mention(r.dc.AppID()), i)})
				if err != nil {
					t.Error(err)
				}
				questions[i] = m
			})
		}
		for i := range slashes {
			wg.Go(func() {
				if _, err := r.dc.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: fmt.Sprintf("slash %d", i)}}, r.mod.ID, ch.ID); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for i, q := range questions {
			want := fmt.Sprintf("echo: member%d: question %d%s", i, i, more)
			if a := r.final(t, ch.ID, want); a.Text() != want || a.ReferenceID != q.ID {
				t.Errorf("answer %d = %q replying to %q, want %q replying to %q", i, a.Text(), a.ReferenceID, want, q.ID)
			}
		}
		for i := range slashes {
			want := fmt.Sprintf("echo: mod: slash %d%s", i, more)
			if a := r.final(t, ch.ID, want); a.Text() != want {
				t.Errorf("/chat answer %d = %q, want %q", i, a.Text(), want)
			}
		}
		if id, n := r.dc.MaxWritesInWindow(channelWindow); n > 5 {
			t.Errorf("channel %s received %d writes within %v, want at most 5", id, n, channelWindow)
		}
		if n := r.count429() - before; n != 0 {
			t.Errorf("%d requests were refused with 429", n)
		}
	})

	t.Run("RefusalsAmidAnswers", func(t *testing.T) {
		// Empty questions arriving with real ones are refused through the
		// channel's schedule: one reply each, sharing the channel's
		// window with the answers, without a 429.
		ch := r.channel("refusals")
		r.up.SetScriptFunc(func(req llmtest.Request) llmtest.Script {
			sc := llmtest.Echo(req)
			sc.Interval = 5 * time.Millisecond
			return sc
		})
		t.Cleanup(func() { r.up.SetScriptFunc(llmtest.Echo) })
		before := r.count429()
		questions := make([]discordtest.Message, 12)
		var wg sync.WaitGroup
		for i := range questions {
			wg.Go(func() {
				text := discordtest.Mention(r.dc.AppID())
				if i%2 == 0 {
					text += fmt.Sprintf(" real question %d", i)
				}
				m, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID, Content: text})
				if err != nil {
					t.Error(err)
				}
				questions[i] = m
			})
		}
		wg.Wait()
		want := func(i int) string {
			if i%2 == 0 {
				return fmt.Sprintf("echo: alice: real question %d", i)
			}
			return "⚠️ Your message is empty"
		}
		replies := func() map[string][]discordtest.Message {
			out := map[string][]discordtest.Message{}
			for _, m := range r.dc.Messages(ch.ID) {
				if m.AuthorID == r.dc.AppID() {
					out[m.ReferenceID] = append(out[m.ReferenceID], m)
				}
			}
			return out
		}
		if _, err := r.dc.WaitMessage(r.ctx(), func(discordtest.Message) bool {
			got := replies()
			for i, q := range questions {
				if len(got[q.ID]) == 0 || !done(got[q.ID][0]) || !strings.HasPrefix(got[q.ID][0].Text(), want(i)) {
					return false
				}
			}
			return true
		}); err != nil {
			t.Fatalf("replies: %q, want one for each of %d questions", r.botTexts(ch.ID), len(questions))
		}
		got := replies()
		for i, q := range questions {
			if ms := got[q.ID]; len(ms) != 1 {
				t.Errorf("question %d answered with %d messages, want one starting %q", i, len(ms), want(i))
			}
		}
		if id, n := r.dc.MaxWritesInWindow(channelWindow); n > 5 {
			t.Errorf("channel %s received %d writes within %v, want at most 5", id, n, channelWindow)
		}
		if n := r.count429() - before; n != 0 {
			t.Errorf("%d requests were refused with 429", n)
		}
	})

	t.Run("ForcedRateLimit", func(t *testing.T) {
		ch := r.channel("limited")
		const retry = 300 * time.Millisecond
		r.dc.InjectRateLimit(ch.ID, 1, retry)
		_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
			Content: discordtest.Mention(r.dc.AppID()) + " limited"})
		must(t, err)
		r.final(t, ch.ID, "echo: alice: limited")
		refused, err := r.dc.WaitCall(r.ctx(), func(c discordtest.Call) bool { return c.ChannelID == ch.ID && c.Status == 429 })
		must(t, err)
		next, err := r.dc.WaitCall(r.ctx(), func(c discordtest.Call) bool {
			return c.ChannelID == ch.ID && c.Write && c.Status == 200 && c.Time.After(refused.Time)
		})
		if err != nil {
			t.Fatalf("no write after the 429: %v", err)
		}
		if gap := next.Time.Sub(refused.Time); gap < retry {
			t.Errorf("retried %v after the 429, want at least %v", gap, retry)
		}
	})

	t.Run("StopCommand", func(t *testing.T) {
		ch := r.channel("stop")
		r.up.Enqueue(slow(strings.Repeat("word ", 400), 20*time.Millisecond))
		before := r.up.Disconnects()
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "go on"}}, r.user.ID, ch.ID)
		r.original(t, st, func(m discordtest.Message) bool { return stoppable(m) && strings.Contains(m.Text(), "word") })
		stop := r.slash(t, "stop", nil, r.user.ID, ch.ID)
		if m, _ := r.dc.Message(stop.OriginalID); !strings.Contains(m.Text(), "Stopped") {
			t.Errorf("/stop answered %q", m.Text())
		}
		if err := r.up.WaitDisconnect(r.ctx()); err != nil || r.up.Disconnects() <= before {
			t.Fatalf("the upstream stream was not closed: %v", err)
		}
		r.original(t, st, func(m discordtest.Message) bool { return done(m) && strings.Contains(m.Text(), "(stopped)") })
	})

	t.Run("StopButton", func(t *testing.T) {
		ch := r.channel("button")
		r.up.Enqueue(slow(strings.Repeat("word ", 400), 20*time.Millisecond))
		before := r.up.Disconnects()
		_, err := r.dc.SendMessage(discordtest.UserMessage{ChannelID: ch.ID, AuthorID: r.user.ID,
			Content: discordtest.Mention(r.dc.AppID()) + " go on"})
		must(t, err)
		a, err := r.dc.WaitMessage(r.ctx(), func(m discordtest.Message) bool {
			return m.ChannelID == ch.ID && stoppable(m) && strings.Contains(m.Text(), "word")
		})
		must(t, err)
		click, err := r.dc.ClickButton(a.ID, "palaver:stop", r.user.ID)
		must(t, err)
		if _, err := r.dc.WaitInteraction(r.ctx(), click.ID, func(s discordtest.InteractionState) bool { return s.ResponseType != 0 }); err != nil {
			t.Fatalf("the click was not answered: %v", err)
		}
		if err := r.up.WaitDisconnect(r.ctx()); err != nil || r.up.Disconnects() <= before {
			t.Fatalf("the upstream stream was not closed: %v", err)
		}
		r.final(t, ch.ID, "(stopped)")
	})

	t.Run("UpstreamFailure", func(t *testing.T) {
		ch := r.channel("failure")
		r.up.Enqueue(llmtest.Script{Status: 500})
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "fail"}}, r.user.ID, ch.ID)
		m := r.original(t, st, done)
		if !strings.Contains(m.Text(), "server error (500)") || len([]rune(m.Text())) > 300 {
			t.Errorf("failure shown as %q, want a short reason", m.Text())
		}
	})

	t.Run("Commands", func(t *testing.T) {
		ch := r.channel("commands")
		tests := []struct {
			name      string
			opts      []discordtest.Option
			user      string
			want      string
			ephemeral bool
		}{
			{"help", nil, r.user.ID, "/chat", true},
			{"settings", nil, r.user.ID, "**Model:** `fake/echo`", true},
			{"models", nil, r.user.ID, "`fake/echo`", true},
			{"system", nil, r.user.ID, "System prompt (the default)", true},
			{"system", []discordtest.Option{{Name: "prompt", Value: "Be brief."}}, r.user.ID, "Only members", true},
			{"system", []discordtest.Option{{Name: "prompt", Value: "Be brief."}}, r.mod.ID, "System prompt set.", false},
			{"reset", nil, r.user.ID, "Only members", true},
			{"reset", nil, r.mod.ID, "History forgotten", false},
			{"stop", nil, r.user.ID, "Nothing to stop", true},
			{"retry", nil, r.user.ID, "no message to answer again", false},
		}
		for _, tt := range tests {
			st := r.slash(t, tt.name, tt.opts, tt.user, ch.ID)
			m := r.original(t, st, done)
			if !strings.Contains(m.Text(), tt.want) || (m.Flags&discordtest.FlagEphemeral != 0) != tt.ephemeral {
				t.Errorf("/%s: %q (flags %d), want %q ephemeral=%v", tt.name, m.Text(), m.Flags, tt.want, tt.ephemeral)
			}
		}
		st := r.slash(t, "chat", []discordtest.Option{{Name: "prompt", Value: "with a prompt"}}, r.user.ID, ch.ID)
		r.original(t, st, func(m discordtest.Message) bool {
			return done(m) && strings.Contains(m.Text(), "echo: alice: with a prompt")
		})
		if got := r.lastRequest(t).Messages[0]; got.Content != "Be brief." {
			t.Errorf("system message %+v, want the channel's prompt", got)
		}
	})

	t.Run("NoMentionsParsed", func(t *testing.T) {
		for _, c := range r.dc.Calls() {
			if c.Write && c.Status == 200 && !strings.Contains(string(c.Body), `"allowed_mentions":{"parse":[]`) {
				t.Fatalf("%s %s was sent without allowed_mentions parse []: %s", c.Method, c.Path, c.Body)
			}
		}
	})
}
