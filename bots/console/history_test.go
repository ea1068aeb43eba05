package console

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestHistory_Add(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	h, err := loadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"one", "two\nlines", "two\nlines", "", strings.Repeat("x", HistoryEntryMax+1), "three"} {
		if err := h.add(e); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"one", "two\nlines", "three"}
	if !slices.Equal(h.entries, want) {
		t.Errorf("entries = %q, want %q (no repeat, empty or overlong entry)", h.entries, want)
	}
	again, err := loadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.entries, want) {
		t.Errorf("entries read back = %q, want %q", again.entries, want)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("history file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
}

func TestHistory_Cap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	h, _ := loadHistory(path)
	n := 2*HistoryEntries + 7
	for i := range n {
		if err := h.add(strings.Repeat("e", i%3+1) + string(rune('a'+i%26)) + strings.Repeat(".", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.entries) != HistoryEntries {
		t.Errorf("%d entries in memory, want %d", len(h.entries), HistoryEntries)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines > 2*HistoryEntries {
		t.Errorf("history file has %d lines, want at most %d", lines, 2*HistoryEntries)
	}
	again, _ := loadHistory(path)
	if !slices.Equal(again.entries, h.entries) {
		t.Errorf("read back %d entries ending %q, want %d ending %q", len(again.entries), again.entries[len(again.entries)-1], len(h.entries), h.entries[len(h.entries)-1])
	}
}

func TestLoadHistory(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"OK", "\"a\"\n\"b\\nc\"\n", []string{"a", "b\nc"}},
		{"BadLines", "\"a\"\nnot json\n42\n\"\"\n\"b\"\n", []string{"a", "b"}},
		{"Empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			h, err := loadHistory(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(h.entries, tt.want) {
				t.Errorf("entries = %q, want %q", h.entries, tt.want)
			}
		})
	}
	t.Run("Missing", func(t *testing.T) {
		h, err := loadHistory(filepath.Join(t.TempDir(), "none"))
		if err != nil || len(h.entries) != 0 {
			t.Errorf("loadHistory(missing) = %q, %v; want empty, nil", h.entries, err)
		}
	})
	t.Run("ErrLongLine", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "history")
		if err := os.WriteFile(path, []byte("\"a\"\n\""+strings.Repeat("x", historyLineMax)+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h, err := loadHistory(path)
		if err == nil || !slices.Equal(h.entries, []string{"a"}) {
			t.Errorf("loadHistory = %q, %v; want [a] and an error", h.entries, err)
		}
	})
	t.Run("InMemory", func(t *testing.T) {
		h, _ := loadHistory("")
		if err := h.add("x"); err != nil || !slices.Equal(h.entries, []string{"x"}) {
			t.Errorf("add to an in-memory history: %q, %v", h.entries, err)
		}
	})
}
