package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

func TestParseOptions_Workload(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{name: "MixByDefault", args: nil, check: func(t *testing.T, o options) {
			if o.workload != mixWorkload || o.conversations != 100 || o.timeout != 3*time.Minute {
				t.Errorf("got workload %q, %d conversations, timeout %v", o.workload, o.conversations, o.timeout)
			}
		}},
		{name: "Crowd", args: []string{"-workload", "crowd"}, check: func(t *testing.T, o options) {
			if o.crowd != 50 || o.conversations != 2 || o.timeout != crowdTimeout || o.threads {
				t.Errorf("got crowd %d, %d conversations, timeout %v, threads %v", o.crowd, o.conversations, o.timeout, o.threads)
			}
		}},
		{name: "CrowdThreads", args: []string{"-workload", "crowd", "-crowd", "20", "-discord-threads", "-timeout", "1m"}, check: func(t *testing.T, o options) {
			if o.crowd != 20 || o.conversations != 1 || o.timeout != time.Minute || !o.threads {
				t.Errorf("got crowd %d, %d conversations, timeout %v, threads %v", o.crowd, o.conversations, o.timeout, o.threads)
			}
		}},
		{name: "ErrUnknownWorkload", args: []string{"-workload", "stampede"}, wantErr: `-workload must be mix or crowd, not "stampede"`},
		{name: "ErrCrowdWithoutWorkload", args: []string{"-crowd", "10"}, wantErr: "need -workload crowd"},
		{name: "ErrThreadsWithoutWorkload", args: []string{"-discord-threads"}, wantErr: "need -workload crowd"},
		{name: "ErrCrowdWithMix", args: []string{"-workload", "crowd", "-mix", "discord-channel=1"}, wantErr: "lays out its own conversations"},
		{name: "ErrCrowdTooLarge", args: []string{"-workload", "crowd", "-crowd", "1001"}, wantErr: "-crowd must be between 1 and 1000"},
		{name: "ErrCrowdEmpty", args: []string{"-workload", "crowd", "-crowd", "0"}, wantErr: "-crowd must be between 1 and 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseOptions(%q) = %v, want an error with %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseOptions(%q): %v", tt.args, err)
			}
			tt.check(t, o)
		})
	}
}

func TestAddConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("chat:\n  user_rate: 0\ndiscord:\n  token: \"x\"\nmetrics:\n  listen: \"a\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := addConfig(path, []configKey{{"discord", "threads", "true"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "chat:\n  user_rate: 0\ndiscord:\n  threads: true\n  token: \"x\"\nmetrics:\n  listen: \"a\"\n"
	if string(got) != want {
		t.Errorf("config:\n%s\nwant:\n%s", got, want)
	}
	if err := addConfig(path, []configKey{{"gateway", "enabled", "true"}}); err == nil || !strings.Contains(err.Error(), "no gateway section") {
		t.Errorf("a missing section: got %v, want an error naming it", err)
	}
}

// TestCrowd is issue 12's crowd, small: ten users at once in one Telegram
// group and in one Discord channel, then in a Discord channel with
// discord.threads: true (skipped while the binary's config lacks the key).
// Every asker must get the model's exact text, with no 429, local or
// global. It fails with a reply engine that answers one question at a
// time per conversation and refuses all but the next three (measured
// before issue 12's engine: most askers refused, the refusals 429s).
func TestCrowd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs palaver")
	}
	t.Parallel() // beside TestLoadTest
	bin, err := buildPalaver(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const crowd = 10
	tests := []struct {
		name    string
		threads bool
		places  int
	}{
		{"Channel", false, 2},
		{"Threads", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := options{
				workload: crowdWorkload, crowd: crowd, threads: tt.threads, conversations: tt.places, users: 1, topics: 1,
				tokens: 20, rate: 200, turns: 1, drafts: true, timeout: 3 * time.Minute, seed: 1, palaver: bin, logLevel: "warn",
			}
			r, err := loadTest(t.Context(), opts, io.Discard)
			if skip := (*skipped)(nil); errors.As(err, &skip) {
				t.Skip(skip.reason)
			}
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			r.writeTable(&out)
			if failed := broken(r.Invariants); len(failed) > 0 {
				var names []string
				for _, c := range failed {
					names = append(names, c.Name+": "+c.Got)
				}
				t.Errorf("invariants broken:\n  %s\n%s", strings.Join(names, "\n  "), out.String())
			}
			if len(r.Crowds) != tt.places {
				t.Fatalf("%d crowds in the report, want %d\n%s", len(r.Crowds), tt.places, out.String())
			}
			for _, cr := range r.Crowds {
				if cr.Askers != crowd || cr.Answered != crowd || cr.RateLimited != 0 {
					t.Errorf("crowd in a %s: %d of %d answered, %d 429s; want all %d, none", cr.Place, cr.Answered, cr.Askers, cr.RateLimited, crowd)
				}
				if tt.threads && cr.Threads != crowd {
					t.Errorf("crowd in a %s: %d threads, want one per question (%d)", cr.Place, cr.Threads, crowd)
				}
			}
		})
	}
}

// TestAnalyze_CrowdThreads plays Palaver's part by hand against the fake
// Discord, as discord.threads: true should: a thread per question, the
// answer in it, and for /chat a command response that points to the
// thread (a mention of it, or the thread started from it). The analysis
// must give every answer its thread and count the pointer as the asker's
// first sign of life.
func TestAnalyze_CrowdThreads(t *testing.T) {
	const crowd = 12 // /chat for users 0 and 10
	opts := options{workload: crowdWorkload, crowd: crowd, threads: true, conversations: 1, users: 1, topics: 1,
		tokens: 5, rate: 100, turns: 1, seed: 1}
	w, err := newWorld(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	c := w.convs[0]
	bot := func(method, path string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, w.dc.URL()+"/api/v10"+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bot "+w.dc.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}
	bot("PUT", "/applications/"+w.dc.AppID()+"/guilds/"+w.guild.ID+"/commands", []map[string]any{{
		"name": "chat", "description": "chat", "options": []map[string]any{{"type": 3, "name": "prompt", "description": "p", "required": true}},
	}})
	stream := func(a *answer) {
		for i := range a.tokens {
			a.tokenSent(i, len(a.tokens))
		}
	}
	for _, a := range c.answers {
		var it discordtest.Interaction
		if a.user%10 == 0 { // w.ask's /chat, keeping the interaction
			a.asked = time.Now()
			it, err = w.dc.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: a.question()}}, w.dcUsers[a.user].ID, c.channel)
		} else {
			err = w.ask(a)
		}
		if err != nil {
			t.Fatal(err)
		}
		stream(a)
		var thread map[string]any
		switch {
		case a.user == 0: // /chat: deferred, then a mention of a thread of its own
			bot("POST", "/interactions/"+it.ID+"/"+it.Token+"/callback", map[string]any{"type": 5})
			thread = bot("POST", "/channels/"+c.channel+"/threads", map[string]any{"name": a.tag, "type": 11})
			bot("PATCH", "/webhooks/"+w.dc.AppID()+"/"+it.Token+"/messages/@original", map[string]any{"content": "🧵 <#" + thread["id"].(string) + ">"})
		case a.user%10 == 0: // /chat: the question quoted, and a thread from that
			bot("POST", "/interactions/"+it.ID+"/"+it.Token+"/callback", map[string]any{"type": 4, "data": map[string]any{"content": "> " + a.question()}})
			orig := bot("GET", "/webhooks/"+w.dc.AppID()+"/"+it.Token+"/messages/@original", nil)
			thread = bot("POST", "/channels/"+c.channel+"/messages/"+orig["id"].(string)+"/threads", map[string]any{"name": a.tag})
		default: // a mention: a thread from the question
			var q string
			for _, m := range w.dc.Messages(c.channel) {
				if strings.Contains(m.Text(), a.tag) {
					q = m.ID
				}
			}
			thread = bot("POST", "/channels/"+c.channel+"/messages/"+q+"/threads", map[string]any{"name": a.tag})
		}
		m := bot("POST", "/channels/"+thread["id"].(string)+"/messages", map[string]any{"content": a.tag})
		bot("PATCH", "/channels/"+thread["id"].(string)+"/messages/"+m["id"].(string), map[string]any{"content": a.text()})
	}

	an := w.analyze()
	if an.stray != 0 {
		t.Errorf("%d stray messages, want none", an.stray)
	}
	for _, o := range an.answers {
		if !o.complete || o.home.parent == nil || o.updates != 2 {
			t.Errorf("%s: complete %v (%s), in a thread %v, %d updates; want complete in a thread, 2 updates",
				o.a.tag, o.complete, o.problem, o.home.parent != nil, o.updates)
		}
		pointed := o.a.user%10 == 0
		if pointed && !o.firstSign.Before(o.firstVisible) || !pointed && !o.firstSign.Equal(o.firstVisible) {
			t.Errorf("%s: first sign %v, first text %v; want the sign of life first for /chat, else the text", o.a.tag, o.firstSign, o.firstVisible)
		}
	}
	crowds := w.crowdReports(an)
	if len(crowds) != 1 || crowds[0].Threads != crowd || crowds[0].Answered != crowd || crowds[0].Fair != crowd || crowds[0].Place != "discord-channel, threads" {
		t.Errorf("crowd report %+v, want all %d answered in a thread each, all fairly", crowds, crowd)
	}
}
