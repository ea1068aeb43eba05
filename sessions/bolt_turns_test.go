package sessions

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/llm"
)

func TestBoltStore_Commit_Duplicate(t *testing.T) {
	s := mustOpenBoltAt(t, filepath.Join(t.TempDir(), "palaver.db"), BoltOptions{})
	ctx := t.Context()
	k := Key{Platform: "telegram", Chat: "-100"}
	user := func(id, text string) Entry {
		return Entry{Role: llm.RoleUser, MsgID: id, Text: text, Time: time.Unix(1, 0).UTC()}
	}
	tests := []struct {
		name  string
		c     Commit
		queue *Queued
		err   error
	}{
		{"OK", Commit{Entries: []Entry{user("9", "a")}}, nil, nil},
		{"ErrDuplicate/Same", Commit{Entries: []Entry{user("9", "a")}}, nil, ErrDuplicate},
		{"ErrDuplicate/Older", Commit{Entries: []Entry{user("8", "b")}}, nil, ErrDuplicate},
		{"OK/Newer", Commit{Entries: []Entry{user("10", "c")}}, nil, nil},
		{"OK/NumbersNotText", Commit{Entries: []Entry{user("100", "d")}}, nil, nil},
		{"OK/NoID", Commit{Entries: []Entry{user("", "e")}}, nil, nil},
		{"ErrDuplicate/Queued", Commit{}, &Queued{Key: k, ID: 1, Question: user("100", "d")}, ErrDuplicate},
		{"OK/Queued", Commit{}, &Queued{Key: k, ID: 2, Question: user("101", "f")}, nil},
		{"OK/FromQueue", Commit{Entries: []Entry{user("101", "f")}, QueuedID: 2}, nil, nil},
		{"ErrDuplicate/AfterQueue", Commit{Entries: []Entry{user("101", "f")}}, nil, ErrDuplicate},
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
			if h := mustHistory(t, s, k, 0); len(h) != want {
				t.Errorf("history has %d entries, want %d", len(h), want)
			}
		})
	}
	// Updating a queued record is not a second delivery.
	if err := s.SetQueued(ctx, Queued{Key: k, ID: 3, Question: user("102", "g")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueued(ctx, Queued{Key: k, ID: 3, Question: user("102", "g"), Reply: []byte(`{"m":1}`)}); err != nil {
		t.Errorf("update of a queued record: %v", err)
	}
}

func TestBoltStore_Commit_Progress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "palaver.db")
	// A flush period longer than the test: only durable writes reach the
	// file before Close.
	s := mustOpenBoltAt(t, path, BoltOptions{ProgressFlush: time.Hour})
	ctx := t.Context()
	k := Key{Platform: "discord", Chat: "42"}
	q := Entry{Role: llm.RoleUser, MsgID: "5", Text: "hi", Time: time.Unix(1, 0).UTC()}
	start := Progress{Destination: "discord:42", Reply: []byte(`{"reply_to":"5"}`)}
	if err := s.Commit(ctx, k, Commit{Entries: []Entry{q}, Progress: &start}); err != nil {
		t.Fatal(err)
	}
	// Text written behind, then a new message id durably: the pending
	// text must not overwrite the durable record later.
	if err := s.SetProgress(ctx, k, 0, &Progress{Destination: "discord:42", Reply: start.Reply, Shown: View{Content: "old"}}); err != nil {
		t.Fatal(err)
	}
	shown := Progress{Destination: "discord:42", Reply: []byte(`{"parts":[7]}`), Shown: View{Content: "new"}}
	if err := s.SaveProgress(ctx, k, 0, shown); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Progresses(ctx)
	if err != nil || len(ps) != 1 || ps[0].Shown.Content != "new" {
		t.Fatalf("progresses = %+v, %v; want the durable record", ps, err)
	}
	// What a crash leaves: the file as it is now, without a Close.
	crash := filepath.Join(t.TempDir(), "crash.db")
	copyFile(t, path, crash)
	c := mustOpenBoltAt(t, crash, BoltOptions{})
	ps, err = c.Progresses(ctx)
	if err != nil || len(ps) != 1 || string(ps[0].Reply) != `{"parts":[7]}` {
		t.Fatalf("after a crash, progresses = %+v, %v; want the message id", ps, err)
	}
	if h := mustHistory(t, c, k, 0); len(h) != 1 || h[0].MsgID != "5" {
		t.Fatalf("after a crash, history = %+v; want the question", h)
	}
}

// copyFile copies the store file at src to dst as a crash would leave it:
// what was committed, without the writer closing.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
