// Package storetest is the contract of sessions.Store and
// sessions.UsageStore as tests: each backend (BoltStore, the etcd store)
// runs Run and RunUsage against itself, so that both keep the semantics
// the Manager relies on. The expectations are BoltStore's behaviour, the
// reference.
//
// Only the interfaces are used: what a backend keeps inside (buckets,
// keys, reference counts) is left to its own tests, and read here only
// through what the interface shows (an image deleted with the last entry
// that refers to it is no longer returned by Blob).
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// Open opens an empty store that keeps at most retention history entries
// per conversation, and closes it at the end of t.
type Open func(t *testing.T, retention int) sessions.Store

// defaultRetention is the retention of the tests that do not prune.
const defaultRetention = 1000

// Run runs the contract of sessions.Store against the stores open makes,
// one per subtest.
func Run(t *testing.T, open Open) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Open)
	}{
		{"Settings", testSettings},
		{"History", testHistory},
		{"Append/Fields", testAppendFields},
		{"Append/Prune", testAppendPrune},
		{"Append/Done", testAppendDone},
		{"Append/Concurrent", testAppendConcurrent},
		{"DeleteLast", testDeleteLast},
		{"DeleteLast/PanicWritesNothing", testDeleteLastPanic},
		{"Reset", testReset},
		{"Move", testMove},
		{"Move/Over", testMoveOver},
		{"Commit/Duplicate", testCommitDuplicate},
		{"Commit/DuplicateUnordered", testCommitDuplicateUnordered},
		{"Commit/DuplicateWritesNothing", testCommitDuplicateWritesNothing},
		{"Commit/Replace", testCommitReplace},
		{"Commit/Queued", testCommitQueued},
		{"Commit/Progress", testCommitProgress},
		{"Progress", testProgress},
		{"Progress/CopiesInput", testProgressCopies},
		{"Queued", testQueued},
		{"Images/Retention", testImagesRetention},
		{"Images/Deletions", testImagesDeletions},
		{"Images/Refused", testImagesRefused},
		{"Value", testValue},
		{"InvalidKey", testInvalidKey},
		{"ContextCanceled", testContextCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open) })
	}
}

var day = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// entry is a history entry of role and text.
func entry(role, text string) sessions.Entry {
	return sessions.Entry{Role: role, Text: text, Time: day}
}

// user is a user entry with a platform message id.
func user(id, text string) sessions.Entry {
	e := entry(llm.RoleUser, text)
	e.MsgID = id
	return e
}

// texts returns the entries' Seq:Text pairs, for compact comparisons.
func texts(entries []sessions.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = fmt.Sprintf("%d:%s", e.Seq, e.Text)
	}
	return out
}

func mustAppend(t *testing.T, s sessions.Store, key sessions.Key, texts ...string) {
	t.Helper()
	entries := make([]sessions.Entry, len(texts))
	for i, text := range texts {
		entries[i] = entry(llm.RoleUser, text)
	}
	if err := s.Append(t.Context(), key, false, entries...); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func mustCommit(t *testing.T, s sessions.Store, key sessions.Key, c sessions.Commit) {
	t.Helper()
	if err := s.Commit(t.Context(), key, c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func history(t *testing.T, s sessions.Store, key sessions.Key, limit int) []sessions.Entry {
	t.Helper()
	got, err := s.History(t.Context(), key, limit)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return got
}

// equal compares two lists, an empty one equal to nil.
func equal[T any](got, want []T) bool {
	return len(got) == 0 && len(want) == 0 || reflect.DeepEqual(got, want)
}

func testSettings(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	key := sessions.Key{Platform: "telegram", Chat: "42", Thread: "7"}
	other := sessions.Key{Platform: "telegram", Chat: "42"}
	if got, err := s.Settings(ctx, key); err != nil || !reflect.DeepEqual(got, sessions.Settings{}) {
		t.Errorf("Settings of a new conversation = %+v, %v; want zero, nil", got, err)
	}
	prompt, temp := "Be brief.", 0.0
	want := sessions.Settings{Model: "deepinfra/x/y", SystemPrompt: &prompt, Temperature: &temp, MaxTokens: 99, Reasoning: sessions.ReasoningCollapsed}
	if err := s.SaveSettings(ctx, key, want); err != nil {
		t.Fatalf("SaveSettings: %v", err)
	}
	if got, err := s.Settings(ctx, key); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Settings = %+v, %v; want %+v", got, err, want)
	}
	if got, _ := s.Settings(ctx, other); !reflect.DeepEqual(got, sessions.Settings{}) {
		t.Errorf("Settings of the chat without the thread = %+v, want zero", got)
	}
	if err := s.SaveSettings(ctx, key, sessions.Settings{Model: "p/m"}); err != nil {
		t.Fatalf("SaveSettings: %v", err)
	}
	if got, _ := s.Settings(ctx, key); !reflect.DeepEqual(got, sessions.Settings{Model: "p/m"}) {
		t.Errorf("Settings after a replacement = %+v, want only the model", got)
	}
}

func testHistory(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	key := sessions.Key{Platform: "discord", Chat: "c1"}
	thread := sessions.Key{Platform: "discord", Chat: "c1", Thread: "t1"}
	if got := history(t, s, key, 10); len(got) != 0 {
		t.Errorf("History of a new conversation = %v, want none", texts(got))
	}
	mustAppend(t, s, key, "a", "b", "c", "d", "e")
	mustAppend(t, s, thread, "x")
	all := []string{"1:a", "2:b", "3:c", "4:d", "5:e"}
	for _, tt := range []struct {
		limit int
		want  []string
	}{
		{0, all},
		{-1, all},
		{1, []string{"5:e"}},
		{3, []string{"3:c", "4:d", "5:e"}},
		{5, all},
		{100, all},
	} {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			if got := texts(history(t, s, key, tt.limit)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("History(%d) = %v, want %v", tt.limit, got, tt.want)
			}
		})
	}
	if got, want := texts(history(t, s, thread, 10)), []string{"1:x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("History(thread) = %v, want %v", got, want)
	}
}

func testAppendFields(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	key := sessions.Key{Platform: "telegram", Chat: "42"}
	question := sessions.Entry{Role: llm.RoleUser, MsgID: "7", AuthorID: "1", AuthorName: "Al", Text: "hi", Time: day, Group: "-100",
		Attachments: []sessions.Attachment{{Kind: "document", Name: "a.txt", MIME: "text/plain", Size: 3, Ref: "file-1"}}, Inline: "[a.txt]"}
	answer := sessions.Entry{Role: llm.RoleAssistant, AuthorName: "bot", Text: "hello", Reasoning: "hmm", Model: "deepinfra/x/y",
		Usage: llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}, Status: "stopped", Time: day.Add(time.Second)}
	in := []sessions.Entry{question, answer}
	if err := s.Append(t.Context(), key, false, in...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if in[0].Seq != 0 || in[1].Seq != 0 {
		t.Errorf("caller's entries modified: %+v", in)
	}
	question.Seq, answer.Seq = 1, 2
	if got, want := history(t, s, key, 0), []sessions.Entry{question, answer}; !reflect.DeepEqual(got, want) {
		t.Errorf("History = %+v\nwant %+v", got, want)
	}
}

func testAppendPrune(t *testing.T, open Open) {
	key := sessions.Key{Platform: "console", Chat: "me"}
	for _, tt := range []struct {
		name    string
		batches [][]string
		want    []string
	}{
		{"UnderRetention", [][]string{{"a", "b"}, {"c"}}, []string{"1:a", "2:b", "3:c"}},
		{"ExactlyRetention", [][]string{{"a", "b", "c", "d"}}, []string{"1:a", "2:b", "3:c", "4:d"}},
		{"OneByOne", [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}}, []string{"3:c", "4:d", "5:e", "6:f"}},
		{"BatchLargerThanRetention", [][]string{{"a"}, {"b", "c", "d", "e", "f", "g"}}, []string{"4:d", "5:e", "6:f", "7:g"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, 4)
			for _, batch := range tt.batches {
				mustAppend(t, s, key, batch...)
			}
			if got := texts(history(t, s, key, 0)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("History = %v, want %v", got, tt.want)
			}
		})
	}
}

// progressKeys lists the records of Progresses as "key/id:content".
func progressKeys(t *testing.T, s sessions.Store) []string {
	t.Helper()
	ps, err := s.Progresses(t.Context())
	if err != nil {
		t.Fatalf("Progresses: %v", err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s/%d:%s", p.Key, p.ID, p.Shown.Content))
	}
	return out
}

func shown(content string) *sessions.Progress {
	return &sessions.Progress{Destination: "d", Shown: sessions.View{Content: content}, Started: day}
}

func testAppendDone(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	k := sessions.Key{Platform: "telegram", Chat: "1"}
	other := sessions.Key{Platform: "telegram", Chat: "2"}
	if err := s.SaveProgress(ctx, k, 5, *shown("written")); err != nil {
		t.Fatalf("SaveProgress: %v", err)
	}
	for _, set := range []struct {
		key sessions.Key
		id  uint64
	}{{k, 0}, {k, 6}, {other, 5}} {
		if err := s.SetProgress(ctx, set.key, set.id, shown("pending")); err != nil {
			t.Fatalf("SetProgress: %v", err)
		}
	}
	if err := s.Append(ctx, k, false, entry(llm.RoleUser, "q")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if got, want := progressKeys(t, s), []string{"telegram:1/0:pending", "telegram:1/5:written", "telegram:1/6:pending", "telegram:2/5:pending"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after Append(not done): Progresses = %v, want %v", got, want)
	}
	if err := s.Append(ctx, k, true, entry(llm.RoleAssistant, "a")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if got, want := progressKeys(t, s), []string{"telegram:2/5:pending"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after Append(done): Progresses = %v, want %v", got, want)
	}
	// Done without entries clears too, and writes no entry.
	if err := s.SetProgress(ctx, k, 7, shown("again")); err != nil {
		t.Fatalf("SetProgress: %v", err)
	}
	if err := s.Append(ctx, k, true); err != nil {
		t.Fatalf("Append(done, no entries): %v", err)
	}
	if got, want := progressKeys(t, s), []string{"telegram:2/5:pending"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after Append(done, no entries): Progresses = %v, want %v", got, want)
	}
	if got, want := texts(history(t, s, k, 0)), []string{"1:q", "2:a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("History = %v, want %v", got, want)
	}
}

func testAppendConcurrent(t *testing.T, open Open) {
	const (
		writers = 4
		appends = 10
	)
	s := open(t, defaultRetention)
	shared := sessions.Key{Platform: "telegram", Chat: "shared"}
	var wg sync.WaitGroup
	for w := range writers {
		own := sessions.Key{Platform: "telegram", Chat: fmt.Sprint("own", w)}
		wg.Go(func() {
			for i := range appends {
				text := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Append(t.Context(), own, false, entry(llm.RoleUser, text), entry(llm.RoleAssistant, text)); err != nil {
					t.Errorf("Append own: %v", err)
					return
				}
				if err := s.Append(t.Context(), shared, false, entry(llm.RoleUser, text)); err != nil {
					t.Errorf("Append shared: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for w := range writers {
		got := history(t, s, sessions.Key{Platform: "telegram", Chat: fmt.Sprint("own", w)}, 0)
		if len(got) != 2*appends {
			t.Fatalf("own%d: %d entries, want %d", w, len(got), 2*appends)
		}
		for i, e := range got {
			if want := fmt.Sprintf("w%d-%d", w, i/2); e.Text != want || e.Seq != uint64(i+1) {
				t.Errorf("own%d entry %d = %d:%s, want %d:%s", w, i, e.Seq, e.Text, i+1, want)
			}
		}
	}
	got := history(t, s, shared, 0)
	if len(got) != writers*appends {
		t.Fatalf("shared: %d entries, want %d", len(got), writers*appends)
	}
	next := make(map[int]int) // writer → next index expected
	for i, e := range got {
		var w, n int
		if _, err := fmt.Sscanf(e.Text, "w%d-%d", &w, &n); err != nil {
			t.Fatalf("entry text %q: %v", e.Text, err)
		}
		if e.Seq != uint64(i+1) || n != next[w] {
			t.Errorf("shared entry %d = %d:%s, want Seq %d and w%d-%d", i, e.Seq, e.Text, i+1, w, next[w])
		}
		next[w] = n + 1
	}
}

func testDeleteLast(t *testing.T, open Open) {
	key := sessions.Key{Platform: "discord", Chat: "c"}
	isAssistant := func(e sessions.Entry) bool { return e.Role == llm.RoleAssistant }
	for _, tt := range []struct {
		name        string
		roles       []string
		pred        func(sessions.Entry) bool
		wantRemoved []string
		wantLeft    []string
	}{
		{"OK", []string{"user", "assistant", "user", "assistant", "assistant"}, isAssistant, []string{"5:4", "4:3"}, []string{"1:0", "2:1", "3:2"}},
		{"NoneMatch", []string{"user", "assistant", "user"}, isAssistant, nil, []string{"1:0", "2:1", "3:2"}},
		{"All", []string{"assistant", "assistant"}, isAssistant, []string{"2:1", "1:0"}, nil},
		{"Empty", nil, isAssistant, nil, nil},
		// More than a page of entries of some stores.
		{"Many", slices.Repeat([]string{"assistant"}, 40), isAssistant, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, defaultRetention)
			for i, role := range tt.roles {
				if err := s.Append(t.Context(), key, false, entry(role, fmt.Sprint(i))); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			removed, err := s.DeleteLast(t.Context(), key, tt.pred)
			if err != nil {
				t.Fatalf("DeleteLast: %v", err)
			}
			if tt.name == "Many" {
				if len(removed) != 40 || removed[0].Seq != 40 || removed[39].Seq != 1 {
					t.Errorf("removed %d entries, %v…, want 40 newest first", len(removed), texts(removed[:min(3, len(removed))]))
				}
			} else if got := texts(removed); !equal(got, tt.wantRemoved) {
				t.Errorf("removed = %v, want %v", got, tt.wantRemoved)
			}
			if got := texts(history(t, s, key, 0)); !equal(got, tt.wantLeft) {
				t.Errorf("left = %v, want %v", got, tt.wantLeft)
			}
			// Sequences stay contiguous: the next entry follows the newest kept.
			mustAppend(t, s, key, "next")
			got := history(t, s, key, 1)
			if want := uint64(len(tt.wantLeft) + 1); len(got) != 1 || got[0].Seq != want {
				t.Errorf("next Append got %v, want Seq %d", texts(got), want)
			}
		})
	}
}

func testDeleteLastPanic(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	key := sessions.Key{Platform: "discord", Chat: "c"}
	mustAppend(t, s, key, "a", "b")
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("DeleteLast did not propagate the panic")
			}
		}()
		calls := 0
		_, _ = s.DeleteLast(t.Context(), key, func(sessions.Entry) bool {
			if calls++; calls == 2 {
				panic("boom")
			}
			return true
		})
	}()
	if got, want := texts(history(t, s, key, 0)), []string{"1:a", "2:b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("History after the panic = %v, want %v", got, want)
	}
}

func testReset(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	other := sessions.Key{Platform: "telegram", Chat: "2"}
	settings := sessions.Settings{Model: "p/m", MaxTokens: 5}
	if err := s.SaveSettings(ctx, key, settings); err != nil {
		t.Fatalf("SaveSettings: %v", err)
	}
	mustAppend(t, s, key, "a", "b")
	mustAppend(t, s, other, "x")
	if err := s.Reset(ctx, key); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if got := history(t, s, key, 0); len(got) != 0 {
		t.Errorf("History after Reset = %v, want none", texts(got))
	}
	if got, err := s.Settings(ctx, key); err != nil || !reflect.DeepEqual(got, settings) {
		t.Errorf("Settings after Reset = %+v, %v; want %+v", got, err, settings)
	}
	if got, want := texts(history(t, s, other, 0)), []string{"1:x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("other conversation = %v, want %v", got, want)
	}
	mustAppend(t, s, key, "c")
	if got, want := texts(history(t, s, key, 0)), []string{"1:c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("History after Reset and Append = %v, want %v", got, want)
	}
	if err := s.Reset(ctx, sessions.Key{Platform: "telegram", Chat: "never"}); err != nil {
		t.Errorf("Reset of an unknown conversation = %v", err)
	}
	// The mark of the last message accepted stays: a redelivery is
	// still refused.
	mustCommit(t, s, key, sessions.Commit{Entries: []sessions.Entry{user("9", "q")}})
	if err := s.Reset(ctx, key); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if err := s.Commit(ctx, key, sessions.Commit{Entries: []sessions.Entry{user("9", "q")}}); !errors.Is(err, sessions.ErrDuplicate) {
		t.Errorf("redelivery after Reset = %v, want ErrDuplicate", err)
	}
}

func testMove(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	from := sessions.Key{Platform: "telegram", Chat: "-100"}
	to := sessions.Key{Platform: "telegram", Chat: "-100200"}
	if err := s.SaveSettings(ctx, from, sessions.Settings{Model: "p/m"}); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, from, sessions.Commit{Entries: []sessions.Entry{user("7", "a")}})
	mustAppend(t, s, from, "b", "c")
	if err := s.Move(ctx, from, to); err != nil {
		t.Fatalf("Move: %v", err)
	}
	if got, want := texts(history(t, s, to, 0)), []string{"1:a", "2:b", "3:c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("moved history = %v, want %v", got, want)
	}
	if st, _ := s.Settings(ctx, to); st.Model != "p/m" {
		t.Errorf("moved settings model = %q, want p/m", st.Model)
	}
	if got := history(t, s, from, 0); len(got) != 0 {
		t.Errorf("old key still has %v", texts(got))
	}
	if st, _ := s.Settings(ctx, from); !reflect.DeepEqual(st, sessions.Settings{}) {
		t.Errorf("old key still has settings %+v", st)
	}
	mustAppend(t, s, to, "d")
	if h := history(t, s, to, 1); len(h) != 1 || h[0].Seq != 4 || h[0].Text != "d" {
		t.Errorf("append after Move = %v, want 4:d", texts(h))
	}
	// Message ids are the chat's: the mark stays with the old chat's id,
	// which is gone; the new chat accepts any.
	mustCommit(t, s, to, sessions.Commit{Entries: []sessions.Entry{user("3", "new chat's first")}})
	mustCommit(t, s, from, sessions.Commit{Entries: []sessions.Entry{user("1", "old id, new conversation")}})
	// Moving what does not exist, or onto itself, does nothing.
	if err := s.Move(ctx, sessions.Key{Platform: "telegram", Chat: "1"}, sessions.Key{Platform: "telegram", Chat: "2"}); err != nil {
		t.Errorf("Move of nothing: %v", err)
	}
	if err := s.Move(ctx, to, to); err != nil {
		t.Errorf("Move onto itself: %v", err)
	}
	if got := len(history(t, s, to, 0)); got != 5 {
		t.Errorf("after Move onto itself: %d entries, want 5", got)
	}
}

func testMoveOver(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	from := sessions.Key{Platform: "telegram", Chat: "1"}
	to := sessions.Key{Platform: "telegram", Chat: "2"}
	mustAppend(t, s, from, "a")
	if err := s.SaveSettings(ctx, to, sessions.Settings{Model: "p/old"}); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, to, sessions.Commit{Entries: []sessions.Entry{user("50", "x"), entry(llm.RoleAssistant, "y")}})
	if err := s.Move(ctx, from, to); err != nil {
		t.Fatalf("Move: %v", err)
	}
	if got, want := texts(history(t, s, to, 0)), []string{"1:a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("history at to = %v, want %v (replaced)", got, want)
	}
	if st, _ := s.Settings(ctx, to); !reflect.DeepEqual(st, sessions.Settings{}) {
		t.Errorf("settings at to = %+v, want none (from had none)", st)
	}
	// to's own mark stays.
	if err := s.Commit(ctx, to, sessions.Commit{Entries: []sessions.Entry{user("50", "x")}}); !errors.Is(err, sessions.ErrDuplicate) {
		t.Errorf("redelivery to to = %v, want ErrDuplicate", err)
	}
	mustCommit(t, s, to, sessions.Commit{Entries: []sessions.Entry{user("51", "z")}})
}
