package etcdstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

func testImage(data []byte) sessions.Image {
	sum := sha256.Sum256(data)
	return sessions.Image{SHA256: hex.EncodeToString(sum[:]), MIME: "image/png", Size: len(data), Data: data}
}

func TestStore_Limits(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	many := make([]sessions.Entry, 130)
	for i := range many {
		many[i] = sessions.Entry{Role: llm.RoleUser, Text: fmt.Sprint(i)}
	}
	for _, tt := range []struct {
		name    string
		entries []sessions.Entry
		want    string
	}{
		{"Ops", many, "over the limit of 128 (etcd's --max-txn-ops)"},
		{"Bytes", []sessions.Entry{{Role: llm.RoleAssistant, Text: strings.Repeat("x", 2<<20)}}, "2.0 MiB request, over the limit of 1.5 MiB (etcd's --max-request-bytes)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Append(t.Context(), key, false, tt.entries...)
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Append = %v, want ErrTooLarge saying %q", err, tt.want)
			}
			if h, _ := s.History(t.Context(), key, 0); len(h) != 0 {
				t.Errorf("a refused write wrote %d entries", len(h))
			}
		})
	}
}

// TestStore_BigImage checks that an image larger than a request is kept
// in chunks, and deleted whole.
func TestStore_BigImage(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	ctx := t.Context()
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	data := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/32) // 2.5 MiB
	im := testImage(data)
	e := sessions.Entry{Role: llm.RoleUser, Text: "look", Images: []sessions.Image{im}}
	if err := s.Commit(ctx, key, sessions.Commit{Entries: []sessions.Entry{e}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Blob(ctx, im.SHA256)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Blob = %d bytes, %v; want the %d stored", len(got), err, len(data))
	}
	if n := countKeys(t, cfg.Prefix+"blobs/"+im.SHA256+"/data/"); n != 3 {
		t.Errorf("%d chunks, want 3", n)
	}
	if err := s.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, cfg.Prefix+"blobs/"); n != 0 {
		t.Errorf("%d blob keys left after Reset", n)
	}
	// Nothing staged is left behind: the staging lease is revoked.
	leases, err := cluster.Client(t).Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Leases {
		ttl, err := cluster.Client(t).TimeToLive(ctx, l.ID)
		if err == nil && ttl.GrantedTTL == stagingTTL {
			t.Errorf("staging lease %x still alive", l.ID)
		}
	}
}

// TestStore_ManyImages checks that deleting a history of more images than
// a transaction can release releases them all, in batches.
func TestStore_ManyImages(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	ctx := t.Context()
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	const images = 300
	for i := 0; i < images; i += 5 {
		var ims []sessions.Image
		for j := i; j < i+5; j++ {
			ims = append(ims, testImage(fmt.Appendf(nil, "picture %d", j)))
		}
		e := sessions.Entry{Role: llm.RoleUser, Text: "look", Images: ims}
		if err := s.Commit(ctx, key, sessions.Commit{Entries: []sessions.Entry{e}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countKeys(t, cfg.Prefix+"blobs/"); n != 2*images {
		t.Fatalf("%d blob keys, want %d", n, 2*images)
	}
	if err := s.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, cfg.Prefix+"blobs/"); n != 0 {
		t.Errorf("%d blob keys left after Reset", n)
	}
	if n := countKeys(t, cfg.Prefix+"release/"); n != 0 {
		t.Errorf("%d release records left", n)
	}
}

// TestStore_ReleaseLeftBehind checks that a release record a process
// left (it stopped between a delete and its release) is applied by the
// next Open.
func TestStore_ReleaseLeftBehind(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	ctx := t.Context()
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	a, b := testImage([]byte("a")), testImage([]byte("b"))
	e := sessions.Entry{Role: llm.RoleUser, Text: "look", Images: []sessions.Image{a, b}}
	if err := s.Commit(ctx, key, sessions.Commit{Entries: []sessions.Entry{e, e}}); err != nil {
		t.Fatal(err)
	}
	// What a stopped process leaves: entries gone, one count not yet
	// down, one record.
	cli := cluster.Client(t)
	if _, err := cli.Put(ctx, cfg.Prefix+"release/left", fmt.Sprintf(`{%q:2,%q:1}`, a.SHA256, b.SHA256)); err != nil {
		t.Fatal(err)
	}
	cfg.Member = "m2"
	mustOpen(t, cfg)
	if _, err := s.Blob(ctx, a.SHA256); !errors.Is(err, sessions.ErrNoBlob) {
		t.Errorf("Blob(a) = %v, want ErrNoBlob", err)
	}
	if got, err := s.Blob(ctx, b.SHA256); err != nil || string(got) != "b" {
		t.Errorf("Blob(b) = %q, %v; want it kept (one reference left)", got, err)
	}
	if n := countKeys(t, cfg.Prefix+"release/"); n != 0 {
		t.Errorf("%d release records left", n)
	}
}
