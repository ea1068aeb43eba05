package telegram_test

import (
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
)

// With the provider unreachable (a closed port), /models names it with
// the reason and /model and a chat message say so in one sentence each,
// never in Go's words.
func TestBot_ProviderUnreachable(t *testing.T) {
	r := newRig(t)
	host := strings.TrimSuffix(strings.TrimPrefix(r.up.URL, "http://"), "/v1")
	r.up.Close()
	tests := []struct {
		send string
		want []string
	}{
		{"/models", []string{"No models are available.", "(fake unreachable: could not reach " + host + ": is it running? Check providers.fake.base_url)"}},
		{"/model", []string{"No models are available to choose from.", "(fake unreachable: could not reach " + host}},
		{"/model fake/echo", []string{"Provider fake unreachable: could not reach " + host + ": is it running? Check providers.fake.base_url."}},
		{"hello", []string{"Palaver could not reach the model server at " + host + ": is it running?", "try /retry."}},
	}
	for _, tt := range tests {
		r.tg.SendText(alice.ID, alice, tt.send)
		m, err := r.tg.WaitMessage(r.ctx(), alice.ID, func(m telegramtest.Message) bool {
			return m.From.ID == r.tg.Bot().ID && !strings.Contains(string(m.ReplyMarkup), `"stop"`) && strings.Contains(m.Text, tt.want[0])
		})
		if err != nil {
			t.Fatalf("%s: no answer containing %q; bot messages: %q", tt.send, tt.want[0], texts(r.tg.BotMessages(alice.ID)))
		}
		for _, w := range tt.want[1:] {
			if !strings.Contains(m.Text, w) {
				t.Errorf("%s: answer %q lacks %q", tt.send, m.Text, w)
			}
		}
		for _, raw := range []string{"dial tcp", "connection refused", "llm:", "Get \""} {
			if strings.Contains(m.Text, raw) {
				t.Errorf("%s: answer %q shows %q", tt.send, m.Text, raw)
			}
		}
	}
}
