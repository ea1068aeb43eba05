package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpenChatLog(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), chatLogName)
		if err := os.WriteFile(path, []byte("earlier\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := openChatLog(path)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("later\n")
		f.Close()
		if got, _ := os.ReadFile(path); string(got) != "earlier\nlater\n" {
			t.Errorf("log = %q, want appended to", got)
		}
	})
	t.Run("Rotate", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), chatLogName)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, chatLogMax+1); err != nil {
			t.Fatal(err)
		}
		f, err := openChatLog(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if st, err := os.Stat(path); err != nil || st.Size() != 0 {
			t.Errorf("log after rotation: %v, want empty", err)
		}
		if st, err := os.Stat(path + ".old"); err != nil || st.Size() != chatLogMax+1 {
			t.Errorf("old log: %v, want the previous one", err)
		}
	})
	t.Run("ErrDir", func(t *testing.T) {
		if _, err := openChatLog(filepath.Join(t.TempDir(), "missing", chatLogName)); err == nil {
			t.Error("openChatLog in a missing directory: no error")
		}
	})
}
