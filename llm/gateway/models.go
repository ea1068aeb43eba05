package gateway

import (
	"encoding/json"
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

// modelJSON is one entry of OpenAI's model list.
type modelJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models serves GET /v1/models: every provider's models as
// "provider/model", then the aliases whose provider is configured. When
// some providers cannot list their models the others are served (and the
// failure logged); when none can, 502 with one sentence per provider.
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r); !ok {
		return
	}
	models, err := s.router.Models(r.Context())
	if err != nil {
		if r.Context().Err() != nil {
			entryFrom(r).gone = true
			return
		}
		if len(models) == 0 {
			les := llm.ListErrors(err)
			if len(les) == 0 {
				writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_error", "no provider could list its models"))
				return
			}
			writeError(w, r, newError(http.StatusBadGateway, typeServer, "upstream_unreachable",
				"no provider could list its models: %s", reasons(les)))
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "gateway: model list incomplete", slog.Any("error", err))
	}
	list := struct {
		Object string      `json:"object"`
		Data   []modelJSON `json:"data"`
	}{Object: "list", Data: make([]modelJSON, 0, len(models)+len(s.aliases))}
	for _, m := range models {
		if !s.opts.Allowed.Allows(m.Name()) {
			continue
		}
		owner := m.OwnedBy
		if owner == "" {
			owner = m.Provider
		}
		list.Data = append(list.Data, modelJSON{ID: m.Name(), Object: "model", OwnedBy: owner})
	}
	for _, a := range s.aliases {
		if !s.opts.Allowed.Allows(a.target) {
			continue
		}
		provider, _, _ := strings.Cut(a.target, "/")
		if s.router.Client(provider) == nil {
			continue // an *llm.AliasError if used
		}
		list.Data = append(list.Data, modelJSON{ID: a.name, Object: "model", OwnedBy: provider})
	}
	data, err := json.Marshal(list)
	if err != nil {
		writeError(w, r, newError(http.StatusInternalServerError, typeServer, "internal_error", "encode model list: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(data, '\n'))
}
