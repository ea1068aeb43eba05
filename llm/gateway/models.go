package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/palaver-bot/palaver/llm"
)

// alias is a configured short model name and its target.
type alias struct{ name, target string }

func sortedAliases(m map[string]string) []alias {
	out := make([]alias, 0, len(m))
	for name, target := range m {
		out = append(out, alias{name, target})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// modelJSON is one entry of OpenAI's model list, with what the provider
// says of the model: its context length in tokens, its price in USD per
// million tokens (DeepInfra's shape), and its capabilities ("vision",
// "tools", "reasoning"). Each is left out when the provider does not say.
type modelJSON struct {
	ID            string       `json:"id"`
	Object        string       `json:"object"`
	Created       int64        `json:"created"`
	OwnedBy       string       `json:"owned_by"`
	ContextLength int          `json:"context_length,omitempty"`
	Pricing       *llm.Pricing `json:"pricing,omitempty"`
	Capabilities  []string     `json:"capabilities,omitempty"`
}

// entry is m as a model-list entry named id, owned by its provider.
func modelEntry(id string, m llm.Model) modelJSON {
	e := modelJSON{ID: id, Object: "model", OwnedBy: m.Provider, ContextLength: m.ContextLength, Pricing: m.Pricing}
	for _, c := range []struct {
		on   bool
		name string
	}{{m.Vision, "vision"}, {m.Tools, "tools"}, {m.Reasoning, "reasoning"}} {
		if c.on {
			e.Capabilities = append(e.Capabilities, c.name)
		}
	}
	return e
}

// modelList lists every provider's models as "provider/model", then the
// aliases whose provider is configured (with their target's details when
// it is listed). When some providers cannot list their models the others
// are served (and the failures logged, and returned as missing); when
// none can, the client is answered with 502 and ok is false.
func (s *Server) modelList(w http.ResponseWriter, r *http.Request) (list []modelJSON, missing []*llm.ListError, ok bool) {
	models, err := s.router.Models(r.Context())
	if err != nil {
		if r.Context().Err() != nil {
			entryFrom(r).gone = true
			return nil, nil, false
		}
		missing = llm.ListErrors(err)
		if len(models) == 0 {
			if len(missing) == 0 {
				writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_error", "no provider could list its models"))
				return nil, nil, false
			}
			writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_unreachable",
				"no provider could list its models: %s", reasons(missing)))
			return nil, nil, false
		}
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "gateway: model list incomplete", slog.Any("error", err))
	}
	list = make([]modelJSON, 0, len(models)+len(s.aliases))
	byName := make(map[string]llm.Model, len(models))
	for _, m := range models {
		if !s.opts.Allowed.Allows(m.Name()) {
			continue
		}
		byName[m.Name()] = m
		list = append(list, modelEntry(m.Name(), m))
	}
	for _, a := range s.aliases {
		if !s.opts.Allowed.Allows(a.target) {
			continue
		}
		provider, id, _ := strings.Cut(a.target, "/")
		if s.router.Client(provider) == nil {
			continue // an *llm.AliasError if used
		}
		m, listed := byName[a.target]
		if !listed {
			m = llm.Model{Provider: provider, ID: id}
		}
		list = append(list, modelEntry(a.name, m))
	}
	return list, missing, true
}

// models serves GET /v1/models (see modelList).
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r); !ok {
		return
	}
	list, _, ok := s.modelList(w, r)
	if !ok {
		return
	}
	s.writeModel(w, r, struct {
		Object string      `json:"object"`
		Data   []modelJSON `json:"data"`
	}{Object: "list", Data: list})
}

// model serves GET /v1/models/{model}: the entry of the model list named
// so, or of the first provider (in configured order) that lists that
// bare id, under the name the client asked for; 404 when none does.
func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r); !ok {
		return
	}
	name := r.PathValue("id")
	list, missing, ok := s.modelList(w, r)
	if !ok {
		return
	}
	found := -1
	for i, m := range list {
		if m.ID == name {
			found = i
			break
		}
	}
	for i := 0; found < 0 && i < len(list); i++ {
		if _, id, _ := strings.Cut(list[i].ID, "/"); id == name && list[i].OwnedBy+"/"+id == list[i].ID {
			found = i
		}
	}
	if found < 0 {
		err := newError(http.StatusNotFound, typeInvalidRequest, "model_not_found", "model %q not found (see GET /v1/models)", name)
		if len(missing) > 0 {
			err.Message = fmt.Sprintf("model %q not found (see GET /v1/models); not searched: %s", name, reasons(missing))
		}
		writeError(w, r, err.withParam("model"))
		return
	}
	m := list[found]
	m.ID = name
	s.writeModel(w, r, m)
}

// writeModel sends v as JSON.
func (s *Server) writeModel(w http.ResponseWriter, r *http.Request, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, newError(http.StatusInternalServerError, typeServer, "internal_error", "encode model list: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(data, '\n'))
}
