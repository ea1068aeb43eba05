package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// noEnv is a getenv with every variable unset.
func noEnv(string) string { return "" }

// envOf is a getenv reading from m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeConfig writes a config file into a temporary directory and returns
// its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustLoad loads a config from text, failing the test on error.
func mustLoad(t *testing.T, text string, getenv func(string) string) *Config {
	t.Helper()
	cfg, err := LoadConfig(writeConfig(t, text), true, getenv)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

// sameConfig compares two configs, ignoring where they were read from.
func sameConfig(t *testing.T, got, want *Config) {
	t.Helper()
	g, w := *got, *want
	g.source, w.source = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("config differs:\n got: %s\nwant: %s", got.String(), want.String())
		t.Errorf("got  %+v\nwant %+v", g, w)
	}
}

func TestDefaultConfig_Validate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

// TestLoadConfig_RepoConfig keeps the documented config.yaml equal to the
// built-in defaults.
func TestLoadConfig_RepoConfig(t *testing.T) {
	const path = "../../config.yaml"
	t.Run("EnvUnset", func(t *testing.T) {
		cfg, err := LoadConfig(path, true, noEnv)
		if err != nil {
			t.Fatalf("LoadConfig(%s): %v", path, err)
		}
		sameConfig(t, cfg, DefaultConfig())
		if cfg.Path() != path {
			t.Errorf("Path() = %q, want %q", cfg.Path(), path)
		}
	})
	t.Run("EnvSet", func(t *testing.T) {
		env := envOf(map[string]string{
			"DEEPINFRA_API_KEY":  "di-0123456789abcdef",
			"TELEGRAM_BOT_TOKEN": "123456:telegram-secret",
			"DISCORD_BOT_TOKEN":  "discord.secret.token",
		})
		cfg, err := LoadConfig(path, true, env)
		if err != nil {
			t.Fatalf("LoadConfig(%s): %v", path, err)
		}
		sameConfig(t, cfg, defaultConfig(env))
		if got := cfg.Providers["deepinfra"].APIKey; got != "di-0123456789abcdef" {
			t.Errorf("deepinfra api_key = %q", got)
		}
	})
}

// TestLoadConfig_Errors loads each testdata/config/errors/*.yaml, whose
// "# want: " lines list substrings the error must contain.
func TestLoadConfig_Errors(t *testing.T) {
	files, err := filepath.Glob("testdata/config/errors/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for line := range strings.Lines(string(data)) {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, strings.TrimSpace(w))
				}
			}
			if len(wants) == 0 {
				t.Fatalf("%s has no # want: lines", file)
			}
			cfg, err := LoadConfig(file, true, noEnv)
			if err == nil {
				t.Fatalf("LoadConfig(%s) = %+v, want an error", file, cfg)
			}
			if cfg != nil {
				t.Errorf("LoadConfig returned a config with its error")
			}
			msg := err.Error()
			var missing []string
			for _, w := range wants {
				if !strings.Contains(msg, w) {
					missing = append(missing, w)
				}
			}
			if len(missing) > 0 {
				t.Errorf("error lacks:\n%s\ngot:\n%s", strings.Join(missing, "\n"), msg)
			}
			// Every problem is reported, each once, on its own line.
			if n := len(strings.Split(msg, "\n")); n != len(wants) {
				t.Errorf("got %d problems, want %d:\n%s", n, len(wants), msg)
			}
		})
	}
}

func TestLoadConfig_ErrorTypes(t *testing.T) {
	path := writeConfig(t, "chat:\n  temperature: hot\n")
	_, err := LoadConfig(path, true, noEnv)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConfigError", err)
	}
	want := ConfigError{File: path, Line: 2, Column: 16, Key: "chat.temperature", Msg: `want a number, got "hot"`}
	if *ce != want {
		t.Errorf("got %+v, want %+v", *ce, want)
	}
}

func TestLoadConfig_Missing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	env := envOf(map[string]string{"TELEGRAM_BOT_TOKEN": "42:secret"})

	t.Run("ErrExplicit", func(t *testing.T) {
		_, err := LoadConfig(missing, true, noEnv)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("LoadConfig(explicit missing) = %v, want fs.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), "missing.yaml") {
			t.Errorf("error %q does not name the file", err)
		}
	})
	t.Run("ErrExplicitEmpty", func(t *testing.T) {
		if _, err := LoadConfig("", true, noEnv); err == nil {
			t.Fatal("LoadConfig(\"\", explicit) succeeded")
		}
	})
	t.Run("ImplicitMissing", func(t *testing.T) {
		cfg, err := LoadConfig(missing, false, env)
		if err != nil {
			t.Fatalf("LoadConfig(implicit missing) = %v", err)
		}
		sameConfig(t, cfg, defaultConfig(env))
		if cfg.Path() != "" {
			t.Errorf("Path() = %q, want empty", cfg.Path())
		}
	})
	t.Run("ImplicitDefaultFile", func(t *testing.T) {
		t.Chdir(t.TempDir())
		cfg, err := LoadConfig("", false, noEnv)
		if err != nil {
			t.Fatalf("LoadConfig with no config.yaml = %v", err)
		}
		sameConfig(t, cfg, DefaultConfig())

		if err := os.WriteFile(DefaultConfigFile, []byte("chat:\n  queue: 7\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err = LoadConfig("", false, noEnv)
		if err != nil {
			t.Fatalf("LoadConfig with config.yaml = %v", err)
		}
		if cfg.Chat.Queue != 7 || cfg.Path() != DefaultConfigFile {
			t.Errorf("got queue %d from %q, want 7 from %q", cfg.Chat.Queue, cfg.Path(), DefaultConfigFile)
		}
	})
	t.Run("ErrDirectory", func(t *testing.T) {
		if _, err := LoadConfig(t.TempDir(), false, noEnv); err == nil {
			t.Fatal("LoadConfig(directory) succeeded")
		}
	})
}

func TestLoadConfig_Overrides(t *testing.T) {
	t.Run("EmptyFile", func(t *testing.T) {
		sameConfig(t, mustLoad(t, "# nothing here\n", noEnv), DefaultConfig())
	})
	t.Run("EmptySections", func(t *testing.T) {
		sameConfig(t, mustLoad(t, "chat:\ntelegram:\n  edit_interval:\n", noEnv), DefaultConfig())
	})
	t.Run("Partial", func(t *testing.T) {
		cfg := mustLoad(t, "chat:\n  temperature: 0\n  max_tokens: 4096\n", noEnv)
		want := DefaultConfig()
		zero := 0.0
		want.Chat.Temperature = &zero
		want.Chat.MaxTokens = 4096
		sameConfig(t, cfg, want)
	})
	t.Run("ProvidersReplaced", func(t *testing.T) {
		cfg := mustLoad(t, `
providers:
  local:
    base_url: http://127.0.0.1:11434/v1
models:
  default: local/qwen3:8b
`, noEnv)
		if _, ok := cfg.Providers["deepinfra"]; ok || len(cfg.Providers) != 1 {
			t.Errorf("providers = %v, want only local", cfg.Providers)
		}
		if cfg.Models.Aliases != nil {
			t.Errorf("aliases = %v, want the deepinfra defaults dropped", cfg.Models.Aliases)
		}
	})
	t.Run("ListsAndMapsReplaced", func(t *testing.T) {
		cfg := mustLoad(t, `
models:
  aliases:
    r1: deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo
  allowed: [deepinfra/*]
telegram:
  allowed_chats: [-1001234567890, 42]
discord:
  guilds: [123456789012345678]
  admins: ["987654321098765432"]
`, noEnv)
		if want := map[string]string{"r1": "deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo"}; !reflect.DeepEqual(cfg.Models.Aliases, want) {
			t.Errorf("aliases = %v, want %v", cfg.Models.Aliases, want)
		}
		if want := []int64{-1001234567890, 42}; !slices.Equal(cfg.Telegram.AllowedChats, want) {
			t.Errorf("allowed_chats = %v, want %v", cfg.Telegram.AllowedChats, want)
		}
		if want := []string{"123456789012345678"}; !slices.Equal(cfg.Discord.Guilds, want) {
			t.Errorf("guilds = %v, want %v", cfg.Discord.Guilds, want)
		}
	})
	t.Run("ErrMergeCycle", func(t *testing.T) {
		_, err := LoadConfig(writeConfig(t, "chat: &c\n  <<: *c\n  queue: 1\n"), true, noEnv)
		if err == nil || !strings.Contains(err.Error(), ":1:7: chat: a merge key (<<) includes the mapping that holds it") {
			t.Fatalf("got %v, want a merge cycle error", err)
		}
	})
	t.Run("ErrAliasBomb", func(t *testing.T) {
		// Each level merges the one before ten times: 10^7 values unchecked.
		var b strings.Builder
		b.WriteString("x0: &a0 {base_url: http://127.0.0.1/v1}\n")
		for i := 1; i <= 7; i++ {
			fmt.Fprintf(&b, "x%d: &a%d {<<: [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
		}
		b.WriteString("providers: {p: *a7}\n")
		_, err := parseConfig("bomb.yaml", []byte(b.String()), noEnv)
		if err == nil || !strings.Contains(err.Error(), "too many values") {
			t.Fatalf("got %v, want too many values", err)
		}
	})
	t.Run("AnchorsAndMerge", func(t *testing.T) {
		cfg := mustLoad(t, `
providers:
  a: &common
    base_url: http://127.0.0.1:8001/v1
    headers: {X-Team: chat}
  b:
    <<: *common
    base_url: http://127.0.0.1:8002/v1
models:
  default: a/m
  aliases: {}
`, noEnv)
		b := cfg.Providers["b"]
		if b.BaseURL != "http://127.0.0.1:8002/v1" || b.Headers["X-Team"] != "chat" {
			t.Errorf("provider b = %+v, want merged headers and its own base_url", b)
		}
	})
}

func TestExpandEnv(t *testing.T) {
	env := envOf(map[string]string{"A": "x", "B_2": "y", "EMPTY": ""})
	tests := []struct {
		in, want string
		expanded bool
	}{
		{"plain", "plain", false},
		{"${A}", "x", true},
		{"pre-${A}-${B_2}-post", "pre-x-y-post", true},
		{"${UNSET}", "", true},
		{"${EMPTY}", "", true},
		{"costs $5, home is $HOME", "costs $5, home is $HOME", false},
		{"$A and $", "$A and $", false},
		{"$${A}", "${A}", false},
		{"$$${A}", "$${A}", false},
		{"${not valid}", "${not valid}", false},
		{"${1X}", "${1X}", false},
		{"${A", "${A", false},
		{"${}", "${}", false},
		{"${A}${A}", "xx", true},
	}
	for _, tt := range tests {
		got, expanded := expandEnv(tt.in, env)
		if got != tt.want || expanded != tt.expanded {
			t.Errorf("expandEnv(%q) = %q, %v; want %q, %v", tt.in, got, expanded, tt.want, tt.expanded)
		}
	}
}

func TestLoadConfig_Env(t *testing.T) {
	const text = `
providers:
  deepinfra:
    base_url: ${DI_URL}
    api_key: "${KEY}"
    headers:
      X-Note: "$${KEY} is literal"
chat:
  system_prompt: "Prices in $USD, say $5; ${NAME} at $HOME"
  temperature: ${TEMP}
  queue: ${QUEUE}
telegram:
  token: ${TG}
  allowed_users:
    - ${ADMIN}
    - 7
`
	t.Run("Set", func(t *testing.T) {
		cfg := mustLoad(t, text, envOf(map[string]string{
			"DI_URL": "https://api.deepinfra.com/v1/openai", "KEY": "k", "NAME": "Palaver",
			"TEMP": "0.3", "QUEUE": "9", "TG": "1:x", "ADMIN": "42",
			"TELEGRAM_BOT_TOKEN": "ignored:because-written",
		}))
		p := cfg.Providers["deepinfra"]
		if p.APIKey != "k" || p.Headers["X-Note"] != "${KEY} is literal" {
			t.Errorf("provider = %+v", p)
		}
		if want := "Prices in $USD, say $5; Palaver at $HOME"; cfg.Chat.SystemPrompt != want {
			t.Errorf("system_prompt = %q, want %q", cfg.Chat.SystemPrompt, want)
		}
		if cfg.Chat.Temperature == nil || *cfg.Chat.Temperature != 0.3 || cfg.Chat.Queue != 9 {
			t.Errorf("temperature %v, queue %d; want 0.3, 9", cfg.Chat.Temperature, cfg.Chat.Queue)
		}
		if cfg.Telegram.Token != "1:x" || !slices.Equal(cfg.Telegram.AllowedUsers, []int64{42, 7}) {
			t.Errorf("telegram = %+v", cfg.Telegram)
		}
	})
	t.Run("Unset", func(t *testing.T) {
		cfg := mustLoad(t, text, envOf(map[string]string{
			"DI_URL":             "https://api.deepinfra.com/v1/openai",
			"TELEGRAM_BOT_TOKEN": "ignored:because-written",
		}))
		if cfg.Providers["deepinfra"].APIKey != "" || cfg.Telegram.Token != "" {
			t.Errorf("unset variables did not expand to empty: %+v", cfg)
		}
		// Non-string values that expand to empty keep their defaults.
		if cfg.Chat.Temperature != nil || cfg.Chat.Queue != DefaultConfig().Chat.Queue {
			t.Errorf("temperature %v, queue %d; want nil and the default", cfg.Chat.Temperature, cfg.Chat.Queue)
		}
		if !slices.Equal(cfg.Telegram.AllowedUsers, []int64{7}) {
			t.Errorf("allowed_users = %v, want [7]", cfg.Telegram.AllowedUsers)
		}
	})
	t.Run("ErrKeysNotExpanded", func(t *testing.T) {
		_, err := LoadConfig(writeConfig(t, "${SECTION}:\n  x: 1\n"), true, envOf(map[string]string{"SECTION": "chat"}))
		if err == nil || !strings.Contains(err.Error(), `unknown key "${SECTION}"`) {
			t.Fatalf("got %v, want an unknown key error naming ${SECTION}", err)
		}
	})
	t.Run("ErrExpandedValueTyped", func(t *testing.T) {
		_, err := LoadConfig(writeConfig(t, "chat:\n  queue: ${Q}\n"), true, envOf(map[string]string{"Q": "many"}))
		if err == nil || !strings.Contains(err.Error(), `:2:10: chat.queue: want an integer, got "many"`) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestLoadConfig_Durations(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr string
	}{
		{"1s", time.Second, ""},
		{"1500ms", 1500 * time.Millisecond, ""},
		{"2m30s", 150 * time.Second, ""},
		{`"2500ms"`, 2500 * time.Millisecond, ""},
		{"", time.Second, ""}, // empty keeps the default
		{"1", 0, `want a duration such as 1s or 1500ms, got "1"`},
		{"soon", 0, `want a duration such as 1s or 1500ms, got "soon"`},
		{"[1s]", 0, "want a duration such as 1s or 1500ms, got a list"},
		{"99ms", 0, "discord.edit_interval: must be at least 100ms, got 99ms"},
		{"-1s", 0, "discord.edit_interval: must be at least 100ms, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			path := writeConfig(t, "discord:\n  edit_interval: "+tt.value+"\n")
			cfg, err := LoadConfig(path, true, noEnv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+":2:") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error at line 2 containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Discord.EditInterval != tt.want {
				t.Errorf("edit_interval = %s, want %s", cfg.Discord.EditInterval, tt.want)
			}
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(c *Config)
		wantErr string // "" for valid
	}{
		{"OK", func(c *Config) {}, ""},
		{"OKLocalProviderOnly", func(c *Config) {
			c.Providers = map[string]ProviderConfig{"local": {BaseURL: "http://127.0.0.1:8000/v1"}}
			c.Models.Default = "local/m"
			c.Models.Aliases = nil
		}, ""},
		{"OKGatewayPublicWithKeys", func(c *Config) {
			c.Gateway.Listen = "0.0.0.0:8000"
			c.Gateway.APIKeys = []string{"k1", "k2"}
		}, ""},
		{"OKGatewayPublicAnonymous", func(c *Config) {
			c.Gateway.Listen = ":8000"
			c.Gateway.AllowAnonymous = true
		}, ""},
		{"OKGatewayIPv6Loopback", func(c *Config) { c.Gateway.Listen = "[::1]:8000" }, ""},
		{"OKGatewayLocalhost", func(c *Config) { c.Gateway.Listen = "localhost:0" }, ""},
		{"OKAllowedWildcard", func(c *Config) { c.Models.Allowed = []string{"deepinfra/*"} }, ""},
		{"OKTemperatureBounds", func(c *Config) { two := 2.0; c.Chat.Temperature = &two }, ""},
		{"OKEndpointPercent", func(c *Config) { c.Telegram.APIEndpoint = "http://127.0.0.1:1/bot%s/%s?x=100%%" }, ""},
		{"ErrGatewayAllInterfaces", func(c *Config) { c.Gateway.Listen = ":8000" },
			`gateway.listen: ":8000" is reachable from other machines, but gateway.api_keys is empty`},
		{"ErrGatewayListen", func(c *Config) { c.Gateway.Listen = "127.0.0.1:http" },
			`gateway.listen: want a port number from 0 to 65535, got "127.0.0.1:http"`},
		{"ErrGatewayDuplicateKey", func(c *Config) { c.Gateway.APIKeys = []string{"k", "k"} },
			"gateway.api_keys[1]: duplicate API key"},
		{"ErrGatewayMaxBody", func(c *Config) { c.Gateway.MaxBody = 0 }, "gateway.max_body: must be at least 1, got 0"},
		{"ErrDefaultNotAllowed", func(c *Config) { c.Models.Allowed = []string{"deepinfra/other"} },
			`models.default: "deepinfra/deepseek-ai/DeepSeek-V3-0324-Turbo" is not in models.allowed`},
		{"ErrDefaultMalformed", func(c *Config) { c.Models.Default = "deepseek-ai" },
			`models.default: want "provider/model", got "deepseek-ai"`},
		{"ErrDefaultEmpty", func(c *Config) { c.Models.Default = "" }, "models.default: must name the default model"},
		{"ErrAllowedPartialWildcard", func(c *Config) { c.Models.Allowed = []string{"deepinfra/deepseek-*"} },
			`models.allowed[0]: a wildcard must be the whole model part`},
		{"ErrNoProviders", func(c *Config) { c.Providers = nil }, "providers: at least one provider is required"},
		{"ErrHeaderValue", func(c *Config) {
			c.Providers["deepinfra"] = ProviderConfig{BaseURL: "https://x.test/v1", Headers: map[string]string{"X-A": "a\r\nb"}}
		}, "providers.deepinfra.headers.X-A: a header value may not contain line breaks"},
		{"ErrEndpointVerb", func(c *Config) { c.Telegram.APIEndpoint = "https://api.telegram.org/bot%d/%s" },
			"telegram.api_endpoint: may contain only %s verbs"},
		{"ErrEndpointThreeVerbs", func(c *Config) { c.Telegram.APIEndpoint = "https://api.telegram.org/%s/bot%s/%s" },
			"telegram.api_endpoint: must contain %s twice"},
		{"ErrEndpointScheme", func(c *Config) { c.Telegram.APIEndpoint = "api.telegram.org/bot%s/%s" },
			"telegram.api_endpoint: want an http or https URL format"},
		{"ErrDiscordAPIBase", func(c *Config) { c.Discord.APIBase = "discord.com" },
			`discord.api_base: want an http or https URL, got "discord.com"`},
		{"ErrMaxRetries", func(c *Config) { c.LLM.MaxRetries = 11 }, "llm.max_retries: must be between 0 and 10, got 11"},
		{"ErrTemperature", func(c *Config) { t := -0.1; c.Chat.Temperature = &t }, "chat.temperature: must be between 0 and 2, got -0.1"},
		{"ErrStoragePath", func(c *Config) { c.Storage.Path = " " }, "storage.path: must name the database file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfig_Validate_AllProblems(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Chat.Reasoning = "loud"
	cfg.Log.Format = "xml"
	cfg.Discord.EditInterval = 0
	err := cfg.Validate()
	for _, want := range []string{"chat.reasoning", "log.format", "discord.edit_interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}

func TestConfig_Warnings(t *testing.T) {
	const (
		noToken   = "no platform token configured"
		tgOpen    = "telegram.allowed_chats and telegram.allowed_users are empty: anyone who finds the bot can use it (and spend your provider credit)"
		dcOpen    = "discord.allowed_guilds and discord.allowed_channels are empty: anyone who finds the bot can use it (and spend your provider credit)"
		anonDI    = "providers.deepinfra has no api_key: anonymous web-page mode, which DeepInfra may refuse; set DEEPINFRA_API_KEY"
		tgToken   = "telegram.token does not look like a bot token"
		history   = "storage.history_limit (10) is below chat.max_history_messages (40)"
		anonGW    = "gateway.allow_anonymous is true and gateway.listen \"0.0.0.0:8000\" is reachable"
		metricsGW = "metrics.listen \":9090\" is reachable from other machines"
	)
	tests := []struct {
		name string
		edit func(c *Config)
		want []string
	}{
		{"Defaults", func(c *Config) {}, []string{noToken, anonDI}},
		{"Quiet", func(c *Config) {
			c.Providers["deepinfra"] = ProviderConfig{BaseURL: c.Providers["deepinfra"].BaseURL, APIKey: "key"}
			c.Telegram.Token = "123:abc"
			c.Telegram.AllowedUsers = []int64{1}
			c.Discord.Token = "d"
			c.Discord.AllowedChannels = []string{"2"}
		}, nil},
		{"OpenBots", func(c *Config) {
			c.Providers["deepinfra"] = ProviderConfig{BaseURL: "https://api.deepinfra.com/v1/openai", APIKey: "key"}
			c.Telegram.Token = "123:abc"
			c.Discord.Token = "d"
		}, []string{tgOpen, dcOpen}},
		{"Risky", func(c *Config) {
			c.Telegram.Token = "not-a-token"
			c.Telegram.AllowedChats = []int64{-100}
			c.Discord.Token = "d"
			c.Discord.AllowedGuilds = []string{"1"}
			c.Storage.HistoryLimit = 10
			c.Gateway.Listen = "0.0.0.0:8000"
			c.Gateway.AllowAnonymous = true
			c.Metrics.Listen = ":9090"
		}, []string{tgToken, anonDI, history, anonGW, metricsGW}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			got := cfg.Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("Warnings() = %q, want %d warnings", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %d = %q, want it to start with %q", i, got[i], w)
				}
			}
		})
	}
}

func TestRedactSecret(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"short", "****"},
		{"123456:fifteen", "****"},
		{"0123456789abcdef", "****cdef"},
		{"1234567890:AAE-very-long-telegram-token", "****oken"},
	}
	for _, tt := range tests {
		if got := redactSecret(tt.in); got != tt.want {
			t.Errorf("redactSecret(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestConfig_String renders testdata/config/full.yaml, which sets every
// key, and compares it with full.golden (go test -update rewrites it).
func TestConfig_String(t *testing.T) {
	env := envOf(map[string]string{
		"DEEPINFRA_API_KEY": "di-secret-0123456789-WXYZ",
		"LOCAL_PASSWORD":    "hunter2",
	})
	cfg, err := LoadConfig("testdata/config/full.yaml", true, env)
	if err != nil {
		t.Fatal(err)
	}
	before := cfg.Providers["deepinfra"].APIKey
	got := cfg.String()
	if cfg.Providers["deepinfra"].APIKey != before || cfg.Gateway.APIKeys[0] != "gateway-key-0001-abcd" ||
		cfg.Providers["local"].Headers["X-Api-Key"] != "local-header-secret-9876" {
		t.Error("String() changed the config it rendered")
	}
	for _, secret := range []string{
		"di-secret-0123456789", "hunter2", "1234567890:AAE", "gateway-key-0001", "local-header-secret",
		"MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde",
	} {
		if strings.Contains(got, secret) {
			t.Errorf("String() reveals %q:\n%s", secret, got)
		}
	}
	golden := "testdata/config/full.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("String() differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

func TestConfig_Redacted_DeepCopy(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Gateway.APIKeys = []string{"0123456789abcdef"}
	cfg.Providers["deepinfra"] = ProviderConfig{BaseURL: "https://u:pw@x.test/v1", APIKey: "0123456789abcdef",
		Headers: map[string]string{"Authorization": "Bearer 0123456789abcdef"}}
	r := cfg.Redacted()
	if got := r.Providers["deepinfra"]; got.APIKey != "****cdef" || got.Headers["Authorization"] != "****cdef" ||
		got.BaseURL != "https://u:xxxxx@x.test/v1" {
		t.Errorf("redacted provider = %+v", got)
	}
	if r.Gateway.APIKeys[0] != "****cdef" {
		t.Errorf("redacted api_keys = %v", r.Gateway.APIKeys)
	}
	if p := cfg.Providers["deepinfra"]; p.APIKey != "0123456789abcdef" || p.Headers["Authorization"] != "Bearer 0123456789abcdef" ||
		cfg.Gateway.APIKeys[0] != "0123456789abcdef" {
		t.Error("Redacted() changed the original config")
	}
}

func TestSplitModel(t *testing.T) {
	tests := []struct {
		in, provider, model string
		ok                  bool
	}{
		{"deepinfra/deepseek-ai/DeepSeek-R1-0528-Turbo", "deepinfra", "deepseek-ai/DeepSeek-R1-0528-Turbo", true},
		{"local/*", "local", "*", true},
		{"local/", "", "", false},
		{"/model", "", "", false},
		{"model", "", "", false},
	}
	for _, tt := range tests {
		p, m, ok := SplitModel(tt.in)
		if p != tt.provider || m != tt.model || ok != tt.ok {
			t.Errorf("SplitModel(%q) = %q, %q, %v; want %q, %q, %v", tt.in, p, m, ok, tt.provider, tt.model, tt.ok)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"token", "api_endpoint", "edit_interval", "group_edit_interval", "allowed_chats", "allowed_users", "admins", "drafts"}
	tests := []struct{ in, want string }{
		{"tokn", "token"},
		{"Token", "token"},
		{"edit-interval", "edit_interval"},
		{"allowed_chat", "allowed_chats"},
		{"admin", "admins"},
		{"colour", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, known); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseConfig checks that no input makes loading, validation or
// rendering panic. Normal go test runs only the seeds.
func FuzzParseConfig(f *testing.F) {
	if data, err := os.ReadFile("../../config.yaml"); err == nil {
		f.Add(data)
	}
	for _, seed := range []string{
		"", "chat: {temperature: hot}", "a: &a [*a]", "providers:\n  x: {<<: {base_url: 1}}\n",
		"telegram:\n  allowed_chats: [1, ${X}, -2]\n", "- 1\n- 2\n", "models: {aliases: {? [a]: b}}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig("fuzz.yaml", data, noEnv)
		if err != nil {
			return
		}
		_ = cfg.Validate()
		_ = cfg.Warnings()
		_ = cfg.String()
	})
}
