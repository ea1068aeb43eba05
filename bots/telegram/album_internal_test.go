package telegram

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/llmtest"
	"github.com/palaver-bot/palaver/sessions"
)

// unsavable is the real Manager, except that it refuses one message as
// not saved, once, as when the store fails, and notes what it is handed.
type unsavable struct {
	*sessions.Manager
	mu     sync.Mutex
	refuse [2]string // the chat and message id refused once
	got    []sessions.Message
}

func (u *unsavable) Handle(ctx context.Context, msg sessions.Message, reply sessions.Reply) (*sessions.Turn, error) {
	u.mu.Lock()
	if [2]string{msg.Key.Chat, msg.ID} == u.refuse {
		u.refuse = [2]string{}
		u.mu.Unlock()
		return nil, fmt.Errorf("store down: %w", sessions.ErrNotSaved)
	}
	u.got = append(u.got, msg)
	u.mu.Unlock()
	return u.Manager.Handle(ctx, msg, reply)
}

// TestBot_HandleBatch_AlbumAcrossHeldUpdate hands over an album whose
// items have another chat's message between them, which the store fails
// to save: delivered again, the album's later item is not answered alone.
func TestBot_HandleBatch_AlbumAcrossHeldUpdate(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	store, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := llm.NewRouter([]*llm.Client{llm.NewClient(up.Provider("fake"), llm.Options{MaxRetries: -1})}, "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sessions.NewManager(sessions.Config{DefaultModel: "fake/echo"}, store, router, nil, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Close(ctx)
		_ = store.Close()
	})

	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	bob := telegramtest.User{ID: 1002, FirstName: "Bob"}
	a1 := tg.SendPhoto(alice.ID, alice, []byte("not a picture"), "two views", telegramtest.InAlbum("g"))
	x := tg.SendText(bob.ID, bob, "meanwhile")
	a2 := tg.SendPhoto(alice.ID, alice, []byte("not one either"), "", telegramtest.InAlbum("g"))

	mgr := &unsavable{Manager: m, refuse: [2]string{strconv.FormatInt(bob.ID, 10), strconv.Itoa(x.ID)}}
	b, err := New(Options{Token: tg.Token(), APIEndpoint: tg.Endpoint()}, mgr, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	raws, err := b.api.getUpdates(ctx, 0, 0)
	if err != nil || len(raws) != 3 {
		t.Fatalf("getUpdates = %d updates, %v; want 3", len(raws), err)
	}
	first := updateID(raws[0])

	next, held := b.handleBatch(ctx, decodeBatch(raws, 0), 0)
	if !held || next != first+1 {
		t.Fatalf("handleBatch = %d, held %v; want held at %d (Bob's message)", next, held, first+1)
	}
	// Telegram delivers Bob's message and the album's second item again.
	next, held = b.handleBatch(ctx, decodeBatch(raws, next), next)
	if held || next != first+3 {
		t.Fatalf("handleBatch again = %d, held %v; want %d", next, held, first+3)
	}

	mgr.mu.Lock()
	defer mgr.mu.Unlock()
	if len(mgr.got) != 2 {
		t.Fatalf("messages handed over = %+v, want the album and Bob's", mgr.got)
	}
	album, meanwhile := mgr.got[0], mgr.got[1]
	if album.ID != strconv.Itoa(a1.ID) || len(album.Attachments) != 2 ||
		album.Attachments[1].Ref != a2.Photo[len(a2.Photo)-1].FileID {
		t.Errorf("album = %+v, want both items under the first's id", album)
	}
	if meanwhile.Text != "meanwhile" {
		t.Errorf("second message = %+v, want Bob's", meanwhile)
	}
}
