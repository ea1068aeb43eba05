package telegram

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/bots/mdsplit"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/sessions"
)

// richEscape's Markdown shows its text as it is, whatever punctuation it
// holds.
func TestRichEscape(t *testing.T) {
	srv := telegramtest.NewServer(telegramtest.Options{Flood: telegramtest.FloodLimits{Disabled: true}})
	t.Cleanup(srv.Close)
	b := testBot(t, srv.Endpoint(), srv.Token())
	for _, s := range []string{
		"plain words",
		"**not bold** _nor italic_ `nor code` ~~nor struck~~",
		"# not a heading\n- not a list\n1. nor this\n> nor a quote",
		"<details><tg-thinking>no tags</tg-thinking> &amp; no entities &",
		"| not | a table |\n|---|---|",
		`\back\slashes\ and [links](https://example.com) $x^2$ ==marked== ||spoiler||`,
	} {
		id, err := b.api.send(context.Background(), outgoing{chat: 5, text: richEscape(s), rich: true})
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		m, _ := srv.Message(5, id)
		if got, want := strings.Join(strings.Fields(m.Text), " "), strings.Join(strings.Fields(s), " "); got != want {
			t.Errorf("richEscape(%q) shows %q", s, m.Text)
		}
	}
}

// Every part a richRenderer cuts is within a rich message's limits, a
// code block cut is closed in one part and reopened in the next, and a
// part with a table too wide is marked for HTML.
func TestRichRenderer_Limits(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 5*richMaxText; i++ {
		fmt.Fprintf(&b, "- item %d\n", i) // two blocks a line: many blocks, little text
		if i%400 == 0 {
			b.WriteString("\n```\n" + strings.Repeat("code line\n", 300) + "```\n\n")
		}
	}
	var rr richRenderer
	parts := rr.render(b.String())
	if len(parts) < 5 {
		t.Fatalf("%d parts, want the answer cut by its blocks", len(parts))
	}
	for i, p := range parts {
		s := measureRich(p.md)
		if utf16Len(p.md) > richMaxText || s.blocks > richMaxBlocks || !p.ok || p.cost.blocks != s.blocks {
			t.Errorf("part %d: %d units, %d blocks (cost %+v, ok %v)", i, utf16Len(p.md), s.blocks, p.cost, p.ok)
		}
		if _, _, open := mdsplit.OpenFence(p.md); open {
			t.Errorf("part %d leaves a code block open", i)
		}
	}
	wide := "|" + strings.Repeat(" a |", richMaxColumns+1) + "\n|" + strings.Repeat("---|", richMaxColumns+1)
	if ps := (&richRenderer{}).render(wide); len(ps) != 1 || ps[0].ok {
		t.Errorf("a table of %d columns: parts %+v, want one marked for HTML", richMaxColumns+1, ps)
	}
}

// Draft is true for a view shown as a draft alone, and false for one that
// also sends a message (a long answer's earlier part) or is final.
func TestReply_Draft(t *testing.T) {
	srv := telegramtest.NewServer(telegramtest.Options{Flood: telegramtest.FloodLimits{Disabled: true}})
	t.Cleanup(srv.Close)
	for _, format := range []string{formatRich, formatHTML} {
		t.Run(format, func(t *testing.T) {
			b := testBot(t, srv.Endpoint(), srv.Token())
			b.format = format
			r := b.newAnswer(place{chat: 7, private: true, msgID: 1})
			ctx := context.Background()
			short := sessions.View{Content: "a short answer"}
			if !r.Draft(short) {
				t.Error("Draft(short) = false, want a draft")
			}
			if n, err := r.Show(ctx, short); n != 0 || err != nil {
				t.Errorf("Show(short) = %d, %v; want a draft, no request", n, err)
			}
			long := sessions.View{Content: strings.Repeat("word ", 2*richMaxText/5)}
			if r.Draft(long) {
				t.Error("Draft(long) = true, but its first part goes as a message")
			}
			if r.Draft(sessions.View{Content: "done", Final: true}) {
				t.Error("Draft(final) = true")
			}
		})
	}
}

// BenchmarkRichLayout_StreamAnswer is the cost of laying out one 3 KB
// answer as rich messages as it streams, 300 bytes (a second of tokens)
// more each update: what BenchmarkLayout_StreamAnswer measures for HTML.
func BenchmarkRichLayout_StreamAnswer(b *testing.B) {
	full := answerOf(3 << 10)
	for b.Loop() {
		r := &reply{b: &Bot{format: formatRich}}
		for n := 300; ; n += 300 {
			r.layoutRich(sessions.View{Content: full[:min(n, len(full))]}, true)
			if n >= len(full) {
				break
			}
		}
	}
}

// BenchmarkRichLayout_Grow1KB is the cost of laying out one update of a
// 1 MB answer that grew by 1 KB, as rich messages.
func BenchmarkRichLayout_Grow1KB(b *testing.B) {
	const start = 1 << 20
	full := answerOf(start + (b.N+1)*1024)
	r := &reply{b: &Bot{format: formatRich}}
	r.layoutRich(sessions.View{Content: full[:start]}, false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		r.layoutRich(sessions.View{Content: full[:start+i*1024]}, false)
	}
}
