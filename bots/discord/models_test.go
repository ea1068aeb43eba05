package discord_test

import (
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

// With the provider unreachable (a closed port), /models names it with
// the reason and /model says so in one sentence, never in Go's words.
func TestBot_ProviderUnreachable(t *testing.T) {
	r := newRig(t)
	host := strings.TrimSuffix(strings.TrimPrefix(r.up.URL, "http://"), "/v1")
	r.up.Close()
	ch := r.channel("down")
	tests := []struct {
		name string
		opts []discordtest.Option
		want []string
	}{
		{"models", nil, []string{"No models are available.", "(fake unreachable: could not reach " + host + ": is it running? Check providers.fake.base_url)"}},
		{"model", []discordtest.Option{{Name: "name", Value: "fake/echo"}},
			[]string{"Provider fake unreachable: could not reach " + host + ": is it running? Check providers.fake.base_url."}},
	}
	for _, tt := range tests {
		st := r.slash(t, tt.name, tt.opts, r.mod.ID, ch.ID)
		m := r.original(t, st, done)
		for _, w := range tt.want {
			if !strings.Contains(m.Text(), w) {
				t.Errorf("/%s: answer %q lacks %q", tt.name, m.Text(), w)
			}
		}
		for _, raw := range []string{"dial tcp", "connection refused", "llm:", "Get \""} {
			if strings.Contains(m.Text(), raw) {
				t.Errorf("/%s: answer %q shows %q", tt.name, m.Text(), raw)
			}
		}
	}
}
