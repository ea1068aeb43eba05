package main

import (
	"math"
	"testing"
	"time"
)

func TestTextPool(t *testing.T) {
	for _, tt := range []struct{ budget, want int }{{30, 24}, {45, 36}, {5, 4}, {2, 1}, {1, 1}} {
		if got := textPool(tt.budget); got != tt.want {
			t.Errorf("textPool(%d) = %d, want %d", tt.budget, got, tt.want)
		}
	}
}

// streamingWorld lays out n Discord channels and one Telegram private
// chat, each with one answer streaming for 10 s from start.
func streamingWorld(n int, start time.Time) (*world, *analysis, map[*answer]*observed) {
	w := &world{opts: options{drafts: true}}
	an := &analysis{dests: map[string]*destLog{}}
	obs := map[*answer]*observed{}
	add := func(name string, k kind) {
		c := &conversation{kind: k}
		a := &answer{conv: c}
		c.answers = []*answer{a}
		d := &destLog{dest: name, kind: k, convs: []*conversation{c}, shown: []*answer{a}}
		an.dests[name] = d
		obs[a] = &observed{a: a, home: d, first: start, last: start.Add(10 * time.Second)}
	}
	for i := range n {
		add("discord:"+string(rune('a'+i%26))+string(rune('a'+i/26)), discordChannel)
	}
	add("telegram:1", tgPrivate)
	return w, an, obs
}

func TestBudgetModel_FairShare(t *testing.T) {
	start := time.Unix(1000, 0)
	w, an, obs := streamingWorld(100, start)
	// Discord finals and first texts at 27 a second from 2 s on: they
	// leave 36-27 = 9 a second of the pool of 36.
	var urgent []time.Time
	for at := start.Add(2 * time.Second); at.Before(start.Add(20 * time.Second)); at = at.Add(time.Second / 27) {
		urgent = append(urgent, at)
	}
	m := w.newBudgetModel(an, obs, map[string][]time.Time{"discord": urgent}, start, start.Add(20*time.Second))
	// 100 channels at 0.8 a second want 80 a second: the budget binds
	// while they stream, and each gets what was left over 80 of its
	// window.
	if !m.bound("discord", 50) || m.bound("discord", 150) {
		t.Fatalf("Discord bound at 5 s: %v, at 15 s: %v; want while the answers stream", m.bound("discord", 50), m.bound("discord", 150))
	}
	if m.bound("telegram", 50) {
		t.Errorf("Telegram bound, but its private chat's drafts draw on no budget")
	}
	if got, want := m.fair("discord", 10), 36.0/80; math.Abs(got-want) > 0.01 {
		t.Errorf("fair share at 1 s = %.3f, want %.3f (the whole pool)", got, want)
	}
	if got, want := m.fair("discord", 50), 9.0/80; math.Abs(got-want) > 0.02 {
		t.Errorf("fair share at 5 s = %.3f, want %.3f (what 27 a second of finals leave)", got, want)
	}
	span := [2]time.Time{start.Add(5 * time.Second), start.Add(10 * time.Second)}
	// The first text at 5 s, then growing text each second while the
	// window (4 of 5 in 5 s) allows: three, each worth the fair share.
	first := []urgentWrite{{wanted: span[0], sent: span[0]}}
	if got, want := w.allowed(m, discordChannel, span, first, time.Second), 1+3*9.0/80; math.Abs(got-want) > 0.05 {
		t.Errorf("allowed in a channel = %.2f, want %.2f", got, want)
	}
	if got, want := w.allowed(m, tgPrivate, span, first, time.Second), 1+5.0; math.Abs(got-want) > 0.01 {
		t.Errorf("allowed in a private chat = %.2f, want %.2f (the first text and its window: drafts)", got, want)
	}
	// Over the 10 s the budget bound, finals came for 8 s: 21.6 a
	// second on average, leaving 36 for 2 s and 9 for 8 s.
	u := budgetUse(m, &budgetRequests{urgent: urgent}, "discord")
	if math.Abs(u.BoundS-10) > 0.2 || math.Abs(u.Urgent-21.6) > 0.5 || math.Abs(u.Left-14.4) > 0.5 {
		t.Errorf("budgetUse = %+v, want bound 10 s, 21.6 urgent a second, 14.4 left", u)
	}
}

func TestHeldFor(t *testing.T) {
	start := time.Unix(1000, 0)
	w, an, obs := streamingWorld(100, start)
	m := w.newBudgetModel(an, obs, nil, start, start.Add(20*time.Second))
	// A budget of 5 turning over every 1.1 s: a request every 0.22 s.
	var times []time.Time
	for at := start.Add(time.Second); at.Before(start.Add(9 * time.Second)); at = at.Add(220 * time.Millisecond) {
		times = append(times, at)
	}
	if got := heldFor(times, 5, m, "discord"); math.Abs(got-1.1) > 0.001 {
		t.Errorf("heldFor = %.3f s, want 1.1 s", got)
	}
	if got := heldFor(times[:3], 5, m, "discord"); got != 0 {
		t.Errorf("heldFor with fewer requests than the budget = %v, want 0", got)
	}
}

func TestWindowAllows(t *testing.T) {
	start := time.Unix(1000, 0)
	ms := func(m int) time.Time { return start.Add(time.Duration(m) * time.Millisecond) }
	at := func(sent ...int) []urgentWrite { // each sent as soon as wanted
		var us []urgentWrite
		for _, m := range sent {
			us = append(us, urgentWrite{wanted: ms(m), sent: ms(m)})
		}
		return us
	}
	tests := []struct {
		name     string
		k        kind
		drafts   bool
		span     time.Duration
		urgent   []urgentWrite
		interval time.Duration
		want     int
	}{
		// Three answers appear at once in a channel: with the text a
		// second later the window's 4 (of 5) are spent until 5.1 s, then
		// text goes every second until the window is full again.
		{"discord three at once", discordChannel, false, 10300 * time.Millisecond, at(0, 0, 0), time.Second, 6},
		{"discord one", discordChannel, false, 10300 * time.Millisecond, at(0), time.Second, 8},
		{"private drafts", tgPrivate, true, 5 * time.Second, at(0), time.Second, 5},
		// Without drafts the chat's 3 per 3 s, one kept for a final.
		{"private messages", tgPrivate, false, 5 * time.Second, at(0), time.Second, 3},
		{"group", tgGroup, false, 9 * time.Second, at(0), 3 * time.Second, 3},
		// The first text shows a moment after the model's first token:
		// growing text cannot come before it.
		{"group, first text after the first token", tgGroup, false, 9100 * time.Millisecond, at(1), 3 * time.Second, 3},
		// A second answer's first appearance, wanted at 0.1 s, waits for
		// the bot's budget until 3.5 s: growing text does not pass it.
		{"group, a first appearance held back", tgGroup, false, 10 * time.Second, []urgentWrite{{ms(0), ms(0)}, {ms(100), ms(3500)}}, 3 * time.Second, 2},
		// Three topics of a forum appear at once: the chat's window keeps
		// the third waiting 3 s; text then every 3 s as the window allows.
		{"forum", tgTopic, false, 10 * time.Second, at(0, 0, 0), 3 * time.Second, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := len(windowAllows(tt.k, tt.drafts, [2]time.Time{start, start.Add(tt.span)}, tt.urgent, tt.interval))
			if got != tt.want {
				t.Errorf("windowAllows = %d, want %d", got, tt.want)
			}
		})
	}
}

// The bot's budget counts the requests of the second before: a request
// wanted just after a burst waits its place, one wanted and sent just
// before it does not.
func TestBudgetModel_Crowded(t *testing.T) {
	start := time.Unix(1000, 0)
	w, an, obs := streamingWorld(1, start)
	m := w.newBudgetModel(an, obs, nil, start, start.Add(5*time.Second))
	var burst []time.Time // Telegram's 30 in the second from 1 s
	for at := start.Add(time.Second); at.Before(start.Add(2 * time.Second)); at = at.Add(time.Second / 30) {
		burst = append(burst, at)
	}
	m.noteSpent("telegram", burst)
	for _, tt := range []struct {
		from, to time.Duration
		want     bool
	}{
		{900 * time.Millisecond, 900 * time.Millisecond, false},
		{1950 * time.Millisecond, 1950 * time.Millisecond, true},
		{2500 * time.Millisecond, 2500 * time.Millisecond, false},
		// Wanted before the burst, out after it: it waited behind it.
		{900 * time.Millisecond, 2 * time.Second, true},
	} {
		if got := m.crowded("telegram", start.Add(tt.from), start.Add(tt.to)); got != tt.want {
			t.Errorf("crowded from %v to %v = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}
