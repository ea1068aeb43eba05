package main

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/palaver-bot/palaver/llm"

	"go.yaml.in/yaml/v3"
)

// Warnings lists problems that do not stop palaver but that its user should
// know about (palaver check prints them). They are full sentences, in a
// stable order: first the values naming an unset environment variable, in
// line order, then the others.
// etcdHistoryAdvised is the most history entries per conversation advised
// on etcd (sessions/etcdstore's sizing).
const etcdHistoryAdvised = 200

func (c *Config) Warnings() []string {
	w := c.envWarnings()
	if c.Telegram.Token == "" && c.Discord.Token == "" {
		w = append(w, "no platform token configured: set telegram.token (TELEGRAM_BOT_TOKEN) or "+
			"discord.token (DISCORD_BOT_TOKEN) for palaver run, or talk to the models with palaver chat")
	}
	if c.Telegram.Token != "" {
		if len(c.Telegram.AllowedChats) == 0 && len(c.Telegram.AllowedUsers) == 0 {
			w = append(w, "telegram.allowed_chats and telegram.allowed_users are empty: "+
				"anyone who finds the bot can use it (and spend your provider credit)")
		}
		if id, secret, ok := strings.Cut(c.Telegram.Token, ":"); !ok || !isSnowflake(id) || secret == "" {
			w = append(w, "telegram.token does not look like a bot token from @BotFather (digits:secret)")
		}
	}
	if c.Discord.Token != "" {
		if len(c.Discord.AllowedGuilds) == 0 && len(c.Discord.AllowedChannels) == 0 {
			w = append(w, "discord.allowed_guilds and discord.allowed_channels are empty: "+
				"anyone who finds the bot can use it (and spend your provider credit)")
		}
	}
	if len(c.Storage.Etcd.Endpoints) > 0 && (c.Storage.HistoryLimit == 0 || c.Storage.HistoryLimit > etcdHistoryAdvised) {
		w = append(w, fmt.Sprintf("storage.history_limit is %d with storage.etcd: each entry takes about 800 bytes of etcd's "+
			"keyspace, so 10,000 conversations keeping 1,000 entries need 8 GB, over etcd's default 2 GB quota; "+
			"keep %d or fewer (see docs/scaling.md)", c.Storage.HistoryLimit, etcdHistoryAdvised))
	}
	for _, name := range sortedKeys(c.Providers) {
		if names, _ := c.source.unsetVars("providers." + name + ".api_key"); names != nil {
			continue // said by envWarnings
		}
		if c.anonymousDeepInfra(name) {
			w = append(w, fmt.Sprintf("providers.%s has no api_key: anonymous web-page mode, "+
				"which DeepInfra may refuse; set DEEPINFRA_API_KEY", name))
		}
	}
	if provider, _, ok := SplitModel(c.Models.Transcription); ok && !hasKey(c.Providers, provider) {
		w = append(w, fmt.Sprintf("models.transcription names provider %s, which is not configured; voice messages get a note instead of an answer", provider))
	}
	for _, name := range sortedKeys(c.Models.Aliases) {
		if provider, _, ok := SplitModel(c.Models.Aliases[name]); ok && !hasKey(c.Providers, provider) {
			w = append(w, fmt.Sprintf("models.aliases.%s points at provider %s, which is not configured; "+
				"the alias is unusable", name, provider))
		}
	}
	if c.Storage.HistoryLimit > 0 && c.Storage.HistoryLimit < c.Chat.MaxHistoryMessages {
		w = append(w, fmt.Sprintf("storage.history_limit (%d) is below chat.max_history_messages (%d): "+
			"conversations will remember fewer messages than they could send", c.Storage.HistoryLimit, c.Chat.MaxHistoryMessages))
	}
	if c.Gateway.AllowAnonymous && checkListen(c.Gateway.Listen, "") == nil && !isLoopback(c.Gateway.Listen) {
		w = append(w, fmt.Sprintf("gateway.allow_anonymous is true and gateway.listen %q is reachable from other machines: "+
			"anyone who can connect can spend your provider credit", c.Gateway.Listen))
	}
	if l := c.Metrics.Listen; l != "" && checkListen(l, "") == nil && !isLoopback(l) {
		w = append(w, fmt.Sprintf("metrics.listen %q is reachable from other machines", l))
	}
	return append(w, c.limitWarnings()...)
}

// limitWarnings lists limits that cannot work as written: a daily cap
// above its monthly one, a restricted default model, per-model limits
// that cap nothing.
func (c *Config) limitWarnings() []string {
	var w []string
	check := func(key string, l LimitConfig) {
		if l.DailyTokens > 0 && l.MonthlyTokens > 0 && l.DailyTokens > l.MonthlyTokens {
			w = append(w, fmt.Sprintf("%s.daily_tokens (%d) is above %s.monthly_tokens (%d): the daily limit is never reached", key, l.DailyTokens, key, l.MonthlyTokens))
		}
		if l.DailyUSD > 0 && l.MonthlyUSD > 0 && l.DailyUSD > l.MonthlyUSD {
			w = append(w, fmt.Sprintf("%s.daily_usd (%s) is above %s.monthly_usd (%s): the daily limit is never reached", key, fmtNumber(l.DailyUSD), key, fmtNumber(l.MonthlyUSD)))
		}
		if (l.DailyUSD > 0 || l.MonthlyUSD > 0) && len(c.Models.Prices) == 0 && !c.usesDeepInfra() {
			w = append(w, fmt.Sprintf("%s sets a cost limit, but models.prices is empty and no provider publishes prices: tokens of models without a price count only towards token limits", key))
		}
	}
	l := c.Limits
	check("limits.user", l.User)
	check("limits.conversation", l.Conversation)
	check("limits.group", l.Group)
	check("limits.key", l.Key)
	for _, name := range sortedKeys(l.Models) {
		if l.Models[name] == (LimitConfig{}) {
			w = append(w, fmt.Sprintf("limits.models.%s sets no limit (all caps are 0)", name))
			continue
		}
		check("limits.models."+name, l.Models[name])
	}
	if llm.AllowList(c.Models.Restricted).Allows(c.Models.Default) && len(c.Models.Restricted) > 0 {
		w = append(w, fmt.Sprintf("models.default (%s) is in models.restricted: only admins can talk in a conversation until someone chooses another model", c.Models.Default))
	}
	return w
}

// usesDeepInfra reports whether a provider is DeepInfra, which lists its
// models' prices.
func (c *Config) usesDeepInfra() bool {
	for _, p := range c.Providers {
		if u, err := url.Parse(p.BaseURL); err == nil && strings.EqualFold(u.Hostname(), "api.deepinfra.com") {
			return true
		}
	}
	return false
}

// anonymousDeepInfra reports whether provider name is DeepInfra without an
// API key, which palaver then calls in anonymous web-page mode.
func (c *Config) anonymousDeepInfra(name string) bool {
	p := c.Providers[name]
	u, err := url.Parse(p.BaseURL)
	return err == nil && strings.EqualFold(u.Hostname(), "api.deepinfra.com") && p.APIKey == ""
}

// envWarnings lists, in line order, the values that name an unset (or
// empty) environment variable and that Validate does not refuse for it.
func (c *Config) envWarnings() []string {
	if c.source == nil {
		return nil
	}
	unset := slices.Clone(c.source.unset)
	slices.SortStableFunc(unset, func(a, b unsetVar) int {
		return cmp.Or(cmp.Compare(a.pos.line, b.pos.line), cmp.Compare(a.pos.column, b.pos.column))
	})
	var w []string
	seen := map[string]bool{}
	for _, u := range unset {
		if seen[u.key] || c.requiredEnvKey(u.key) {
			continue
		}
		seen[u.key] = true
		names, _ := c.source.unsetVars(u.key)
		msg := u.key + " " + usesUnset(names)
		provider, isKey := strings.CutSuffix(strings.TrimPrefix(u.key, "providers."), ".api_key")
		switch {
		case u.key == "telegram.token" && c.Telegram.Token == "":
			msg += ": Telegram is off"
		case u.key == "discord.token" && c.Discord.Token == "":
			msg += ": Discord is off"
		case isKey && c.anonymousDeepInfra(provider):
			msg += ": anonymous web-page mode, which DeepInfra may refuse"
		case u.leftOut:
			msg += ": that item is left out"
		}
		w = append(w, msg)
	}
	return w
}

// Redacted returns a deep copy of c with every secret masked: provider API
// keys and header values, platform tokens, gateway API keys, and passwords
// in URLs. A secret keeps at most its last 4 characters ("****abcd"), and
// none when it is short.
func (c *Config) Redacted() *Config {
	r := c.clone()
	for name, p := range r.Providers {
		p.BaseURL = redactURL(p.BaseURL)
		p.APIKey = redactSecret(p.APIKey)
		for h, val := range p.Headers {
			p.Headers[h] = redactSecret(val)
		}
		r.Providers[name] = p
	}
	r.Telegram.Token = redactSecret(r.Telegram.Token)
	r.Telegram.APIEndpoint = redactURL(r.Telegram.APIEndpoint)
	r.Discord.Token = redactSecret(r.Discord.Token)
	r.Discord.APIBase = redactURL(r.Discord.APIBase)
	for i, k := range r.Gateway.APIKeys {
		r.Gateway.APIKeys[i] = redactSecret(k)
	}
	return r
}

// String renders the config as YAML with its secrets redacted, for logs
// and palaver check.
func (c *Config) String() string {
	out, err := yaml.Marshal(c.Redacted())
	if err != nil {
		return fmt.Sprintf("config: render: %v", err)
	}
	return string(out)
}

// clone returns a deep copy of c.
func (c *Config) clone() *Config {
	r := *c
	r.Providers = make(map[string]ProviderConfig, len(c.Providers))
	for name, p := range c.Providers {
		if p.Headers != nil {
			h := make(map[string]string, len(p.Headers))
			for k, v := range p.Headers {
				h[k] = v
			}
			p.Headers = h
		}
		r.Providers[name] = p
	}
	if c.Providers == nil {
		r.Providers = nil
	}
	if c.Models.Aliases != nil {
		r.Models.Aliases = make(map[string]string, len(c.Models.Aliases))
		for k, v := range c.Models.Aliases {
			r.Models.Aliases[k] = v
		}
	}
	if t := c.Chat.Temperature; t != nil {
		tt := *t
		r.Chat.Temperature = &tt
	}
	r.Models.Allowed = slices.Clone(c.Models.Allowed)
	r.Telegram.AllowedChats = slices.Clone(c.Telegram.AllowedChats)
	r.Telegram.AllowedUsers = slices.Clone(c.Telegram.AllowedUsers)
	r.Telegram.Admins = slices.Clone(c.Telegram.Admins)
	r.Discord.Guilds = slices.Clone(c.Discord.Guilds)
	r.Discord.AllowedGuilds = slices.Clone(c.Discord.AllowedGuilds)
	r.Discord.AllowedChannels = slices.Clone(c.Discord.AllowedChannels)
	r.Discord.Admins = slices.Clone(c.Discord.Admins)
	r.Gateway.APIKeys = slices.Clone(c.Gateway.APIKeys)
	r.Gateway.CORSOrigins = slices.Clone(c.Gateway.CORSOrigins)
	r.Models.Vision = slices.Clone(c.Models.Vision)
	r.Models.Prices = maps.Clone(c.Models.Prices)
	r.Models.Restricted = slices.Clone(c.Models.Restricted)
	r.Limits.Models = maps.Clone(c.Limits.Models)
	return &r
}

// redactSecret masks s, keeping its last 4 characters when it is long
// enough (at least 16) that they reveal little.
func redactSecret(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) < 16:
		return "****"
	default:
		return "****" + s[len(s)-4:]
	}
}

// redactURL masks the password of a URL that has one; other strings are
// returned unchanged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	return u.Redacted()
}
