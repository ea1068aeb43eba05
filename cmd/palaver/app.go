package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/etcdstore"
)

// newLogger builds the process logger from log.level and log.format,
// writing to w.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch cfg.Log.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		// Durations as Go writes them ("1.5s"), not as nanoseconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// providerOrder lists the configured providers, the default model's first,
// then by name: the order in which a bare model id is looked up.
func providerOrder(cfg *Config) []string {
	def, _, _ := SplitModel(cfg.Models.Default)
	names := make([]string, 0, len(cfg.Providers))
	for name := range cfg.Providers {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == def) != (names[j] == def) {
			return names[i] == def
		}
		return names[i] < names[j]
	})
	return names
}

// newRouter builds the model router over the configured providers. An
// alias whose provider is not configured does not stop it: using that
// alias is an *llm.AliasError (palaver check warns of it).
func newRouter(cfg *Config, log *slog.Logger) (*llm.Router, error) {
	retries := cfg.LLM.MaxRetries
	if retries == 0 {
		retries = -1 // llm.Options: 0 means the default, negative none
	}
	opts := llm.Options{
		Timeouts: llm.Timeouts{
			Connect:   cfg.LLM.ConnectTimeout,
			FirstByte: cfg.LLM.FirstByteTimeout,
			Idle:      cfg.LLM.IdleTimeout,
		},
		MaxRetries: retries,
		Logger:     log,
	}
	var clients []*llm.Client
	for _, name := range providerOrder(cfg) {
		p := cfg.Providers[name]
		clients = append(clients, llm.NewClient(llm.Provider{
			Name: name, BaseURL: p.BaseURL, APIKey: p.APIKey, Headers: p.Headers,
		}, opts))
	}
	def, _, _ := SplitModel(cfg.Models.Default)
	r, err := llm.NewRouter(clients, def, cfg.Models.Aliases)
	if err != nil {
		return nil, fmt.Errorf("providers: %w", err)
	}
	return r, nil
}

// sessionsConfig turns the chat and models sections into the Manager's
// plain values.
func sessionsConfig(cfg *Config) sessions.Config {
	queue := cfg.Chat.Queue
	if queue == 0 {
		queue = -1 // config: 0 refuses messages while answering
	}
	return sessions.Config{
		DefaultModel:       cfg.Models.Default,
		Allowed:            cfg.Models.Allowed,
		SystemPrompt:       cfg.Chat.SystemPrompt,
		Temperature:        cfg.Chat.Temperature,
		MaxTokens:          cfg.Chat.MaxTokens,
		MaxHistory:         cfg.Chat.MaxHistoryMessages,
		ContextLength:      cfg.Models.ContextLength,
		Reasoning:          sessions.ReasoningMode(cfg.Chat.Reasoning),
		MaxSystemPrompt:    cfg.Chat.MaxSystemPrompt,
		MaxMessage:         cfg.Chat.MaxMessage,
		MaxAnswer:          cfg.Chat.MaxAnswerChars,
		Queue:              queue,
		Parallel:           cfg.Chat.Parallel,
		UserRate:           cfg.Chat.UserRate,
		MaxImages:          maxImages(cfg.Chat.MaxImages),
		ImageMaxSide:       cfg.Chat.ImageMaxSide,
		MaxFileChars:       cfg.Chat.MaxFileChars,
		MaxAttachmentBytes: cfg.Chat.MaxAttachmentBytes,
		Vision:             cfg.Models.Vision,
		Transcription:      cfg.Models.Transcription,
		Usage:              usageConfig(cfg),
	}
}

// maxImages is chat.max_images as the Manager takes it: there 0 means the
// default, and a negative number none.
func maxImages(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// core is what every conversational command runs on.
type core struct {
	log    *slog.Logger
	router *llm.Router
	store  sessions.Store
	// bolt is the store when it is the bbolt file (storage.path), cluster
	// when it is etcd (storage.etcd): one of them is nil.
	bolt    *sessions.BoltStore
	cluster *etcdstore.Store
	control *control // nil when the control socket could not be made
	engine  *sessions.Engine
	manager *sessions.Manager
}

// openCore opens the store (the bbolt file, or etcd, tried again while it
// cannot be reached until ctx ends) and builds the Manager. The caller
// must Close it.
func openCore(ctx context.Context, cfg *Config, log *slog.Logger, obs sessions.Observer, turns sessions.TurnObserver, onCommit func(d float64)) (*core, error) {
	router, err := newRouter(cfg, log)
	if err != nil {
		return nil, err
	}
	c := &core{log: log, router: router}
	if len(cfg.Storage.Etcd.Endpoints) > 0 {
		if c.cluster, err = openEtcd(ctx, cfg, log); err != nil {
			return nil, err
		}
		c.store = c.cluster
		log.Info("store: etcd", "endpoints", cfg.Storage.Etcd.Endpoints, "member", c.cluster.Role().Member)
	} else {
		opts := sessions.BoltOptions{Retention: cfg.Storage.HistoryLimit, Logger: log}
		if onCommit != nil {
			opts.OnCommit = func(d time.Duration) { onCommit(d.Seconds()) }
		}
		if c.bolt, err = sessions.OpenBolt(cfg.Storage.Path, opts); err != nil {
			return nil, fmt.Errorf("storage.path: %w", err)
		}
		c.store = c.bolt
		if c.control, err = listenControl(c.bolt, log, controlTimeout); err != nil {
			log.Warn("live backups are off: palaver store backup will need palaver stopped", "error", err)
		}
	}
	c.engine = sessions.NewEngine(log, obs)
	scfg := sessionsConfig(cfg)
	scfg.Observer = turns
	c.manager = sessions.NewManager(scfg, c.store, router, c.engine, log)
	return c, nil
}

// Close stops the control socket, finishes running answers within ctx,
// then closes the store.
func (c *core) Close(ctx context.Context) error {
	if err := c.control.Close(); err != nil {
		c.log.Warn("shutdown", "error", err)
	}
	merr := c.manager.Close(ctx)
	var serr error
	if c.cluster != nil {
		serr = c.cluster.Close()
	} else {
		serr = c.bolt.Close()
	}
	if merr != nil {
		return merr
	}
	return serr
}
