package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the load test's result, printed as a table or (with -json) as
// this structure.
type Report struct {
	Setup    Setup        `json:"setup"`
	Duration float64      `json:"duration_s"` // first token to last final write
	Kinds    []KindReport `json:"kinds"`      // per kind of conversation, then "all"
	// Global is the per-bot budgets' use, from the fakes' counters.
	Global GlobalUsage `json:"global"`
	// Crowds are the crowd workload's figures per place.
	Crowds  []CrowdReport `json:"crowds,omitempty"`
	Palaver Resources     `json:"palaver"`
	World   WorldUsage    `json:"world"`
	Metrics MetricsCheck  `json:"metrics"`
	// Stray counts bot messages that belong to no answer; StrayTexts
	// shows the first few.
	Stray      int      `json:"stray_messages"`
	StrayTexts []string `json:"stray_texts,omitempty"`
	Problems   []string `json:"problems,omitempty"` // the first incomplete answers, explained
	Invariants []Check  `json:"invariants"`
	Targets    []Check  `json:"targets"`
	// Answers details every answer (with -details).
	Answers []AnswerDetail `json:"answers,omitempty"`
	// Spans details every destination's spans of streaming (with
	// -details): what the window and budget check compares.
	Spans []SpanDetail `json:"spans,omitempty"`
}

// SpanDetail is one span during which answers streamed into a
// destination: its writes against what the destination's window and the
// bot's budget allowed (see the kinds' updates_of_window_and_budget).
type SpanDetail struct {
	Destination string  `json:"destination"`
	Kind        string  `json:"kind"`
	Start       float64 `json:"start_unix_ms"`
	End         float64 `json:"end_unix_ms"`
	Writes      int     `json:"writes"`
	Urgent      int     `json:"urgent"`
	Allowed     float64 `json:"allowed"`
}

// AnswerDetail is one answer's timeline, in milliseconds from the model's
// first token.
type AnswerDetail struct {
	Tag         string `json:"tag"`
	Kind        string `json:"kind"`
	Destination string `json:"destination"`
	// FirstToken is when the model's first token was sent, in
	// milliseconds since the Unix epoch: the origin of the other times,
	// which lines up answers at one destination.
	FirstToken   float64 `json:"first_token_unix_ms"`
	Asked        float64 `json:"asked_ms"`
	LastToken    float64 `json:"last_token_ms"`
	FirstVisible float64 `json:"first_visible_ms"`
	Scheduled    float64 `json:"final_scheduled_ms"`
	Final        float64 `json:"final_ms"`
	Updates      int     `json:"updates"`
	BudgetFree   bool    `json:"budget_free"`
	Problem      string  `json:"problem,omitempty"`
	// Writes are the writes that showed the answer.
	Writes []WriteDetail `json:"writes"`
}

// WriteDetail is one write of an answer: when (ms from the model's first
// token), how long the text it showed was, and whether it was a draft or
// carried the Stop button.
type WriteDetail struct {
	At    float64 `json:"at_ms"`
	Chars int     `json:"chars"`
	Stop  bool    `json:"stop,omitempty"`
	Draft bool    `json:"draft,omitempty"`
}

// Setup is what was run, and where.
type Setup struct {
	Workload        string         `json:"workload"`
	Crowd           int            `json:"crowd,omitempty"`
	DiscordThreads  bool           `json:"discord_threads,omitempty"`
	Conversations   int            `json:"conversations"`
	Mix             map[string]int `json:"mix"`
	TokensPerAnswer int            `json:"tokens_per_answer"`
	TokensPerSecond float64        `json:"tokens_per_second"`
	Turns           int            `json:"turns_per_user"`
	Users           int            `json:"users_per_shared_conversation"`
	Topics          int            `json:"topics_per_forum"`
	Drafts          bool           `json:"telegram_drafts"`
	Inject429       int            `json:"inject_429"`
	Injected429     int            `json:"injected_429"`
	Drop            float64        `json:"drop"`
	PlatformLatency string         `json:"platform_latency"`
	UpstreamH2      bool           `json:"upstream_h2,omitempty"`
	Machine         string         `json:"machine"`
}

// Quantiles are latencies in milliseconds over N answers.
type Quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func (q Quantiles) String() string {
	if q.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s", ms(q.P50), ms(q.P99))
}

func ms(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// KindReport is the figures of one kind of conversation.
type KindReport struct {
	Kind          string  `json:"kind"`
	Conversations int     `json:"conversations"`
	Destinations  int     `json:"destinations"`
	Answers       int     `json:"answers"`
	Complete      int     `json:"complete"`
	Tokens        int     `json:"tokens"`
	TokensPerSec  float64 `json:"tokens_per_s"`

	// FirstVisible is from the model's first token to the first write
	// showing the answer; FirstVisibleFree the same over the answers whose
	// destination had spent no budget within an interval before, at a
	// moment when the bot's budget was not spent to the full
	// (budgetModel.crowded).
	FirstVisible     Quantiles `json:"first_visible"`
	FirstVisibleFree Quantiles `json:"first_visible_budget_free"`
	// Final is from the model's last token to the answer's last write;
	// FloorMS the wait the platform's interval can impose (the interval,
	// times the answers streaming at once into one destination), and
	// BeyondSchedule how much later than the destination's schedule
	// allowed the final write went out.
	// FinalSingle is Final over the answers whose final view took one
	// request; LongFinals counts those that took more (the answer outgrew
	// a message in its last moments, and each request waits its turn).
	Final       Quantiles `json:"final"`
	FinalSingle Quantiles `json:"final_one_request"`
	// FinalAlone is Final over the answers that had their destination to
	// themselves when they ended (no other answer asked and not yet final),
	// no 429 paused it meanwhile, and found the bot's budget free. FinalBudgetFree is Final over all
	// that found it free; BudgetHeld counts the finals that waited their
	// turn in the bot's budget, spent to the full meanwhile (crowded): the
	// per-bot limit, not the destination, set their wait (heldAfter).
	FinalAlone      Quantiles `json:"final_nothing_else_waiting"`
	FinalBudgetFree Quantiles `json:"final_budget_free"`
	BudgetHeld      int       `json:"finals_held_by_budget"`
	LongFinals      int       `json:"finals_of_several_requests"`
	FloorMS         float64   `json:"final_floor_ms"`
	BeyondSchedule  Quantiles `json:"final_beyond_schedule"`

	// UpdatesPerAnswer is the mean number of writes showing an answer;
	// Smoothness the writes a destination received while it had an answer
	// to show, over what its interval allows in that time.
	// WindowShare is the same over what the platform's window sustains
	// with one slot kept for the final text (windowRate).
	// BudgetShare is the writes a destination received while an answer
	// streamed into it, over its answers' first appearances and first
	// texts there and the growing text its rules admit besides them
	// (windowAllows), scaled to its fair share of the bot's budget while
	// that binds (see budgetModel).
	UpdatesPerAnswer float64 `json:"updates_per_answer"`
	Smoothness       float64 `json:"smoothness"`
	WindowShare      float64 `json:"updates_of_window"`
	BudgetShare      float64 `json:"updates_of_window_and_budget"`
	// MaxPerInterval is the most writes any destination received within
	// one interval; MaxInWindow the most charged writes within the
	// platform's limit window (Window), against Limit.
	MaxPerInterval int    `json:"max_per_interval"`
	MaxInWindow    int    `json:"max_in_window"`
	Window         string `json:"window"`
	Limit          int    `json:"limit"`

	RateLimited     int `json:"rate_limited"`      // 429s received
	PauseViolations int `json:"pause_violations"`  // writes during a 429's retry_after
	PlatformErrors  int `json:"platform_errors"`   // other refused writes
	Differing       int `json:"differing_texts"`   // answers whose final text is not the model's
	Lost            int `json:"lost_answers"`      // answers never shown in full
	Dropped         int `json:"dropped_upstreams"` // answers whose stream was broken on purpose
}

// Resources are Palaver's own, from its /metrics and /proc.
type Resources struct {
	CPUSeconds       float64 `json:"cpu_s"`
	WallSeconds      float64 `json:"wall_s"` // the span CPUSeconds covers
	CPUPer1000Tokens float64 `json:"cpu_s_per_1000_tokens"`
	// IdleCore is the share of a core Palaver uses at rest (connected,
	// scraped once a second), measured before the load.
	IdleCore float64 `json:"idle_core_share"`
	// CoreAt10k is the share of one core Palaver needs per 10,000 tokens/s.
	CoreAt10k      float64 `json:"core_share_per_10k_tokens_per_s"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	PeakHeapMB     float64 `json:"peak_heap_inuse_mb"`   // sampled once a second
	PeakStacksMB   float64 `json:"peak_stacks_inuse_mb"` // sampled once a second
	PeakGoroutines int     `json:"peak_goroutines"`
	PeakActive     int     `json:"peak_active_answers"`
	Commits        int     `json:"commits"`
	CommitP50MS    float64 `json:"commit_p50_ms"`
	CommitP99MS    float64 `json:"commit_p99_ms"`
}

// GlobalUsage is what the fakes' per-bot limits saw: the most charged
// Telegram messages and the most Discord requests within any second, the
// budgets the fakes enforce, the 429s they answered for them, and
// Discord's invalid requests (401, 403, 429) and the bans they earned.
type GlobalUsage struct {
	TelegramPeak    int `json:"telegram_peak_per_s"`
	TelegramBudget  int `json:"telegram_budget_per_s"`
	TelegramLimited int `json:"telegram_bot_429s"`
	DiscordPeak     int `json:"discord_peak_per_s"`
	DiscordBudget   int `json:"discord_budget_per_s"`
	DiscordLimited  int `json:"discord_global_429s"`
	DiscordInvalid  int `json:"discord_invalid_requests"`
	DiscordBans     int `json:"discord_bans"`
	// TelegramUse and DiscordUse are how Palaver spent its own budgets
	// while they bound.
	TelegramUse BudgetUse `json:"telegram_use"`
	DiscordUse  BudgetUse `json:"discord_use"`
}

// BudgetUse is how Palaver spent one bot's budget while it bound: while
// the answers streaming into destinations that draw on it could have
// sent more growing text than was left for it (the budget's text pool,
// the budget less the fifth kept for finals, first appearances and
// notices, less what those took beyond their fifth). Rates are requests a
// second over that time, counted where the fakes received them.
type BudgetUse struct {
	Budget int     `json:"budget_per_s"`    // Palaver's budget
	Pool   int     `json:"text_pool_per_s"` // less the kept fifth
	BoundS float64 `json:"bound_s"`
	Left   float64 `json:"left_for_text_per_s"` // on average while it bound
	// Urgent are finals, first appearances and first texts (and on
	// Discord interaction answers and threads); Text growing text and
	// status changes; Typing typing indicators.
	Urgent float64 `json:"urgent_per_s"`
	Text   float64 `json:"text_per_s"`
	Typing float64 `json:"typing_per_s"`
	// Share is all of them over the budget; TextShare growing text,
	// status and typing over what was left for them.
	Share     float64 `json:"share_of_budget"`
	TextShare float64 `json:"text_share_of_pool"`
	// HeldS is how long a request held its place in the budget (see
	// heldFor): the window, and the round trip Palaver counts a request
	// for so that however late it arrives the platform never sees more.
	HeldS float64 `json:"request_held_s"`
}

// WorldUsage is the load test's own CPU time (the fakes, the users and the
// analysis), which shares the machine with Palaver.
type WorldUsage struct {
	CPUSeconds float64 `json:"cpu_s"`
}

// MetricsCheck sets Palaver's /metrics beside what the platforms saw.
type MetricsCheck struct {
	UpdatesSent      map[string]int     `json:"updates_sent"`
	UpdatesObserved  map[string]int     `json:"updates_observed"`
	RateLimited      map[string]int     `json:"rate_limited"`
	Coalesced        map[string]int     `json:"coalesced"`
	Tokens           int                `json:"tokens"`
	FirstVisibleP50  map[string]float64 `json:"first_visible_p50_ms"`
	FirstVisibleP99  map[string]float64 `json:"first_visible_p99_ms"`
	FirstTokenP50MS  float64            `json:"first_token_p50_ms"`
	UpstreamErrors   int                `json:"upstream_errors"`
	AnswersFinished  int                `json:"answers_finished"`
	HealthComponents map[string]any     `json:"health"`
}

// Check is one invariant or target and whether it held.
type Check struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

func check(name, want string, ok bool, got string, args ...any) Check {
	return Check{Name: name, Want: want, Got: fmt.Sprintf(got, args...), OK: ok}
}

// broken lists the checks that failed.
func broken(cs []Check) []Check {
	return slices.DeleteFunc(slices.Clone(cs), func(c Check) bool { return c.OK })
}

// writeJSON prints r as indented JSON.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints r for a person.
func (r *Report) writeTable(w io.Writer) {
	s := r.Setup
	if s.Workload == crowdWorkload {
		threads := ""
		if s.DiscordThreads {
			threads = " (discord.threads: true)"
		}
		fmt.Fprintf(w, "palaver load test, crowd: %d users at once in each of %d conversations%s, %d tokens per answer at %g tokens/s, %d turn(s) per user",
			s.Crowd, s.Conversations, threads, s.TokensPerAnswer, s.TokensPerSecond, s.Turns)
	} else {
		fmt.Fprintf(w, "palaver load test: %d conversations, %d tokens per answer at %g tokens/s, %d turn(s) per user",
			s.Conversations, s.TokensPerAnswer, s.TokensPerSecond, s.Turns)
	}
	if s.PlatformLatency != "0s" {
		fmt.Fprintf(w, ", platform latency %s", s.PlatformLatency)
	}
	if s.UpstreamH2 {
		fmt.Fprint(w, ", the model over TLS and HTTP/2")
	}
	if s.Inject429 > 0 {
		fmt.Fprintf(w, ", %d injected 429s", s.Injected429)
	}
	if s.Drop > 0 {
		fmt.Fprintf(w, ", %.0f%% upstream drops", s.Drop*100)
	}
	fmt.Fprintf(w, "\n%s; %.1f s from the first token to the last final update\n\n", s.Machine, r.Duration)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(k KindReport) string) {
		cells := []string{name}
		for _, k := range r.Kinds {
			cells = append(cells, f(k))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	row("", func(k KindReport) string { return k.Kind })
	row("conversations", func(k KindReport) string { return fmt.Sprint(k.Conversations) })
	row("turns (answers)", func(k KindReport) string { return fmt.Sprint(k.Answers) })
	row("tokens/s delivered", func(k KindReport) string { return fmt.Sprintf("%.0f", k.TokensPerSec) })
	row("first visible p50/p99 ms", func(k KindReport) string { return k.FirstVisible.String() })
	row("  with budget free", func(k KindReport) string { return k.FirstVisibleFree.String() })
	row("final p50/p99 ms", func(k KindReport) string { return k.Final.String() })
	row("  one-request finals", func(k KindReport) string { return k.FinalSingle.String() })
	row("  bot's budget free", func(k KindReport) string { return k.FinalBudgetFree.String() })
	row("  nothing else waiting", func(k KindReport) string { return k.FinalAlone.String() })
	row("  held by the bot's budget", func(k KindReport) string { return fmt.Sprint(k.BudgetHeld) })
	row("  floor (interval) ms", func(k KindReport) string { return ms(k.FloorMS) })
	row("  finals of 2+ requests", func(k KindReport) string { return fmt.Sprint(k.LongFinals) })
	row("  beyond schedule p99 ms", func(k KindReport) string { return ms(k.BeyondSchedule.P99) })
	row("updates per answer", func(k KindReport) string { return fmt.Sprintf("%.1f", k.UpdatesPerAnswer) })
	row("  of what interval allows", func(k KindReport) string { return fmt.Sprintf("%.0f%%", k.Smoothness*100) })
	row("  of what window allows ¹", func(k KindReport) string { return fmt.Sprintf("%.0f%%", k.WindowShare*100) })
	row("  of window and budget ²", func(k KindReport) string { return fmt.Sprintf("%.0f%%", k.BudgetShare*100) })
	row("max updates per interval", func(k KindReport) string { return fmt.Sprint(k.MaxPerInterval) })
	row("max in platform window", func(k KindReport) string {
		if k.Window == "" {
			return "–"
		}
		return fmt.Sprintf("%d/%d per %s", k.MaxInWindow, k.Limit, k.Window)
	})
	row("429s received", func(k KindReport) string { return fmt.Sprint(k.RateLimited) })
	row("writes during a 429 pause", func(k KindReport) string { return fmt.Sprint(k.PauseViolations) })
	row("other refused writes", func(k KindReport) string { return fmt.Sprint(k.PlatformErrors) })
	row("upstream drops (injected)", func(k KindReport) string { return fmt.Sprint(k.Dropped) })
	row("texts differing", func(k KindReport) string { return fmt.Sprint(k.Differing) })
	row("answers lost", func(k KindReport) string { return fmt.Sprint(k.Lost) })
	tw.Flush()
	fmt.Fprintln(w, "¹ growing text as often as the platform's window allows, one slot kept for the final (Discord 4 per 5 s, Telegram 1/s per chat, 20/min per group)")
	fmt.Fprintln(w, "² the same while answers stream, growing text scaled to the destination's fair share of what finals and first texts leave of the bot's budget while it binds")

	g := r.Global
	fmt.Fprintf(w, "\nper-bot budgets: Telegram peak %d charged messages/s (budget %d), %d bot-wide 429s; Discord peak %d requests/s (budget %d), %d global 429s, %d invalid requests, %d bans\n",
		g.TelegramPeak, g.TelegramBudget, g.TelegramLimited, g.DiscordPeak, g.DiscordBudget, g.DiscordLimited, g.DiscordInvalid, g.DiscordBans)
	for _, u := range []struct {
		name string
		use  BudgetUse
	}{{"Telegram", g.TelegramUse}, {"Discord", g.DiscordUse}} {
		if u.use.BoundS == 0 {
			fmt.Fprintf(w, "  %s: Palaver's budget of %d/s never bound\n", u.name, u.use.Budget)
			continue
		}
		b := u.use
		fmt.Fprintf(w, "  %s: Palaver's budget of %d/s bound for %.0f s and spent %.1f/s (%.0f%%): %.1f/s urgent, %.1f/s growing text and status, %.1f/s typing; text and typing %.0f%% of the %.1f/s urgent requests left of the %d/s pool; a request held its place %.2f s\n",
			u.name, b.Budget, b.BoundS, b.Urgent+b.Text+b.Typing, b.Share*100, b.Urgent, b.Text, b.Typing, b.TextShare*100, b.Left, b.Pool, b.HeldS)
	}
	if len(r.Crowds) > 0 {
		fmt.Fprintln(w)
		writeCrowd(w, r.Crowds)
	}

	p := r.Palaver
	fmt.Fprintf(w, "\npalaver process: %.2f CPU s in %.0f s for %d tokens = %.4f CPU s per 1,000 tokens (%.1f%% of a core per 10,000 tokens/s); at rest %.1f%% of a core\n",
		p.CPUSeconds, p.WallSeconds, r.Kinds[len(r.Kinds)-1].Tokens, p.CPUPer1000Tokens, p.CoreAt10k*100, p.IdleCore*100)
	fmt.Fprintf(w, "  peak RSS %.0f MB (heap in use %.0f MB, stacks %.0f MB), peak goroutines %d, peak active answers %d\n",
		p.PeakRSSMB, p.PeakHeapMB, p.PeakStacksMB, p.PeakGoroutines, p.PeakActive)
	fmt.Fprintf(w, "  bbolt commit p50 %s ms / p99 %s ms (%d commits)\n", ms(p.CommitP50MS), ms(p.CommitP99MS), p.Commits)
	fmt.Fprintf(w, "load test process (fakes, users, analysis): %.2f CPU s\n", r.World.CPUSeconds)
	m := r.Metrics
	fmt.Fprintf(w, "palaver /metrics: updates sent %v (platforms saw %v), rate limited %v, coalesced %v, tokens %d, first visible p50 %v p99 %v ms\n",
		m.UpdatesSent, m.UpdatesObserved, m.RateLimited, m.Coalesced, m.Tokens, roundMap(m.FirstVisibleP50), roundMap(m.FirstVisibleP99))
	if r.Stray > 0 {
		fmt.Fprintf(w, "bot messages belonging to no answer: %d\n", r.Stray)
		for _, t := range r.StrayTexts {
			fmt.Fprintln(w, "  stray:", t)
		}
	}
	for _, pr := range r.Problems {
		fmt.Fprintln(w, "  problem:", pr)
	}
	printChecks := func(title string, cs []Check) {
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, c := range cs {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s: %s (want %s)\n", mark, c.Name, c.Got, c.Want)
		}
	}
	printChecks("invariants", r.Invariants)
	printChecks("targets", r.Targets)
}

func roundMap(m map[string]float64) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = ms(v)
	}
	return out
}

// quantiles summarises latencies.
func quantiles(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return float64(ds[max(0, i)]) / float64(time.Millisecond)
	}
	return Quantiles{N: len(ds), P50: at(0.50), P99: at(0.99), Max: at(1)}
}
