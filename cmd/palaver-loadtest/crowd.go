package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

// The crowd workload: many people addressing the bot at once in one
// Telegram group and in one Discord channel (issue 12), or, with
// -discord-threads, in one Discord channel where Palaver opens a thread
// per question. Every asker should get their answer with its exact text,
// without a 429, and a first sign of life (a placeholder or the first
// text) before any other answer gets its second update while they wait.

// Workloads.
const (
	mixWorkload   = "mix"
	crowdWorkload = "crowd"
)

const (
	// maxCrowd bounds -crowd; Telegram user ids are laid out per
	// conversation in blocks of this size.
	maxCrowd = 1000
	// crowdArrival is the span over which a crowd's questions arrive.
	crowdArrival = time.Second
	// crowdTimeout is the crowd's -timeout unless one is given: 50
	// answers in a Telegram group take 20 writes per minute.
	crowdTimeout = 8 * time.Minute
)

// layoutCrowd creates the crowd's conversations: a Telegram group and a
// Discord channel with -crowd users each, or with -discord-threads the
// Discord channel alone.
func (w *world) layoutCrowd(map[kind]int) error {
	rng := rand.New(rand.NewPCG(uint64(w.opts.seed), 1))
	if !w.threads {
		c := &conversation{index: len(w.convs), kind: tgGroup, users: w.opts.crowd, interval: telegramGroupInterval}
		c.chat = -(1_000_000 + int64(c.index))
		w.tg.SetChat(telegramtest.Chat{ID: c.chat, Type: telegramtest.ChatGroup, Title: "crowd"})
		w.addConversation(c, rng)
	}
	c := &conversation{index: len(w.convs), kind: discordChannel, users: w.opts.crowd}
	if err := w.addChannel(c); err != nil {
		return err
	}
	w.addConversation(c, rng)
	return nil
}

// skipped is a run the palaver binary cannot do.
type skipped struct{ reason string }

func (s *skipped) Error() string { return "skipped: " + s.reason }

// configKey is one key the workload adds to a section of the config.
type configKey struct {
	section, key, value string
}

func (k configKey) String() string { return k.section + "." + k.key }

// extraConfig is what the workload adds to writeConfig's config.
func (w *world) extraConfig() []configKey {
	if w.threads {
		return []configKey{{"discord", "threads", "true"}}
	}
	return nil
}

// addConfig adds keys to the config file at path, each at the top of its
// section, which must be there.
func addConfig(path string, keys []configKey) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("add config keys: %w", err)
	}
	cfg := "\n" + string(b)
	for _, k := range keys {
		head := "\n" + k.section + ":\n"
		if !strings.Contains(cfg, head) {
			return fmt.Errorf("add config key %s: no %s section in %s", k, k.section, path)
		}
		cfg = strings.Replace(cfg, head, head+"  "+k.key+": "+k.value+"\n", 1)
	}
	return os.WriteFile(path, []byte(cfg[1:]), 0o600)
}

// checkConfig runs `palaver check` on the config; when it fails naming
// one of keys, the binary does not know that key yet and the run is
// skipped.
func checkConfig(ctx context.Context, bin, path string, keys []configKey) error {
	cmd := exec.CommandContext(ctx, bin, "check", "--config", path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		for _, k := range keys {
			if strings.Contains(msg, k.key) {
				return &skipped{reason: fmt.Sprintf("this palaver does not accept %s (%s)", k, firstLine(msg))}
			}
		}
		return fmt.Errorf("palaver check: %w: %s", err, msg)
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// CrowdReport is what the askers of one crowd saw. Times are from each
// asker's question.
type CrowdReport struct {
	Place    string `json:"place"`
	Askers   int    `json:"askers"`
	Answered int    `json:"answered"` // answers shown in full, with the model's exact text
	// Threads is how many threads Palaver opened for the crowd.
	Threads int `json:"threads,omitempty"`
	// FirstSign is from the question to the first sign of life (a
	// placeholder, the interaction's "thinking" state, a pointer to the
	// answer's thread, or the first text); Final to the answer's last
	// write. Askers who never saw one are left out (see Answered).
	FirstSign Quantiles `json:"first_sign"`
	Final     Quantiles `json:"final"`
	// Fair is how many askers saw a first sign of life before any other
	// answer of the crowd got a second update (other than its final)
	// while they waited; Overtaken is the most such updates one asker
	// waited through (issue 12: first appearances before growing text).
	Fair      int `json:"fair"`
	Overtaken int `json:"most_overtaken"`
	// RateLimited is the 429s the crowd's destinations received.
	RateLimited int `json:"rate_limited"`
}

// crowdReports rebuilds what each crowd's askers saw.
func (w *world) crowdReports(an *analysis) []CrowdReport {
	if w.opts.workload != crowdWorkload {
		return nil
	}
	obs := map[*answer]*observed{}
	for _, o := range an.answers {
		obs[o.a] = o
	}
	var out []CrowdReport
	for _, c := range w.convs {
		cr := CrowdReport{Place: string(c.kind), Askers: len(c.answers)}
		if c.kind == discordChannel && w.threads {
			cr.Place += ", threads"
		}
		var signs, finals []time.Duration
		for _, a := range c.answers {
			o := obs[a]
			if o.complete {
				cr.Answered++
				finals = append(finals, o.final.Sub(o.asked))
			}
			if !o.firstSign.IsZero() {
				signs = append(signs, o.firstSign.Sub(o.asked))
			}
			overtaken := 0
			for _, b := range c.answers {
				if b != a {
					overtaken += growthWhileWaiting(obs[b], o)
				}
			}
			if overtaken == 0 {
				cr.Fair++
			}
			cr.Overtaken = max(cr.Overtaken, overtaken)
		}
		cr.FirstSign, cr.Final = quantiles(signs), quantiles(finals)
		for _, d := range an.dests {
			if d.dest == c.dest || (d.parent != nil && d.parent.dest == c.dest) {
				cr.RateLimited += len(d.refusals)
			}
		}
		for _, parent := range an.threads {
			if c.channel != "" && parent == c.channel {
				cr.Threads++
			}
		}
		out = append(out, cr)
	}
	return out
}

// growthWhileWaiting counts b's updates after its first and before its
// final that came while the asker of o waited for a first sign of life
// (after the question; to the end when none came).
func growthWhileWaiting(b, o *observed) int {
	n := 0
	for i := 1; i < len(b.writes)-1; i++ {
		at := b.writes[i].at
		if at.After(o.asked) && (o.firstSign.IsZero() || at.Before(o.firstSign)) {
			n++
		}
	}
	return n
}

// writeCrowd prints the crowd figures.
func writeCrowd(w io.Writer, crowds []CrowdReport) {
	for _, cr := range crowds {
		fmt.Fprintf(w, "crowd in a %s: %d of %d askers answered in full", cr.Place, cr.Answered, cr.Askers)
		if cr.Threads > 0 {
			fmt.Fprintf(w, " (%d threads)", cr.Threads)
		}
		fmt.Fprintf(w, ", %d 429s\n", cr.RateLimited)
		fmt.Fprintf(w, "  per asker, from the question: first sign of life p50/p99 %s ms (%d askers saw one), final text p50/p99 %s ms (max %s)\n",
			cr.FirstSign, cr.FirstSign.N, cr.Final, ms(cr.Final.Max))
		fmt.Fprintf(w, "  fairness: %d of %d askers saw a sign of life before another answer got a second update (not its final) while they waited; at worst one waited through %d\n",
			cr.Fair, cr.Askers, cr.Overtaken)
	}
}

// crowdChecks are the crowd's invariants: every asker answered.
func crowdChecks(crowds []CrowdReport) []Check {
	var cs []Check
	for _, cr := range crowds {
		cs = append(cs, check("askers answered in a crowd in a "+cr.Place, strconv.Itoa(cr.Askers),
			cr.Answered == cr.Askers, "%d", cr.Answered))
	}
	return cs
}

// crowdTargets are the crowd's targets: fairness (issue 12).
func crowdTargets(crowds []CrowdReport) []Check {
	var cs []Check
	for _, cr := range crowds {
		cs = append(cs, check("askers with a sign of life before another answer's second update, crowd in a "+cr.Place,
			strconv.Itoa(cr.Askers), cr.Fair == cr.Askers, "%d", cr.Fair))
	}
	return cs
}
