package llm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Router holds the configured providers and resolves user-facing model
// names to a provider's Client (see Lookup for the rule). It is safe for
// concurrent use.
type Router struct {
	clients []*Client
	byName  map[string]*Client
	def     string
	aliases map[string]string
}

// NewRouter returns a Router over clients, in their configured order: the
// order in which a bare model id is looked up. defaultProvider names the
// provider of bare model ids that no provider lists ("" means the first).
// Each alias maps a short name to a "provider/model" name. An alias whose
// provider is not configured is kept: using it is an *AliasError, so that
// one stale alias does not keep the others, or the process, from working.
func NewRouter(clients []*Client, defaultProvider string, aliases map[string]string) (*Router, error) {
	if len(clients) == 0 {
		return nil, errors.New("llm: router: no providers")
	}
	r := &Router{
		byName:  make(map[string]*Client, len(clients)),
		aliases: make(map[string]string, len(aliases)),
	}
	for _, c := range clients {
		name := c.Name()
		switch {
		case name == "":
			return nil, errors.New("llm: router: a provider has no name")
		case strings.Contains(name, "/"):
			return nil, fmt.Errorf("llm: router: provider name %q contains '/'", name)
		case r.byName[name] != nil:
			return nil, fmt.Errorf("llm: router: provider %q configured twice", name)
		}
		r.byName[name] = c
		r.clients = append(r.clients, c)
	}
	r.def = defaultProvider
	if r.def == "" {
		r.def = clients[0].Name()
	}
	if r.byName[r.def] == nil {
		return nil, fmt.Errorf("llm: router: default provider %q is not configured", r.def)
	}
	for alias, target := range aliases {
		prov, model, ok := strings.Cut(target, "/")
		if !ok || prov == "" || model == "" {
			return nil, fmt.Errorf("llm: router: alias %q: %q is not \"provider/model\"", alias, target)
		}
		r.aliases[alias] = target
	}
	return r, nil
}

// Resolve is Lookup for a name a program gave (the endpoint's clients, a
// conversation's stored model), returning the Resolution's fields.
func (r *Router) Resolve(ctx context.Context, name string) (client *Client, modelID string, canonical string, err error) {
	res, err := r.Lookup(ctx, name, ResolveOptions{})
	if err != nil {
		return nil, "", "", err
	}
	return res.Client, res.ID, res.Name, nil
}

// Models lists the models of every provider, in configured order, asking
// them all at once. When some providers fail, it returns the others'
// models together with their *ListError values joined (see ListErrors);
// when ctx ends first, ctx's error.
func (r *Router) Models(ctx context.Context) ([]Model, error) {
	lists, errs := r.lists(ctx)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("llm: router: list models: %w", err)
	}
	var all []Model
	for _, l := range lists {
		all = append(all, l...)
	}
	return all, errors.Join(errs...)
}

// lists asks every provider for its models at once: lists[i] and errs[i]
// are the answer of the i-th provider in configured order.
func (r *Router) lists(ctx context.Context) (lists [][]Model, errs []error) {
	lists = make([][]Model, len(r.clients))
	errs = make([]error, len(r.clients))
	var wg sync.WaitGroup
	for i, c := range r.clients {
		wg.Go(func() {
			lists[i], errs[i] = c.Models(ctx)
		})
	}
	wg.Wait()
	return lists, errs
}

// Client returns the named provider's client, or nil.
func (r *Router) Client(name string) *Client { return r.byName[name] }

// Providers lists the provider names in configured order.
func (r *Router) Providers() []string {
	names := make([]string, len(r.clients))
	for i, c := range r.clients {
		names[i] = c.Name()
	}
	return names
}

// Default is the default provider's name.
func (r *Router) Default() string { return r.def }
