package main

import (
	"cmp"
	"context"
	"fmt"
	"strings"
)

// cmdCheck validates the config and says what it enables. It exits 2 with
// every problem named (key and line, in line order) when the config is bad;
// otherwise it prints the warnings, among them each ${VAR} that is not set
// and each alias whose provider is not configured.
func cmdCheck(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	src := cfg.Path()
	if src == "" {
		src = "built-in defaults (no config.yaml here)"
	}
	fmt.Fprintf(e.stdout, "config: %s — OK\n", src)
	fmt.Fprintf(e.stdout, "default model: %s\n", cfg.Models.Default)
	for _, name := range providerOrder(cfg) {
		p := cfg.Providers[name]
		auth := "no api_key"
		if p.APIKey != "" {
			auth = "api_key set"
		}
		fmt.Fprintf(e.stdout, "provider %s: %s (%s)\n", name, p.BaseURL, auth)
	}
	fmt.Fprintf(e.stdout, "telegram: %s\n", enabled(cfg.Telegram.Token != ""))
	fmt.Fprintf(e.stdout, "discord: %s\n", enabled(cfg.Discord.Token != ""))
	if cfg.Gateway.Enabled {
		fmt.Fprintf(e.stdout, "endpoint: enabled on %s\n", cfg.Gateway.Listen)
	} else {
		fmt.Fprintf(e.stdout, "endpoint: off in palaver run (palaver serve listens on %s)\n", cfg.Gateway.Listen)
	}
	etcd := len(cfg.Storage.Etcd.Endpoints) > 0
	if etcd {
		fmt.Fprintf(e.stdout, "storage: etcd at %s, keys under %s\n", strings.Join(cfg.Storage.Etcd.Endpoints, ", "), cfg.Storage.Etcd.Prefix)
		fmt.Fprintf(e.stdout, "cluster: member %s, failover %s\n", cmp.Or(cfg.Cluster.Member, "(host name and process id)"), cfg.Cluster.Failover)
	} else {
		fmt.Fprintf(e.stdout, "storage: %s\n", cfg.Storage.Path)
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(e.stdout, "warning: %s\n", w)
	}
	if etcd {
		// The members this process would reach, as palaver run will.
		return printCluster(ctx, e.stdout, cfg)
	}
	return nil
}

func enabled(on bool) string {
	if on {
		return "enabled"
	}
	return "off (no token)"
}
