package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/sessions"
)

// image is an Image carrying data (not a real picture: stores keep bytes).
func image(data string) sessions.Image {
	sum := sha256.Sum256([]byte(data))
	return sessions.Image{SHA256: hex.EncodeToString(sum[:]), MIME: "image/png", Size: len(data), Width: 2, Height: 1, Data: []byte(data)}
}

// imageEntry is a user entry showing ims.
func imageEntry(text string, ims ...sessions.Image) sessions.Entry {
	e := entry(llm.RoleUser, text)
	e.Images = ims
	return e
}

// stored lists which of ims the store holds, by the data each has.
func stored(t *testing.T, s sessions.Store, ims ...sessions.Image) []string {
	t.Helper()
	var out []string
	for _, im := range ims {
		data, err := s.Blob(t.Context(), im.SHA256)
		switch {
		case errors.Is(err, sessions.ErrNoBlob):
		case err != nil:
			t.Fatalf("Blob(%s): %v", im.SHA256, err)
		case string(data) != string(im.Data):
			t.Fatalf("Blob(%s) = %q, want %q", im.SHA256, data, im.Data)
		default:
			out = append(out, string(data))
		}
	}
	return out
}

func testImagesRetention(t *testing.T, open Open) {
	s := open(t, 3)
	k := sessions.Key{Platform: "telegram", Chat: "42"}
	a, b := image("picture a"), image("picture b")
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{imageEntry("1", a), entry(llm.RoleAssistant, "2")}})
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{imageEntry("3", a, b)}})
	if got, want := stored(t, s, a, b), []string{"picture a", "picture b"}; !slices.Equal(got, want) {
		t.Fatalf("images = %v, want %v", got, want)
	}
	h := history(t, s, k, 0)
	if got := h[0].Images[0]; got.Data != nil || got.SHA256 != a.SHA256 || got.Width != 2 || got.MIME != "image/png" || got.Size != len("picture a") {
		t.Errorf("history image = %+v, want its reference without data", got)
	}
	// Entry 1 is pruned: a stays for entry 3.
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{entry(llm.RoleAssistant, "4")}})
	if got, want := stored(t, s, a, b), []string{"picture a", "picture b"}; !slices.Equal(got, want) {
		t.Fatalf("after pruning entry 1: images = %v, want %v", got, want)
	}
	// Entry 3 is pruned: nothing refers to either.
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{entry(llm.RoleUser, "5"), entry(llm.RoleAssistant, "6")}})
	if got := stored(t, s, a, b); len(got) != 0 {
		t.Fatalf("after pruning entry 3: images = %v, want none", got)
	}
	// An image added and pruned by one commit is not kept.
	c := image("picture c")
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{imageEntry("7", c), entry(llm.RoleUser, "8"), entry(llm.RoleUser, "9"), entry(llm.RoleUser, "10")}})
	if got := stored(t, s, c); len(got) != 0 {
		t.Fatalf("image of an entry pruned at once = %v, want none", got)
	}
}

func testImagesDeletions(t *testing.T, open Open) {
	k := sessions.Key{Platform: "telegram", Chat: "42"}
	other := sessions.Key{Platform: "telegram", Chat: "7"}
	a, b := image("picture a"), image("picture b")
	// Each case starts from k: 1 [a], 2 [a]; other: 3 [b]. Then it does
	// something, and checks the images left; then every entry goes, and
	// so must every image (no count was left behind).
	tests := []struct {
		name string
		do   func(t *testing.T, s sessions.Store)
		want []string
	}{
		{"DeleteLast", func(t *testing.T, s sessions.Store) {
			if _, err := s.DeleteLast(t.Context(), k, func(sessions.Entry) bool { return true }); err != nil {
				t.Fatal(err)
			}
		}, []string{"picture b"}},
		{"DeleteLastOne", func(t *testing.T, s sessions.Store) {
			calls := 0
			if _, err := s.DeleteLast(t.Context(), k, func(sessions.Entry) bool { calls++; return calls == 1 }); err != nil {
				t.Fatal(err)
			}
		}, []string{"picture a", "picture b"}},
		{"Reset", func(t *testing.T, s sessions.Store) {
			if err := s.Reset(t.Context(), k); err != nil {
				t.Fatal(err)
			}
		}, []string{"picture b"}},
		{"MoveOver", func(t *testing.T, s sessions.Store) {
			if err := s.Move(t.Context(), other, k); err != nil {
				t.Fatal(err)
			}
		}, []string{"picture b"}},
		{"MoveAway", func(t *testing.T, s sessions.Store) {
			if err := s.Move(t.Context(), k, sessions.Key{Platform: "telegram", Chat: "9"}); err != nil {
				t.Fatal(err)
			}
		}, []string{"picture a", "picture b"}},
		{"ReplaceDropsOne", func(t *testing.T, s sessions.Store) {
			e := history(t, s, k, 0)[1]
			e.Images, e.Inline = nil, "read again"
			mustCommit(t, s, k, sessions.Commit{Replace: []sessions.Entry{e}})
			if h := history(t, s, k, 0); len(h) != 2 || h[1].Inline != "read again" || len(h[1].Images) != 0 {
				t.Errorf("history after Replace = %+v", h)
			}
		}, []string{"picture a", "picture b"}},
		{"ReplaceDropsBoth", func(t *testing.T, s sessions.Store) {
			h := history(t, s, k, 0)
			h[0].Images, h[1].Images = nil, nil
			mustCommit(t, s, k, sessions.Commit{Replace: h})
		}, []string{"picture b"}},
		{"ReplaceKeepsSame", func(t *testing.T, s sessions.Store) {
			e := history(t, s, k, 0)[0] // a, from the store: no data
			e.Inline = "again"
			mustCommit(t, s, k, sessions.Commit{Replace: []sessions.Entry{e}})
		}, []string{"picture a", "picture b"}},
		{"ReplaceGone", func(t *testing.T, s sessions.Store) {
			e := imageEntry("gone", b)
			e.Seq = 99
			mustCommit(t, s, k, sessions.Commit{Replace: []sessions.Entry{e}})
		}, []string{"picture a", "picture b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, defaultRetention)
			mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{imageEntry("1", a)}})
			mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{imageEntry("2", a)}})
			mustCommit(t, s, other, sessions.Commit{Entries: []sessions.Entry{imageEntry("3", b)}})
			tt.do(t, s)
			if got := stored(t, s, a, b); !slices.Equal(got, tt.want) {
				t.Errorf("images = %v, want %v", got, tt.want)
			}
			for _, key := range []sessions.Key{k, other, {Platform: "telegram", Chat: "9"}} {
				if err := s.Reset(t.Context(), key); err != nil {
					t.Fatal(err)
				}
			}
			if got := stored(t, s, a, b); len(got) != 0 {
				t.Errorf("images after every history was reset = %v, want none", got)
			}
		})
	}
}

func testImagesRefused(t *testing.T, open Open) {
	s := open(t, defaultRetention)
	k := sessions.Key{Platform: "telegram", Chat: "42"}
	kept := image("stored")
	noData := image("never stored")
	noData.Data = nil
	for _, tt := range []struct {
		name string
		im   sessions.Image
		want string
	}{
		{"NoData", noData, "no data to store"},
		{"BadHash", sessions.Image{SHA256: "../../etc", MIME: "image/png", Data: []byte("x")}, "not a hex SHA-256"},
		{"UpperCaseHash", sessions.Image{SHA256: strings.ToUpper(kept.SHA256), MIME: "image/png", Data: []byte("x")}, "not a hex SHA-256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Commit(t.Context(), k, sessions.Commit{Entries: []sessions.Entry{imageEntry("q", tt.im)}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Commit = %v, want an error saying %q", err, tt.want)
			}
			if h := history(t, s, k, 0); len(h) != 0 {
				t.Errorf("a refused commit wrote %v", texts(h))
			}
		})
	}
	if _, err := s.Blob(t.Context(), "nothex"); err == nil || errors.Is(err, sessions.ErrNoBlob) {
		t.Errorf("Blob of a malformed hash = %v, want an error other than ErrNoBlob", err)
	}
	if _, err := s.Blob(t.Context(), kept.SHA256); !errors.Is(err, sessions.ErrNoBlob) {
		t.Errorf("Blob of an image never stored = %v, want ErrNoBlob", err)
	}
	// An image already stored needs no data.
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{imageEntry("1", kept)}})
	again := kept
	again.Data = nil
	mustCommit(t, s, k, sessions.Commit{Entries: []sessions.Entry{imageEntry("2", again)}})
	if _, err := s.DeleteLast(t.Context(), k, func(e sessions.Entry) bool { return e.Text == "2" }); err != nil {
		t.Fatal(err)
	}
	if got, want := stored(t, s, kept), []string{"stored"}; !slices.Equal(got, want) {
		t.Errorf("images after deleting one of two entries = %v, want %v", got, want)
	}
}
