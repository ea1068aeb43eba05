package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/telegram"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/gateway"
	"github.com/palaver-bot/palaver/sessions"
)

// noTokens is what palaver run says when it has nothing to run.
const noTokens = `no platform token is configured, so there is no bot to run.
  Telegram: create a bot with @BotFather, then set telegram.token in config.yaml (or TELEGRAM_BOT_TOKEN).
  Discord:  create an application at https://discord.com/developers/applications, then set discord.token (or DISCORD_BOT_TOKEN).
  To talk to a model right now without any platform account: palaver chat`

// shutdownGrace is how long running answers may finish after a stop signal.
const shutdownGrace = 20 * time.Second

// health is what /healthz reports: each component's state. It answers 200
// when every state is "up" or "open", 503 otherwise.
type health struct {
	mu    sync.Mutex
	state map[string]string
}

func (h *health) set(name, state string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state[name] = state
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ok := true
	for _, s := range h.state {
		if s != "up" && s != "open" {
			ok = false
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ok": ok, "components": h.state})
}

// runServices runs the bots and the endpoint until ctx ends (or Ctrl-C),
// then lets running answers finish within shutdownGrace.
func runServices(ctx context.Context, e *env, args []string, serveOnly bool) error {
	fs := e.flags()
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	bots := !serveOnly && (cfg.Telegram.Token != "" || cfg.Discord.Token != "")
	withGateway := serveOnly || cfg.Gateway.Enabled
	if !bots && !withGateway {
		return &exitError{code: 2, err: fmt.Errorf("%s", noTokens)}
	}
	log := newLogger(cfg, e.stderr)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	met := newMetrics()
	hl := &health{state: map[string]string{}}
	g, gctx := errgroup.WithContext(ctx)

	var gw *gateway.Server
	if withGateway {
		router, err := newRouter(cfg, log)
		if err != nil {
			return err
		}
		gw, err = gateway.New(gateway.Options{
			Listen:            cfg.Gateway.Listen,
			APIKeys:           cfg.Gateway.APIKeys,
			AllowAnonymous:    cfg.Gateway.AllowAnonymous,
			CORSOrigins:       cfg.Gateway.CORSOrigins,
			Aliases:           cfg.Models.Aliases,
			Allowed:           llm.AllowList(cfg.Models.Allowed),
			MaxBody:           cfg.Gateway.MaxBody,
			MaxStreamsPerKey:  cfg.Gateway.MaxStreamsPerKey,
			RequestsPerMinute: cfg.Gateway.RequestsPerMinute,
			Health:            hl,
			Logger:            log.With("component", "gateway"),
		}, router)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if cfg.Metrics.Listen == "" {
			// Behind gateway.api_keys when they are set, like the API:
			// the metrics name models and count tokens. metrics.listen,
			// when set, serves them without a key instead.
			gw.Handle("GET /metrics", met.handler())
		}
		ln, err := net.Listen("tcp", cfg.Gateway.Listen)
		if err != nil {
			return fmt.Errorf("gateway.listen: %w", err)
		}
		log.Info("endpoint listening", "url", "http://"+ln.Addr().String()+"/v1")
		hl.set("gateway", "up")
		g.Go(func() error { return gw.Serve(gctx, ln) })
	}

	if cfg.Metrics.Listen != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", met.handler())
		mux.Handle("GET /healthz", hl)
		srv := &http.Server{Addr: cfg.Metrics.Listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
		g.Go(func() error {
			go func() { <-gctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics: %w", err)
			}
			return nil
		})
	}

	if bots {
		c, err := openCore(cfg, log, met.engineObserver(), met.turnObserver(), met.observeCommit)
		if err != nil {
			return err
		}
		hl.set("store", "open")
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
			defer cancel()
			if err := c.Close(sctx); err != nil {
				log.Error("shutdown", "error", err)
			}
		}()
		if cfg.Telegram.Token != "" {
			c.engine.SetBudget(telegram.Platform, window(cfg.Telegram.GlobalWindow))
			bot, err := telegram.New(telegram.Options{
				Token:             cfg.Telegram.Token,
				APIEndpoint:       cfg.Telegram.APIEndpoint,
				EditInterval:      cfg.Telegram.EditInterval,
				GroupEditInterval: cfg.Telegram.GroupEditInterval,
				Window:            window(cfg.Telegram.Window),
				GroupWindow:       window(cfg.Telegram.GroupWindow),
				AllowedChats:      cfg.Telegram.AllowedChats,
				AllowedUsers:      cfg.Telegram.AllowedUsers,
				Admins:            cfg.Telegram.Admins,
				Drafts:            cfg.Telegram.Drafts,
				Logger:            log.With("platform", telegram.Platform),
				OnState:           func(state string) { hl.set(telegram.Platform, state) },
			}, c.manager, c.store)
			if err != nil {
				return err
			}
			g.Go(func() error { return component(gctx, hl, telegram.Platform, log, bot.Run) })
		}
		if cfg.Discord.Token != "" {
			c.engine.SetBudget(discord.Platform, window(cfg.Discord.GlobalWindow))
			bot, err := discord.New(discord.Options{
				Token:           cfg.Discord.Token,
				ApplicationID:   cfg.Discord.ApplicationID,
				APIBase:         cfg.Discord.APIBase,
				Guilds:          cfg.Discord.Guilds,
				EditInterval:    cfg.Discord.EditInterval,
				Window:          window(cfg.Discord.Window),
				AllowedGuilds:   cfg.Discord.AllowedGuilds,
				AllowedChannels: cfg.Discord.AllowedChannels,
				Admins:          cfg.Discord.Admins,
				Threads:         cfg.Discord.Threads,
				ThreadFollowAll: cfg.Discord.ThreadFollowAll,
				Logger:          log.With("platform", discord.Platform),
				OnState:         func(state string) { hl.set(discord.Platform, state) },
			}, c.manager)
			if err != nil {
				return err
			}
			g.Go(func() error { return component(gctx, hl, discord.Platform, log, bot.Run) })
		}
	}
	err = g.Wait()
	if ctx.Err() != nil {
		log.Info("stopping: finishing answers in progress", "grace", shutdownGrace)
		return nil
	}
	return err
}

// component runs one long-lived part, recording its state for /healthz:
// "connecting" as it starts (the part itself reports its connection states
// while it runs), "stopped" when it ends with ctx, "down" when it ends by
// itself.
func component(ctx context.Context, hl *health, name string, log *slog.Logger, run func(context.Context) error) error {
	hl.set(name, "connecting")
	err := run(ctx)
	if ctx.Err() != nil {
		hl.set(name, "stopped")
		return nil
	}
	hl.set(name, "down")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// window is a configured rate-limit window as the reply engine takes it.
func window(w WindowConfig) sessions.Window {
	return sessions.Window{Requests: w.Requests, Per: w.Per}
}
