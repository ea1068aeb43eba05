package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions/etcdstore/etcdtest"
)

// Two palaver run processes (in this test's process) on one etcd store
// and one Telegram bot: one leads and polls, the other stands by; when the
// leader stops, the standby takes over from the stored offset. Every
// question is answered once.
func TestMain_RunCluster(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	prefix := etcd.Prefix(t)
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)

	type proc struct {
		addr string
		stop context.CancelFunc
		done chan int
		out  *syncWriter
	}
	start := func(member string) *proc {
		dir := t.TempDir()
		p := &proc{addr: freeAddr(t), done: make(chan int, 1), out: new(syncWriter)}
		cfg := fmt.Sprintf(`storage:
  history_limit: 100
  etcd:
    endpoints: [%s]
    prefix: %s
cluster:
  member: %s
  failover: 2s
providers:
  fake:
    base_url: %s
models:
  default: fake/echo
gateway:
  enabled: true
  listen: %s
telegram:
  token: %s
  api_endpoint: %s
`, strings.Join(etcd.Endpoints(), ", "), prefix, member, up.URL, p.addr, tg.Token(), tg.Endpoint())
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(t.Context())
		p.stop = stop
		go func() {
			p.done <- Main(ctx, []string{"run", "--config", path}, strings.NewReader(""), io.Discard, p.out)
		}()
		t.Cleanup(func() {
			stop()
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				t.Errorf("palaver %s did not return after cancel", member)
			}
		})
		return p
	}
	role := func(p *proc) string {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var h struct {
			Cluster struct {
				Telegram string `json:"telegram"`
			} `json:"cluster"`
		}
		json.NewDecoder(resp.Body).Decode(&h)
		return h.Cluster.Telegram
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	waitRole := func(p *proc, want string) {
		t.Helper()
		if err := tg.WaitFor(ctx, func() bool { return role(p) == want }); err != nil {
			t.Fatalf("/healthz role %q, want %q: %v\n%s", role(p), want, err, p.out.String())
		}
	}
	answered := func(chat int64, text string) {
		t.Helper()
		tg.SendText(chat, telegramtest.User{ID: chat, FirstName: "U"}, text)
		if _, err := tg.WaitMessage(ctx, chat, func(m telegramtest.Message) bool {
			return m.From.IsBot && strings.Contains(m.Text, text)
		}); err != nil {
			t.Fatalf("%q not answered: %v", text, err)
		}
	}

	a := start("a")
	waitRole(a, "leader")
	b := start("b")
	waitRole(b, "standby")
	answered(1001, "first question")

	a.stop() // a graceful stop hands the lead over at once
	select {
	case code := <-a.done:
		a.done <- code
		if code != 0 {
			t.Errorf("palaver a exited %d\n%s", code, a.out.String())
		}
	case <-ctx.Done():
		t.Fatal("palaver a did not stop")
	}
	waitRole(b, "leader")
	answered(1002, "second question")

	for _, chat := range []int64{1001, 1002} {
		n := 0
		for _, m := range tg.BotMessages(chat) {
			if m.Text != "" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("chat %d has %d answers, want 1", chat, n)
		}
	}
}

// palaver check with storage.etcd names the etcd members it reaches, and
// fails with the endpoints named when it reaches none.
func TestCheck_Cluster(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	path := writeConfig(t, "storage:\n  history_limit: 100\n  etcd:\n    endpoints: ["+strings.Join(etcd.Endpoints(), ", ")+"]\n"+
		"providers:\n  local:\n    base_url: http://127.0.0.1:1/v1\nmodels:\n  default: local/m\n")
	code, stdout, stderr := runCheck(t, path, nil)
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"storage: etcd at " + etcd.Endpoints()[0], "cluster: member (host name and process id), failover 10s", "etcd member ", "raft leader"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}

	down := "http://" + freeAddr(t)
	path = writeConfig(t, "storage:\n  history_limit: 100\n  etcd:\n    endpoints: ["+down+"]\n    dial_timeout: 300ms\n"+
		"providers:\n  local:\n    base_url: http://127.0.0.1:1/v1\nmodels:\n  default: local/m\n")
	code, _, stderr = runCheck(t, path, nil)
	if code == 0 || !strings.Contains(stderr, "storage.etcd") || !strings.Contains(stderr, down) {
		t.Errorf("exit code %d, stderr %q; want a failure naming storage.etcd and %s", code, stderr, down)
	}
}
