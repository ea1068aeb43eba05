package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report is a campaign's figures: one line per cycle, the totals, and
// every violation found.
type report struct {
	Cycles []cycleReport
	Found  []violation
	// ModelReasked counts the questions the model was asked more than
	// once (after a redelivery; not by itself a violation).
	ModelReasked int
	Starts       int
}

// line is a cycle's report line.
func (cr cycleReport) line() string {
	var b strings.Builder
	if cr.KilledAt > 0 {
		fmt.Fprintf(&b, "cycle %3d: sent %2d, killed at %4d ms (%s", cr.Cycle, cr.Sent, cr.KilledAt.Milliseconds(), cr.KillMode)
		if cr.DuringStartup {
			b.WriteString(", in start-up")
		}
		fmt.Fprintf(&b, "), %d updates unconfirmed", cr.UnconfirmedAtKill)
	} else {
		fmt.Fprintf(&b, "final %3d: sent %2d, no kill", cr.Cycle, cr.Sent)
	}
	fmt.Fprintf(&b, ", %d redelivered; answered %d, interrupted %d", cr.Redeliveries, cr.Answered, cr.Interrupted)
	if cr.Window > 0 {
		fmt.Fprintf(&b, ", %d left in the commit window", cr.Window)
	}
	if cr.Dropped > 0 {
		fmt.Fprintf(&b, ", %d Discord mentions dropped", cr.Dropped)
	}
	if len(cr.Violations) > 0 {
		b.WriteString("; VIOLATIONS: ")
		b.WriteString(countsText(cr.Violations))
	}
	return b.String()
}

// countsText writes counts by kind in report order.
func countsText(counts map[string]int) string {
	var parts []string
	for _, k := range kinds {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return strings.Join(parts, ", ")
}

// byConversation counts the violations of a kind by conversation.
func (r *report) byConversation(kind string) string {
	counts := map[string]int{}
	var order []string
	for _, v := range r.Found {
		if v.kind != kind {
			continue
		}
		where := cmp.Or(v.where, "process")
		if counts[where] == 0 {
			order = append(order, where)
		}
		counts[where]++
	}
	slices.Sort(order)
	var parts []string
	for _, where := range order {
		parts = append(parts, fmt.Sprintf("%s %d", where, counts[where]))
	}
	return strings.Join(parts, ", ")
}

// writeSummary writes the totals and every violation, at most perKind
// of each kind.
func (r *report) writeSummary(w io.Writer, perKind int) {
	var sent, kills, startup, unconfirmed, redelivered, answered, interrupted, dropped, window int
	var killTime time.Duration
	byKind := map[string]int{}
	for _, cr := range r.Cycles {
		sent += cr.Sent
		if cr.KilledAt > 0 {
			kills++
			killTime += cr.KilledAt
		}
		if cr.DuringStartup {
			startup++
		}
		unconfirmed += cr.UnconfirmedAtKill
		redelivered += cr.Redeliveries
		answered += cr.Answered
		interrupted += cr.Interrupted
		dropped += cr.Dropped
		window += cr.Window
		for k, n := range cr.Violations {
			byKind[k] += n
		}
	}
	fmt.Fprintf(w, "\ntotal: %d messages sent, %d kills (%d during start-up), %d palaver starts\n", sent, kills, startup, r.Starts)
	fmt.Fprintf(w, "       %d updates unconfirmed at a kill, %d redelivered, %d questions asked of the model more than once\n",
		unconfirmed, redelivered, r.ModelReasked)
	fmt.Fprintf(w, "       %d answered in full, %d finalised with an interrupted or restart note, %d Discord mentions dropped in a kill\n",
		answered, interrupted, dropped)
	fmt.Fprintf(w, "       %d replies left as they were, made within %s of a kill (the commit window)\n", window, commitWindow)
	if len(r.Found) == 0 {
		fmt.Fprintln(w, "       no violation")
		return
	}
	fmt.Fprintf(w, "       %d violations: %s\n", len(r.Found), countsText(byKind))
	for _, k := range kinds {
		if byKind[k] > 0 {
			fmt.Fprintf(w, "       %s: %s\n", k, r.byConversation(k))
		}
	}
	shown := map[string]int{}
	for _, v := range r.Found {
		shown[v.kind]++
		switch n := shown[v.kind]; {
		case n <= perKind:
			fmt.Fprintf(w, "  %s %s: %s\n", v.kind, v.subject, v.detail)
		case n == perKind+1:
			fmt.Fprintf(w, "  %s: %d more\n", v.kind, byKind[v.kind]-perKind)
		}
	}
}
