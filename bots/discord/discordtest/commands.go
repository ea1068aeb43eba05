package discordtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Command is an application command the bot registered.
type Command struct {
	ID      string
	GuildID string // empty for a global command
	Name    string
	// Type is 1 for a slash command, 2 user, 3 message context menu.
	Type        int
	Description string
	// Raw is the definition as the bot sent it.
	Raw json.RawMessage
}

var commandNameRE = regexp.MustCompile(`^[-_\p{Ll}\p{Lo}\p{N}]{1,32}$`)

// maxCommands is Discord's cap on slash commands per scope.
const maxCommands = 100

// Commands returns the commands registered for a guild, or the global ones
// when guildID is empty, in registration order.
func (s *Server) Commands(guildID string) []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands[guildID])
}

// commandLocked finds the command a user in channel ch can invoke by name:
// the guild's own first, then the global ones.
func (s *Server) commandLocked(ch *Channel, name string, typ int) (Command, bool) {
	scopes := []string{""}
	if ch.GuildID != "" {
		scopes = []string{ch.GuildID, ""}
	}
	for _, scope := range scopes {
		for _, c := range s.commands[scope] {
			if c.Name == name && c.Type == typ {
				return c, true
			}
		}
	}
	return Command{}, false
}

func (s *Server) checkApp(rq *request) bool {
	if rq.r.PathValue("app") != s.appID {
		rq.fail(http.StatusForbidden, 50001, "Missing Access", nil)
		return false
	}
	if gid := rq.r.PathValue("guild"); gid != "" {
		if _, ok := s.guilds[gid]; !ok {
			rq.fail(http.StatusForbidden, 50001, "Missing Access", nil)
			return false
		}
	}
	return true
}

func (s *Server) wireCommandLocked(c Command) json.RawMessage {
	var m map[string]any
	json.Unmarshal(c.Raw, &m)
	if m == nil {
		m = map[string]any{}
	}
	m["id"] = c.ID
	m["application_id"] = s.appID
	m["version"] = c.ID
	m["type"] = c.Type
	if c.GuildID != "" {
		m["guild_id"] = c.GuildID
	} else {
		delete(m, "guild_id")
	}
	b, _ := json.Marshal(m)
	return b
}

func (s *Server) getCommands(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.checkApp(rq) {
		return
	}
	out := []json.RawMessage{}
	for _, c := range s.commands[rq.r.PathValue("guild")] {
		out = append(out, s.wireCommandLocked(c))
	}
	rq.writeJSON(http.StatusOK, out)
}

// putCommands serves the bulk overwrite routes: the body replaces every
// command of the scope; commands keep their id when their name stays.
func (s *Server) putCommands(rq *request) {
	var raws []json.RawMessage
	if !rq.decode(&raws) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.checkApp(rq) {
		return
	}
	guildID := rq.r.PathValue("guild")
	errs := formErrors{}
	var cmds []Command
	seen := map[string]bool{}
	perType := map[int]int{}
	for i, raw := range raws {
		var def struct {
			Name        string            `json:"name"`
			Type        int               `json:"type"`
			Description string            `json:"description"`
			Options     []json.RawMessage `json:"options"`
		}
		idx := fmt.Sprint(i)
		if json.Unmarshal(raw, &def) != nil {
			errs.add("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType", idx)
			continue
		}
		if def.Type == 0 {
			def.Type = 1
		}
		if !commandNameRE.MatchString(def.Name) || (def.Type == 1 && strings.ToLower(def.Name) != def.Name) {
			errs.add("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid", idx, "name")
		}
		if n := utf8.RuneCountInString(def.Description); def.Type == 1 && (n < 1 || n > 100) {
			errs.add("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.", idx, "description")
		}
		if len(def.Options) > 25 {
			errs.add("BASE_TYPE_MAX_LENGTH", tooLong(25), idx, "options")
		}
		key := fmt.Sprint(def.Type, "/", def.Name)
		if seen[key] {
			errs.add("APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique", idx, "name")
		}
		seen[key] = true
		if perType[def.Type]++; perType[def.Type] > maxCommands {
			errs.add("BASE_TYPE_MAX_LENGTH", tooLong(maxCommands), idx)
		}
		c := Command{GuildID: guildID, Name: def.Name, Type: def.Type, Description: def.Description, Raw: slices.Clone(raw)}
		for _, old := range s.commands[guildID] {
			if old.Name == c.Name && old.Type == c.Type {
				c.ID = old.ID
			}
		}
		cmds = append(cmds, c)
	}
	if len(errs) > 0 {
		rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", errs)
		return
	}
	out := []json.RawMessage{}
	for i := range cmds {
		if cmds[i].ID == "" {
			cmds[i].ID = s.newIDLocked()
		}
		out = append(out, s.wireCommandLocked(cmds[i]))
	}
	s.commands[guildID] = cmds
	s.notifyLocked()
	rq.writeJSON(http.StatusOK, out)
}
