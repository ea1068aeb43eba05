package main

import (
	"errors"
	"strings"
	"testing"
)

// TestLoadConfig_SyntaxErrors checks that the common mistakes are reported
// at the line and column where they are made, with a hint.
func TestLoadConfig_SyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		pos  string // "line:col"
		want string // in the message
	}{
		{"TabIndent", "chat:\n  queue: 1\n\treasoning: full\n", "3:1",
			"YAML does not allow tabs for indentation; use spaces"},
		{"TabIndentFirstKey", "chat:\n\tqueue: 1\n", "2:1",
			"YAML does not allow tabs for indentation; use spaces"},
		{"TabAfterSpaces", "telegram:\n  token: x\n  \tdrafts: true\n", "3:3",
			"YAML does not allow tabs for indentation; use spaces"},
		{"UnclosedDoubleQuote", "chat:\n  system_prompt: \"You are {model}.\n  queue: 1\nlog:\n  level: info\n", "2:18",
			`unclosed quote: the string that starts here has no closing "`},
		{"UnclosedSingleQuote", "storage:\n  path: palaver.db\nchat:\n  system_prompt: 'It''s {date}.\n", "4:18",
			"unclosed quote: the string that starts here has no closing '"},
		// The parser names the last line when the string opens on the first.
		{"UnclosedQuoteFirstLine", "storage: {path: \"palaver.db}\nchat:\n  queue: 1\n", "1:17",
			`unclosed quote: the string that starts here has no closing "`},
		{"ReservedCharacter", "chat:\n  system_prompt: @everyone hello\n", "2:18",
			"(quote a value that starts with @)"},
		{"UnknownAnchor", "chat:\n  queue: 1\ntelegram: *tg\n", "3:11", "unknown anchor 'tg' referenced"},
		{"IndentLess", "chat:\n  queue: 1\n reasoning: full\n", "3:2",
			"did not find expected key (check this line's indentation"},
		{"IndentMore", "chat:\n  queue: 1\n    reasoning: full\n", "3:5",
			"mapping values are not allowed in this context (check this line's indentation)"},
		{"MissingColonBeforeKey", "chat:\n  queue: 1\n  reasoning full\nlog:\n  level: info\n", "3:3",
			`could not find expected ':'`},
		{"MissingColonLast", "chat:\n  queue: 1\n  reasoning full\n", "3:3",
			`could not find expected ':'`},
		{"MissingColonMidMapping", "chat:\n  queue 1\n  reasoning: full\n", "2:3",
			`this line has no ':' (write "key: value")`},
		{"ColonInValue", "chat:\n  system_prompt: Note: be brief\n", "2:22",
			`quote a value that contains ": "`},
		{"DuplicateKey", "chat:\n  queue: 1\n  reasoning: full\n  queue: 2\n", "4:3",
			`duplicate key "chat.queue"`},
		{"DuplicateSection", "chat:\n  queue: 1\nlog:\n  level: info\nchat:\n  queue: 2\n", "5:1",
			`duplicate key "chat"`},
		// A string quoted over several lines is fine; the tab after it is not.
		{"TabAfterMultilineString", "chat:\n  system_prompt: \"one\n    two\"\n  queue: 1\n\treasoning: full\n", "5:1",
			"YAML does not allow tabs for indentation; use spaces"},
		{"UnclosedList", "telegram:\n  allowed_chats: [1, 2\n  admins: []\n", "2:18",
			"(the [ that opens here is not closed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			_, err := LoadConfig(path, true, noEnv)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("LoadConfig = %v, want a *ConfigError", err)
			}
			if want := path + ":" + tt.pos + ": "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(ce.Msg, tt.want) {
				t.Errorf("got  %v\nwant %s...%s", err, want, tt.want)
			}
		})
	}
}
