package llm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Router holds the configured providers and resolves user-facing model
// names to a provider's Client. It is safe for concurrent use.
type Router struct {
	clients []*Client
	byName  map[string]*Client
	def     string
	aliases map[string]string
}

// NewRouter returns a Router over clients, in their configured order.
// defaultProvider names the provider of bare model ids that no provider
// lists ("" means the first). Each alias maps a short name to a
// "provider/model" name whose provider is configured.
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
		if !ok || model == "" || r.byName[prov] == nil {
			return nil, fmt.Errorf("llm: router: alias %q: %q is not \"provider/model\" with a configured provider", alias, target)
		}
		r.aliases[alias] = target
	}
	return r, nil
}

// Resolve finds the client and the provider's model id for a user-facing
// name, and the canonical "provider/model" name. In order: an alias is
// replaced by its target; "provider/model" (split at the first '/') goes to
// that provider when the prefix is a configured provider's name; otherwise
// the name is a bare model id and goes to the first provider, in
// configured order, whose model list has it (providers whose list cannot
// be fetched are skipped), else to the default provider.
func (r *Router) Resolve(ctx context.Context, name string) (client *Client, modelID string, canonical string, err error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, "", "", errors.New("llm: router: empty model name")
	}
	if target, ok := r.aliases[name]; ok {
		name = target
	}
	if prov, model, ok := strings.Cut(name, "/"); ok {
		if c := r.byName[prov]; c != nil {
			if model == "" {
				return nil, "", "", fmt.Errorf("llm: router: %q names no model", name)
			}
			return c, model, prov + "/" + model, nil
		}
	}
	for _, c := range r.clients {
		models, err := c.Models(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", "", fmt.Errorf("llm: router: resolve %q: %w", name, ctx.Err())
			}
			continue
		}
		for _, m := range models {
			if m.ID == name {
				return c, name, c.Name() + "/" + name, nil
			}
		}
	}
	return r.byName[r.def], name, r.def + "/" + name, nil
}

// Models lists the models of every provider, in configured order. When
// some providers fail, it returns the others' models together with an
// error naming the failed providers.
func (r *Router) Models(ctx context.Context) ([]Model, error) {
	lists := make([][]Model, len(r.clients))
	errs := make([]error, len(r.clients))
	var wg sync.WaitGroup
	for i, c := range r.clients {
		wg.Go(func() {
			lists[i], errs[i] = c.Models(ctx)
		})
	}
	wg.Wait()
	var all []Model
	for _, l := range lists {
		all = append(all, l...)
	}
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, r.clients[i].Name())
		}
	}
	if len(failed) > 0 {
		return all, fmt.Errorf("llm: router: list models of %s: %w", strings.Join(failed, ", "), errors.Join(errs...))
	}
	return all, nil
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
