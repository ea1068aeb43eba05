package main

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// kind is a sort of conversation the load test drives.
type kind string

const (
	// tgPrivate is a Telegram private chat: one user, answers streamed as
	// drafts (or edits with -drafts=false), 1 s interval.
	tgPrivate kind = "telegram-private"
	// tgGroup is a Telegram group where several users address the bot at
	// once: one conversation, the answers queued, 3 s interval.
	tgGroup kind = "telegram-group"
	// tgTopic is a topic of a Telegram forum: each topic is its own
	// conversation, and the forum's topics stream at the same time on the
	// group's one budget.
	tgTopic kind = "telegram-topic"
	// discordChannel is a Discord channel where several users ask at once,
	// one with /chat and the others by mentioning the bot: one
	// conversation, the answers queued, 1 s interval per channel.
	discordChannel kind = "discord-channel"
	// discordDM is a user's direct messages with the bot: one user, 1 s
	// interval. It is not in the default mix.
	discordDM kind = "discord-dm"
)

var kinds = []kind{tgPrivate, tgGroup, tgTopic, discordChannel, discordDM}

func (k kind) telegram() bool { return k != discordChannel && k != discordDM }

// parseMix reads "telegram-private=50,discord-channel=20,…" into weights.
func parseMix(s string) (map[kind]int, error) {
	mix := map[kind]int{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("-mix: %q is not kind=weight", part)
		}
		k := kind(strings.TrimSpace(name))
		if !slices.Contains(kinds, k) {
			return nil, fmt.Errorf("-mix: unknown kind %q (kinds: %s)", name, joinKinds())
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-mix: weight of %s must be a whole number ≥ 0, not %q", k, w)
		}
		mix[k] = n
	}
	total := 0
	for _, n := range mix {
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("-mix: no kind has a weight above 0")
	}
	return mix, nil
}

func joinKinds() string {
	var s []string
	for _, k := range kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// split shares n conversations among the kinds in proportion to their
// weights (largest remainders), in the order of kinds.
func split(n int, mix map[kind]int) map[kind]int {
	total := 0
	for _, w := range mix {
		total += w
	}
	out := map[kind]int{}
	type rem struct {
		k kind
		r int
	}
	var rems []rem
	given := 0
	for _, k := range kinds {
		out[k] = n * mix[k] / total
		given += out[k]
		rems = append(rems, rem{k, n * mix[k] % total})
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return b.r - a.r })
	for i := 0; given < n; i++ {
		out[rems[i%len(rems)].k]++
		given++
	}
	return out
}

// conversation is one conversation of the workload and where it lives.
type conversation struct {
	index int
	kind  kind
	// users are how many users ask in it; each asks Turns times.
	users int

	// Telegram: the chat (and forum topic); Discord: the channel, and for
	// a DM the user.
	chat    int64
	topic   int
	channel string
	dmUser  string

	// dest is the destination as Palaver names it ("telegram:<chat>",
	// "discord:<channel>"); conversations of one forum share it.
	dest     string
	interval time.Duration

	answers []*answer // by user, then turn
}

// answer is one expected answer: the model's tokens for one question, and
// when the fake model sent them.
type answer struct {
	conv *conversation
	user int
	turn int
	// tag is the answer's first word and is unique in the run: it finds
	// the answer in the platform's messages.
	tag    string
	tokens []string
	// dropAfter, when positive, breaks the upstream stream after that many
	// tokens.
	dropAfter int

	mu     sync.Mutex
	asked  time.Time // when the user's message was pushed to the platform
	first  time.Time // when the model's first token was flushed
	last   time.Time // when its last token was flushed
	sent   int       // tokens flushed
	served bool      // the model was asked for this answer
	done   chan struct{}
}

// question is the user's message that asks for a.
func (a *answer) question() string {
	return "ask " + a.tag + ": tell me a story about load tests"
}

// text is the answer as the model writes it (or, when the stream is
// dropped, as far as it got).
func (a *answer) text() string {
	n := len(a.tokens)
	if a.dropAfter > 0 {
		n = a.dropAfter
	}
	return strings.Join(a.tokens[:n], "")
}

// tokenSent records token i of n; it is the llmtest Sent hook.
func (a *answer) tokenSent(i, n int) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if i == 0 {
		a.first = now
	}
	a.last = now
	a.sent = i + 1
	end := n
	if a.dropAfter > 0 {
		end = a.dropAfter
	}
	if a.sent == end {
		close(a.done)
	}
}

// timing returns the answer's recorded times.
func (a *answer) timing() (asked, first, last time.Time, sent int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked, a.first, a.last, a.sent
}

// words is the model's vocabulary: plain words, so that the text a user
// sees is the model's text on every platform, Markdown or not.
var words = strings.Fields(`the a of and to in is that it for on was with as
at by this from be are or an have not they which one you were all we when
there can had more if some time would out so what up about into other than
them then these its two may first way like now could people over only new
very after most through many where before made also back good just years
called long little because should still work between each made found world
while same under last might never system answer model stream token channel
message group reply quick brown steady light river stone garden window
mountain silver early morning evening quiet signal pattern number market
harbour engine letter paper kitchen summer winter autumn spring`)

// newTokens writes n tokens for the answer tagged tag: the tag, then
// words in sentences and paragraphs, each token but the first with the
// white space before it. The same tag always gives the same tokens.
func newTokens(tag string, n int) []string {
	h := fnv.New64a()
	h.Write([]byte(tag))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x9e3779b97f4a7c15))
	toks := make([]string, 0, n)
	toks = append(toks, tag)
	sentence := 0
	for i := 1; i < n; i++ {
		w := words[rng.IntN(len(words))]
		sep := " "
		switch {
		case sentence == 0 && i > 1 && rng.IntN(5) == 0:
			sep = "\n\n"
		}
		if sentence == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		sentence++
		if sentence >= 8+rng.IntN(10) || i == n-1 {
			w += "."
			sentence = 0
		} else if rng.IntN(12) == 0 {
			w += ","
		}
		toks = append(toks, sep+w)
	}
	return toks
}
