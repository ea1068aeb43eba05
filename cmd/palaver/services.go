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
	// roles, when set, reports this process's place in a cluster
	// (telegram leader or standby, Discord shards held), under "cluster".
	roles map[string]func() any
}

// role adds what fn reports under "cluster" as name.
func (h *health) role(name string, fn func() any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.roles == nil {
		h.roles = make(map[string]func() any)
	}
	h.roles[name] = fn
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
	report := map[string]any{"ok": ok, "components": h.state}
	if len(h.roles) > 0 {
		roles := make(map[string]any, len(h.roles))
		for name, fn := range h.roles {
			roles[name] = fn()
		}
		report["cluster"] = roles
	}
	json.NewEncoder(w).Encode(report)
}

// runServices runs the bots and the endpoint until ctx ends or the user
// presses Ctrl-C, then lets running answers finish within shutdownGrace. A
// second Ctrl-C quits at once (answers in flight are finalised at the next
// start, as after a crash).
func runServices(ctx context.Context, e *env, args []string, serveOnly bool) error {
	fs := e.flags()
	listen := ""
	if serveOnly {
		fs.StringVar(&listen, "listen", "", "address to listen on, `host:port` (default gateway.listen)")
	}
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	if listen != "" {
		cfg.Gateway.Listen = listen
	}
	if !serveOnly && cfg.Telegram.Token == "" && cfg.Discord.Token == "" && !cfg.Gateway.Enabled {
		return &exitError{code: 2, err: fmt.Errorf("%s", noTokens)}
	}
	log := newLogger(cfg, e.stderr)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	interrupts := make(chan os.Signal, 2)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	result := make(chan error, 1)
	go func() { result <- serve(ctx, cfg, log, serveOnly) }()

	parent := ctx.Done()
	stopping := false
	for {
		select {
		case err := <-result:
			if err == nil {
				log.Info("stopped")
			}
			return err
		case <-interrupts:
			if stopping {
				log.Warn("quitting now; answers in flight are finalised at the next start")
				return &exitError{code: 130}
			}
			stopping = true
			log.Info("stopping… (Ctrl-C again to quit now)", "grace", shutdownGrace)
			cancel()
		case <-parent:
			parent = nil
			if !stopping {
				stopping = true
				log.Info("stopping…", "grace", shutdownGrace)
			}
		}
	}
}

// serve starts every configured component and runs them until ctx ends or
// none is left running. One component that cannot run (a refused token, a
// port in use) is logged and reported down in /healthz; the others go on.
// serve fails only when nothing configured could run.
func serve(ctx context.Context, cfg *Config, log *slog.Logger, serveOnly bool) error {
	bots := !serveOnly && (cfg.Telegram.Token != "" || cfg.Discord.Token != "")
	withGateway := serveOnly || cfg.Gateway.Enabled
	met := newMetrics()
	hl := &health{state: map[string]string{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sv := &supervisor{hl: hl, cancel: cancel}

	// The store keeps the conversations, and the usage of the bots and of
	// the endpoint (usage.go).
	var c *core
	if bots || withGateway {
		var err error
		c, err = openCore(ctx, cfg, log, met.engineObserver(), met.turnObserver(), met.observeCommit)
		switch {
		case err == nil:
			if c.cluster == nil {
				log.Info("store open", "path", cfg.Storage.Path)
			} else {
				hl.role("member", func() any { return c.cluster.Role() })
			}
			hl.set("store", "open")
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
				defer cancel()
				if err := c.Close(sctx); err != nil {
					log.Error("shutdown", "error", err)
				}
			}()
		case !bots && unmeteredEndpoint(cfg, err):
			log.Warn("the store is in use by another palaver: the endpoint's usage is not recorded; run the endpoint in that palaver (gateway.enabled), or give this one its own storage.path",
				"path", cfg.Storage.Path)
		default:
			return err
		}
	}

	if withGateway {
		glog := log.With("component", "gateway")
		router, err := newRouter(cfg, log)
		if err != nil {
			return err
		}
		gw, err := gateway.New(gateway.Options{
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
			Logger:            glog,
			Meter:             endpointMeter(c),
			Overhead:          met.observeOverhead,
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
		sv.start(ctx, "gateway", glog, true, func(ctx context.Context) error {
			ln, err := net.Listen("tcp", cfg.Gateway.Listen)
			if err != nil {
				return fmt.Errorf("gateway.listen: %w", err)
			}
			hl.set("gateway", "up")
			return gw.Serve(ctx, ln)
		})
	}

	if cfg.Metrics.Listen != "" {
		mlog := log.With("component", "metrics")
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", met.handler())
		mux.Handle("GET /healthz", hl)
		srv := &http.Server{Addr: cfg.Metrics.Listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		sv.start(ctx, "metrics", mlog, false, func(ctx context.Context) error {
			ln, err := net.Listen("tcp", cfg.Metrics.Listen)
			if err != nil {
				return fmt.Errorf("metrics.listen: %w", err)
			}
			hl.set("metrics", "up")
			mlog.Info("listening", "url", "http://"+ln.Addr().String()+"/metrics")
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}

	if bots {
		if cfg.Telegram.Token != "" {
			tlog := log.With("platform", telegram.Platform)
			c.setBudget(ctx, telegram.Platform, window(cfg.Telegram.GlobalWindow))
			var hook telegram.Webhook
			if w := cfg.Telegram.Webhook; w.URL != "" {
				hook = telegram.Webhook{URL: w.URL, Listen: w.Listen, SecretToken: w.SecretToken, MaxConnections: w.MaxConnections}
			}
			topts := telegram.Options{
				Token:              cfg.Telegram.Token,
				APIEndpoint:        cfg.Telegram.APIEndpoint,
				EditInterval:       cfg.Telegram.EditInterval,
				GroupEditInterval:  cfg.Telegram.GroupEditInterval,
				Window:             window(cfg.Telegram.Window),
				GroupWindow:        window(cfg.Telegram.GroupWindow),
				AllowedChats:       cfg.Telegram.AllowedChats,
				AllowedUsers:       cfg.Telegram.AllowedUsers,
				Admins:             cfg.Telegram.Admins,
				Drafts:             cfg.Telegram.Drafts,
				Format:             cfg.Telegram.Format,
				MaxAttachmentBytes: cfg.Chat.MaxAttachmentBytes,
				Webhook:            hook,
				Logger:             log,
				OnState:            func(state string) { hl.set(telegram.Platform, state) },
			}
			if c.cluster != nil {
				topts.Leader, topts.Advertise = c.cluster, cfg.Cluster.Advertise
			}
			bot, err := telegram.New(topts, c.manager, c.store)
			if err != nil {
				return err
			}
			if c.cluster != nil {
				hl.role(telegram.Platform, func() any { return bot.Role() })
			}
			sv.start(ctx, telegram.Platform, tlog, true, bot.Run)
		}
		if cfg.Discord.Token != "" {
			dlog := log.With("platform", discord.Platform)
			c.setBudget(ctx, discord.Platform, window(cfg.Discord.GlobalWindow))
			dopts := discord.Options{
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
				Components:      cfg.Discord.Components,
				Shards:          discordShards(cfg.Discord.Shards),
				Logger:          log,
				OnState:         func(state string) { hl.set(discord.Platform, state) },
				State:           c.store,
			}
			if c.cluster != nil {
				dopts.ShardSet, dopts.IdentifyGate = c.cluster, c.cluster
			}
			bot, err := discord.New(dopts, c.manager)
			if err != nil {
				return err
			}
			if c.cluster != nil || cfg.Discord.Shards != 1 {
				hl.role(discord.Platform, func() any { return bot.Shards() })
			}
			sv.start(ctx, discord.Platform, dlog, true, bot.Run)
		}
	}
	return sv.wait()
}

// supervisor runs the long-lived components of palaver run and serve. A
// component that ends by itself is logged and reported "down"; the others
// go on. When the last essential component has ended by itself, the
// supervisor ends the rest (through cancel).
type supervisor struct {
	hl     *health
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	live int     // essential components running
	errs []error // why essential components ended by themselves
}

// start runs one component in the background. log is its logger (it
// carries the component's name); the supervisor logs its end there.
func (s *supervisor) start(ctx context.Context, name string, log *slog.Logger, essential bool, run func(context.Context) error) {
	if essential {
		s.mu.Lock()
		s.live++
		s.mu.Unlock()
	}
	s.wg.Go(func() {
		err := component(ctx, s.hl, name, run)
		if ctx.Err() != nil {
			if err != nil {
				log.Warn("stopped", "error", err)
			} else {
				log.Info("stopped")
			}
			return
		}
		if err != nil {
			log.Error("stopped", "error", err)
		} else {
			log.Error("stopped by itself")
			err = errors.New("stopped by itself")
		}
		if !essential {
			return
		}
		s.mu.Lock()
		s.live--
		s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
		last := s.live == 0
		s.mu.Unlock()
		if last {
			s.cancel()
		}
	})
}

// wait waits for every component to end. It fails when every essential
// component ended by itself: nothing configured could run.
func (s *supervisor) wait() error {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == 0 && len(s.errs) > 0 {
		return errors.Join(s.errs...)
	}
	return nil
}

// component runs one long-lived part, recording its state for /healthz:
// "connecting" as it starts (the part itself reports its connection states
// while it runs), "stopped" when it ends with ctx, "down" when it ends by
// itself.
func component(ctx context.Context, hl *health, name string, run func(context.Context) error) error {
	hl.set(name, "connecting")
	err := run(ctx)
	if ctx.Err() != nil {
		hl.set(name, "stopped")
		return err
	}
	hl.set(name, "down")
	return err
}

// window is a configured rate-limit window as the reply engine takes it.
func window(w WindowConfig) sessions.Window {
	return sessions.Window{Requests: w.Requests, Per: w.Per}
}

// discordShards is discord.shards as the Discord bot takes it.
func discordShards(n Shards) int {
	if n == ShardsAuto {
		return discord.AutoShards
	}
	return int(n)
}
