package llm

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ResolveOptions say who gave Lookup a name, and which models it may name.
type ResolveOptions struct {
	// Typed is set for a name a person typed: chat's /model, palaver ask
	// --model. See Lookup for what changes.
	Typed bool
	// Allowed restricts the models a name may resolve to (models.allowed);
	// empty allows every model. For a typed name its exact
	// "provider/model" entries count as listed.
	Allowed AllowList
}

// Resolution is a model name resolved to a provider.
type Resolution struct {
	// Client is the provider's client.
	Client *Client
	// ID is the provider's own model id, sent upstream.
	ID string
	// Name is the canonical "provider/model" name shown to users.
	Name string
}

// maxSuggestions bounds UnknownModelError.Suggestions.
const maxSuggestions = 5

// Lookup resolves a model name by the one rule that chat, palaver ask, the
// endpoint and palaver check share. In order:
//
//  1. An alias is replaced by its "provider/model" target; an alias whose
//     provider is not configured is an *AliasError.
//  2. "provider/model" (split at the first '/') whose prefix is a
//     configured provider goes to that provider, and only to it.
//  3. Otherwise the name is a bare model id, and goes to the first
//     provider, in configured order, whose model list has it. Providers
//     whose list cannot be fetched are skipped; a failed list is
//     remembered for a while (Options.ModelsRetry), so a provider that is
//     down costs one failed request, not one per lookup.
//  4. Typed names only: a fragment that, ignoring case, is part of exactly
//     one listed "provider/model" name stands for it (after a provider's
//     prefix, one of that provider's models only). When several match,
//     one whose whole name or id is the fragment wins.
//  5. A bare id that no provider lists goes to the default provider; a
//     typed one is an *UnknownModelError with the nearest names and the
//     providers that could not be asked.
//
// A program's name (a client of the endpoint, a conversation's stored
// model) is taken as it says: step 2 asks no provider, since a provider
// may serve models it does not list, and fragments are not tried, since a
// fragment unique today may match two models once a provider adds one,
// silently changing the model a program talks to. A typed name is checked
// against the lists so that a typo is refused at once, with suggestions,
// not at the first message. In step 2 only the named provider's list is
// asked, and when it cannot be fetched the error is that provider's
// *ListError (wrapped): a name never moves to another provider because
// its own is down. Alias targets and Allowed's exact entries count as
// listed.
//
// A name Allowed excludes is an *UnknownModelError with NotAllowed set.
// Lookup asks no provider for an alias or a "provider/model" name unless
// opts.Typed is set. Its errors are *AliasError, *UnknownModelError, a
// wrapped *ListError, or ctx's error.
func (r *Router) Lookup(ctx context.Context, name string, opts ResolveOptions) (Resolution, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Resolution{}, &UnknownModelError{}
	}
	asked, trusted := name, false
	if target, ok := r.aliases[name]; ok {
		prov, _, _ := strings.Cut(target, "/")
		if r.byName[prov] == nil {
			return Resolution{}, &AliasError{Alias: name, Target: target, Provider: prov}
		}
		name, trusted = target, true
	}
	if prov, id, ok := strings.Cut(name, "/"); ok && r.byName[prov] != nil {
		return r.lookupNamed(ctx, asked, r.byName[prov], id, trusted, opts)
	}
	return r.lookupBare(ctx, name, opts)
}

// lookupNamed is steps 2 and 4 for a name with a provider's prefix.
func (r *Router) lookupNamed(ctx context.Context, asked string, c *Client, id string, trusted bool, opts ResolveOptions) (Resolution, error) {
	res := Resolution{Client: c, ID: id, Name: c.Name() + "/" + id}
	if id == "" {
		return Resolution{}, &UnknownModelError{Name: asked}
	}
	if !opts.Typed {
		return allow(asked, res, opts)
	}
	models, err := c.Models(ctx)
	if err != nil {
		return Resolution{}, fmt.Errorf("llm: resolve %q: %w", asked, err)
	}
	if trusted || slices.Contains(opts.Allowed, res.Name) || slices.ContainsFunc(models, func(m Model) bool { return m.ID == id }) {
		return allow(asked, res, opts)
	}
	return r.fragment(asked, candidates(c.Name(), models, opts), nil)
}

// lookupBare is steps 3 to 5 for a bare model id.
func (r *Router) lookupBare(ctx context.Context, name string, opts ResolveOptions) (Resolution, error) {
	lists, errs := r.lists(ctx)
	if err := ctx.Err(); err != nil {
		return Resolution{}, fmt.Errorf("llm: resolve %q: %w", name, err)
	}
	excluded := false // a provider lists it, but Allowed excludes it
	for i, c := range r.clients {
		if errs[i] == nil && slices.ContainsFunc(lists[i], func(m Model) bool { return m.ID == name }) {
			res := Resolution{Client: c, ID: name, Name: c.Name() + "/" + name}
			if opts.Allowed.Allows(res.Name) {
				return res, nil
			}
			excluded = true
		}
	}
	var cands []string
	var down []*ListError
	for i, c := range r.clients {
		if errs[i] != nil {
			down = append(down, ListErrors(errs[i])...)
			continue
		}
		cands = append(cands, candidates(c.Name(), lists[i], opts)...)
	}
	if opts.Typed {
		for _, n := range cands {
			if prov, id, _ := strings.Cut(n, "/"); id == name { // an exact entry of Allowed
				return Resolution{Client: r.byName[prov], ID: id, Name: n}, nil
			}
		}
	}
	switch {
	case excluded:
		return Resolution{}, &UnknownModelError{Name: name, NotAllowed: true}
	case !opts.Typed:
		return allow(name, Resolution{Client: r.byName[r.def], ID: name, Name: r.def + "/" + name}, opts)
	}
	return r.fragment(name, cands, down)
}

// allow returns res when opts allow it.
func allow(asked string, res Resolution, opts ResolveOptions) (Resolution, error) {
	if !opts.Allowed.Allows(res.Name) {
		return Resolution{}, &UnknownModelError{Name: asked, NotAllowed: true}
	}
	return res, nil
}

// candidates are the names a typed name may resolve to among provider's
// listed models: those Allowed allows, and Allowed's exact entries for
// the provider.
func candidates(provider string, models []Model, opts ResolveOptions) []string {
	var out []string
	for _, m := range models {
		if n := m.Name(); opts.Allowed.Allows(n) {
			out = append(out, n)
		}
	}
	for _, a := range opts.Allowed {
		if p, id, _ := strings.Cut(a, "/"); p == provider && id != "*" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// fragment is step 4 over cands ("provider/model" names), and the error
// of step 5.
func (r *Router) fragment(asked string, cands []string, down []*ListError) (Resolution, error) {
	q := strings.ToLower(asked)
	var hits, whole []string
	for _, n := range cands {
		if strings.Contains(strings.ToLower(n), q) {
			hits = append(hits, n)
			if _, id, _ := strings.Cut(n, "/"); strings.EqualFold(n, asked) || strings.EqualFold(id, asked) {
				whole = append(whole, n)
			}
		}
	}
	if len(hits) > 1 && len(whole) == 1 {
		hits = whole
	}
	if len(hits) == 1 {
		prov, id, _ := strings.Cut(hits[0], "/")
		return Resolution{Client: r.byName[prov], ID: id, Name: hits[0]}, nil
	}
	e := &UnknownModelError{Name: asked, Down: down}
	if len(hits) > 1 {
		slices.Sort(hits)
		e.Matches = hits
	} else {
		e.Suggestions = closest(q, cands, maxSuggestions)
	}
	return Resolution{}, e
}

// UnknownModelError is a model name that Lookup could not resolve.
type UnknownModelError struct {
	// Name is the name as given; empty when none was.
	Name string
	// NotAllowed is set when Name is a model that ResolveOptions.Allowed
	// excludes.
	NotAllowed bool
	// Matches are the models a typed fragment matched, when it matched
	// several, sorted.
	Matches []string
	// Suggestions are up to five listed names near Name, nearest first,
	// when nothing matched.
	Suggestions []string
	// Down are the providers whose lists could not be fetched, and so were
	// not searched.
	Down []*ListError
}

func (e *UnknownModelError) Error() string {
	switch {
	case e.Name == "":
		return "llm: no model name given"
	case e.NotAllowed:
		return fmt.Sprintf("llm: model %q is not allowed (models.allowed)", e.Name)
	case len(e.Matches) > 1:
		return fmt.Sprintf("llm: model %q matches %d models", e.Name, len(e.Matches))
	case len(e.Down) > 0:
		return fmt.Sprintf("llm: model %q not found; not searched: %v", e.Name, e.Down)
	}
	return fmt.Sprintf("llm: model %q not found", e.Name)
}

// AliasError is an alias whose target's provider is not configured.
type AliasError struct {
	Alias    string // the alias used
	Target   string // its "provider/model" target
	Provider string // the target's provider, which is not configured
}

func (e *AliasError) Error() string {
	return fmt.Sprintf("llm: alias %q: provider %q of %q is not configured", e.Alias, e.Provider, e.Target)
}

// closest returns up to n names nearest to q (lower case) by edit
// distance: to the whole name, to the model id, to its last path part, or
// to a prefix of that part as long as q.
func closest(q string, names []string, n int) []string {
	type scored struct {
		name string
		d    int
	}
	var s []scored
	for _, name := range names {
		l := strings.ToLower(name)
		_, id, _ := strings.Cut(l, "/")
		d := min(levenshtein(q, l), levenshtein(q, id))
		last := id[strings.LastIndex(id, "/")+1:]
		d = min(d, levenshtein(q, last))
		if len(last) > len(q) {
			// A prefix of the name counts: "deepseek-v4" is near "deepseek-v3-0324".
			d = min(d, levenshtein(q, last[:len(q)])+1)
		}
		if d <= max(3, len(q)/2) {
			s = append(s, scored{name, d})
		}
	}
	slices.SortStableFunc(s, func(a, b scored) int { return a.d - b.d })
	var out []string
	for i := 0; i < len(s) && i < n; i++ {
		out = append(out, s[i].name)
	}
	return out
}

// levenshtein is the edit distance between a and b, in runes.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
