package sessions

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/palaver-bot/palaver/llm"
)

// crashEnv names the store file the helper process writes to; the helper
// test does nothing without it.
const crashEnv = "PALAVER_BOLT_CRASH_STORE"

// crashRetention is small so that pruning runs during the crash test.
const crashRetention = 40

// crashKeys are the conversations the helper process appends to.
var crashKeys = []Key{
	{Platform: "telegram", Chat: "1"},
	{Platform: "telegram", Chat: "2", Thread: "9"},
	{Platform: "discord", Chat: "3"},
}

// TestBoltStore_CrashHelper is the child process of TestBoltStore_Crash. It
// appends to the store named by crashEnv until it is killed, printing
// "ready" once the first append is committed.
func TestBoltStore_CrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestBoltStore_Crash")
	}
	s, err := OpenBolt(path, BoltOptions{Retention: crashRetention, ProgressFlush: time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	// A deadline stops an orphaned helper if the parent never kills it.
	start := time.Now()
	for i := 0; time.Since(start) < time.Minute; i++ {
		key := crashKeys[i%len(crashKeys)]
		n := 1 + rng.IntN(3)
		entries := make([]Entry, n)
		for j := range entries {
			// Sizes up to a few pages exercise overflow pages and splits.
			entries[j] = Entry{Role: llm.RoleUser, Text: fmt.Sprintf("%d-%d|%s", i, j, strings.Repeat("x", rng.IntN(9000))), Time: time.Now()}
		}
		if err := s.SetProgress(ctx, key, 0, &Progress{Destination: key.String(), Shown: View{Content: fmt.Sprint(i)}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := s.Append(ctx, key, rng.IntN(2) == 0, entries...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if i%7 == 6 {
			if _, err := s.DeleteLast(ctx, key, func(e Entry) bool { return strings.HasPrefix(e.Text, fmt.Sprintf("%d-", i)) }); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
	os.Exit(3)
}

// TestBoltStore_Crash kills a process that is appending to the store, several
// times over, and checks after each kill that the store opens, is consistent,
// every entry decodes and every conversation's sequences are contiguous.
func TestBoltStore_Crash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "palaver.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for round := range 4 {
		killHelperMidWrite(t, path, time.Duration(5+rng.IntN(60))*time.Millisecond)
		checkCrashedStore(t, path, round)
	}
}

// killHelperMidWrite runs the helper process on path and sends it SIGKILL
// the given time after its first committed append.
func killHelperMidWrite(t *testing.T, path string, after time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltStore_CrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		// The helper failed on its own: collect its whole output.
		out := lines.Text()
		for lines.Scan() {
			out += "\n" + lines.Text()
		}
		_ = cmd.Wait()
		killed = true
		t.Fatalf("helper did not start:\n%s\nstderr: %s", out, stderr.String())
	}
	time.Sleep(after)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill helper: %v", err)
	}
	err = cmd.Wait()
	killed = true
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != -1 {
		t.Fatalf("helper ended with %v before it was killed; stderr: %s", err, stderr.String())
	}
}

// checkCrashedStore checks the store left by a killed helper.
func checkCrashedStore(t *testing.T, path string, round int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("round %d: open read-only: %v", round, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("round %d: consistency: %v", round, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("round %d: check: %v", round, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := OpenBolt(path, BoltOptions{Retention: crashRetention})
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	defer s.Close()
	total := 0
	for _, key := range crashKeys {
		entries, err := s.History(t.Context(), key, 0)
		if err != nil {
			t.Fatalf("round %d: History(%s): %v", round, key, err)
		}
		if len(entries) > crashRetention {
			t.Errorf("round %d: %s has %d entries, retention is %d", round, key, len(entries), crashRetention)
		}
		for i, e := range entries {
			if i > 0 && e.Seq != entries[i-1].Seq+1 {
				t.Errorf("round %d: %s: Seq %d follows %d", round, key, e.Seq, entries[i-1].Seq)
			}
			if e.Role != llm.RoleUser || !strings.Contains(e.Text, "|") {
				t.Errorf("round %d: %s: entry %d decoded as %+v", round, key, e.Seq, e)
			}
		}
		var last uint64
		err = s.db.View(func(tx *bolt.Tx) error {
			if hist := historyBucket(tx, []byte(key.String())); hist != nil {
				last = hist.Sequence()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(entries); n > 0 && entries[n-1].Seq != last {
			t.Errorf("round %d: %s: newest Seq %d, bucket sequence %d", round, key, entries[n-1].Seq, last)
		}
		total += len(entries)
	}
	if total == 0 {
		t.Errorf("round %d: no entries survived", round)
	}
	t.Logf("round %d: %d entries kept across %d conversations", round, total, len(crashKeys))
	if _, err := s.Progresses(t.Context()); err != nil {
		t.Errorf("round %d: Progresses: %v", round, err)
	}
}
