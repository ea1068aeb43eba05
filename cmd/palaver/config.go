package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds palaver's configuration: the types (one per YAML
// section), the built-in defaults, loading from YAML, validation, warnings
// and a redacted rendering for logs. Config types stay in cmd/palaver; the
// packages it wires take plain values.

// DefaultConfigFile is the file read when --config is not given. It is
// optional: without it the built-in defaults apply.
const DefaultConfigFile = "config.yaml"

// DefaultSystemPrompt is chat.system_prompt when the config does not set
// one. {date} and {model} are replaced when a prompt is built.
const DefaultSystemPrompt = "You are {model}, a helpful assistant talking with people in a chat. " +
	"Today is {date}. Answer clearly and concisely, and use Markdown where it helps."

// Reasoning display modes accepted by chat.reasoning. They are the values of
// sessions.ReasoningMode.
const (
	ReasoningHidden    = "hidden"
	ReasoningCollapsed = "collapsed"
	ReasoningFull      = "full"
)

// minEditInterval is the shortest edit interval a config may set.
const minEditInterval = 100 * time.Millisecond

// Config is palaver's whole configuration. Load it with LoadConfig, or start
// from DefaultConfig. Its YAML key names are public and documented in the
// repository's config.yaml.
type Config struct {
	Storage StorageConfig `yaml:"storage"`
	// Providers maps a provider name to its endpoint. A file that has a
	// providers key replaces the default providers entirely.
	Providers map[string]ProviderConfig `yaml:"providers"`
	LLM       LLMConfig                 `yaml:"llm"`
	Models    ModelsConfig              `yaml:"models"`
	Chat      ChatConfig                `yaml:"chat"`
	Telegram  TelegramConfig            `yaml:"telegram"`
	Discord   DiscordConfig             `yaml:"discord"`
	Gateway   GatewayConfig             `yaml:"gateway"`
	Metrics   MetricsConfig             `yaml:"metrics"`
	Log       LogConfig                 `yaml:"log"`

	// source records where the config was read from, so that Validate can
	// name lines. It is nil for a config built in code.
	source *configSource
}

// StorageConfig is the storage section: the bbolt file.
type StorageConfig struct {
	// Path is the bbolt database file.
	Path string `yaml:"path"`
	// HistoryLimit is how many messages each conversation keeps; older ones
	// are deleted. 0 keeps everything.
	HistoryLimit int `yaml:"history_limit"`
}

// ProviderConfig is one OpenAI-compatible endpoint (providers.<name>).
type ProviderConfig struct {
	// BaseURL is the API root that /chat/completions and /models are
	// appended to, e.g. https://api.deepinfra.com/v1/openai.
	BaseURL string `yaml:"base_url"`
	// APIKey is sent as "Authorization: Bearer KEY". Empty sends no key (on
	// api.deepinfra.com: anonymous web-page mode).
	APIKey string `yaml:"api_key"`
	// Headers are sent with every request to this provider.
	Headers map[string]string `yaml:"headers"`
}

// LLMConfig bounds every request to every provider.
type LLMConfig struct {
	// ConnectTimeout bounds the TCP and TLS connect.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// FirstByteTimeout bounds the wait from sending a request to the
	// response headers.
	FirstByteTimeout time.Duration `yaml:"first_byte_timeout"`
	// IdleTimeout is the longest gap allowed between two stream chunks.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxRetries is how many times a request that failed before its first
	// byte is retried.
	MaxRetries int `yaml:"max_retries"`
}

// ModelsConfig chooses the models users may talk to.
type ModelsConfig struct {
	// Default is the model of a new conversation, "provider/model".
	Default string `yaml:"default"`
	// Allowed lists "provider/model" or "provider/*" entries. Empty allows
	// every model the providers list.
	Allowed []string `yaml:"allowed"`
	// Aliases maps a short name to "provider/model".
	Aliases map[string]string `yaml:"aliases"`
	// ContextLength is the context budget in tokens for a model whose
	// metadata does not state one.
	ContextLength int `yaml:"context_length"`
}

// ChatConfig holds conversation defaults and per-user limits.
type ChatConfig struct {
	// SystemPrompt is the default system prompt; {date} and {model} are
	// replaced when a prompt is built.
	SystemPrompt string `yaml:"system_prompt"`
	// Temperature is sent when non-nil; nil leaves it to the provider.
	Temperature *float64 `yaml:"temperature,omitempty"`
	// MaxTokens caps an answer's length in tokens; 0 sends no cap, so the
	// provider's own limit applies (a fixed cap would cut long reasoning).
	MaxTokens int `yaml:"max_tokens"`
	// MaxHistoryMessages is how many earlier messages are sent with a turn,
	// before the context budget trims further.
	MaxHistoryMessages int `yaml:"max_history_messages"`
	// Reasoning is how reasoning is shown: hidden, collapsed or full.
	Reasoning string `yaml:"reasoning"`
	// MaxSystemPrompt is the longest system prompt a user may set, in
	// characters.
	MaxSystemPrompt int `yaml:"max_system_prompt"`
	// MaxMessage is the longest message accepted from a user, in characters.
	MaxMessage int `yaml:"max_message"`
	// Queue is how many messages wait per conversation while an answer
	// runs; more are refused. 0 refuses any message while answering.
	Queue int `yaml:"queue"`
	// UserRate is how many messages one user may send per minute; 0 is
	// unlimited.
	UserRate int `yaml:"user_rate"`
}

// TelegramConfig is the Telegram bot.
type TelegramConfig struct {
	// Token is the bot token from @BotFather; empty disables Telegram.
	Token string `yaml:"token"`
	// APIEndpoint is the Bot API URL format string: the first %s is the
	// token, the second the method.
	APIEndpoint string `yaml:"api_endpoint"`
	// EditInterval is the shortest gap between edits in a private chat.
	EditInterval time.Duration `yaml:"edit_interval"`
	// GroupEditInterval is the shortest gap between edits in a group.
	GroupEditInterval time.Duration `yaml:"group_edit_interval"`
	// AllowedChats and AllowedUsers restrict who may use the bot; a message
	// passes when its chat or its author is listed. Both empty allow
	// everyone.
	AllowedChats []int64 `yaml:"allowed_chats"`
	AllowedUsers []int64 `yaml:"allowed_users"`
	// Admins are user ids allowed to run admin commands.
	Admins []int64 `yaml:"admins"`
	// Drafts streams answers in private chats with sendMessageDraft.
	Drafts bool `yaml:"drafts"`
}

// DiscordConfig is the Discord bot. Ids are snowflakes written as strings.
type DiscordConfig struct {
	// Token is the bot token; empty disables Discord.
	Token string `yaml:"token"`
	// ApplicationID is the application's id; empty learns it at login.
	ApplicationID string `yaml:"application_id"`
	// APIBase is the scheme and host that replace https://discord.com.
	APIBase string `yaml:"api_base"`
	// Guilds registers slash commands in these guilds only; empty
	// registers them globally.
	Guilds []string `yaml:"guilds"`
	// EditInterval is the shortest gap between edits in a channel.
	EditInterval time.Duration `yaml:"edit_interval"`
	// AllowedGuilds and AllowedChannels restrict where the bot answers; a
	// message passes when its guild or its channel is listed. Both empty
	// allow everywhere.
	AllowedGuilds   []string `yaml:"allowed_guilds"`
	AllowedChannels []string `yaml:"allowed_channels"`
	// Admins are user or role ids allowed to run admin commands.
	Admins []string `yaml:"admins"`
}

// GatewayConfig is the local OpenAI-compatible endpoint (palaver serve).
type GatewayConfig struct {
	// Enabled starts the endpoint with palaver run too.
	Enabled bool `yaml:"enabled"`
	// Listen is the host:port to listen on.
	Listen string `yaml:"listen"`
	// APIKeys are accepted as "Authorization: Bearer KEY".
	APIKeys []string `yaml:"api_keys"`
	// AllowAnonymous serves requests without a key.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// CORSOrigins are the browser origins allowed to call the endpoint
	// ("*" for any).
	CORSOrigins []string `yaml:"cors_origins"`
	// MaxBody is the largest request body in bytes.
	MaxBody int64 `yaml:"max_body"`
	// MaxStreamsPerKey is how many requests one key may run at once.
	MaxStreamsPerKey int `yaml:"max_streams_per_key"`
	// RequestsPerMinute is how many requests one key may start per minute;
	// 0 is unlimited.
	RequestsPerMinute int `yaml:"requests_per_minute"`
}

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is the host:port serving /metrics; empty serves none.
	Listen string `yaml:"listen"`
}

// LogConfig is the process log.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// DefaultConfig returns the built-in defaults as they are with every
// environment variable unset. The repository's config.yaml documents the
// same values.
func DefaultConfig() *Config { return defaultConfig(nil) }

// defaultConfig returns the built-in defaults. The secrets that config.yaml
// writes as ${VAR} are read through getenv, so that loading no file and
// loading config.yaml give the same config.
func defaultConfig(getenv func(string) string) *Config {
	env := func(name string) string {
		if getenv == nil {
			return ""
		}
		return getenv(name)
	}
	return &Config{
		Storage: StorageConfig{Path: "palaver.db", HistoryLimit: 1000},
		Providers: map[string]ProviderConfig{
			"deepinfra": {
				BaseURL: "https://api.deepinfra.com/v1/openai",
				APIKey:  env("DEEPINFRA_API_KEY"),
			},
		},
		LLM: LLMConfig{
			ConnectTimeout:   10 * time.Second,
			FirstByteTimeout: 60 * time.Second,
			IdleTimeout:      90 * time.Second,
			MaxRetries:       2,
		},
		Models: ModelsConfig{
			Default: "deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo",
			Aliases: map[string]string{
				"r1": "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo",
				"v3": "deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo",
			},
			ContextLength: 32768,
		},
		Chat: ChatConfig{
			SystemPrompt:       DefaultSystemPrompt,
			MaxHistoryMessages: 40,
			Reasoning:          ReasoningCollapsed,
			MaxSystemPrompt:    4000,
			MaxMessage:         16000,
			Queue:              3,
			UserRate:           20,
		},
		Telegram: TelegramConfig{
			Token:             env("TELEGRAM_BOT_TOKEN"),
			APIEndpoint:       "https://api.telegram.org/bot%s/%s",
			EditInterval:      time.Second,
			GroupEditInterval: 3 * time.Second,
			Drafts:            true,
		},
		Discord: DiscordConfig{
			Token:        env("DISCORD_BOT_TOKEN"),
			APIBase:      "https://discord.com",
			EditInterval: time.Second,
		},
		Gateway: GatewayConfig{
			Listen:            "127.0.0.1:8000",
			MaxBody:           1 << 20,
			MaxStreamsPerKey:  8,
			RequestsPerMinute: 60,
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// Path is the file the config was read from; empty for built-in defaults.
func (c *Config) Path() string {
	if c.source == nil {
		return ""
	}
	return c.source.file
}

// SplitModel splits a "provider/model" reference at its first '/'. ok is
// false when either part is empty.
func SplitModel(ref string) (provider, model string, ok bool) {
	provider, model, found := strings.Cut(ref, "/")
	if !found || provider == "" || model == "" {
		return "", "", false
	}
	return provider, model, true
}

// ---------------------------------------------------------------------------
// Loading

// ConfigError is one problem with a config, located in its file when the
// position is known.
type ConfigError struct {
	File   string // the config file; empty for a config built in code
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	// Key is the dotted key path ("chat.temperature", "telegram.admins[1]");
	// empty when Msg names the key itself (unknown keys).
	Key string
	Msg string
}

// Error renders "file:line:col: key: message", leaving out what is unknown.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" && e.Line > 0 {
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadConfig reads the YAML file at path over the built-in defaults and
// validates the result; a returned config is always valid. An empty path
// means DefaultConfigFile. When explicit is false a missing file is not an
// error and the defaults are returned; when it is true (--config was given)
// a missing file is an error wrapping fs.ErrNotExist.
//
// ${VAR} inside a scalar value is replaced by getenv("VAR") (os.Getenv when
// getenv is nil), "" when unset; "$${" writes a literal "${"; any other '$'
// is kept. Keys are never expanded. A number, boolean or duration that is
// empty (or expands to empty) keeps its default; an empty string or list
// sets it empty. Maps and lists replace their defaults rather than merge;
// when the file replaces the providers but writes no models.aliases, the
// default aliases naming a provider no longer configured are dropped.
//
// Decoding and validation problems are all reported at once, joined, each a
// *ConfigError naming the key and the line.
func LoadConfig(path string, explicit bool, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if path == "" {
		if explicit {
			return nil, errors.New("config: empty config file name")
		}
		path = DefaultConfigFile
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			cfg := defaultConfig(getenv)
			if err := cfg.Validate(); err != nil {
				return nil, err
			}
			return cfg, nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(path, data, getenv)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseConfig decodes data (named file in messages) over the defaults,
// without validating.
func parseConfig(file string, data []byte, getenv func(string) string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: parse %s: %w", file, err)
	}
	cfg := defaultConfig(getenv)
	d := &decoder{file: file, getenv: getenv, src: &configSource{file: file, pos: map[string]position{}}}
	cfg.source = d.src
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root := doc.Content[0]
		if r := d.resolve(root, ""); r != nil && r.Kind != yaml.MappingNode && !isNull(r) {
			d.errorf(r, "", "the config must be a mapping of sections (storage, providers, models, ...), got %s", describe(r))
		} else {
			d.value(root, reflect.ValueOf(cfg).Elem(), "")
		}
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	// The default aliases name the default provider. A file that replaces
	// the providers without writing aliases keeps only those that still
	// name a configured provider.
	if _, written := d.src.pos["models.aliases"]; !written {
		for name, ref := range cfg.Models.Aliases {
			if provider, _, _ := SplitModel(ref); !hasKey(cfg.Providers, provider) {
				delete(cfg.Models.Aliases, name)
			}
		}
		if len(cfg.Models.Aliases) == 0 {
			cfg.Models.Aliases = nil
		}
	}
	return cfg, nil
}

// configSource is where a config was read from.
type configSource struct {
	file string
	// pos maps a dotted key path to where it was written.
	pos map[string]position
}

type position struct{ line, column int }

// decoder decodes a yaml.Node tree into a Config, strictly: every key must
// name a field and every value must fit its type. It keeps going after a
// problem so that all are reported.
type decoder struct {
	file   string
	getenv func(string) string
	src    *configSource
	errs   []error
	// steps counts values decoded, against alias bombs; merging holds the
	// mappings being merged, against merge cycles.
	steps   int
	merging map[*yaml.Node]bool
}

var durationType = reflect.TypeFor[time.Duration]()

// maxAliasDepth bounds alias resolution, against alias loops.
const maxAliasDepth = 32

// maxDecodeSteps bounds the values one config may decode, far above any
// real config, so that aliases cannot make decoding explode.
const maxDecodeSteps = 100_000

// step counts one decoded value and reports whether decoding may go on.
func (d *decoder) step(n *yaml.Node) bool {
	d.steps++
	if d.steps == maxDecodeSteps {
		d.errorf(n, "", "too many values (aliases expanding without end?)")
	}
	return d.steps < maxDecodeSteps
}

func (d *decoder) errorf(n *yaml.Node, key, format string, args ...any) {
	e := &ConfigError{File: d.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// resolve follows aliases to the node they name.
func (d *decoder) resolve(n *yaml.Node, key string) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == maxAliasDepth {
			d.errorf(n, key, "aliases nested too deeply")
			return nil
		}
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode {
		d.errorf(n, key, "unexpected document")
		return nil
	}
	return n
}

// value decodes n into v. It reports whether v was set: false when n is
// empty (or expands to empty) for a type whose default then stays.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) bool {
	n = d.resolve(n, key)
	if n == nil || !d.step(n) {
		return false
	}
	if v.Type() == durationType {
		return d.scalar(n, v, key)
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, key)
		return true
	case reflect.Map:
		d.mapping(n, v, key)
		return true
	case reflect.Slice:
		d.sequence(n, v, key)
		return true
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return true
		}
		p := reflect.New(v.Type().Elem())
		if !d.value(n, p.Elem(), key) {
			return false
		}
		v.Set(p)
		return true
	default:
		return d.scalar(n, v, key)
	}
}

// pairs calls f for each key and value of mapping n, merge keys ("<<")
// first so that the mapping's own keys override what they bring in. It
// rejects duplicate and non-scalar keys and records key positions.
func (d *decoder) pairs(n *yaml.Node, key string, merge func(*yaml.Node), f func(k, v *yaml.Node, name, path string)) {
	if !d.step(n) {
		return
	}
	if d.merging[n] {
		d.errorf(n, key, "a merge key (<<) includes the mapping that holds it")
		return
	}
	if d.merging == nil {
		d.merging = map[*yaml.Node]bool{}
	}
	d.merging[n] = true
	defer delete(d.merging, n)
	for i := 0; i+1 < len(n.Content) && d.steps < maxDecodeSteps; i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			continue
		}
		v = d.resolve(v, key)
		switch {
		case v == nil:
		case v.Kind == yaml.MappingNode:
			merge(v)
		case v.Kind == yaml.SequenceNode:
			for _, m := range v.Content {
				if d.steps >= maxDecodeSteps {
					return
				}
				if m = d.resolve(m, key); m != nil && m.Kind == yaml.MappingNode {
					merge(m)
				} else if m != nil {
					d.errorf(m, key, "a merge key (<<) takes mappings, got %s", describe(m))
				}
			}
		default:
			d.errorf(v, key, "a merge key (<<) takes a mapping, got %s", describe(v))
		}
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.step(k) {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, key, "keys must be plain names, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			continue
		}
		name := k.Value
		path := joinKey(key, name)
		if name == "" {
			d.errorf(k, key, "empty key")
			continue
		}
		if seen[name] {
			d.errorf(k, "", "duplicate key %q", path)
			continue
		}
		seen[name] = true
		d.src.pos[path] = position{k.Line, k.Column}
		f(k, v, name, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, key string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, key, "want a mapping, got %s", describe(n))
		return
	}
	names, index := yamlFields(v.Type())
	d.pairs(n, key, func(m *yaml.Node) { d.structure(m, v, key) }, func(k, val *yaml.Node, name, path string) {
		i, ok := index[name]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", path)
			if s := suggest(name, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", joinKey(key, s))
			}
			d.errorf(k, "", "%s", msg)
			return
		}
		d.value(val, v.Field(i), path)
	})
}

// mapping decodes a YAML mapping into a Go map, replacing its old value.
// An empty mapping leaves the map nil.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, key, "want a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	var fill func(n *yaml.Node)
	fill = func(n *yaml.Node) {
		d.pairs(n, key, fill, func(_, val *yaml.Node, name, path string) {
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(val, elem, path)
			m.SetMapIndex(reflect.ValueOf(name), elem)
		})
	}
	fill(n)
	if m.Len() == 0 {
		v.SetZero()
		return
	}
	v.Set(m)
}

// sequence decodes a YAML list into a Go slice, replacing its old value.
// Items that expand to empty are left out; an empty list leaves it nil.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, key string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		path := fmt.Sprintf("%s[%d]", key, i)
		d.src.pos[path] = position{item.Line, item.Column}
		if r := d.resolve(item, path); r != nil && r.Kind == yaml.ScalarNode && !isNull(r) {
			if text, expanded := expandEnv(r.Value, d.getenv); expanded && strings.TrimSpace(text) == "" {
				continue
			}
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		if d.value(item, elem, path) {
			s = reflect.Append(s, elem)
		}
	}
	if s.Len() == 0 {
		v.SetZero()
		return
	}
	v.Set(s)
}

// scalar decodes a scalar node into a string, bool, integer, float or
// duration.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, key string) bool {
	want := describeType(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, key, "want %s, got %s", want, describe(n))
		return false
	}
	if v.Kind() == reflect.String {
		if isNull(n) {
			v.SetString("")
			return true
		}
		s, _ := expandEnv(n.Value, d.getenv)
		v.SetString(s)
		return true
	}
	if isNull(n) {
		return false
	}
	s, expanded := expandEnv(n.Value, d.getenv)
	s = strings.TrimSpace(s)
	if expanded && s == "" {
		return false
	}
	bad := func() bool {
		d.errorf(n, key, "want %s, got %q", want, s)
		return false
	}
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			return bad()
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Bool:
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			return bad()
		}
	case v.CanInt():
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, v.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				d.errorf(n, key, "%s is out of range", s)
				return false
			}
			return bad()
		}
		v.SetInt(i)
	case v.CanFloat():
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad()
		}
		v.SetFloat(f)
	default:
		// Every field type of Config is handled above.
		d.errorf(n, key, "cannot decode into %s", v.Type())
		return false
	}
	return true
}

// yamlFields lists the YAML names of struct type t's fields and maps each
// to its field index.
func yamlFields(t reflect.Type) ([]string, map[string]int) {
	var names []string
	index := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 1s or 1500ms"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Slice:
		return "a list"
	}
	return "a mapping"
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// expandEnv replaces ${NAME} (NAME being letters, digits and '_', not
// starting with a digit) with getenv(NAME), and "$${" with a literal "${".
// Any other '$' is kept. expanded reports whether a variable was replaced.
func expandEnv(s string, getenv func(string) string) (out string, expanded bool) {
	if !strings.Contains(s, "${") {
		return s, false
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if strings.HasPrefix(s[i:], "${") {
			if end := strings.IndexByte(s[i+2:], '}'); end >= 0 && isEnvName(s[i+2:i+2+end]) {
				b.WriteString(getenv(s[i+2 : i+2+end]))
				i += 3 + end
				expanded = true
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), expanded
}

func isEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// suggest returns the known name closest to an unknown one, or "" when none
// is close enough to be a likely typo.
func suggest(name string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestDist := "", 3
	for _, k := range known {
		dist := editDistance(norm(name), norm(k))
		if dist < bestDist && dist <= max(1, len(k)/3) {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ---------------------------------------------------------------------------
// Validation

// Validate checks the whole config and returns every problem found, joined;
// each is a *ConfigError naming the key, and its line when the config was
// loaded from a file. It returns nil for a valid config.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.storage()
	v.providers()
	v.llm()
	v.models()
	v.chat()
	v.telegram()
	v.discord()
	v.gateway()
	v.metricsAndLog()
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) errorf(key, format string, args ...any) {
	e := &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
	if s := v.c.source; s != nil {
		e.File = s.file
		if p, ok := s.pos[key]; ok {
			e.Line, e.Column = p.line, p.column
		}
	}
	v.errs = append(v.errs, e)
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

func (v *validator) storage() {
	if strings.TrimSpace(v.c.Storage.Path) == "" {
		v.errorf("storage.path", "must name the database file")
	}
	v.atLeast("storage.history_limit", int64(v.c.Storage.HistoryLimit), 0)
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
// "provider/*".
func (v *validator) modelRef(key, ref string, wildcard bool) bool {
	provider, model, ok := SplitModel(ref)
	switch {
	case !ok:
		v.errorf(key, "want \"provider/model\", got %q", ref)
	case strings.ContainsFunc(ref, isSpace):
		v.errorf(key, "a model name may not contain spaces, got %q", ref)
	case !hasKey(v.c.Providers, provider):
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
	} else if v.modelRef("models.default", m.Default, false) && len(m.Allowed) > 0 && !modelAllowed(m.Allowed, m.Default) {
		v.errorf("models.default", "%q is not in models.allowed", m.Default)
	}
	for i, ref := range m.Allowed {
		v.modelRef(fmt.Sprintf("models.allowed[%d]", i), ref, true)
	}
	for _, name := range sortedKeys(m.Aliases) {
		key := "models.aliases." + name
		if strings.Contains(name, "/") || strings.ContainsFunc(name, isSpace) {
			v.errorf(key, "an alias may not contain '/' or spaces")
		}
		v.modelRef(key, m.Aliases[name], false)
	}
	v.atLeast("models.context_length", int64(m.ContextLength), 1)
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
}

func (v *validator) telegram() {
	t := v.c.Telegram
	if err := checkEndpointFormat(t.APIEndpoint); err != nil {
		v.errorf("telegram.api_endpoint", "%v", err)
	}
	v.interval("telegram.edit_interval", t.EditInterval)
	v.interval("telegram.group_edit_interval", t.GroupEditInterval)
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
}

func (v *validator) gateway() {
	g := v.c.Gateway
	if err := checkListen(g.Listen); err != nil {
		v.errorf("gateway.listen", "%v", err)
	} else if !isLoopback(g.Listen) && len(g.APIKeys) == 0 && !g.AllowAnonymous {
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
		if err := checkListen(l); err != nil {
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

// checkListen checks a host:port listen address with a numeric port.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port such as 127.0.0.1:8000, got %q", addr)
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

// ---------------------------------------------------------------------------
// Warnings

// Warnings lists problems that do not stop palaver but that its user should
// know about (palaver check prints them). They are full sentences, in a
// stable order.
func (c *Config) Warnings() []string {
	var w []string
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
		if c.Telegram.EditInterval < time.Second {
			w = append(w, fmt.Sprintf("telegram.edit_interval is %s: Telegram allows about one message per second "+
				"per chat, so edits will be refused with 429", c.Telegram.EditInterval))
		}
		if c.Telegram.GroupEditInterval < 3*time.Second {
			w = append(w, fmt.Sprintf("telegram.group_edit_interval is %s: Telegram allows about 20 messages per minute "+
				"per group, so edits will be refused with 429", c.Telegram.GroupEditInterval))
		}
	}
	if c.Discord.Token != "" {
		if len(c.Discord.AllowedGuilds) == 0 && len(c.Discord.AllowedChannels) == 0 {
			w = append(w, "discord.allowed_guilds and discord.allowed_channels are empty: "+
				"anyone who finds the bot can use it (and spend your provider credit)")
		}
		if c.Discord.EditInterval < time.Second {
			w = append(w, fmt.Sprintf("discord.edit_interval is %s: Discord allows about 5 edits per 5 seconds "+
				"per channel, so edits will be refused with 429", c.Discord.EditInterval))
		}
	}
	for _, name := range sortedKeys(c.Providers) {
		p := c.Providers[name]
		if u, err := url.Parse(p.BaseURL); err == nil && strings.EqualFold(u.Hostname(), "api.deepinfra.com") && p.APIKey == "" {
			w = append(w, fmt.Sprintf("providers.%s has no api_key: anonymous web-page mode, "+
				"which DeepInfra may refuse; set DEEPINFRA_API_KEY", name))
		}
	}
	if c.Storage.HistoryLimit > 0 && c.Storage.HistoryLimit < c.Chat.MaxHistoryMessages {
		w = append(w, fmt.Sprintf("storage.history_limit (%d) is below chat.max_history_messages (%d): "+
			"conversations will remember fewer messages than they could send", c.Storage.HistoryLimit, c.Chat.MaxHistoryMessages))
	}
	if c.Gateway.AllowAnonymous && checkListen(c.Gateway.Listen) == nil && !isLoopback(c.Gateway.Listen) {
		w = append(w, fmt.Sprintf("gateway.allow_anonymous is true and gateway.listen %q is reachable from other machines: "+
			"anyone who can connect can spend your provider credit", c.Gateway.Listen))
	}
	if l := c.Metrics.Listen; l != "" && checkListen(l) == nil && !isLoopback(l) {
		w = append(w, fmt.Sprintf("metrics.listen %q is reachable from other machines", l))
	}
	return w
}

// ---------------------------------------------------------------------------
// Redaction

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
