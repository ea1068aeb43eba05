package sessions

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/palaver-bot/palaver/llm"
)

// mustOpenBolt opens a store in a new temporary directory and closes it at
// the end of the test.
func mustOpenBolt(t testing.TB, opts BoltOptions) *BoltStore {
	t.Helper()
	return mustOpenBoltAt(t, filepath.Join(t.TempDir(), "palaver.db"), opts)
}

func mustOpenBoltAt(t testing.TB, path string, opts BoltOptions) *BoltStore {
	t.Helper()
	s, err := OpenBolt(path, opts)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func testEntry(role, text string) Entry {
	return Entry{Role: role, Text: text, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// texts returns the entries' Seq:Text pairs, for compact comparisons.
func texts(entries []Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = fmt.Sprintf("%d:%s", e.Seq, e.Text)
	}
	return out
}

func mustAppend(t testing.TB, s *BoltStore, key Key, texts ...string) {
	t.Helper()
	entries := make([]Entry, len(texts))
	for i, text := range texts {
		entries[i] = testEntry(llm.RoleUser, text)
	}
	if err := s.Append(t.Context(), key, false, entries...); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func mustHistory(t testing.TB, s *BoltStore, key Key, limit int) []Entry {
	t.Helper()
	got, err := s.History(t.Context(), key, limit)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return got
}

// diskProgressKeys lists the progress records written to the file, bypassing
// the write-behind buffer.
func diskProgressKeys(t testing.TB, s *BoltStore) []string {
	t.Helper()
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProgress).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read progress bucket: %v", err)
	}
	return keys
}

func progressKeys(t testing.TB, s *BoltStore) []string {
	t.Helper()
	ps, err := s.Progresses(t.Context())
	if err != nil {
		t.Fatalf("Progresses: %v", err)
	}
	var keys []string
	for _, p := range ps {
		keys = append(keys, p.Key.String())
	}
	return keys
}

func TestBoltStore_Reopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "palaver.db")
	key := Key{Platform: "telegram", Chat: "42", Thread: "7"}
	prompt, temp := "Be brief.", 0.0
	settings := Settings{Model: "deepinfra/x/y", SystemPrompt: &prompt, Temperature: &temp, MaxTokens: 99, Reasoning: ReasoningCollapsed}
	answer := Entry{Role: llm.RoleAssistant, AuthorName: "bot", Text: "hello", Reasoning: "hmm", Model: "deepinfra/x/y",
		Usage: llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}, Status: "stopped", Time: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
	progress := Progress{Destination: "telegram:42", Reply: []byte(`{"ids":[1,2]}`), Shown: View{Content: "partial"}, Started: time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)}

	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	ctx := t.Context()
	if err := s.SaveSettings(ctx, key, settings); err != nil {
		t.Fatalf("SaveSettings: %v", err)
	}
	if err := s.Append(ctx, key, false, testEntry(llm.RoleUser, "hi"), answer); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := s.SetValue(ctx, "telegram.offset", []byte("1234")); err != nil {
		t.Fatalf("SetValue: %v", err)
	}
	if err := s.SetProgress(ctx, key, 0, &progress); err != nil {
		t.Fatalf("SetProgress: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = mustOpenBoltAt(t, path, BoltOptions{})
	gotSettings, err := s.Settings(ctx, key)
	if err != nil {
		t.Fatalf("Settings: %v", err)
	}
	if !reflect.DeepEqual(gotSettings, settings) {
		t.Errorf("Settings = %+v, want %+v", gotSettings, settings)
	}
	answer.Seq = 2
	want := []Entry{testEntry(llm.RoleUser, "hi"), answer}
	want[0].Seq = 1
	if got := mustHistory(t, s, key, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("History = %+v, want %+v", got, want)
	}
	if got, err := s.Value(ctx, "telegram.offset"); err != nil || string(got) != "1234" {
		t.Errorf("Value = %q, %v; want \"1234\", nil", got, err)
	}
	ps, err := s.Progresses(ctx)
	if err != nil {
		t.Fatalf("Progresses: %v", err)
	}
	progress.Key = key
	if len(ps) != 1 || !reflect.DeepEqual(ps[0], progress) {
		t.Errorf("Progresses = %+v, want [%+v]", ps, progress)
	}
}

func TestBoltStore_Settings_Unknown(t *testing.T) {
	s := mustOpenBolt(t, BoltOptions{})
	got, err := s.Settings(t.Context(), Key{Platform: "discord", Chat: "1"})
	if err != nil || !reflect.DeepEqual(got, Settings{}) {
		t.Errorf("Settings = %+v, %v; want zero, nil", got, err)
	}
	if got := mustHistory(t, s, Key{Platform: "discord", Chat: "1"}, 10); len(got) != 0 {
		t.Errorf("History = %v, want none", got)
	}
}

func TestBoltStore_Append_AssignsSeqWithoutModifyingCaller(t *testing.T) {
	s := mustOpenBolt(t, BoltOptions{})
	key := Key{Platform: "console", Chat: "me"}
	entries := []Entry{testEntry(llm.RoleUser, "a"), testEntry(llm.RoleAssistant, "b")}
	if err := s.Append(t.Context(), key, false, entries...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if entries[0].Seq != 0 || entries[1].Seq != 0 {
		t.Errorf("caller's entries modified: %+v", entries)
	}
}

func TestBoltStore_History(t *testing.T) {
	s := mustOpenBolt(t, BoltOptions{})
	key := Key{Platform: "discord", Chat: "c1"}
	other := Key{Platform: "discord", Chat: "c1", Thread: "t1"}
	mustAppend(t, s, key, "a", "b", "c", "d", "e")
	mustAppend(t, s, other, "x")
	for _, tt := range []struct {
		limit int
		want  []string
	}{
		{0, []string{"1:a", "2:b", "3:c", "4:d", "5:e"}},
		{-1, []string{"1:a", "2:b", "3:c", "4:d", "5:e"}},
		{1, []string{"5:e"}},
		{3, []string{"3:c", "4:d", "5:e"}},
		{5, []string{"1:a", "2:b", "3:c", "4:d", "5:e"}},
		{100, []string{"1:a", "2:b", "3:c", "4:d", "5:e"}},
	} {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			if got := texts(mustHistory(t, s, key, tt.limit)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("History(%d) = %v, want %v", tt.limit, got, tt.want)
			}
		})
	}
	if got, want := texts(mustHistory(t, s, other, 10)), []string{"1:x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("History(thread) = %v, want %v", got, want)
	}
}

func TestBoltStore_Append_Concurrent(t *testing.T) {
	const (
		writers = 6
		appends = 15
	)
	s := mustOpenBolt(t, BoltOptions{})
	shared := Key{Platform: "telegram", Chat: "shared"}
	var wg sync.WaitGroup
	for w := range writers {
		own := Key{Platform: "telegram", Chat: fmt.Sprint("own", w)}
		wg.Go(func() {
			for i := range appends {
				text := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Append(t.Context(), own, false, testEntry(llm.RoleUser, text), testEntry(llm.RoleAssistant, text)); err != nil {
					t.Errorf("Append own: %v", err)
					return
				}
				if err := s.Append(t.Context(), shared, false, testEntry(llm.RoleUser, text)); err != nil {
					t.Errorf("Append shared: %v", err)
					return
				}
				if _, err := s.History(t.Context(), shared, 5); err != nil {
					t.Errorf("History: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()

	for w := range writers {
		got := mustHistory(t, s, Key{Platform: "telegram", Chat: fmt.Sprint("own", w)}, 0)
		if len(got) != 2*appends {
			t.Fatalf("own%d: %d entries, want %d", w, len(got), 2*appends)
		}
		for i, e := range got {
			if want := fmt.Sprintf("w%d-%d", w, i/2); e.Text != want || e.Seq != uint64(i+1) {
				t.Errorf("own%d entry %d = %d:%s, want %d:%s", w, i, e.Seq, e.Text, i+1, want)
			}
		}
	}
	got := mustHistory(t, s, shared, 0)
	if len(got) != writers*appends {
		t.Fatalf("shared: %d entries, want %d", len(got), writers*appends)
	}
	next := make(map[string]int) // writer prefix → next expected index
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Errorf("shared entry %d has Seq %d", i, e.Seq)
		}
		var w, n int
		if _, err := fmt.Sscanf(e.Text, "w%d-%d", &w, &n); err != nil {
			t.Fatalf("entry text %q: %v", e.Text, err)
		}
		if prefix := fmt.Sprint(w); n != next[prefix] {
			t.Errorf("writer %d: entry %d after %d", w, n, next[prefix]-1)
		} else {
			next[prefix]++
		}
	}
}

func TestBoltStore_DeleteLast(t *testing.T) {
	key := Key{Platform: "discord", Chat: "c"}
	isAssistant := func(e Entry) bool { return e.Role == llm.RoleAssistant }
	for _, tt := range []struct {
		name        string
		roles       []string
		pred        func(Entry) bool
		wantRemoved []string
		wantLeft    []string
	}{
		{"OK", []string{"user", "assistant", "user", "assistant", "assistant"}, isAssistant, []string{"5:4", "4:3"}, []string{"1:0", "2:1", "3:2"}},
		{"NoneMatch", []string{"user", "assistant", "user"}, isAssistant, nil, []string{"1:0", "2:1", "3:2"}},
		{"All", []string{"assistant", "assistant"}, isAssistant, []string{"2:1", "1:0"}, nil},
		{"Empty", nil, isAssistant, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenBolt(t, BoltOptions{})
			for i, role := range tt.roles {
				if err := s.Append(t.Context(), key, false, testEntry(role, fmt.Sprint(i))); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			before, _, _ := s.CommitStats()
			removed, err := s.DeleteLast(t.Context(), key, tt.pred)
			if err != nil {
				t.Fatalf("DeleteLast: %v", err)
			}
			if got := texts(removed); len(got) != 0 || len(tt.wantRemoved) != 0 {
				if !reflect.DeepEqual(got, tt.wantRemoved) {
					t.Errorf("removed = %v, want %v", got, tt.wantRemoved)
				}
			}
			if after, _, _ := s.CommitStats(); len(removed) == 0 && after != before {
				t.Errorf("DeleteLast removing nothing committed %d transactions", after-before)
			}
			if got := texts(mustHistory(t, s, key, 0)); len(got) != 0 || len(tt.wantLeft) != 0 {
				if !reflect.DeepEqual(got, tt.wantLeft) {
					t.Errorf("left = %v, want %v", got, tt.wantLeft)
				}
			}
			// Sequences stay contiguous: the next entry follows the newest kept.
			mustAppend(t, s, key, "next")
			got := mustHistory(t, s, key, 1)
			if want := uint64(len(tt.wantLeft) + 1); len(got) != 1 || got[0].Seq != want {
				t.Errorf("next Append got %v, want Seq %d", texts(got), want)
			}
		})
	}
}

func TestBoltStore_SetProgress_WriteBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const period = 250 * time.Millisecond
		s := mustOpenBolt(t, BoltOptions{ProgressFlush: period})
		ctx := t.Context()
		k1 := Key{Platform: "telegram", Chat: "1"}
		k2 := Key{Platform: "discord", Chat: "2", Thread: "3"}
		p := func(content string) *Progress {
			return &Progress{Destination: "d", Shown: View{Content: content}, Started: time.Now()}
		}

		if err := s.SetProgress(ctx, k1, 0, p("one")); err != nil {
			t.Fatalf("SetProgress: %v", err)
		}
		if err := s.SetProgress(ctx, k2, 0, p("two")); err != nil {
			t.Fatalf("SetProgress: %v", err)
		}
		if got, want := progressKeys(t, s), []string{"discord:2:3", "telegram:1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Progresses before flush = %v, want %v", got, want)
		}
		if got := diskProgressKeys(t, s); len(got) != 0 {
			t.Errorf("written before the flush period: %v", got)
		}

		commits, _, _ := s.CommitStats()
		time.Sleep(period)
		synctest.Wait()
		if got, want := diskProgressKeys(t, s), []string{"discord:2:3", "telegram:1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("written after flush = %v, want %v", got, want)
		}
		if after, _, _ := s.CommitStats(); after != commits+1 {
			t.Errorf("flush took %d transactions, want 1", after-commits)
		}
		if got, want := progressKeys(t, s), []string{"discord:2:3", "telegram:1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Progresses after flush = %v, want %v", got, want)
		}

		// Newer records and clears are visible at once and written later.
		if err := s.SetProgress(ctx, k1, 0, nil); err != nil {
			t.Fatalf("SetProgress(nil): %v", err)
		}
		if err := s.SetProgress(ctx, k2, 0, p("two, more")); err != nil {
			t.Fatalf("SetProgress: %v", err)
		}
		ps, err := s.Progresses(ctx)
		if err != nil {
			t.Fatalf("Progresses: %v", err)
		}
		if len(ps) != 1 || ps[0].Key != k2 || ps[0].Shown.Content != "two, more" {
			t.Errorf("Progresses after clear = %+v, want only %s with newer content", ps, k2)
		}
		time.Sleep(period)
		synctest.Wait()
		if got, want := diskProgressKeys(t, s), []string{"discord:2:3"}; !reflect.DeepEqual(got, want) {
			t.Errorf("written after clear = %v, want %v", got, want)
		}

		// Append(done) clears the written record and a pending newer one, and
		// the next flush does not bring it back.
		if err := s.SetProgress(ctx, k2, 0, p("two, final")); err != nil {
			t.Fatalf("SetProgress: %v", err)
		}
		if err := s.Append(ctx, k2, true, testEntry(llm.RoleAssistant, "answer")); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if got := progressKeys(t, s); len(got) != 0 {
			t.Errorf("Progresses after Append(done) = %v, want none", got)
		}
		if got := diskProgressKeys(t, s); len(got) != 0 {
			t.Errorf("written after Append(done) = %v, want none", got)
		}
		time.Sleep(2 * period)
		synctest.Wait()
		if got := diskProgressKeys(t, s); len(got) != 0 {
			t.Errorf("written after a later flush = %v, want none", got)
		}
	})
}

func TestBoltStore_Progresses_DuringFlush(t *testing.T) {
	// A record must never vanish from Progresses while it moves from the
	// write-behind buffer to the file.
	s := mustOpenBolt(t, BoltOptions{ProgressFlush: time.Microsecond})
	key := Key{Platform: "telegram", Chat: "1"}
	ctx := t.Context()
	if err := s.SetProgress(ctx, key, 0, &Progress{Destination: "d"}); err != nil {
		t.Fatalf("SetProgress: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			if err := s.SetProgress(ctx, key, 0, &Progress{Destination: "d", Shown: View{Content: fmt.Sprint(i)}}); err != nil {
				t.Errorf("SetProgress: %v", err)
				return
			}
		}
	})
	for range 200 {
		if got := progressKeys(t, s); len(got) != 1 {
			t.Fatalf("Progresses = %v during flush, want [%s]", got, key)
		}
	}
	wg.Wait()
}

func TestBoltStore_Value(t *testing.T) {
	s := mustOpenBolt(t, BoltOptions{})
	ctx := t.Context()
	if got, err := s.Value(ctx, "missing"); got != nil || err != nil {
		t.Errorf("Value(missing) = %q, %v; want nil, nil", got, err)
	}
	for _, v := range [][]byte{[]byte("1"), []byte("22"), {}} {
		if err := s.SetValue(ctx, "offset", v); err != nil {
			t.Fatalf("SetValue: %v", err)
		}
		if got, err := s.Value(ctx, "offset"); err != nil || !bytes.Equal(got, v) {
			t.Errorf("Value = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.SetValue(ctx, "offset", nil); err != nil {
		t.Fatalf("SetValue(nil): %v", err)
	}
	if got, err := s.Value(ctx, "offset"); got != nil || err != nil {
		t.Errorf("Value after delete = %q, %v; want nil, nil", got, err)
	}
	if err := s.SetValue(ctx, "", []byte("x")); err == nil {
		t.Errorf("SetValue(\"\") succeeded")
	}
}

func TestBoltStore_InvalidKey(t *testing.T) {
	s := mustOpenBolt(t, BoltOptions{})
	for _, key := range []Key{{}, {Platform: "telegram"}, {Chat: "1"}} {
		if err := s.Append(t.Context(), key, false, testEntry(llm.RoleUser, "x")); err == nil {
			t.Errorf("Append(%+v) succeeded", key)
		}
		if err := s.SetProgress(t.Context(), key, 0, &Progress{}); err == nil {
			t.Errorf("SetProgress(%+v) succeeded", key)
		}
	}
}

func TestBoltStore_ContextCanceled(t *testing.T) {
	s := mustOpenBolt(t, BoltOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	key := Key{Platform: "telegram", Chat: "1"}
	if err := s.Append(ctx, key, false, testEntry(llm.RoleUser, "x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Append = %v, want context.Canceled", err)
	}
	if _, err := s.History(ctx, key, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("History = %v, want context.Canceled", err)
	}
	if got := mustHistory(t, s, key, 0); len(got) != 0 {
		t.Errorf("canceled Append wrote %v", texts(got))
	}
}

func TestBoltStore_Close(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "p.db"), BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	key := Key{Platform: "telegram", Chat: "1"}
	if err := s.Append(t.Context(), key, false, testEntry(llm.RoleUser, "x")); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("Append after Close = %v, want ErrStoreClosed", err)
	}
	if err := s.SetProgress(t.Context(), key, 0, &Progress{}); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("SetProgress after Close = %v, want ErrStoreClosed", err)
	}
	if _, err := s.Progresses(t.Context()); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("Progresses after Close = %v, want ErrStoreClosed", err)
	}
}

func TestBoltStore_CommitStats(t *testing.T) {
	var hooked atomic.Int64
	s := mustOpenBolt(t, BoltOptions{OnCommit: func(d time.Duration) {
		if d <= 0 {
			t.Errorf("OnCommit(%v), want a positive duration", d)
		}
		hooked.Add(1)
	}})
	before, _, _ := s.CommitStats()
	key := Key{Platform: "telegram", Chat: "1"}
	for i := range 5 {
		mustAppend(t, s, key, fmt.Sprint(i))
	}
	count, p50, p99 := s.CommitStats()
	if count != before+5 {
		t.Errorf("count = %d, want %d", count, before+5)
	}
	if p50 <= 0 || p99 < p50 {
		t.Errorf("p50 = %v, p99 = %v; want 0 < p50 <= p99", p50, p99)
	}
	if got := hooked.Load(); got != int64(count) {
		t.Errorf("OnCommit called %d times, want %d", got, count)
	}
}

func TestCommitRing(t *testing.T) {
	var r commitRing
	if n, p50, p99 := r.stats(); n != 0 || p50 != 0 || p99 != 0 {
		t.Errorf("empty stats = %d, %v, %v", n, p50, p99)
	}
	for i := 1; i <= 100; i++ {
		r.record(time.Duration(i))
	}
	if n, p50, p99 := r.stats(); n != 100 || p50 != 50 || p99 != 99 {
		t.Errorf("stats of 1..100 = %d, %v, %v; want 100, 50, 99", n, p50, p99)
	}
	// Older values leave the window.
	for range commitRingSize {
		r.record(7)
	}
	if n, p50, p99 := r.stats(); n != 100+commitRingSize || p50 != 7 || p99 != 7 {
		t.Errorf("stats after wrap = %d, %v, %v; want %d, 7, 7", n, p50, p99, 100+commitRingSize)
	}
}

func TestOpenBolt_Locked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "palaver.db")
	mustOpenBoltAt(t, path, BoltOptions{})
	s, err := OpenBolt(path, BoltOptions{LockTimeout: 20 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second OpenBolt succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("err = %v, want ErrLocked", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "another process") {
		t.Errorf("err = %q, want the path and \"another process\"", msg)
	}
}

// writeBolt creates a bbolt file at path and runs fn in a write transaction.
func writeBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatalf("bolt.Update: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("bolt.Close: %v", err)
	}
}

func putMeta(app, schema string) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := b.Put(keyApp, []byte(app)); err != nil {
			return err
		}
		return b.Put(keySchema, []byte(schema))
	}
}

func TestOpenBolt_NotStore(t *testing.T) {
	random := func(n int) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, randomBytes(t, n), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tt := range []struct {
		name    string
		create  func(t *testing.T, path string)
		message string
	}{
		{"ForeignBolt", func(t *testing.T, path string) {
			writeBolt(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("users"))
				if err != nil {
					return err
				}
				return b.Put([]byte("alice"), []byte("1"))
			})
		}, "another application"},
		{"OtherApp", func(t *testing.T, path string) { writeBolt(t, path, putMeta("chatterbox", "1")) }, `app "chatterbox"`},
		{"NewerSchema", func(t *testing.T, path string) { writeBolt(t, path, putMeta("palaver", "3")) }, `schema version is "3"`},
		{"Text", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("storage:\n  path: palaver.db\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a bbolt database"},
		{"Random4K", random(4096), "not a bbolt database"},
		{"Random64K", random(64 << 10), "not a bbolt database"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "palaver.db")
			tt.create(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := OpenBolt(path, BoltOptions{})
			if err == nil {
				s.Close()
				t.Fatal("OpenBolt succeeded")
			}
			if !errors.Is(err, ErrNotStore) {
				t.Errorf("err = %v, want ErrNotStore", err)
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, tt.message) {
				t.Errorf("err = %q, want the path and %q", msg, tt.message)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("file changed by the failed open")
			}
		})
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenBolt_EmptyFiles(t *testing.T) {
	for _, tt := range []struct {
		name   string
		create func(t *testing.T, path string)
	}{
		{"EmptyFile", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"EmptyBolt", func(t *testing.T, path string) {
			writeBolt(t, path, func(*bolt.Tx) error { return nil })
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "palaver.db")
			tt.create(t, path)
			s := mustOpenBoltAt(t, path, BoltOptions{})
			key := Key{Platform: "console", Chat: "me"}
			mustAppend(t, s, key, "a")
			if got := mustHistory(t, s, key, 0); len(got) != 1 {
				t.Errorf("History = %v, want one entry", texts(got))
			}
		})
	}
}

func TestOpenBolt_Directory(t *testing.T) {
	dir := t.TempDir()
	if s, err := OpenBolt(dir, BoltOptions{}); err == nil {
		s.Close()
		t.Fatal("OpenBolt(directory) succeeded")
	} else if !strings.Contains(err.Error(), dir) {
		t.Errorf("err = %q, want the path", err)
	}
}

func ExampleOpenBolt() {
	dir, err := os.MkdirTemp("", "palaver")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	store, err := OpenBolt(filepath.Join(dir, "palaver.db"), BoltOptions{Retention: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	ctx := context.Background()
	key := Key{Platform: "telegram", Chat: "42"}
	_ = store.Append(ctx, key, true,
		Entry{Role: llm.RoleUser, Text: "What is bbolt?"},
		Entry{Role: llm.RoleAssistant, Text: "An embedded key/value store."})
	history, _ := store.History(ctx, key, 10)
	for _, e := range history {
		fmt.Printf("%d %s: %s\n", e.Seq, e.Role, e.Text)
	}
	// Output:
	// 1 user: What is bbolt?
	// 2 assistant: An embedded key/value store.
}

func BenchmarkBoltStore_Append(b *testing.B) {
	s := mustOpenBolt(b, BoltOptions{})
	key := Key{Platform: "telegram", Chat: "bench"}
	question := testEntry(llm.RoleUser, strings.Repeat("q", 200))
	answer := testEntry(llm.RoleAssistant, strings.Repeat("a", 1500))
	start, _, _ := s.CommitStats()
	for b.Loop() {
		if err := s.Append(b.Context(), key, true, question, answer); err != nil {
			b.Fatal(err)
		}
	}
	reportCommits(b, s, start)
}

func BenchmarkBoltStore_Append_Parallel(b *testing.B) {
	s := mustOpenBolt(b, BoltOptions{})
	question := testEntry(llm.RoleUser, strings.Repeat("q", 200))
	answer := testEntry(llm.RoleAssistant, strings.Repeat("a", 1500))
	var next atomic.Int64
	start, _, _ := s.CommitStats()
	b.RunParallel(func(pb *testing.PB) {
		key := Key{Platform: "telegram", Chat: fmt.Sprint("bench", next.Add(1))}
		for pb.Next() {
			if err := s.Append(b.Context(), key, true, question, answer); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCommits(b, s, start)
}

// reportCommits reports the commit latency percentiles of the benchmark's
// transactions (the most recent ones, see CommitStats).
func reportCommits(b *testing.B, s *BoltStore, start int) {
	b.Helper()
	count, p50, p99 := s.CommitStats()
	if count == start {
		return
	}
	b.ReportMetric(float64(p50.Microseconds()), "commit-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "commit-p99-µs")
}

func TestBoltStore_Move(t *testing.T) {
	s := mustOpenBolt(t, BoltOptions{})
	ctx := t.Context()
	from := Key{Platform: "telegram", Chat: "-100"}
	to := Key{Platform: "telegram", Chat: "-100200"}
	if err := s.SaveSettings(ctx, from, Settings{Model: "p/m"}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, from, "a", "b", "c")
	if err := s.Move(ctx, from, to); err != nil {
		t.Fatal(err)
	}
	if got := texts(mustHistory(t, s, to, 0)); strings.Join(got, ",") != "1:a,2:b,3:c" {
		t.Errorf("moved history = %v, want a,b,c", got)
	}
	if st, _ := s.Settings(ctx, to); st.Model != "p/m" {
		t.Errorf("moved settings model = %q, want p/m", st.Model)
	}
	if got := mustHistory(t, s, from, 0); len(got) != 0 {
		t.Errorf("old key still has %d entries", len(got))
	}
	mustAppend(t, s, to, "d")
	h := mustHistory(t, s, to, 0)
	if last := h[len(h)-1]; last.Seq != 4 || last.Text != "d" {
		t.Errorf("append after move: seq %d text %q, want 4 d", last.Seq, last.Text)
	}
	// Moving what does not exist does nothing.
	if err := s.Move(ctx, Key{Platform: "telegram", Chat: "1"}, Key{Platform: "telegram", Chat: "2"}); err != nil {
		t.Fatal(err)
	}
}

func TestBoltStore_Queued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "palaver.db")
	s := mustOpenBoltAt(t, path, BoltOptions{})
	ctx := t.Context()
	k := Key{Platform: "telegram", Chat: "-100", Thread: "7"}
	q := Entry{Role: llm.RoleUser, Text: "waiting", Time: time.Unix(1, 0).UTC()}
	for id := uint64(1); id <= 3; id++ {
		if err := s.SetQueued(ctx, Queued{Key: k, ID: id << 8, Question: q, Destination: "telegram:-100"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, k, Commit{Entries: []Entry{q}, QueuedID: 1 << 8}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, k, Commit{QueuedID: 2 << 8}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpenBoltAt(t, path, BoltOptions{})
	qs, err := s.QueuedMessages(ctx)
	if err != nil || len(qs) != 1 || qs[0].Key != k || qs[0].ID != 3<<8 || qs[0].Question.Text != "waiting" {
		t.Fatalf("queued after reopen = %+v, %v; want id %d only", qs, err, 3<<8)
	}
	h, err := s.History(ctx, k, 0)
	if err != nil || len(h) != 1 || h[0].Text != "waiting" {
		t.Fatalf("history = %+v, %v; want the appended question", h, err)
	}
}
