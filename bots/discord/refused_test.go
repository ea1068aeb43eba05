package discord

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
)

func TestRefused(t *testing.T) {
	rest := func(code int) error {
		return fmt.Errorf("open: %w", &discordgo.RESTError{Response: &http.Response{StatusCode: code}})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"Unauthorized", rest(http.StatusUnauthorized), true},
		{"Forbidden", rest(http.StatusForbidden), true},
		{"ServerError", rest(http.StatusBadGateway), false},
		{"RateLimited", rest(http.StatusTooManyRequests), false},
		{"AuthenticationFailed", &websocket.CloseError{Code: 4004}, true},
		{"DisallowedIntents", &websocket.CloseError{Code: 4014}, true},
		{"SessionTimedOut", &websocket.CloseError{Code: 4009}, false},
		{"Network", errors.New("dial tcp: lookup discord.com: no such host"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refused(tt.err); got != tt.want {
				t.Errorf("refused(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
