package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// millis is a duration that JSON shows in milliseconds.
type millis time.Duration

func (m millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(time.Duration(m))/float64(time.Millisecond), 'f', 1, 64), nil
}

func (m millis) String() string {
	d := time.Duration(m)
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// report is a run's figures and every violation found.
type report struct {
	Settings settingsReport
	Phases   []phaseReport
	// Kills are the kill phase's SIGKILLs, Rolling the rolling phase's
	// clean stops.
	Kills   []takeover `json:",omitempty"`
	Rolling []handover `json:",omitempty"`
	// Takeover summarises Kills: p50 and p99 (nearest rank: the largest
	// with fewer than 100 kills) of each measure.
	Takeover takeoverSummary
	// Commit is the commit probe's figures, during the load phase.
	Commit *commitReport `json:",omitempty"`
	// Members are the processes' answers over the whole run.
	Members []memberReport
	// ModelReasked counts the questions the model was asked more than
	// once without a /retry: not by itself a violation.
	ModelReasked int
	Violations   []violation
}

type settingsReport struct {
	Conversations  int
	Telegram       int
	Discord        int
	Shards         int
	MaxConcurrency int
	Failover       millis
	Processes      int
	EtcdMembers    int
	Fsync          bool
	Seed           uint64
}

// phaseReport is one phase's figures.
type phaseReport struct {
	Name     string
	Duration millis
	// Questions were asked in the phase; Answered got their complete
	// answer, Noted the interrupted (or restarted-before) note.
	Questions int
	Answered  int
	Noted     int
	// Retries is the /retry sent after a note, RetriesAnswered those
	// answered in full.
	Retries         int
	RetriesAnswered int
	// NotDelivered are Discord questions written while no connection of
	// their shard was open; Dropped those delivered to a process killed
	// before it took them. Neither is a Palaver loss.
	NotDelivered int
	Dropped      int
	// Pruned counts questions retention deleted from the history
	// (storage.history_limit) before the check: not judged.
	Pruned int
	// Window counts replies left as they were because a kill came
	// between their message changing and the commit of its id
	// (documented in docs/crashtest.md; not a violation).
	Window int
	// TooMany are the 429s each platform answered in the phase.
	TelegramTooMany int
	DiscordTooMany  int
	// TelegramBotWide are those of TelegramTooMany that Telegram's limit
	// per bot (30 a second) refused, rather than a chat's.
	TelegramBotWide int
	// TooMany describes the first 429s, with what the harness did last
	// before each.
	TooMany []string `json:",omitempty"`
	// Answers are the answers each process finished in the phase
	// (palaver_answers_total), and PerSecond that over the phase.
	Answers   map[string]float64
	PerSecond map[string]float64
	// ShardGaps is the time, summed over shards, that a shard had no
	// gateway connection open; LongestGap the longest; Overlaps how many
	// times a shard had two.
	ShardGaps  millis
	LongestGap millis
	Overlaps   int
}

// takeover is one SIGKILL and how long the survivors took.
type takeover struct {
	Kill   int
	Member string
	// Leader is whether it led Telegram; Shards the shards it had up.
	Leader bool
	Shards []int
	// LeaseGone: the kill to its member record's deletion in etcd (the
	// session lease expired). TelegramLeader: to a survivor's /healthz
	// reporting "leader"; TelegramPoll: to the survivor's first
	// getUpdates. ShardReady: to each shard's accepted IDENTIFY (READY)
	// in a survivor; ShardsReady the last of them.
	LeaseGone      millis
	TelegramLeader millis `json:",omitempty"`
	TelegramPoll   millis `json:",omitempty"`
	ShardReady     map[int]millis
	ShardsReady    millis `json:",omitempty"`
	// Unconfirmed is how many Telegram updates were held unconfirmed at
	// the kill (delivered again to the survivor).
	Unconfirmed int
	Complete    bool
	// Rejoin: the restart to the deployment settled again (one Telegram
	// leader, every shard up once, the shards rebalanced over three).
	Rejoin millis
}

// handover is one clean stop of the rolling phase.
type handover struct {
	Member string
	Leader bool
	Shards []int
	// Stop: the interrupt to the exit. TelegramLeader: to a survivor's
	// /healthz reporting "leader". ShardReady: to each shard's READY in a
	// survivor.
	Stop           millis
	TelegramLeader millis `json:",omitempty"`
	ShardReady     map[int]millis
	ShardsReady    millis `json:",omitempty"`
	// Rejoin: the restart to the deployment settled again.
	Rejoin millis
}

type takeoverSummary struct {
	Kills                            int
	LeaseGoneP50, LeaseGoneP99       millis
	TelegramKills                    int
	TelegramPollP50, TelegramPollP99 millis
	ShardKills                       int
	ShardReadyP50, ShardReadyP99     millis
}

// commitReport is the commit probe's latencies.
type commitReport struct {
	Commits          int
	EtcdP50, EtcdP99 millis
	BoltP50, BoltP99 millis
}

type memberReport struct {
	Name    string
	Runs    int
	Answers float64
}

// summarise fills Takeover from Kills.
func (r *report) summarise() {
	var lease, poll, shards []time.Duration
	for _, k := range r.Kills {
		if !k.Complete {
			continue
		}
		lease = append(lease, time.Duration(k.LeaseGone))
		if k.Leader {
			poll = append(poll, time.Duration(k.TelegramPoll))
		}
		for _, d := range k.ShardReady {
			shards = append(shards, time.Duration(d))
		}
	}
	r.Takeover = takeoverSummary{
		Kills:        len(r.Kills),
		LeaseGoneP50: millis(quantile(lease, 0.5)), LeaseGoneP99: millis(quantile(lease, 0.99)),
		TelegramKills:   len(poll),
		TelegramPollP50: millis(quantile(poll, 0.5)), TelegramPollP99: millis(quantile(poll, 0.99)),
		ShardKills:    len(shards),
		ShardReadyP50: millis(quantile(shards, 0.5)), ShardReadyP99: millis(quantile(shards, 0.99)),
	}
}

// write prints the report as text.
func (r *report) write(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "\n%d palaver processes on %d etcd members (fsync %t), cluster.failover %s; %d conversations (%d Telegram, %d Discord on %d shards, max_concurrency %d); seed %d\n",
		s.Processes, s.EtcdMembers, s.Fsync, s.Failover, s.Conversations, s.Telegram, s.Discord, s.Shards, s.MaxConcurrency, s.Seed)
	for _, p := range r.Phases {
		fmt.Fprintf(w, "\n%s (%s): %d questions: %d answered in full, %d noted", p.Name, p.Duration, p.Questions, p.Answered, p.Noted)
		if p.Retries > 0 {
			fmt.Fprintf(w, ", /retry %d of %d answered", p.RetriesAnswered, p.Retries)
		}
		if p.NotDelivered+p.Dropped > 0 {
			fmt.Fprintf(w, "; Discord: %d not delivered (no connection), %d dropped with a killed process", p.NotDelivered, p.Dropped)
		}
		if p.Window > 0 {
			fmt.Fprintf(w, "; %d left in the commit window", p.Window)
		}
		if p.Pruned > 0 {
			fmt.Fprintf(w, "; %d pruned by history_limit, not judged", p.Pruned)
		}
		fmt.Fprintf(w, "\n  429s: Telegram %d (%d bot-wide), Discord %d; shard gaps %s in all (%d overlaps), longest %s\n",
			p.TelegramTooMany, p.TelegramBotWide, p.DiscordTooMany, p.ShardGaps, p.Overlaps, p.LongestGap)
		for _, l := range p.TooMany {
			fmt.Fprintf(w, "    429: %s\n", l)
		}
		var parts []string
		for _, n := range slices.Sorted(maps.Keys(p.Answers)) {
			parts = append(parts, fmt.Sprintf("%s %.0f (%.1f/s)", n, p.Answers[n], p.PerSecond[n]))
		}
		fmt.Fprintf(w, "  answers by process: %s\n", strings.Join(parts, ", "))
	}
	if r.Commit != nil {
		c := r.Commit
		fmt.Fprintf(w, "\ncommit latency during the load (%d commits each): etcd p50 %s p99 %s; bbolt p50 %s p99 %s\n",
			c.Commits, c.EtcdP50, c.EtcdP99, c.BoltP50, c.BoltP99)
	}
	if len(r.Kills) > 0 {
		fmt.Fprintln(w, "\nkills (SIGKILL → lease gone / Telegram: a survivor leads, polls / the shards READY elsewhere; then restart → settled):")
		for _, k := range r.Kills {
			fmt.Fprintf(w, "  %2d %s", k.Kill, k.Member)
			if k.Leader {
				fmt.Fprintf(w, " (Telegram leader, %d updates unconfirmed)", k.Unconfirmed)
			}
			fmt.Fprintf(w, " shards %v: lease %s", k.Shards, k.LeaseGone)
			if k.Leader {
				fmt.Fprintf(w, ", leads %s, polls %s", k.TelegramLeader, k.TelegramPoll)
			}
			if len(k.Shards) > 0 {
				fmt.Fprintf(w, ", shards %s", shardTimes(k.ShardReady))
			}
			if !k.Complete {
				fmt.Fprint(w, " — NOT TAKEN OVER")
			}
			fmt.Fprintf(w, "; restarted, settled in %s\n", k.Rejoin)
		}
		t := r.Takeover
		fmt.Fprintf(w, "  takeover p50/p99: lease %s / %s; Telegram polling %s / %s (%d kills); shard READY %s / %s (%d shards)\n",
			t.LeaseGoneP50, t.LeaseGoneP99, t.TelegramPollP50, t.TelegramPollP99, t.TelegramKills, t.ShardReadyP50, t.ShardReadyP99, t.ShardKills)
	}
	if len(r.Rolling) > 0 {
		fmt.Fprintln(w, "\nrolling restart (interrupt → exit / a survivor leads Telegram / the shards READY elsewhere; then restart → settled):")
		for _, h := range r.Rolling {
			fmt.Fprintf(w, "  %s shards %v: exit %s", h.Member, h.Shards, h.Stop)
			if h.Leader {
				fmt.Fprintf(w, ", leads %s", h.TelegramLeader)
			}
			if len(h.Shards) > 0 {
				fmt.Fprintf(w, ", shards %s", shardTimes(h.ShardReady))
			}
			fmt.Fprintf(w, "; restarted, settled in %s\n", h.Rejoin)
		}
	}
	var parts []string
	for _, m := range r.Members {
		parts = append(parts, fmt.Sprintf("%s %.0f answers in %d runs", m.Name, m.Answers, m.Runs))
	}
	fmt.Fprintf(w, "\nwhole run: %s; model asked twice without /retry: %d\n", strings.Join(parts, ", "), r.ModelReasked)
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "no violation")
		return
	}
	counts := map[string]int{}
	for _, v := range r.Violations {
		counts[v.Kind]++
	}
	var cs []string
	for _, k := range kinds {
		if counts[k] > 0 {
			cs = append(cs, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	fmt.Fprintf(w, "VIOLATIONS: %s\n", strings.Join(cs, ", "))
	const perKind = 8 // lines shown per kind; -json lists them all
	for _, k := range kinds {
		shown := 0
		for _, v := range r.Violations {
			if v.Kind != k {
				continue
			}
			if shown == perKind {
				fmt.Fprintf(w, "  … and %d more %s (-json lists them all)\n", counts[k]-perKind, k)
				break
			}
			shown++
			fmt.Fprintf(w, "  %s %s: %s\n", v.Kind, v.Subject, v.Detail)
		}
	}
}

// shardTimes writes per-shard times in shard order.
func shardTimes(m map[int]millis) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, strconv.Itoa(k)+": "+m[k].String())
	}
	return strings.Join(parts, ", ")
}
