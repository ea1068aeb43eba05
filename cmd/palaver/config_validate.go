package main

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks the whole config and returns every problem found, joined
// in line order; each is a *ConfigError naming the key, and its line when
// the config was loaded from a file. It returns nil for a valid config.
func (c *Config) Validate() error {
	if errs := c.validate(); len(errs) > 0 {
		return joinConfigErrors(errs)
	}
	return nil
}

// validate lists the config's problems in the order it checks them.
func (c *Config) validate() []*ConfigError {
	v := &validator{c: c, envReported: map[string]bool{}}
	v.env()
	v.storage()
	v.providers()
	v.llm()
	v.models()
	v.chat()
	v.telegram()
	v.discord()
	v.gateway()
	v.limits()
	v.cluster()
	v.metricsAndLog()
	return v.errs
}

type validator struct {
	c    *Config
	errs []*ConfigError
	// envReported holds the keys already reported for naming an unset
	// variable; other problems with their values follow from it.
	envReported map[string]bool
}

// errorf reports a problem with the value at key. When that value names
// an unset variable, the message says so.
func (v *validator) errorf(key, format string, args ...any) {
	if v.envReported[key] {
		return
	}
	e := &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
	if s := v.c.source; s != nil {
		e.File = s.file
		if p, ok := s.pos[key]; ok {
			e.Line, e.Column = p.line, p.column
		}
		if names, _ := s.unsetVars(key); names != nil {
			e.Msg += " (it " + usesUnset(names) + ")"
		}
	}
	v.errs = append(v.errs, e)
}

// env reports each value that names an unset variable where palaver needs
// the value (requiredEnvKey); Warnings lists the others.
func (v *validator) env() {
	s := v.c.source
	if s == nil {
		return
	}
	for _, u := range s.unset {
		if v.envReported[u.key] || !v.c.requiredEnvKey(u.key) {
			continue
		}
		names, pos := s.unsetVars(u.key)
		v.errs = append(v.errs, &ConfigError{File: s.file, Line: pos.line, Column: pos.column, Key: u.key, Msg: usesUnset(names)})
		v.envReported[u.key] = true
	}
}

// requiredEnvKey reports whether the value at key may not name an unset
// variable: palaver cannot do without it (a provider's base_url, the
// endpoint's address, the default model, the database file, an enabled
// bot's API address), or it is in a list that lets more people in when an
// item is left out (models.allowed, the endpoint's API keys, an enabled
// bot's allowed chats, users, guilds and channels). Elsewhere an empty
// value disables a feature (a token) or keeps a default, and palaver check
// warns.
func (c *Config) requiredEnvKey(key string) bool {
	list, _, _ := strings.Cut(key, "[")
	switch list {
	case "storage.path", "models.default", "models.allowed", "gateway.listen", "gateway.api_keys":
		return true
	case "telegram.api_endpoint", "telegram.allowed_chats", "telegram.allowed_users":
		return c.Telegram.Token != ""
	case "telegram.webhook.secret_token":
		return c.Telegram.Token != "" && c.Telegram.Webhook.URL != ""
	case "storage.etcd.endpoints":
		return true
	case "discord.api_base", "discord.allowed_guilds", "discord.allowed_channels":
		return c.Discord.Token != ""
	}
	rest, ok := strings.CutPrefix(key, "providers.")
	name, found := strings.CutSuffix(rest, ".base_url")
	return ok && found && hasKey(c.Providers, name)
}

// usesUnset says that a value uses the unset variables names.
func usesUnset(names []string) string {
	vars := make([]string, len(names))
	for i, n := range names {
		vars[i] = "${" + n + "}"
	}
	if len(vars) == 1 {
		return "uses " + vars[0] + ", which is not set"
	}
	return "uses " + strings.Join(vars[:len(vars)-1], ", ") + " and " + vars[len(vars)-1] + ", which are not set"
}

func (v *validator) atLeast(key string, got, least int64) {
	if got < least {
		v.errorf(key, "must be at least %d, got %d", least, got)
	}
}

func (v *validator) interval(key string, d time.Duration) {
	if d < minEditInterval {
		v.errorf(key, "must be at least %s, got %s", minEditInterval, d)
	}
}

// window checks a rate-limit window: at least one request in a positive
// span, and, with an interval, no tighter than one request per interval
// (the interval's pace would then always wait for the window).
func (v *validator) window(key string, w WindowConfig, intervalKey string, interval time.Duration) {
	switch {
	case w.Requests < 1:
		v.errorf(key+".requests", "must be at least 1, got %d", w.Requests)
	case w.Per <= 0:
		v.errorf(key+".per", "must be a positive duration, got %s", w.Per)
	case interval >= minEditInterval && w.Per > time.Duration(w.Requests)*interval:
		v.errorf(key, "allows %d request(s) per %s, fewer than one per %s (%s): raise %s.requests or lower %s",
			w.Requests, w.Per, intervalKey, interval, key, intervalKey)
	}
}

func (v *validator) storage() {
	e := v.c.Storage.Etcd
	if len(e.Endpoints) == 0 && strings.TrimSpace(v.c.Storage.Path) == "" {
		v.errorf("storage.path", "must name the database file")
	}
	v.atLeast("storage.history_limit", int64(v.c.Storage.HistoryLimit), 0)
	for i, ep := range e.Endpoints {
		if err := checkHTTPURL(ep); err != nil {
			v.errorf(fmt.Sprintf("storage.etcd.endpoints[%d]", i), "%v (an etcd member's client URL, such as http://127.0.0.1:2379)", err)
		}
	}
	if len(e.Endpoints) == 0 {
		return
	}
	if !strings.HasPrefix(e.Prefix, "/") || strings.ContainsFunc(e.Prefix, isSpace) {
		v.errorf("storage.etcd.prefix", "want a key prefix starting with /, such as /palaver/, got %q", e.Prefix)
	}
	if e.DialTimeout <= 0 {
		v.errorf("storage.etcd.dial_timeout", "must be a positive duration, got %s", e.DialTimeout)
	}
	if (e.Username == "") != (e.Password == "") {
		v.errorf("storage.etcd.username", "set both storage.etcd.username and storage.etcd.password, or neither")
	}
	if (e.TLS.Cert == "") != (e.TLS.Key == "") {
		v.errorf("storage.etcd.tls.cert", "set both storage.etcd.tls.cert and storage.etcd.tls.key, or neither")
	}
}

// minFailover is the shortest cluster.failover: a lease that short would
// expire on a busy machine's pause.
const minFailover = 2 * time.Second

func (v *validator) cluster() {
	c := v.c.Cluster
	if c.Failover < minFailover {
		v.errorf("cluster.failover", "must be at least %s, got %s", minFailover, c.Failover)
	}
	if c.Advertise != "" {
		if err := checkHTTPURL(c.Advertise); err != nil {
			v.errorf("cluster.advertise", "%v", err)
		}
	}
	if strings.ContainsAny(c.Member, "/ \t\n") {
		v.errorf("cluster.member", "want a name without spaces or slashes, got %q", c.Member)
	}
}

// webhook checks telegram.webhook when it is on.
func (v *validator) webhook() {
	w := v.c.Telegram.Webhook
	if w.URL == "" {
		return
	}
	// A self-hosted Bot API server (telegram.api_endpoint elsewhere than
	// api.telegram.org, run with --local) also posts to http URLs.
	selfHosted := !strings.Contains(v.c.Telegram.APIEndpoint, "//api.telegram.org/")
	if u, err := url.Parse(w.URL); err != nil || u.Host == "" || (u.Scheme != "https" && !(selfHosted && u.Scheme == "http")) {
		v.errorf("telegram.webhook.url", "want the public https URL Telegram posts updates to, got %q", w.URL)
	}
	if err := checkListen(w.Listen, "0.0.0.0:8443"); err != nil {
		v.errorf("telegram.webhook.listen", "%v", err)
	}
	if !validSecretToken(w.SecretToken) {
		v.errorf("telegram.webhook.secret_token", "want 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
	}
	if w.MaxConnections < 1 || w.MaxConnections > 100 {
		v.errorf("telegram.webhook.max_connections", "want 1 to 100, got %d", w.MaxConnections)
	}
}

// validSecretToken reports whether s is a secret token Telegram accepts.
func validSecretToken(s string) bool {
	if len(s) < 1 || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (v *validator) providers() {
	if len(v.c.Providers) == 0 {
		v.errorf("providers", "at least one provider is required")
		return
	}
	for _, name := range sortedKeys(v.c.Providers) {
		p := v.c.Providers[name]
		key := "providers." + name
		if strings.ContainsAny(name, "/*") || strings.ContainsFunc(name, isSpace) {
			v.errorf(key, "a provider name may not contain '/', '*' or spaces")
		}
		if err := checkHTTPURL(p.BaseURL); err != nil {
			v.errorf(key+".base_url", "%v", err)
		}
		for _, h := range sortedKeys(p.Headers) {
			hk := key + ".headers." + h
			if !isHeaderName(h) {
				v.errorf(hk, "not a valid HTTP header name")
			}
			if strings.ContainsAny(p.Headers[h], "\r\n\x00") {
				v.errorf(hk, "a header value may not contain line breaks")
			}
		}
	}
}

func (v *validator) llm() {
	l := v.c.LLM
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"llm.connect_timeout", l.ConnectTimeout},
		{"llm.first_byte_timeout", l.FirstByteTimeout},
		{"llm.idle_timeout", l.IdleTimeout},
	} {
		if t.d <= 0 {
			v.errorf(t.key, "must be positive, got %s", t.d)
		}
	}
	if l.MaxRetries < 0 || l.MaxRetries > 10 {
		v.errorf("llm.max_retries", "must be between 0 and 10, got %d", l.MaxRetries)
	}
}

// modelRef checks a "provider/model" reference; wildcard allows
// "provider/*", and anyProvider a provider that is not configured (an
// alias that names one is unusable, which Warnings says, but harmless).
func (v *validator) modelRef(key, ref string, wildcard, anyProvider bool) bool {
	provider, model, ok := SplitModel(ref)
	switch {
	case !ok:
		v.errorf(key, "want \"provider/model\", got %q", ref)
	case strings.ContainsFunc(ref, isSpace):
		v.errorf(key, "a model name may not contain spaces, got %q", ref)
	case !anyProvider && !hasKey(v.c.Providers, provider):
		v.errorf(key, "provider %q is not configured (providers: %s)", provider, strings.Join(sortedKeys(v.c.Providers), ", "))
	case model == "*" && !wildcard:
		v.errorf(key, "\"provider/*\" is allowed only in models.allowed, got %q", ref)
	case strings.Contains(model, "*") && model != "*":
		v.errorf(key, "a wildcard must be the whole model part (\"provider/*\"), got %q", ref)
	default:
		return true
	}
	return false
}

func (v *validator) models() {
	m := v.c.Models
	if m.Default == "" {
		v.errorf("models.default", "must name the default model as \"provider/model\"")
	} else if v.modelRef("models.default", m.Default, false, false) && len(m.Allowed) > 0 && !modelAllowed(m.Allowed, m.Default) {
		v.errorf("models.default", "%q is not in models.allowed", m.Default)
	}
	for i, ref := range m.Allowed {
		v.modelRef(fmt.Sprintf("models.allowed[%d]", i), ref, true, false)
	}
	for _, name := range sortedKeys(m.Aliases) {
		key := "models.aliases." + name
		if strings.Contains(name, "/") || strings.ContainsFunc(name, isSpace) {
			v.errorf(key, "an alias may not contain '/' or spaces")
		}
		v.modelRef(key, m.Aliases[name], false, true)
	}
	v.atLeast("models.context_length", int64(m.ContextLength), 1)
	for i, pat := range m.Vision {
		if _, err := path.Match(strings.ToLower(pat), ""); err != nil || pat == "" {
			v.errorf(fmt.Sprintf("models.vision[%d]", i), "want a glob pattern such as \"*-vl-*\" or \"ollama/llava*\", got %q", pat)
		}
	}
	if m.Transcription != "" {
		v.modelRef("models.transcription", m.Transcription, false, true)
	}
	for _, name := range sortedKeys(m.Prices) {
		key := "models.prices." + name
		v.modelRef(key, name, false, true)
		p := m.Prices[name]
		for _, f := range []struct {
			name string
			usd  float64
		}{{"input", p.Input}, {"output", p.Output}} {
			if f.usd < 0 || f.usd > maxPrice {
				v.errorf(key+"."+f.name, "want USD per million tokens, from 0 to %d, got %s", maxPrice, fmtNumber(f.usd))
			}
		}
	}
	for i, ref := range m.Restricted {
		v.modelRef(fmt.Sprintf("models.restricted[%d]", i), ref, true, true)
	}
}

// Bounds past which a price or a limit is a mistake (a price per token
// written as per million, a limit with zeros too many).
const (
	maxPrice       = 10_000 // USD per million tokens
	maxLimitTokens = 1_000_000_000_000
	maxLimitUSD    = 1_000_000
	// Usage counters are kept at least a month and a day, so that the
	// month's count survives its month; at most a century.
	minUsageRetention, maxUsageRetention = 32, 36500
)

// fmtNumber writes a number of the config as it would be written there.
func fmtNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (v *validator) limits() {
	l := v.c.Limits
	if l.Timezone == "" || l.Timezone == "Local" {
		v.errorf("limits.timezone", "want an IANA time zone name such as UTC or Europe/Berlin, got %q", l.Timezone)
	} else if _, err := time.LoadLocation(l.Timezone); err != nil {
		v.errorf("limits.timezone", "want an IANA time zone name such as UTC or Europe/Berlin, got %q", l.Timezone)
	}
	if n := l.UsageRetentionDays; n < minUsageRetention || n > maxUsageRetention {
		v.errorf("limits.usage_retention_days", "must be between %d (a month and a day) and %d, got %d", minUsageRetention, maxUsageRetention, n)
	}
	for _, s := range []struct {
		key string
		lim LimitConfig
	}{
		{"limits.user", l.User}, {"limits.conversation", l.Conversation}, {"limits.group", l.Group}, {"limits.key", l.Key},
	} {
		v.limit(s.key, s.lim)
	}
	for _, name := range sortedKeys(l.Models) {
		key := "limits.models." + name
		v.modelRef(key, name, false, true)
		v.limit(key, l.Models[name])
	}
}

// limit checks one budget: no negative cap, none absurdly high.
func (v *validator) limit(key string, l LimitConfig) {
	for _, f := range []struct {
		name      string
		got, most float64
	}{
		{"daily_tokens", float64(l.DailyTokens), maxLimitTokens},
		{"monthly_tokens", float64(l.MonthlyTokens), maxLimitTokens},
		{"daily_usd", l.DailyUSD, maxLimitUSD},
		{"monthly_usd", l.MonthlyUSD, maxLimitUSD},
	} {
		if f.got < 0 || f.got > f.most {
			v.errorf(key+"."+f.name, "must be 0 (no limit) or a positive number up to %s, got %s", fmtNumber(f.most), fmtNumber(f.got))
		}
	}
}

// modelAllowed reports whether ref matches an entry of allowed.
func modelAllowed(allowed []string, ref string) bool {
	provider, _, _ := SplitModel(ref)
	return slices.Contains(allowed, ref) || slices.Contains(allowed, provider+"/*")
}

func (v *validator) chat() {
	c := v.c.Chat
	if t := c.Temperature; t != nil && (*t < 0 || *t > 2) {
		v.errorf("chat.temperature", "must be between 0 and 2, got %g", *t)
	}
	v.atLeast("chat.max_tokens", int64(c.MaxTokens), 0)
	v.atLeast("chat.max_history_messages", int64(c.MaxHistoryMessages), 1)
	switch c.Reasoning {
	case ReasoningHidden, ReasoningCollapsed, ReasoningFull:
	default:
		v.errorf("chat.reasoning", "want hidden, collapsed or full, got %q", c.Reasoning)
	}
	v.atLeast("chat.max_system_prompt", int64(c.MaxSystemPrompt), 1)
	v.atLeast("chat.max_message", int64(c.MaxMessage), 1)
	v.atLeast("chat.queue", int64(c.Queue), 0)
	v.atLeast("chat.user_rate", int64(c.UserRate), 0)
	v.atLeast("chat.max_answer_chars", int64(c.MaxAnswerChars), 1000)
	v.atLeast("chat.parallel", int64(c.Parallel), 1)
	v.atLeast("chat.max_images", int64(c.MaxImages), 0)
	v.atLeast("chat.image_max_side", int64(c.ImageMaxSide), 64)
	v.atLeast("chat.max_file_chars", int64(c.MaxFileChars), 100)
	v.atLeast("chat.max_attachment_bytes", c.MaxAttachmentBytes, 1024)
}

func (v *validator) telegram() {
	t := v.c.Telegram
	if err := checkEndpointFormat(t.APIEndpoint); err != nil {
		v.errorf("telegram.api_endpoint", "%v", err)
	}
	v.interval("telegram.edit_interval", t.EditInterval)
	v.interval("telegram.group_edit_interval", t.GroupEditInterval)
	v.window("telegram.window", t.Window, "telegram.edit_interval", t.EditInterval)
	v.window("telegram.group_window", t.GroupWindow, "telegram.group_edit_interval", t.GroupEditInterval)
	v.window("telegram.global_window", t.GlobalWindow, "", 0)
	for _, list := range []struct {
		key string
		ids []int64
	}{
		{"telegram.allowed_chats", t.AllowedChats},
		{"telegram.allowed_users", t.AllowedUsers},
		{"telegram.admins", t.Admins},
	} {
		for i, id := range list.ids {
			if id == 0 {
				v.errorf(fmt.Sprintf("%s[%d]", list.key, i), "0 is not a Telegram id")
			}
		}
	}
	switch v.c.Telegram.Format {
	case "auto", "rich", "html":
	default:
		v.errorf("telegram.format", "want auto, rich or html, got %q", v.c.Telegram.Format)
	}
	v.webhook()
}

func (v *validator) discord() {
	d := v.c.Discord
	if err := checkHTTPURL(d.APIBase); err != nil {
		v.errorf("discord.api_base", "%v", err)
	} else if u, _ := url.Parse(d.APIBase); strings.Trim(u.Path, "/") != "" {
		v.errorf("discord.api_base", "want only a scheme and host such as https://discord.com, got %q", d.APIBase)
	}
	if d.ApplicationID != "" && !isSnowflake(d.ApplicationID) {
		v.errorf("discord.application_id", "want a numeric id, got %q", d.ApplicationID)
	}
	v.interval("discord.edit_interval", d.EditInterval)
	v.window("discord.window", d.Window, "discord.edit_interval", d.EditInterval)
	v.window("discord.global_window", d.GlobalWindow, "", 0)
	for _, list := range []struct {
		key string
		ids []string
	}{
		{"discord.guilds", d.Guilds},
		{"discord.allowed_guilds", d.AllowedGuilds},
		{"discord.allowed_channels", d.AllowedChannels},
		{"discord.admins", d.Admins},
	} {
		for i, id := range list.ids {
			if !isSnowflake(id) {
				v.errorf(fmt.Sprintf("%s[%d]", list.key, i), "want a numeric id, got %q", id)
			}
		}
	}
	switch v.c.Discord.Components {
	case "auto", "v2", "legacy":
	default:
		v.errorf("discord.components", "want auto, v2 or legacy, got %q", v.c.Discord.Components)
	}
	if d.Shards != ShardsAuto && (d.Shards < 1 || d.Shards > maxShards) {
		v.errorf("discord.shards", "want auto or 1 to %d, got %d", maxShards, d.Shards)
	}
}

// maxShards bounds discord.shards: Discord recommends one shard per
// 1,000 guilds and requires one per 2,500.
const maxShards = 4096

func (v *validator) gateway() {
	g := v.c.Gateway
	if err := checkListen(g.Listen, "127.0.0.1:8000"); err != nil {
		v.errorf("gateway.listen", "%v", err)
	} else if !isLoopback(g.Listen) && len(g.APIKeys) == 0 && !g.AllowAnonymous && !v.envReported["gateway.api_keys"] {
		v.errorf("gateway.listen", "%q is reachable from other machines, but gateway.api_keys is empty and "+
			"gateway.allow_anonymous is false: add an API key, listen on 127.0.0.1, or set "+
			"gateway.allow_anonymous: true to let anyone who can connect use your providers", g.Listen)
	}
	seen := map[string]bool{}
	for i, k := range g.APIKeys {
		key := fmt.Sprintf("gateway.api_keys[%d]", i)
		switch {
		case k == "" || strings.ContainsFunc(k, isSpace):
			v.errorf(key, "an API key may not be empty or contain spaces")
		case seen[k]:
			v.errorf(key, "duplicate API key")
		}
		seen[k] = true
	}
	for i, o := range g.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			v.errorf(fmt.Sprintf("gateway.cors_origins[%d]", i), "%v", err)
		}
	}
	v.atLeast("gateway.max_body", g.MaxBody, 1)
	v.atLeast("gateway.max_streams_per_key", int64(g.MaxStreamsPerKey), 1)
	v.atLeast("gateway.requests_per_minute", int64(g.RequestsPerMinute), 0)
}

func (v *validator) metricsAndLog() {
	if l := v.c.Metrics.Listen; l != "" {
		if err := checkListen(l, "127.0.0.1:9090"); err != nil {
			v.errorf("metrics.listen", "%v", err)
		}
	}
	switch v.c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errorf("log.level", "want debug, info, warn or error, got %q", v.c.Log.Level)
	}
	switch v.c.Log.Format {
	case "text", "json":
	default:
		v.errorf("log.format", "want text or json, got %q", v.c.Log.Format)
	}
}

// checkHTTPURL checks that s is an absolute http or https URL with a host.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("want an http or https URL, got %q", s)
	}
	return nil
}

// checkEndpointFormat checks a Telegram endpoint format string: exactly two
// %s verbs (token, method), no other verb, and a URL once filled in.
func checkEndpointFormat(s string) error {
	verbs := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == 's' {
			verbs++
			i++
			continue
		}
		return fmt.Errorf("may contain only %%s verbs (and %%%% for a literal %%), got %q", s)
	}
	if verbs != 2 {
		return fmt.Errorf("must contain %%s twice (the token, then the method), as in https://api.telegram.org/bot%%s/%%s; got %q", s)
	}
	if err := checkHTTPURL(fmt.Sprintf(s, "TOKEN", "getMe")); err != nil {
		return fmt.Errorf("want an http or https URL format, got %q", s)
	}
	return nil
}

// checkListen checks a host:port listen address with a numeric port;
// example is named in the error.
func checkListen(addr, example string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port such as %s, got %q", example, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("want a port number from 0 to 65535, got %q", addr)
	}
	if strings.ContainsFunc(host, isSpace) || strings.ContainsAny(host, "/") {
		return fmt.Errorf("not a valid host, got %q", addr)
	}
	return nil
}

// isLoopback reports whether a valid listen address accepts connections
// from this machine only. An empty host listens on every interface.
func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkOrigin checks a CORS origin: "*" or scheme://host[:port].
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("want \"*\" or an origin such as https://example.com, got %q", o)
	}
	return nil
}

func isSnowflake(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isHeaderName reports whether s is an HTTP token (RFC 9110 field name).
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
