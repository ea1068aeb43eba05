package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

func testCommitDuplicate(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	k := sessions.Key{Platform: "telegram", Chat: "-100"}
	unordered := func(id, text string) sessions.Entry {
		e := user(id, text)
		e.Unordered = true
		return e
	}
	answer := func(id string) sessions.Entry {
		e := entry(llm.RoleAssistant, "answer")
		e.MsgID = id
		return e
	}
	tests := []struct {
		name  string
		c     sessions.Commit
		queue *sessions.Queued
		err   error
	}{
		{"OK", sessions.Commit{Entries: []sessions.Entry{user("9", "a")}}, nil, nil},
		{"ErrDuplicate/Same", sessions.Commit{Entries: []sessions.Entry{user("9", "a")}}, nil, sessions.ErrDuplicate},
		{"ErrDuplicate/Older", sessions.Commit{Entries: []sessions.Entry{user("8", "b")}}, nil, sessions.ErrDuplicate},
		{"OK/Newer", sessions.Commit{Entries: []sessions.Entry{user("10", "c")}}, nil, nil},
		{"OK/NumbersNotText", sessions.Commit{Entries: []sessions.Entry{user("100", "d")}}, nil, nil},
		{"OK/NoID", sessions.Commit{Entries: []sessions.Entry{user("", "e")}}, nil, nil},
		// An answer's id is never a delivery of the user's.
		{"OK/AssistantID", sessions.Commit{Entries: []sessions.Entry{answer("5")}}, nil, nil},
		// Discord's ids come in no order: each is refused only once
		// accepted (among the last sessions.RecentMessages), and moves no
		// mark.
		{"OK/Unordered", sessions.Commit{Entries: []sessions.Entry{unordered("5", "u")}}, nil, nil},
		{"ErrDuplicate/UnorderedAgain", sessions.Commit{Entries: []sessions.Entry{unordered("5", "u")}}, nil, sessions.ErrDuplicate},
		{"OK/UnorderedOlder", sessions.Commit{Entries: []sessions.Entry{unordered("4", "v")}}, nil, nil},
		{"ErrDuplicate/UnorderedInOneCommit", sessions.Commit{Entries: []sessions.Entry{unordered("6", "w"), unordered("6", "w")}}, nil, sessions.ErrDuplicate},
		{"OK/UnorderedText", sessions.Commit{Entries: []sessions.Entry{unordered("x-1", "t")}}, nil, nil},
		{"ErrDuplicate/UnorderedTextAgain", sessions.Commit{Entries: []sessions.Entry{unordered("x-1", "t")}}, nil, sessions.ErrDuplicate},
		{"ErrDuplicate/AfterUnordered", sessions.Commit{Entries: []sessions.Entry{user("100", "d")}}, nil, sessions.ErrDuplicate},
		// Two messages in one commit are accepted in order.
		{"ErrDuplicate/InOneCommit", sessions.Commit{Entries: []sessions.Entry{user("102", "x"), user("101", "y")}}, nil, sessions.ErrDuplicate},
		{"ErrDuplicate/Queued", sessions.Commit{}, &sessions.Queued{Key: k, ID: 1, Question: user("100", "d")}, sessions.ErrDuplicate},
		{"OK/Queued", sessions.Commit{}, &sessions.Queued{Key: k, ID: 2, Question: user("101", "f")}, nil},
		{"OK/QueuedUnordered", sessions.Commit{}, &sessions.Queued{Key: k, ID: 4, Question: unordered("1", "g")}, nil},
		{"ErrDuplicate/QueuedUnorderedAgain", sessions.Commit{}, &sessions.Queued{Key: k, ID: 5, Question: unordered("1", "g")}, sessions.ErrDuplicate},
		{"ErrDuplicate/AfterQueuedUnordered", sessions.Commit{Entries: []sessions.Entry{unordered("1", "g")}}, nil, sessions.ErrDuplicate},
		{"OK/FromQueueUnordered", sessions.Commit{Entries: []sessions.Entry{unordered("1", "g")}, QueuedID: 4}, nil, nil},
		{"OK/FromQueue", sessions.Commit{Entries: []sessions.Entry{user("101", "f")}, QueuedID: 2}, nil, nil},
		{"ErrDuplicate/AfterQueue", sessions.Commit{Entries: []sessions.Entry{user("101", "f")}}, nil, sessions.ErrDuplicate},
		{"OK/TextIDs", sessions.Commit{Entries: []sessions.Entry{user("abc", "h")}}, nil, nil},
		{"ErrDuplicate/SameText", sessions.Commit{Entries: []sessions.Entry{user("abc", "h")}}, nil, sessions.ErrDuplicate},
		{"OK/OtherText", sessions.Commit{Entries: []sessions.Entry{user("abb", "i")}}, nil, nil},
	}
	want := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.queue != nil {
				err = s.SetQueued(ctx, *tt.queue)
			} else {
				err = s.Commit(ctx, k, tt.c)
			}
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil {
				want += len(tt.c.Entries)
			}
			if h := history(t, s, k, 0); len(h) != want {
				t.Errorf("history has %d entries, want %d", len(h), want)
			}
		})
	}
	// Updating a queued record is not a second delivery.
	if err := s.SetQueued(ctx, sessions.Queued{Key: k, ID: 3, Question: user("102", "g")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueued(ctx, sessions.Queued{Key: k, ID: 3, Question: user("102", "g"), Reply: []byte(`{"m":1}`)}); err != nil {
		t.Errorf("update of a queued record: %v", err)
	}
	// Append records no mark and refuses nothing.
	if err := s.Append(ctx, k, false, user("1", "appended")); err != nil {
		t.Errorf("Append of an old id: %v", err)
	}
	if err := s.Commit(ctx, k, sessions.Commit{Entries: []sessions.Entry{user("103", "after append")}}); err != nil {
		t.Errorf("Commit after Append: %v", err)
	}
}

// testCommitDuplicateUnordered checks the window of unordered ids: the
// last sessions.RecentMessages accepted are refused, older ones are
// forgotten, conversations do not share them, and a message accepted at
// once by several writers is accepted once.
func testCommitDuplicateUnordered(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	k := sessions.Key{Platform: "discord", Chat: "42"}
	msg := func(n int) sessions.Entry {
		e := user(fmt.Sprint(1_000_000_000_000_000+n), "m")
		e.Unordered = true
		return e
	}
	// Accepted in bunches, as the Manager's queued records and commits do.
	for n := 0; n <= sessions.RecentMessages; n += 8 {
		var es []sessions.Entry
		for i := n; i < min(n+8, sessions.RecentMessages+1); i++ {
			es = append(es, msg(i))
		}
		mustCommit(t, s, k, sessions.Commit{Entries: es})
	}
	// Message 0 fell out of the window; 1 and the last are in it.
	for _, tt := range []struct {
		n   int
		err error
	}{{1, sessions.ErrDuplicate}, {sessions.RecentMessages, sessions.ErrDuplicate}, {0, nil}, {0, sessions.ErrDuplicate}} {
		err := s.Commit(ctx, k, sessions.Commit{Entries: []sessions.Entry{msg(tt.n)}})
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("message %d: err = %v, want %v", tt.n, err, tt.err)
		}
	}
	other := sessions.Key{Platform: "discord", Chat: "43"}
	if err := s.SetQueued(ctx, sessions.Queued{Key: other, ID: 1, Question: msg(1)}); err != nil {
		t.Errorf("message 1 in another conversation: %v", err)
	}
	long := msg(0)
	long.MsgID = strings.Repeat("9", 65)
	if err := s.Commit(ctx, k, sessions.Commit{Entries: []sessions.Entry{long}}); err == nil || errors.Is(err, sessions.ErrDuplicate) {
		t.Errorf("a message id of 65 bytes: err = %v, want a refusal", err)
	}

	// Writers racing with one message: one accepts it.
	const writers = 8
	race := sessions.Key{Platform: "discord", Chat: "44"}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			if i%2 == 0 {
				errs[i] = s.SetQueued(ctx, sessions.Queued{Key: race, ID: uint64(i + 1), Question: msg(7)})
			} else {
				errs[i] = s.Commit(ctx, race, sessions.Commit{Entries: []sessions.Entry{msg(7)}})
			}
		})
	}
	wg.Wait()
	accepted := 0
	for _, err := range errs {
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, sessions.ErrDuplicate):
			t.Errorf("racing writer: %v", err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of %d racing writers accepted the message (%v), want 1", accepted, writers, errs)
	}
}

func testCommitDuplicateWritesNothing(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	k := sessions.Key{Platform: "telegram", Chat: "1"}
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{user("9", "a")}})
	if err := s.SetQueued(ctx, sessions.Queued{Key: k, ID: 7, Question: user("10", "q")}); err != nil {
		t.Fatal(err)
	}
	im := image("refused picture")
	c := sessions.Commit{
		Entries:    []sessions.Entry{user("9", "again"), imageEntry("with a picture", im)},
		QueuedID:   0,
		ProgressID: 3, Progress: shown("refused"),
	}
	if err := s.Commit(ctx, k, c); !errors.Is(err, sessions.ErrDuplicate) {
		t.Fatalf("Commit = %v, want ErrDuplicate", err)
	}
	if got, want := texts(history(t, s, k, 0)), []string{"1:a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("history = %v, want %v", got, want)
	}
	if got := progressKeys(t, s); len(got) != 0 {
		t.Errorf("progress = %v, want none", got)
	}
	if _, err := s.Blob(ctx, im.SHA256); !errors.Is(err, sessions.ErrNoBlob) {
		t.Errorf("Blob of the refused commit's image = %v, want ErrNoBlob", err)
	}
	if qs, err := s.QueuedMessages(ctx); err != nil || len(qs) != 1 {
		t.Errorf("queued = %+v, %v; want the record kept", qs, err)
	}
}

func testCommitReplace(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	k := sessions.Key{Platform: "telegram", Chat: "1"}
	mustAppend(t, s, k, "a", "b")
	e := history(t, s, k, 0)[0]
	e.Inline = "read again"
	gone := entry(llm.RoleUser, "gone")
	gone.Seq = 99
	unset := entry(llm.RoleUser, "no seq")
	mustCommit(t, s, k, sessions.Commit{Replace: []sessions.Entry{e, gone, unset}, Entries: []sessions.Entry{entry(llm.RoleAssistant, "c")}})
	h := history(t, s, k, 0)
	if got, want := texts(h), []string{"1:a", "2:b", "3:c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("history = %v, want %v", got, want)
	}
	if h[0].Inline != "read again" {
		t.Errorf("replaced entry = %+v, want Inline %q", h[0], "read again")
	}
	// A Replace alone, of a conversation without history, does nothing.
	mustCommit(t, s, sessions.Key{Platform: "telegram", Chat: "2"}, sessions.Commit{Replace: []sessions.Entry{e}})
	if h := history(t, s, sessions.Key{Platform: "telegram", Chat: "2"}, 0); len(h) != 0 {
		t.Errorf("Replace made history %v", texts(h))
	}
}

func testCommitQueued(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	k := sessions.Key{Platform: "telegram", Chat: "-100", Thread: "7"}
	q := sessions.Entry{Role: llm.RoleUser, Text: "waiting", Time: day}
	for id := uint64(1); id <= 3; id++ {
		if err := s.SetQueued(ctx, sessions.Queued{Key: k, ID: id << 8, Question: q, Destination: "telegram:-100"}); err != nil {
			t.Fatal(err)
		}
	}
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{q}, QueuedID: 1 << 8})
	mustCommit(t, s, k, sessions.Commit{QueuedID: 2 << 8})
	mustCommit(t, s, k, sessions.Commit{QueuedID: 99}) // none such
	qs, err := s.QueuedMessages(ctx)
	if err != nil || len(qs) != 1 || qs[0].Key != k || qs[0].ID != 3<<8 || qs[0].Question.Text != "waiting" || qs[0].Destination != "telegram:-100" {
		t.Fatalf("queued = %+v, %v; want id %d only", qs, err, 3<<8)
	}
	if h := history(t, s, k, 0); len(h) != 1 || h[0].Text != "waiting" {
		t.Fatalf("history = %v, want the question", texts(h))
	}
}

func testCommitProgress(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	k := sessions.Key{Platform: "discord", Chat: "42"}
	start := sessions.Progress{Destination: "discord:42", Reply: []byte(`{"reply_to":"5"}`), Started: day}
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{user("5", "hi")}, ProgressID: 1, Progress: &start})
	// Text written behind, then a new message id durably: the pending
	// text must not come back over the durable record.
	if err := s.SetProgress(ctx, k, 1, &sessions.Progress{Destination: "discord:42", Reply: start.Reply, Shown: sessions.View{Content: "old"}}); err != nil {
		t.Fatal(err)
	}
	saved := sessions.Progress{Destination: "discord:42", Reply: []byte(`{"parts":[7]}`), Shown: sessions.View{Content: "new"}, Started: day}
	if err := s.SaveProgress(ctx, k, 1, saved); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Progresses(ctx)
	saved.Key, saved.ID = k, 1
	if err != nil || len(ps) != 1 || !reflect.DeepEqual(ps[0], saved) {
		t.Fatalf("progresses = %+v, %v; want [%+v]", ps, err, saved)
	}
	// Another turn's record is its own.
	mustCommit(t, s, k, sessions.Commit{ProgressID: 2, Progress: shown("two")})
	committed := saved
	committed.Committed, committed.Shown = true, sessions.View{Content: "final", Final: true}
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{entry(llm.RoleAssistant, "final")}, ProgressID: 1, Progress: &committed})
	if got, want := progressKeys(t, s), []string{"discord:42/1:final", "discord:42/2:two"}; !reflect.DeepEqual(got, want) {
		t.Errorf("progresses = %v, want %v", got, want)
	}
	// DropProgress removes the record, pending or written.
	if err := s.SetProgress(ctx, k, 2, shown("two, pending")); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, k, sessions.Commit{ProgressID: 2, DropProgress: true})
	mustCommit(t, s, k, sessions.Commit{ProgressID: 1, DropProgress: true})
	if got := progressKeys(t, s); len(got) != 0 {
		t.Errorf("progresses after DropProgress = %v, want none", got)
	}
}

func testProgress(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	k1 := sessions.Key{Platform: "telegram", Chat: "1"}
	k2 := sessions.Key{Platform: "discord", Chat: "2", Thread: "3"}
	k3 := sessions.Key{Platform: "telegram", Chat: "1", Thread: "9"}
	for _, set := range []struct {
		key sessions.Key
		id  uint64
	}{{k1, 2}, {k3, 1}, {k2, 0}, {k1, 1}} {
		if err := s.SetProgress(ctx, set.key, set.id, shown(set.key.Chat)); err != nil {
			t.Fatalf("SetProgress: %v", err)
		}
	}
	// Visible at once, ordered by conversation, then turn.
	if got, want := progressKeys(t, s), []string{"discord:2:3/0:2", "telegram:1/1:1", "telegram:1/2:1", "telegram:1:9/1:1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Progresses = %v, want %v", got, want)
	}
	if err := s.SetProgress(ctx, k1, 1, nil); err != nil {
		t.Fatalf("SetProgress(nil): %v", err)
	}
	if err := s.SetProgress(ctx, k2, 0, shown("newer")); err != nil {
		t.Fatalf("SetProgress: %v", err)
	}
	if got, want := progressKeys(t, s), []string{"discord:2:3/0:newer", "telegram:1/2:1", "telegram:1:9/1:1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Progresses after a clear and an update = %v, want %v", got, want)
	}
	// A durable record, cleared behind.
	if err := s.SaveProgress(ctx, k3, 1, *shown("saved")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgress(ctx, k3, 1, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := progressKeys(t, s), []string{"discord:2:3/0:newer", "telegram:1/2:1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Progresses after clearing a saved record = %v, want %v", got, want)
	}
}

func testProgressCopies(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	p := &sessions.Progress{Destination: "d", Reply: []byte("abc")}
	if err := s.SetProgress(t.Context(), key, 0, p); err != nil {
		t.Fatalf("SetProgress: %v", err)
	}
	p.Reply[0] = 'X'
	p.Destination = "changed"
	ps, err := s.Progresses(t.Context())
	if err != nil {
		t.Fatalf("Progresses: %v", err)
	}
	if len(ps) != 1 || string(ps[0].Reply) != "abc" || ps[0].Destination != "d" || ps[0].Key != key {
		t.Errorf("Progresses = %+v, want the record as set", ps)
	}
	ps[0].Reply[0] = 'Y'
	if again, _ := s.Progresses(t.Context()); len(again) != 1 || string(again[0].Reply) != "abc" {
		t.Errorf("Progresses after changing a result = %+v, want the record as set", again)
	}
}

func testQueued(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	if qs, err := s.QueuedMessages(ctx); err != nil || len(qs) != 0 {
		t.Fatalf("QueuedMessages of a new store = %+v, %v", qs, err)
	}
	k1 := sessions.Key{Platform: "telegram", Chat: "1"}
	k2 := sessions.Key{Platform: "discord", Chat: "2"}
	q := sessions.Queued{Key: k1, ID: 9, Question: user("5", "q"), Destination: "telegram:1", Reply: []byte(`{"m":3}`)}
	for _, r := range []sessions.Queued{q, {Key: k2, ID: 4, Question: user("", "r"), Destination: "discord:2"}, {Key: k1, ID: 2, Question: user("", "s")}} {
		if err := s.SetQueued(ctx, r); err != nil {
			t.Fatalf("SetQueued: %v", err)
		}
	}
	qs, err := s.QueuedMessages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range qs {
		got = append(got, r.Key.String()+"/"+r.Question.Text)
	}
	if want := []string{"discord:2/r", "telegram:1/s", "telegram:1/q"}; !reflect.DeepEqual(got, want) {
		t.Errorf("QueuedMessages = %v, want %v", got, want)
	}
	// Owner is the store's to set (a store shared by several processes
	// names the one that recorded the message).
	rec := qs[2]
	rec.Owner = ""
	if !reflect.DeepEqual(rec, q) {
		t.Errorf("record = %+v, want %+v", rec, q)
	}
}

func testValue(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	if got, err := s.Value(ctx, "missing"); got != nil || err != nil {
		t.Errorf("Value(missing) = %q, %v; want nil, nil", got, err)
	}
	for _, v := range [][]byte{[]byte("1"), []byte("22"), {}, {0, 0xff}} {
		if err := s.SetValue(ctx, "telegram.offset", v); err != nil {
			t.Fatalf("SetValue: %v", err)
		}
		if got, err := s.Value(ctx, "telegram.offset"); err != nil || !bytes.Equal(got, v) {
			t.Errorf("Value = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.SetValue(ctx, "other/name", []byte("x")); err != nil {
		t.Fatalf("SetValue: %v", err)
	}
	if err := s.SetValue(ctx, "telegram.offset", nil); err != nil {
		t.Fatalf("SetValue(nil): %v", err)
	}
	if got, err := s.Value(ctx, "telegram.offset"); got != nil || err != nil {
		t.Errorf("Value after delete = %q, %v; want nil, nil", got, err)
	}
	if got, err := s.Value(ctx, "other/name"); err != nil || string(got) != "x" {
		t.Errorf("Value(other/name) = %q, %v", got, err)
	}
	if err := s.SetValue(ctx, "", []byte("x")); err == nil {
		t.Errorf("SetValue(\"\") succeeded")
	}
}

func testInvalidKey(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx := t.Context()
	for _, key := range []sessions.Key{{}, {Platform: "telegram"}, {Chat: "1"}} {
		if err := s.Append(ctx, key, false, entry(llm.RoleUser, "x")); err == nil {
			t.Errorf("Append(%+v) succeeded", key)
		}
		if err := s.Commit(ctx, key, sessions.Commit{Entries: []sessions.Entry{entry(llm.RoleUser, "x")}}); err == nil {
			t.Errorf("Commit(%+v) succeeded", key)
		}
		if err := s.SetProgress(ctx, key, 0, &sessions.Progress{}); err == nil {
			t.Errorf("SetProgress(%+v) succeeded", key)
		}
		if _, err := s.History(ctx, key, 0); err == nil {
			t.Errorf("History(%+v) succeeded", key)
		}
		if err := s.SetQueued(ctx, sessions.Queued{Key: key, ID: 1}); err == nil {
			t.Errorf("SetQueued(%+v) succeeded", key)
		}
	}
}

func testContextCanceled(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	key := sessions.Key{Platform: "telegram", Chat: "1"}
	if err := s.Append(ctx, key, false, entry(llm.RoleUser, "x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Append = %v, want context.Canceled", err)
	}
	if err := s.Commit(ctx, key, sessions.Commit{Entries: []sessions.Entry{entry(llm.RoleUser, "x")}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit = %v, want context.Canceled", err)
	}
	if _, err := s.History(ctx, key, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("History = %v, want context.Canceled", err)
	}
	if got := history(t, s, key, 0); len(got) != 0 {
		t.Errorf("canceled writes wrote %v", texts(got))
	}
}
