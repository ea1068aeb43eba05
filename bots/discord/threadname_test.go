package discord

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

func TestThreadName(t *testing.T) {
	tests := []struct {
		name, question, want string
	}{
		{"Plain", "What is a monad?", "What is a monad?"},
		{"Markdown", "**bold** _it_ `code` ~~gone~~ ||spoiler|| # head\n> quoted", "bold it code gone spoiler head quoted"},
		{"Mentions", "<@123> ask <@!456> and <@&789> in <#42> <:wave:99> <a:dance:98> at <t:1700000000:R>", "ask and in at"},
		{"Lines", "first line\n\nsecond\tline  ", "first line second line"},
		{"Empty", "  \n ", "Palaver"},
		{"OnlyMarkup", "<@1> **", "Palaver"},
		{"Long", strings.Repeat("word ", 40), strings.TrimSpace(strings.Repeat("word ", 20))[:99] + "…"},
		{"LongRunes", strings.Repeat("é", 150), strings.Repeat("é", 99) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := threadName(tt.question)
			if got != tt.want {
				t.Errorf("threadName(%q) = %q, want %q", tt.question, got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n < 1 || n > maxThreadName {
				t.Errorf("%d characters, want 1 to %d", n, maxThreadName)
			}
		})
	}
}

func TestOpenError(t *testing.T) {
	disallowed := &websocket.CloseError{Code: 4014, Text: "Disallowed intent(s)."}
	tests := []struct {
		name      string
		err       error
		followAll bool
		want      string
	}{
		{"DisallowedIntent", disallowed, true, "thread_follow_all needs the Message Content intent"},
		{"DisallowedWithoutFollowAll", disallowed, false, "check discord.token"},
		{"Other", errors.New("dial tcp: refused"), true, "check discord.token"},
		{"ShardingRequired", &websocket.CloseError{Code: 4011, Text: "Sharding required."}, false, "set discord.shards: auto"},
		{"InvalidShard", &websocket.CloseError{Code: 4010, Text: "Invalid shard."}, false, "refused shard 2 of 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := openError(tt.err, &shard{id: 2, total: 4}, tt.followAll)
			if !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.err) {
				t.Errorf("openError = %v, want %q wrapping %v", err, tt.want, tt.err)
			}
		})
	}
}
