package sessions_test

import (
	"path/filepath"
	"testing"

	"github.com/palaver-bot/palaver/sessions"
	"github.com/palaver-bot/palaver/sessions/storetest"
)

// openBolt opens a BoltStore in a new file of t.TempDir.
func openBolt(t *testing.T, retention int) sessions.Store {
	s, err := sessions.OpenBolt(filepath.Join(t.TempDir(), "palaver.db"), sessions.BoltOptions{Retention: retention})
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

// TestBoltStore_Contract holds BoltStore to the store contract that every
// backend shares (the etcd store runs it too).
func TestBoltStore_Contract(t *testing.T) {
	storetest.Run(t, openBolt)
}

func TestBoltStore_UsageContract(t *testing.T) {
	storetest.RunUsage(t, openBolt)
}
