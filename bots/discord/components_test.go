package discord

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

// TestNewBody_Golden renders views as the Components V2 messages an answer
// sends (the last part with the buttons its state calls for) and compares
// them with testdata/components; run with -update to rewrite them.
func TestNewBody_Golden(t *testing.T) {
	tests := []struct {
		name string
		v    sessions.View
		bt   buttons
	}{
		{"final_retry", sessions.View{Content: "Hello **world**.", Final: true}, buttons{retry: "1234"}},
		{"streaming_stop", sessions.View{Content: "Sure:\n\n```python\nprint('hi')", Status: "Writing…"}, buttons{stop: true}},
		{"status_only", sessions.View{Status: "Thinking… 4 s"}, buttons{stop: true}},
		{"collapsed_reasoning", sessions.View{Content: "The answer is 42.", Reasoning: reasoningLines(12),
			ReasoningMode: sessions.ReasoningCollapsed, Status: "Thinking… 9 s"}, buttons{stop: true}},
		{"full_reasoning", sessions.View{Content: "Done.", Reasoning: reasoningLines(3), ReasoningMode: sessions.ReasoningFull, Final: true},
			buttons{retry: "1234"}},
		{"hidden_reasoning", sessions.View{Content: "Visible.", Reasoning: "secret", ReasoningMode: sessions.ReasoningHidden, Final: true}, buttons{}},
		{"two_messages", sessions.View{Content: paragraphs(60), Final: true}, buttons{retry: "1234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := new(renderer).parts(tt.v, PartLimitV2)
			var b strings.Builder
			for i, p := range parts {
				var bt buttons
				if i == len(parts)-1 {
					bt = tt.bt
				}
				body := newBody(p, bt, true)
				if body.Content != nil || body.Flags != discordgo.MessageFlagsIsComponentsV2 {
					t.Errorf("part %d: content %v, flags %d: want components only, with IS_COMPONENTS_V2", i, body.Content, body.Flags)
				}
				raw, err := json.Marshal(body)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				json.Indent(&out, raw, "", "  ")
				n := utf8.RuneCountInString(p.text()) - strings.Count(p.text(), "\n")
				fmt.Fprintf(&b, "===== message %d (%d characters of text) =====\n%s\n", i+1, n, out.String())
			}
			golden(t, filepath.Join("testdata", "components", tt.name+".golden"), b.String())
		})
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestNewBody_Limits checks every message of long answers against
// Discord's Components V2 limits: at most 4000 characters across the text
// displays (with room for the buttons' labels) and 40 components.
func TestNewBody_Limits(t *testing.T) {
	views := []sessions.View{
		{Content: paragraphs(200), Status: "Writing… " + strings.Repeat("x", 500)},
		{Content: codeBlock(400), Reasoning: reasoningLines(300), ReasoningMode: sessions.ReasoningFull, Status: "Writing…"},
		{Content: strings.Repeat("日本語のテキスト。", 1000), Reasoning: reasoningLines(50), ReasoningMode: sessions.ReasoningCollapsed, Final: true},
	}
	for i, v := range views {
		for j, p := range new(renderer).parts(v, PartLimitV2) {
			body := newBody(p, buttons{stop: true, retry: "1234567890123456789"}, true)
			text, count := 0, 0
			var walk func(cs []discordgo.MessageComponent)
			walk = func(cs []discordgo.MessageComponent) {
				for _, c := range cs {
					count++
					switch x := c.(type) {
					case discordgo.Container:
						walk(x.Components)
					case discordgo.ActionsRow:
						walk(x.Components)
					case discordgo.TextDisplay:
						text += utf8.RuneCountInString(x.Content)
					case discordgo.Button:
						text += utf8.RuneCountInString(x.Label)
					}
				}
			}
			walk(body.Components)
			if text > TextLimitV2 || count > 40 {
				t.Errorf("view %d part %d: %d characters, %d components; want at most %d and 40", i, j, text, count, TextLimitV2)
			}
		}
	}
}

func TestWithoutButton(t *testing.T) {
	p := part{body: "answer", status: "-# (stopped)"}
	var m discordgo.Message
	raw, _ := json.Marshal(newBody(p, buttons{stop: true, retry: "42"}, true))
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m.Flags = discordgo.MessageFlagsIsComponentsV2
	got, _ := json.Marshal(withoutButtons(&m, func(id string) bool { return id == stopID }).Components)
	want, _ := json.Marshal(newBody(p, buttons{retry: "42"}, true).Components)
	if string(got) != string(want) {
		t.Errorf("without Stop:\n got %s\nwant %s", got, want)
	}
	got, _ = json.Marshal(withoutButtons(&m, ourButton).Components)
	want, _ = json.Marshal(newBody(p, buttons{}, true).Components)
	if string(got) != string(want) {
		t.Errorf("without both:\n got %s\nwant %s", got, want)
	}
}
