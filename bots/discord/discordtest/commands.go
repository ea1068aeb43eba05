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
	// IntegrationTypes are where the command is available by installation
	// (0 GUILD_INSTALL, 1 USER_INSTALL) and Contexts where it can be used
	// (0 GUILD, 1 BOT_DM, 2 PRIVATE_CHANNEL), as registered; nil when the
	// definition left them out. Discord applies them to global commands
	// only.
	IntegrationTypes []int
	Contexts         []int
	// Raw is the definition as the bot sent it.
	Raw json.RawMessage
}

// Installation and interaction contexts (Discord's numbering).
const (
	InstallGuild = 0
	InstallUser  = 1

	ContextGuild          = 0
	ContextBotDM          = 1
	ContextPrivateChannel = 2
)

// available reports whether a global command can be run in an interaction
// context by way of one of the installations: its integration_types
// (default: those the app supports) must include one of them and its
// contexts (default: any) the context. Guild commands, found only in
// their guild, are available there by its guild install.
func (c Command) available(installs []int, context int, appTypes []int) []int {
	if c.GuildID != "" {
		if slices.Contains(installs, InstallGuild) {
			return []int{InstallGuild}
		}
		return nil
	}
	if c.Contexts != nil && !slices.Contains(c.Contexts, context) {
		return nil
	}
	types := c.IntegrationTypes
	if types == nil {
		types = appTypes
	}
	var out []int
	for _, t := range installs {
		if slices.Contains(types, t) {
			out = append(out, t)
		}
	}
	return out
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

// commandOption is an option of a command's definition.
type commandOption struct {
	Name         string `json:"name"`
	Type         int    `json:"type"`
	Description  string `json:"description"`
	Required     bool   `json:"required"`
	Autocomplete bool   `json:"autocomplete"`
}

// checkOptions reports an option a Discord client would not send for c:
// one the definition does not declare, or of another type, and (when
// complete, not for autocomplete) a required option left out. Commands
// with subcommands are not checked.
func (c Command) checkOptions(opts []Option, complete bool) error {
	var def struct {
		Options []commandOption `json:"options"`
	}
	json.Unmarshal(c.Raw, &def)
	declared := map[string]commandOption{}
	for _, o := range def.Options {
		if o.Type == OptionSubCommand || o.Type == OptionSubCommandGroup {
			return nil
		}
		declared[o.Name] = o
	}
	sent := map[string]bool{}
	for _, o := range opts {
		d, ok := declared[o.Name]
		if !ok {
			return fmt.Errorf("discordtest: /%s has no option %q", c.Name, o.Name)
		}
		typ := o.Type
		if typ == 0 {
			typ = inferType(o.Value)
		}
		if typ != d.Type {
			return fmt.Errorf("discordtest: /%s option %q is declared with type %d, sent with type %d", c.Name, o.Name, d.Type, typ)
		}
		sent[o.Name] = true
	}
	for _, d := range def.Options {
		if complete && d.Required && !sent[d.Name] {
			return fmt.Errorf("discordtest: /%s needs option %q", c.Name, d.Name)
		}
	}
	return nil
}

// validateOptions checks a definition's options as Discord does: known
// types, names and descriptions within bounds, required options first.
func validateOptions(opts []commandOption, errs formErrors, idx string) {
	optional := false
	for j, o := range opts {
		path := []string{idx, "options", fmt.Sprint(j)}
		if o.Type < OptionSubCommand || o.Type > OptionAttachment {
			errs.add("BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11).", append(path, "type")...)
		}
		if !commandNameRE.MatchString(o.Name) || strings.ToLower(o.Name) != o.Name {
			errs.add("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid", append(path, "name")...)
		}
		if n := utf8.RuneCountInString(o.Description); n < 1 || n > 100 {
			errs.add("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.", append(path, "description")...)
		}
		if o.Required && optional {
			errs.add("APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", "Required options must be placed before non-required options", append(path, "required")...)
		}
		if o.Autocomplete && o.Type != OptionString && o.Type != OptionInteger && o.Type != OptionNumber {
			errs.add("APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_INVALID", "Autocomplete is only allowed for string, integer and number options", append(path, "autocomplete")...)
		}
		optional = optional || !o.Required
	}
}

// inferType is the option type Option.Value implies, 0 when none.
func inferType(v any) int {
	switch v.(type) {
	case string:
		return OptionString
	case int, int64:
		return OptionInteger
	case bool:
		return OptionBoolean
	case float64:
		return OptionNumber
	case Attachment:
		return OptionAttachment
	}
	return 0
}

func (s *Server) checkApp(rq *request) bool {
	if rq.r.PathValue("app") != s.appID {
		rq.fail(http.StatusForbidden, 50001, "Missing Access", nil)
		return false
	}
	if gid := rq.r.PathValue("guild"); gid != "" {
		if g, ok := s.guilds[gid]; !ok || !g.hasBot(s.bot.ID) {
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
			Name             string          `json:"name"`
			Type             int             `json:"type"`
			Description      string          `json:"description"`
			Options          []commandOption `json:"options"`
			IntegrationTypes []int           `json:"integration_types"`
			Contexts         []int           `json:"contexts"`
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
		validateOptions(def.Options, errs, idx)
		s.validateContextsLocked(def.IntegrationTypes, def.Contexts, guildID == "", errs, idx)
		key := fmt.Sprint(def.Type, "/", def.Name)
		if seen[key] {
			errs.add("APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique", idx, "name")
		}
		seen[key] = true
		if perType[def.Type]++; perType[def.Type] > maxCommands {
			errs.add("BASE_TYPE_MAX_LENGTH", tooLong(maxCommands), idx)
		}
		c := Command{GuildID: guildID, Name: def.Name, Type: def.Type, Description: def.Description,
			IntegrationTypes: def.IntegrationTypes, Contexts: def.Contexts, Raw: slices.Clone(raw)}
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

// appIntegrationTypes are the installation contexts the app supports.
func (s *Server) appIntegrationTypesLocked() []int {
	if s.opts.UserInstall {
		return []int{InstallGuild, InstallUser}
	}
	return []int{InstallGuild}
}

// validateContextsLocked checks a definition's integration_types and
// contexts: known values, and for a global command only installation
// contexts the app supports (Discord: "as long as any included contexts
// are already supported on the application-level"; the error wording is
// the fake's). Guild commands may carry them; Discord ignores them there.
func (s *Server) validateContextsLocked(types, contexts []int, global bool, errs formErrors, idx string) {
	supported := s.appIntegrationTypesLocked()
	for j, t := range types {
		path := []string{idx, "integration_types", fmt.Sprint(j)}
		switch {
		case t != InstallGuild && t != InstallUser:
			errs.add("BASE_TYPE_CHOICES", "Value must be one of (0, 1).", path...)
		case global && !slices.Contains(supported, t):
			errs.add("BASE_TYPE_CHOICES", fmt.Sprintf("Value must be one of %s (the app's installation contexts).", intTuple(supported)), path...)
		}
	}
	for j, c := range contexts {
		if c != ContextGuild && c != ContextBotDM && c != ContextPrivateChannel {
			errs.add("BASE_TYPE_CHOICES", "Value must be one of (0, 1, 2).", idx, "contexts", fmt.Sprint(j))
		}
	}
}

// intTuple writes ints as Discord's error messages do: "(0, 1)", "(0,)".
func intTuple(v []int) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
