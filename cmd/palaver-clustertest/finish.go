package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

// finish waits for Telegram's updates to be taken, stops every process
// cleanly, reads the store and checks everything; cause is why the run
// ended early, nil when every phase ran.
func (r *harness) finish(ctx context.Context, cause error) (*report, error) {
	wctx, cancel := context.WithTimeout(ctx, 2*r.opts.failover+30*time.Second)
	err := r.w.tg.WaitUpdatesConsumed(wctx)
	cancel()
	if err != nil && cause == nil {
		r.violation(kindUnconfirmed, "telegram", "%d updates still unconfirmed at the end", r.w.tg.PendingUpdates())
	}
	for _, s := range r.d.exitedByThemselves() {
		r.violation(kindExited, "end", "%s exited by itself", s)
	}
	for _, m := range r.d.members {
		m.readAnswers(ctx)
	}
	if err := r.d.stopAll(ctx); err != nil {
		r.violation(kindUncleanStop, "end", "%v", err)
	}
	r.mon.close()
	for _, m := range r.d.members {
		r.report.Members = append(r.report.Members, memberReport{Name: m.name, Runs: m.runs, Answers: m.totalAnswers()})
	}
	v, err := r.w.readStore(context.WithoutCancel(ctx))
	if err != nil {
		return &r.report, errors.Join(cause, err)
	}
	ck := &checker{w: r.w, since: r.since, kills: r.kills.all(), phases: map[string]*tally{}}
	for _, p := range allPhases {
		ck.phases[p] = &tally{}
	}
	ck.check(v)
	r.report.Violations = append(r.report.Violations, ck.found...)
	r.report.ModelReasked = ck.reasked
	r.phaseReports(ck)
	r.report.summarise()
	return &r.report, cause
}

// phaseReports fills the report's phases from the check's tallies and
// the fakes' records.
func (r *harness) phaseReports(ck *checker) {
	gaps, overlaps := r.mon.spans()
	tgCalls := r.w.tg.Calls()
	dcCalls := r.w.dc.Calls()
	r.identifyRefusals()
	for _, name := range r.opts.phases {
		period, ok := r.periods[name]
		if !ok || period[1].IsZero() {
			continue
		}
		from, to := period[0], period[1]
		t := ck.phases[name]
		p := phaseReport{Name: name, Duration: millis(to.Sub(from)), Answered: t.answered, Noted: t.noted,
			Retries: t.retries, RetriesAnswered: t.retriesAnswered, NotDelivered: t.notDelivered, Dropped: t.dropped, Window: t.window, Pruned: t.pruned,
			Answers: map[string]float64{}, PerSecond: map[string]float64{}}
		for _, q := range r.w.sent() {
			if q.phase == name {
				p.Questions++
			}
		}
		for _, c := range tgCalls {
			if c.Status == 429 && !c.Time.Before(from) && c.Time.Before(to) {
				p.TelegramTooMany++
				p.TooMany = appendCapped(p.TooMany, fmt.Sprintf("Telegram %s chat %s (retry after %ds), %s", c.Method, c.Params["chat_id"], c.RetryAfter, r.since(c.Time)))
			}
		}
		for _, c := range dcCalls {
			if c.Status == 429 && !c.Time.Before(from) && c.Time.Before(to) {
				p.DiscordTooMany++
				p.TooMany = appendCapped(p.TooMany, fmt.Sprintf("Discord %s %s: %s, %s", c.Method, c.Path, clip(string(c.Response)), r.since(c.Time)))
			}
		}
		if name == phaseLoad && p.TelegramTooMany+p.DiscordTooMany > 0 {
			r.violation(kindTooMany, name, "Telegram answered 429 %d times, Discord %d times", p.TelegramTooMany, p.DiscordTooMany)
		}
		p.TelegramBotWide = r.botWide[name][1] - r.botWide[name][0]
		total, longest, _ := within(gaps, from, to)
		_, _, n := within(overlaps, from, to)
		p.ShardGaps, p.LongestGap, p.Overlaps = millis(total), millis(longest), n
		for m, v := range r.answers[name] {
			p.Answers[m.name] = v[1] - v[0]
			p.PerSecond[m.name] = (v[1] - v[0]) / to.Sub(from).Seconds()
		}
		r.report.Phases = append(r.report.Phases, p)
	}
}

// identifyRefusals reports each run of IDENTIFYs the fake Discord
// refused with Invalid Session in one bucket (one too soon: discordgo
// identifies again at once on an Invalid Session, so one too soon becomes
// many until the bucket opens) as one violation, with how long after the
// bucket's last accepted IDENTIFY the first of the run came.
func (r *harness) identifyRefusals() {
	type run struct {
		first, last discordtest.Identify
		n           int
		shards      map[int]bool
		after       string // the gap to the bucket's last accepted IDENTIFY
	}
	last := map[int]discordtest.Identify{} // bucket → its last accepted IDENTIFY
	runs := map[int]*run{}                 // bucket → its run of refusals
	flush := func(b int) {
		ru := runs[b]
		if ru == nil {
			return
		}
		delete(runs, b)
		r.violation(kindIdentify, fmt.Sprintf("bucket %d", b),
			"%d IDENTIFYs of shards %v refused with Invalid Session from %s (%s) to %s; the first came %s (Discord wants %s between two)",
			ru.n, slices.Sorted(maps.Keys(ru.shards)), ru.first.Time.Format("15:04:05.000"), r.since(ru.first.Time), ru.last.Time.Format("15:04:05.000"), ru.after, identifyWindow)
	}
	for _, id := range r.w.dc.Identifies() {
		b := id.Shard[0] % r.opts.maxConcurrency
		switch {
		case id.InvalidSession:
			ru := runs[b]
			if ru == nil {
				ru = &run{first: id, shards: map[int]bool{}, after: "with no IDENTIFY accepted before"}
				if prev, ok := last[b]; ok {
					ru.after = fmt.Sprintf("%s after the accepted IDENTIFY of shard %d", millis(id.Time.Sub(prev.Time)), prev.Shard[0])
				}
				runs[b] = ru
			}
			ru.last = id
			ru.n++
			ru.shards[id.Shard[0]] = true
		case id.Accepted():
			flush(b)
			last[b] = id
		}
	}
	for _, b := range slices.Sorted(maps.Keys(runs)) {
		flush(b)
	}
}

// appendCapped appends line to lines, up to maxLines.
func appendCapped(lines []string, line string) []string {
	const maxLines = 10
	if len(lines) < maxLines {
		lines = append(lines, line)
	}
	return lines
}
