package main

import (
	"context"
	"fmt"
)

// noTokens is what palaver run says when it has nothing to run.
const noTokens = `no platform token is configured, so there is no bot to run.
  Telegram: create a bot with @BotFather, then set telegram.token in config.yaml (or TELEGRAM_BOT_TOKEN).
  Discord:  create an application at https://discord.com/developers/applications, then set discord.token (or DISCORD_BOT_TOKEN).
  To talk to a model right now without any platform account: palaver chat`

// runServices runs the bots and the endpoint until ctx ends (or Ctrl-C).
func runServices(ctx context.Context, e *env, args []string, serveOnly bool) error {
	fs := e.flags()
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	if !serveOnly && cfg.Telegram.Token == "" && cfg.Discord.Token == "" && !cfg.Gateway.Enabled {
		return &exitError{code: 2, err: fmt.Errorf("%s", noTokens)}
	}
	return fmt.Errorf("not built yet")
}
