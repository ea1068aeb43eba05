package main

import (
	"strings"
	"time"
)

// This file holds palaver's configuration types (one per YAML section) and
// the built-in defaults; config_load.go reads YAML (config_syntax.go places
// its syntax errors), config_validate.go checks it, config_warn.go lists
// warnings and redacts secrets. Config types
// stay in cmd/palaver; the packages it wires take plain values.

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
	Limits    LimitsConfig              `yaml:"limits"`
	Cluster   ClusterConfig             `yaml:"cluster"`
	Metrics   MetricsConfig             `yaml:"metrics"`
	Log       LogConfig                 `yaml:"log"`

	// source records where the config was read from, so that Validate can
	// name lines. It is nil for a config built in code.
	source *configSource
}

// StorageConfig is the storage section: the bbolt file, or an etcd
// cluster shared by several processes.
type StorageConfig struct {
	// Path is the bbolt database file, used when Etcd.Endpoints is empty.
	Path string `yaml:"path"`
	// HistoryLimit is how many messages each conversation keeps; older ones
	// are deleted. 0 keeps everything.
	HistoryLimit int `yaml:"history_limit"`
	// Etcd, when it names endpoints, keeps everything in etcd instead, so
	// that several processes can share it (see Cluster).
	Etcd EtcdConfig `yaml:"etcd"`
}

// EtcdConfig is an etcd cluster (storage.etcd).
type EtcdConfig struct {
	// Endpoints are the members' client URLs, http://host:2379 or
	// https://host:2379.
	Endpoints []string `yaml:"endpoints"`
	// Prefix starts every key Palaver writes; processes of one bot share it.
	Prefix string `yaml:"prefix"`
	// Username and Password authenticate when etcd's auth is on.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS verifies the members (CA) and authenticates this process
	// (Cert, Key) on https endpoints.
	TLS TLSConfig `yaml:"tls"`
	// DialTimeout bounds connecting to the cluster.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// TLSConfig is a client's TLS files.
type TLSConfig struct {
	CA         string `yaml:"ca"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	ServerName string `yaml:"server_name"`
}

// ClusterConfig is this process's place among several sharing one etcd
// store.
type ClusterConfig struct {
	// Member names this process; empty is its host name and process id.
	Member string `yaml:"member"`
	// Failover is how long a process may go unheard before the others
	// take over what it held: its lease's time to live.
	Failover time.Duration `yaml:"failover"`
	// Advertise is the URL at which the other processes reach this one's
	// Telegram webhook listener, to forward updates to the leader.
	Advertise string `yaml:"advertise"`
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
	// Aliases maps a short name to "provider/model". An alias naming a
	// provider that is not configured (the built-in ones, when a file
	// replaces the providers) is valid but unusable; Warnings names it.
	Aliases map[string]string `yaml:"aliases"`
	// ContextLength is the context budget in tokens for a model whose
	// metadata does not state one.
	ContextLength int `yaml:"context_length"`
	// Vision lists glob patterns (path.Match syntax, matched without
	// regard to case against "provider/model") of the models that see
	// images, besides those whose provider's metadata says so.
	Vision []string `yaml:"vision"`
	// Transcription is the "provider/model" that turns voice messages
	// into text (an OpenAI-compatible /audio/transcriptions); empty turns
	// voice messages off.
	Transcription string `yaml:"transcription"`
	// Prices maps "provider/model" to its price, which wins over the
	// price in the provider's model list (DeepInfra publishes its own).
	Prices map[string]PriceConfig `yaml:"prices"`
	// Restricted lists "provider/model" or "provider/*" entries only
	// admins may choose or use.
	Restricted []string `yaml:"restricted"`
}

// PriceConfig is a model's price in USD per million tokens.
type PriceConfig struct {
	Input  float64 `yaml:"input"`
	Output float64 `yaml:"output"`
}

// LimitsConfig holds the usage budgets and how usage is counted.
type LimitsConfig struct {
	// Timezone is the IANA time zone (Europe/Berlin, UTC) whose midnight
	// ends a day and a month of usage.
	Timezone string `yaml:"timezone"`
	// UsageRetentionDays is how many days of usage counters are kept
	// (history_limit does not prune them).
	UsageRetentionDays int `yaml:"usage_retention_days"`
	// AdminsExempt exempts the platforms' admins from every limit.
	AdminsExempt bool `yaml:"admins_exempt"`
	// User limits each person, Conversation each group chat, channel or
	// thread, Group each Telegram group or Discord server, Key each
	// endpoint API key.
	User         LimitConfig `yaml:"user"`
	Conversation LimitConfig `yaml:"conversation"`
	Group        LimitConfig `yaml:"group"`
	Key          LimitConfig `yaml:"key"`
	// Models limits each listed "provider/model": everyone's use of it
	// together.
	Models map[string]LimitConfig `yaml:"models"`
}

// LimitConfig is one budget; 0 leaves a cap off.
type LimitConfig struct {
	DailyTokens   int64   `yaml:"daily_tokens"`
	MonthlyTokens int64   `yaml:"monthly_tokens"`
	DailyUSD      float64 `yaml:"daily_usd"`
	MonthlyUSD    float64 `yaml:"monthly_usd"`
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
	// MaxAnswerChars caps an answer (content and reasoning), in characters:
	// past it the model's stream is closed and the answer ends with a note.
	MaxAnswerChars int `yaml:"max_answer_chars"`
	// Queue is how many messages wait per conversation while answers run;
	// more are refused. 0 refuses any message while answering.
	Queue int `yaml:"queue"`
	// Parallel is how many answers run at once in a shared conversation.
	Parallel int `yaml:"parallel"`
	// UserRate is how many messages one user may send per minute; 0 is
	// unlimited.
	UserRate int `yaml:"user_rate"`
	// MaxImages is how many images one prompt carries, newest first.
	MaxImages int `yaml:"max_images"`
	// ImageMaxSide is the longest side, in pixels, an image is scaled to.
	ImageMaxSide int `yaml:"image_max_side"`
	// MaxFileChars caps the text read from one file (text or PDF).
	MaxFileChars int `yaml:"max_file_chars"`
	// MaxAttachmentBytes caps the size of one attachment.
	MaxAttachmentBytes int64 `yaml:"max_attachment_bytes"`
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
	// Window is Telegram's limit per private chat, GroupWindow per group
	// (all its topics), GlobalWindow per bot across chats. The last
	// request of a chat's window is kept for final answers.
	Window       WindowConfig `yaml:"window"`
	GroupWindow  WindowConfig `yaml:"group_window"`
	GlobalWindow WindowConfig `yaml:"global_window"`
	// AllowedChats and AllowedUsers restrict who may use the bot; a message
	// passes when its chat or its author is listed. Both empty allow
	// everyone.
	AllowedChats []int64 `yaml:"allowed_chats"`
	AllowedUsers []int64 `yaml:"allowed_users"`
	// Admins are user ids allowed to run admin commands.
	Admins []int64 `yaml:"admins"`
	// Drafts streams answers in private chats with sendMessageDraft.
	Drafts bool `yaml:"drafts"`
	// Format is how answers are written: "auto" (rich messages, falling
	// back to HTML for good when the Bot API server lacks them, and per
	// message when one is refused), "rich" or "html".
	Format string `yaml:"format"`
	// Webhook, when it has a URL, receives updates from Telegram instead
	// of polling for them.
	Webhook WebhookConfig `yaml:"webhook"`
}

// WebhookConfig is the Telegram webhook (telegram.webhook).
type WebhookConfig struct {
	// URL is the public https URL Telegram posts updates to.
	URL string `yaml:"url"`
	// Listen is the host:port this process serves the webhook on (behind
	// the proxy or load balancer that URL reaches).
	Listen string `yaml:"listen"`
	// SecretToken is checked on every request (1–256 of A–Z a–z 0–9 _ -).
	SecretToken string `yaml:"secret_token"`
	// MaxConnections is how many connections Telegram opens at once, 1–100.
	MaxConnections int `yaml:"max_connections"`
}

// WindowConfig is a platform's sliding-window rate limit: at most Requests
// requests in any span of Per.
type WindowConfig struct {
	Requests int           `yaml:"requests"`
	Per      time.Duration `yaml:"per"`
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
	// Window is Discord's limit per channel or thread, GlobalWindow per
	// bot across channels. The last request of a channel's window is kept
	// for final answers.
	Window       WindowConfig `yaml:"window"`
	GlobalWindow WindowConfig `yaml:"global_window"`
	// AllowedGuilds and AllowedChannels restrict where the bot answers; a
	// message passes when its guild or its channel is listed. Both empty
	// allow everywhere.
	AllowedGuilds   []string `yaml:"allowed_guilds"`
	AllowedChannels []string `yaml:"allowed_channels"`
	// Admins are user or role ids allowed to run admin commands.
	Admins []string `yaml:"admins"`
	// Threads answers /chat and mentions in a text channel in a public
	// thread named after the question, a conversation of its own that
	// starts with the channel's model and system prompt.
	Threads bool `yaml:"threads"`
	// ThreadFollowAll treats every message in a thread the bot created as
	// a follow-up; it needs the Message Content intent enabled in the
	// Developer Portal.
	ThreadFollowAll bool `yaml:"thread_follow_all"`
	// Components is how answers are laid out: "auto" (Components V2, up
	// to 4,000 characters per message, falling back to plain content once
	// if Discord refuses them), "v2" or "legacy" (2,000-character content).
	Components string `yaml:"components"`
	// Shards is how many gateway connections the bot's guilds are split
	// over: "auto" takes Discord's recommendation; with several processes
	// they share the shards.
	Shards Shards `yaml:"shards"`
}

// Shards is discord.shards: a number, or ShardsAuto.
type Shards int

// ShardsAuto asks Discord how many shards to run.
const ShardsAuto Shards = -1

// MarshalYAML writes ShardsAuto as "auto".
func (s Shards) MarshalYAML() (any, error) {
	if s == ShardsAuto {
		return "auto", nil
	}
	return int(s), nil
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
		Storage: StorageConfig{Path: "palaver.db", HistoryLimit: 1000,
			Etcd: EtcdConfig{Prefix: "/palaver/", DialTimeout: 5 * time.Second}},
		Cluster: ClusterConfig{Failover: 10 * time.Second},
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
			Vision:        DefaultVision(),
			Transcription: "deepinfra/openai/whisper-large-v3-turbo",
		},
		Chat: ChatConfig{
			SystemPrompt:       DefaultSystemPrompt,
			MaxHistoryMessages: 40,
			Reasoning:          ReasoningCollapsed,
			MaxSystemPrompt:    4000,
			MaxMessage:         16000,
			MaxAnswerChars:     100000,
			Queue:              50,
			Parallel:           4,
			UserRate:           20,
			MaxImages:          5,
			ImageMaxSide:       1568,
			MaxFileChars:       20000,
			MaxAttachmentBytes: 20 << 20,
		},
		Telegram: TelegramConfig{
			Token:             env("TELEGRAM_BOT_TOKEN"),
			APIEndpoint:       "https://api.telegram.org/bot%s/%s",
			EditInterval:      time.Second,
			GroupEditInterval: 3 * time.Second,
			Window:            WindowConfig{Requests: 3, Per: 3 * time.Second},
			GroupWindow:       WindowConfig{Requests: 20, Per: time.Minute},
			GlobalWindow:      WindowConfig{Requests: 30, Per: time.Second},
			Drafts:            true,
			Format:            "auto",
			Webhook:           WebhookConfig{Listen: "0.0.0.0:8443", SecretToken: env("TELEGRAM_WEBHOOK_SECRET"), MaxConnections: 40},
		},
		Discord: DiscordConfig{
			Token:        env("DISCORD_BOT_TOKEN"),
			APIBase:      "https://discord.com",
			EditInterval: time.Second,
			Window:       WindowConfig{Requests: 5, Per: 5 * time.Second},
			GlobalWindow: WindowConfig{Requests: 45, Per: time.Second},
			Components:   "auto",
			Shards:       1,
		},
		Gateway: GatewayConfig{
			Listen:            "127.0.0.1:8000",
			MaxBody:           1 << 20,
			MaxStreamsPerKey:  8,
			RequestsPerMinute: 60,
		},
		Limits: LimitsConfig{Timezone: "UTC", UsageRetentionDays: 400, AdminsExempt: true},
		Log:    LogConfig{Level: "info", Format: "text"},
	}
}

// DefaultVision is models.vision's default: the families of open and hosted
// models that take images.
func DefaultVision() []string {
	return []string{
		"*vision*", "*-vl-*", "*-vl", "*llava*", "*llama-4*", "*gemma-3*", "*pixtral*",
		"*mistral-small-3.1*", "*minicpm-v*", "*moondream*", "*gpt-4o*", "*gpt-4.1*", "*gpt-5*",
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
