package sessions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/palaver-bot/palaver/llm"
)

// testKey is the conversation of the tests of images.
var testKey = Key{Platform: "telegram", Chat: "42"}

// slogTo is a logger writing text to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// testImage is an Image carrying data (not a real picture: the store
// keeps bytes).
func testImage(data string) Image {
	sum := sha256.Sum256([]byte(data))
	return Image{SHA256: hex.EncodeToString(sum[:]), MIME: "image/png", Size: len(data), Width: 2, Height: 1, Data: []byte(data)}
}

// imageEntry is a user entry showing ims.
func imageEntry(text string, ims ...Image) Entry {
	e := testEntry(llm.RoleUser, text)
	e.Images = ims
	return e
}

// storedImages lists the images the store holds with their reference
// counts, "hash-prefix=count", sorted.
func storedImages(t *testing.T, s *BoltStore) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bucketBlobRefs)
		return tx.Bucket(bucketBlobs).ForEach(func(k, _ []byte) error {
			out = append(out, string(k[:6])+"="+string('0'+rune(refCount(refs.Get(k)))))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// assertConsistent checks the closed store file at path with CheckBolt.
func assertConsistent(t *testing.T, path string) {
	t.Helper()
	if r, err := CheckBolt(path, time.Second); err != nil {
		t.Fatalf("CheckBolt: %v (%v)", err, r.Problems)
	}
}

func TestBoltStore_Images_Retention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "palaver.db")
	s, err := OpenBolt(path, BoltOptions{Retention: 3})
	if err != nil {
		t.Fatal(err)
	}
	a, b := testImage("picture a"), testImage("picture b")
	ctx := t.Context()
	commit := func(entries ...Entry) {
		t.Helper()
		if err := s.Commit(ctx, testKey, Commit{Entries: entries}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	commit(imageEntry("1", a), testEntry(llm.RoleAssistant, "2"))
	commit(imageEntry("3", a, b))
	if got, want := storedImages(t, s), []string{a.SHA256[:6] + "=2", b.SHA256[:6] + "=1"}; !slices.Equal(got, want) {
		t.Fatalf("images = %v, want %v", got, want)
	}
	if h := mustHistory(t, s, testKey, 0); h[0].Images[0].Data != nil || h[0].Images[0].SHA256 != a.SHA256 || h[0].Images[0].Width != 2 {
		t.Errorf("history image = %+v, want its reference without data", h[0].Images[0])
	}
	data, err := s.Blob(ctx, a.SHA256)
	if err != nil || string(data) != "picture a" {
		t.Fatalf("Blob = %q, %v", data, err)
	}

	// Entry 1 is pruned: a stays for entry 3.
	commit(testEntry(llm.RoleAssistant, "4"))
	if got, want := storedImages(t, s), []string{a.SHA256[:6] + "=1", b.SHA256[:6] + "=1"}; !slices.Equal(got, want) {
		t.Fatalf("after pruning entry 1: images = %v, want %v", got, want)
	}
	// Entry 3 is pruned: nothing refers to either.
	commit(testEntry(llm.RoleUser, "5"), testEntry(llm.RoleAssistant, "6"))
	if got := storedImages(t, s); len(got) != 0 {
		t.Fatalf("after pruning entry 3: images = %v, want none", got)
	}
	if _, err := s.Blob(ctx, a.SHA256); !errors.Is(err, ErrNoBlob) {
		t.Errorf("Blob of a deleted image = %v, want ErrNoBlob", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, path)
}

func TestBoltStore_Images_Deletions(t *testing.T) {
	a, b := testImage("picture a"), testImage("picture b")
	other := Key{Platform: "telegram", Chat: "7"}
	tests := []struct {
		name string
		do   func(t *testing.T, s *BoltStore)
		want []string // images left, "prefix=count"
	}{
		{"DeleteLast", func(t *testing.T, s *BoltStore) {
			if _, err := s.DeleteLast(t.Context(), testKey, func(Entry) bool { return true }); err != nil {
				t.Fatal(err)
			}
		}, []string{b.SHA256[:6] + "=1"}},
		{"Reset", func(t *testing.T, s *BoltStore) {
			if err := s.Reset(t.Context(), testKey); err != nil {
				t.Fatal(err)
			}
		}, []string{b.SHA256[:6] + "=1"}},
		{"MoveOver", func(t *testing.T, s *BoltStore) {
			if err := s.Move(t.Context(), other, testKey); err != nil {
				t.Fatal(err)
			}
		}, []string{b.SHA256[:6] + "=1"}},
		{"MoveAway", func(t *testing.T, s *BoltStore) {
			if err := s.Move(t.Context(), testKey, Key{Platform: "telegram", Chat: "9"}); err != nil {
				t.Fatal(err)
			}
		}, []string{a.SHA256[:6] + "=2", b.SHA256[:6] + "=1"}},
		{"ReplaceDropsOne", func(t *testing.T, s *BoltStore) {
			e := mustHistory(t, s, testKey, 0)[1]
			e.Images, e.Inline = nil, "read again"
			if err := s.Commit(t.Context(), testKey, Commit{Replace: []Entry{e}}); err != nil {
				t.Fatal(err)
			}
			if h := mustHistory(t, s, testKey, 0); len(h) != 2 || h[1].Inline != "read again" {
				t.Errorf("history after Replace = %+v", h)
			}
		}, []string{a.SHA256[:6] + "=1", b.SHA256[:6] + "=1"}},
		{"ReplaceGone", func(t *testing.T, s *BoltStore) {
			e := imageEntry("gone", b)
			e.Seq = 99
			if err := s.Commit(t.Context(), testKey, Commit{Replace: []Entry{e}}); err != nil {
				t.Fatal(err)
			}
		}, []string{a.SHA256[:6] + "=2", b.SHA256[:6] + "=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "palaver.db")
			s, err := OpenBolt(path, BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				key Key
				e   Entry
			}{{testKey, imageEntry("1", a)}, {testKey, imageEntry("2", a)}, {other, imageEntry("3", b)}} {
				if err := s.Commit(t.Context(), c.key, Commit{Entries: []Entry{c.e}}); err != nil {
					t.Fatal(err)
				}
			}
			tt.do(t, s)
			if got := storedImages(t, s); !slices.Equal(got, tt.want) {
				t.Errorf("images = %v, want %v", got, tt.want)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			assertConsistent(t, path)
		})
	}
}

func TestBoltStore_Images_Refused(t *testing.T) {
	s := mustOpenBolt(t, BoltOptions{})
	stored := testImage("stored")
	noData := testImage("never stored")
	noData.Data = nil
	for _, tt := range []struct {
		name string
		im   Image
		want string
	}{
		{"NoData", noData, "no data to store"},
		{"BadHash", Image{SHA256: "../../etc", MIME: "image/png", Data: []byte("x")}, "not a hex SHA-256"},
		{"UpperCaseHash", Image{SHA256: strings.ToUpper(stored.SHA256), MIME: "image/png", Data: []byte("x")}, "not a hex SHA-256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Commit(t.Context(), testKey, Commit{Entries: []Entry{imageEntry("q", tt.im)}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Commit = %v, want an error saying %q", err, tt.want)
			}
			if h := mustHistory(t, s, testKey, 0); len(h) != 0 {
				t.Errorf("a refused commit wrote %+v", h)
			}
		})
	}
	if _, err := s.Blob(t.Context(), "nothex"); err == nil {
		t.Error("Blob of a malformed hash succeeded")
	}
	// An image already stored needs no data.
	if err := s.Commit(t.Context(), testKey, Commit{Entries: []Entry{imageEntry("1", stored)}}); err != nil {
		t.Fatal(err)
	}
	again := stored
	again.Data = nil
	if err := s.Commit(t.Context(), testKey, Commit{Entries: []Entry{imageEntry("2", again)}}); err != nil {
		t.Fatalf("Commit of a stored image without data: %v", err)
	}
	if got, want := storedImages(t, s), []string{stored.SHA256[:6] + "=2"}; !slices.Equal(got, want) {
		t.Errorf("images = %v, want %v", got, want)
	}
}

// writeSchema1 writes a store as palaver wrote schema 1: no blobs, one
// conversation with two entries, a queued message.
func writeSchema1(t *testing.T, path string) {
	t.Helper()
	writeBolt(t, path, func(tx *bolt.Tx) error {
		if err := putMeta("palaver", "1")(tx); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketConversations, bucketProgress, bucketValues, bucketQueued} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		conv, err := tx.Bucket(bucketConversations).CreateBucket([]byte(testKey.String()))
		if err != nil {
			return err
		}
		hist, err := conv.CreateBucket(bucketHistory)
		if err != nil {
			return err
		}
		for i, v := range []string{
			`{"role":"user","text":"old question","time":"2025-01-01T00:00:00Z"}`,
			`{"role":"assistant","text":"old answer","model":"fake/echo","time":"2025-01-01T00:00:01Z"}`,
		} {
			if err := hist.Put(seqKey(uint64(i+1)), []byte(v)); err != nil {
				return err
			}
		}
		if err := hist.SetSequence(2); err != nil {
			return err
		}
		return tx.Bucket(bucketQueued).Put(queuedKey([]byte(testKey.String()), 5),
			[]byte(`{"question":{"role":"user","text":"waiting","time":"2025-01-01T00:00:02Z"},"destination":"d"}`))
	})
}

func TestOpenBolt_UpgradesSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "palaver.db")
	writeSchema1(t, path)
	// palaver store check reads a schema-1 file as it is.
	if r, err := CheckBolt(path, time.Second); err != nil || r.ProblemCount != 0 {
		t.Fatalf("CheckBolt(schema 1) = %v, %v", err, r)
	}

	var logs bytes.Buffer
	s, err := OpenBolt(path, BoltOptions{Logger: slogTo(&logs)})
	if err != nil {
		t.Fatalf("OpenBolt(schema 1): %v", err)
	}
	if !strings.Contains(logs.String(), "store upgraded") || !strings.Contains(logs.String(), "from_schema=1") {
		t.Errorf("log = %q, want the upgrade", logs.String())
	}
	if got, want := texts(mustHistory(t, s, testKey, 0)), []string{"1:old question", "2:old answer"}; !slices.Equal(got, want) {
		t.Errorf("history after the upgrade = %v, want %v", got, want)
	}
	if qs, err := s.QueuedMessages(t.Context()); err != nil || len(qs) != 1 || qs[0].Question.Text != "waiting" {
		t.Errorf("queued after the upgrade = %+v, %v", qs, err)
	}
	im := testImage("new picture")
	if err := s.Commit(t.Context(), testKey, Commit{Entries: []Entry{imageEntry("new question", im)}}); err != nil {
		t.Fatalf("Commit with an image after the upgrade: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = viewStore(path, time.Second, func(tx *bolt.Tx) error {
		if got := string(tx.Bucket(bucketMeta).Get(keySchema)); got != boltSchema {
			t.Errorf("schema = %q, want %q", got, boltSchema)
		}
		if tx.Bucket(bucketBlobs).Get([]byte(im.SHA256)) == nil {
			t.Error("the image is not stored")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, path)

	// Opening again changes nothing.
	logs.Reset()
	s, err = OpenBolt(path, BoltOptions{Logger: slogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if strings.Contains(logs.String(), "upgraded") {
		t.Errorf("second open logged %q", logs.String())
	}
}

func TestCheckBolt_Images(t *testing.T) {
	a, b := testImage("picture a"), testImage("picture b")
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx) error
		want   string
	}{
		{"Missing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBlobs).Delete([]byte(a.SHA256))
		}, "image " + a.SHA256 + " is missing: 2 history entries refer to it"},
		{"Orphaned", func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketBlobs).Put([]byte(b.SHA256), b.Data); err != nil {
				return err
			}
			return tx.Bucket(bucketBlobRefs).Put([]byte(b.SHA256), []byte{0, 0, 0, 0, 0, 0, 0, 1})
		}, "image " + b.SHA256 + " is orphaned"},
		{"Count", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBlobRefs).Put([]byte(a.SHA256), []byte{0, 0, 0, 0, 0, 0, 0, 1})
		}, "2 history entries refer to it but its count is 1"},
		{"Altered", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBlobs).Put([]byte(a.SHA256), []byte("something else"))
		}, "does not match its hash"},
		{"MissingBucket", func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketBlobRefs)
		}, "bucket blob_refs is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "palaver.db")
			s, err := OpenBolt(path, BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(t.Context(), testKey, Commit{Entries: []Entry{imageEntry("1", a), imageEntry("2", a)}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			assertConsistent(t, path)
			writeBolt(t, path, tt.damage)
			r, err := CheckBolt(path, time.Second)
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("CheckBolt = %v, want ErrDamaged", err)
			}
			if r == nil || !slices.ContainsFunc(r.Problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems = %q, want one saying %q", r.Problems, tt.want)
			}
		})
	}
}
