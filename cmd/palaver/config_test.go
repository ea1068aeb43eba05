package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
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

// TestRepoConfig_ExamplePorts keeps the addresses that config.yaml's
// comments suggest off gateway.listen's default port, so that following an
// example never makes two servers (or palaver and itself) share a port.
func TestRepoConfig_ExamplePorts(t *testing.T) {
	data, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, gatewayPort, err := net.SplitHostPort(DefaultConfig().Gateway.Listen)
	if err != nil {
		t.Fatal(err)
	}
	addr := regexp.MustCompile(`(?:[\w.-]+|\[[0-9a-f:]*\]|^|\s):(\d{2,5})\b`)
	examples := 0
	for i, line := range strings.Split(string(data), "\n") {
		comment, ok := strings.CutPrefix(strings.TrimSpace(line), "#")
		if !ok {
			continue
		}
		for _, m := range addr.FindAllStringSubmatch(comment, -1) {
			examples++
			if m[1] == gatewayPort {
				t.Errorf("config.yaml:%d: example %q uses gateway.listen's port %s", i+1, strings.TrimSpace(m[0]), gatewayPort)
			}
		}
	}
	if examples == 0 {
		t.Error("found no example address in config.yaml's comments")
	}
}

// TestLoadConfig_Errors loads each testdata/config/errors/*.yaml, whose
// "# want: " lines list, in order, a substring of each line of the error.
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
			// Every problem is reported, each once, on its own line, in
			// line order.
			msg := err.Error()
			got := strings.Split(msg, "\n")
			if len(got) > 1 {
				if want := fmt.Sprintf("%s: %d problems:", file, len(got)-1); got[0] != want {
					t.Errorf("first line = %q, want %q", got[0], want)
				}
				got = got[1:]
			}
			if len(got) != len(wants) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(wants), msg)
			}
			for i, w := range wants {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i+1, got[i], w)
				}
			}
		})
	}
}

// TestLoadConfig_SeveralProblems checks the whole error for a config with
// problems of every kind (unknown keys, wrong types, invalid values, unset
// variables, a duplicate section) against several.golden: all listed, in
// line order, in one format.
func TestLoadConfig_SeveralProblems(t *testing.T) {
	_, err := LoadConfig("testdata/config/several.yaml", true, noEnv)
	if err == nil {
		t.Fatal("LoadConfig succeeded")
	}
	checkGolden(t, "testdata/config/several.golden", err.Error()+"\n")
}

// checkGolden compares got with the golden file, which go test -update
// rewrites.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
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
		t.Errorf("output differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", golden, got, want)
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
		// The built-in aliases stay, unusable, and palaver check says so.
		if !reflect.DeepEqual(cfg.Models.Aliases, DefaultConfig().Models.Aliases) {
			t.Errorf("aliases = %v, want the built-in ones", cfg.Models.Aliases)
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
		{"OKEtcdWithoutPath", func(c *Config) {
			c.Storage.Path = ""
			c.Storage.Etcd.Endpoints = []string{"http://127.0.0.1:2379"}
		}, ""},
		{"ErrEtcdEndpoint", func(c *Config) { c.Storage.Etcd.Endpoints = []string{"127.0.0.1:2379"} }, "storage.etcd.endpoints[0]: want an http or https URL"},
		{"ErrEtcdHalfAuth", func(c *Config) {
			c.Storage.Etcd.Endpoints = []string{"http://127.0.0.1:2379"}
			c.Storage.Etcd.Username = "palaver"
		}, "storage.etcd.username: set both"},
		{"ErrFailoverShort", func(c *Config) { c.Cluster.Failover = time.Second }, "cluster.failover: must be at least 2s"},
		{"OKShardsAuto", func(c *Config) { c.Discord.Shards = ShardsAuto }, ""},
		{"ErrShardsZero", func(c *Config) { c.Discord.Shards = 0 }, "discord.shards: want auto or 1 to 4096, got 0"},
		{"OKWebhook", func(c *Config) {
			c.Telegram.Webhook.URL = "https://bot.example.org/telegram"
			c.Telegram.Webhook.SecretToken = "s3cret_-token"
		}, ""},
		{"ErrWebhookHTTP", func(c *Config) {
			c.Telegram.Webhook.URL = "http://bot.example.org/telegram"
			c.Telegram.Webhook.SecretToken = "s3cret"
		}, "telegram.webhook.url: want the public https URL"},
		{"ErrWebhookSecret", func(c *Config) {
			c.Telegram.Webhook.URL = "https://bot.example.org/telegram"
			c.Telegram.Webhook.SecretToken = "no spaces allowed"
		}, "telegram.webhook.secret_token: want 1 to 256 characters"},
		{"OKGatewayLocalhost", func(c *Config) { c.Gateway.Listen = "localhost:0" }, ""},
		{"OKAllowedWildcard", func(c *Config) { c.Models.Allowed = []string{"deepinfra/*"} }, ""},
		{"OKAliasUnconfiguredProvider", func(c *Config) { c.Models.Aliases["q"] = "nowhere/qwen" }, ""},
		{"ErrAliasMalformed", func(c *Config) { c.Models.Aliases["q"] = "qwen" }, `models.aliases.q: want "provider/model", got "qwen"`},
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
	const transcriptionUnconfigured = "models.transcription names provider deepinfra, which is not configured; voice messages get a note instead of an answer"
	const (
		noToken   = "no platform token configured"
		tgOpen    = "telegram.allowed_chats and telegram.allowed_users are empty: anyone who finds the bot can use it (and spend your provider credit)"
		dcOpen    = "discord.allowed_guilds and discord.allowed_channels are empty: anyone who finds the bot can use it (and spend your provider credit)"
		anonDI    = "providers.deepinfra has no api_key: anonymous web-page mode, which DeepInfra may refuse; set DEEPINFRA_API_KEY"
		tgToken   = "telegram.token does not look like a bot token"
		history   = "storage.history_limit (10) is below chat.max_history_messages (40)"
		anonGW    = "gateway.allow_anonymous is true and gateway.listen \"0.0.0.0:8000\" is reachable"
		metricsGW = "metrics.listen \":9090\" is reachable from other machines"
		aliasQ    = "models.aliases.q points at provider nowhere, which is not configured; the alias is unusable"
		aliasR1   = "models.aliases.r1 points at provider deepinfra, which is not configured; the alias is unusable"
		aliasV3   = "models.aliases.v3 points at provider deepinfra, which is not configured; the alias is unusable"
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
		{"AliasesUnconfigured", func(c *Config) {
			c.Providers = map[string]ProviderConfig{"local": {BaseURL: "http://127.0.0.1:11434/v1"}}
			c.Models.Default = "local/qwen3:8b"
			c.Models.Aliases["q"] = "nowhere/qwen"
			c.Models.Aliases["l"] = "local/qwen3:8b"
		}, []string{noToken, transcriptionUnconfigured, aliasQ, aliasR1, aliasV3}},
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
	checkGolden(t, "testdata/config/full.golden", got)
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

// TestLoadConfig_UnsetVars checks what a ${VAR} that is unset (or empty)
// gives: an error naming the variable and the key where palaver needs the
// value, a warning elsewhere.
func TestLoadConfig_UnsetVars(t *testing.T) {
	const local = "providers:\n  local:\n    base_url: http://127.0.0.1:11434/v1\nmodels:\n  default: local/m\n  aliases: {}\n"
	tests := []struct {
		name    string
		text    string
		env     map[string]string
		wantErr string   // "" for none
		want    []string // the warnings about variables, in order
	}{
		{"OKTokens", "telegram:\n  token: ${TELEGRAM_BOT_TOKEN}\ndiscord:\n  token: ${DISCORD_BOT_TOKEN}\n", nil, "", []string{
			"telegram.token uses ${TELEGRAM_BOT_TOKEN}, which is not set: Telegram is off",
			"discord.token uses ${DISCORD_BOT_TOKEN}, which is not set: Discord is off",
		}},
		{"OKSetEmptyCountsAsUnset", "telegram:\n  token: ${TG}\n", map[string]string{"TG": ""}, "", []string{
			"telegram.token uses ${TG}, which is not set: Telegram is off",
		}},
		{"OKSet", "telegram:\n  token: ${TG}\n  allowed_users: [1]\n", map[string]string{"TG": "1:x"}, "", nil},
		{"OKDeepInfraKey", "providers:\n  deepinfra:\n    base_url: https://api.deepinfra.com/v1/openai\n    api_key: ${DI_KEY}\n", nil, "", []string{
			"providers.deepinfra.api_key uses ${DI_KEY}, which is not set: anonymous web-page mode, which DeepInfra may refuse",
		}},
		{"OKTwoVars", local + "chat:\n  system_prompt: \"${A} and ${B} and ${A}\"\n", nil, "", []string{
			"chat.system_prompt uses ${A} and ${B}, which are not set",
		}},
		{"OKDefaultKept", "chat:\n  queue: ${QUEUE}\n", nil, "", []string{"chat.queue uses ${QUEUE}, which is not set"}},
		{"OKListItemLeftOut", "telegram:\n  admins: [\"${ADMIN}\", 7]\n", nil, "", []string{
			"telegram.admins uses ${ADMIN}, which is not set: that item is left out",
		}},
		{"OKAllowedUsersBotOff", "telegram:\n  allowed_users: [\"${ME}\"]\n", nil, "", []string{
			"telegram.allowed_users uses ${ME}, which is not set: that item is left out",
		}},
		{"OKMergeOverridden", "discord: &base\n  token: ${TG}\ntelegram:\n  <<: *base\n  token: \"1:x\"\n", nil, "", []string{
			"discord.token uses ${TG}, which is not set: Discord is off",
		}},
		{"ErrBaseURL", "providers:\n  local:\n    base_url: ${LOCAL_URL}\nmodels:\n  default: local/m\n", nil,
			":3:15: providers.local.base_url: uses ${LOCAL_URL}, which is not set", nil},
		{"ErrBaseURLPart", "providers:\n  local:\n    base_url: http://127.0.0.1:${PORT}/v1\nmodels:\n  default: local/m\n", nil,
			":3:15: providers.local.base_url: uses ${PORT}, which is not set", nil},
		{"ErrListen", "gateway:\n  listen: ${LISTEN}\n", nil, ":2:11: gateway.listen: uses ${LISTEN}, which is not set", nil},
		{"ErrDefaultModel", "models:\n  default: ${MODEL}\n", nil, ":2:12: models.default: uses ${MODEL}, which is not set", nil},
		{"ErrGatewayKey", "gateway:\n  api_keys:\n    - ${PALAVER_API_KEY}\n", nil,
			":3:7: gateway.api_keys: uses ${PALAVER_API_KEY}, which is not set", nil},
		{"ErrAllowedUsersBotOn", "telegram:\n  token: \"1:x\"\n  allowed_users: [\"${ME}\", 7]\n", nil,
			":3:19: telegram.allowed_users: uses ${ME}, which is not set", nil},
		{"ErrOtherProblemNamesVar", "metrics:\n  listen: 127.0.0.1:${METRICS_PORT}\n", nil,
			`:2:3: metrics.listen: want a port number from 0 to 65535, got "127.0.0.1:" (it uses ${METRICS_PORT}, which is not set)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			cfg, err := LoadConfig(path, true, envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+tt.wantErr) {
					t.Fatalf("got %v, want %s%s", err, path, tt.wantErr)
				}
				// The variable explains the problem: no other is reported.
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("got several problems:\n%v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings() {
				if strings.Contains(w, "${") {
					got = append(got, w)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings about variables:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadConfig_Shards(t *testing.T) {
	tests := []struct {
		value   string
		want    Shards
		wantErr string
	}{
		{"auto", ShardsAuto, ""},
		{"AUTO", ShardsAuto, ""},
		{"4", 4, ""},
		{"", 1, ""},
		{"0", 0, "discord.shards: want auto or 1 to 4096, got 0"},
		{"lots", 0, `want auto or a number of shards, got "lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			path := writeConfig(t, "discord:\n  shards: "+tt.value+"\n")
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
			if cfg.Discord.Shards != tt.want {
				t.Errorf("discord.shards = %d, want %d", cfg.Discord.Shards, tt.want)
			}
		})
	}
}
