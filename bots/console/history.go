package console

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// History bounds. The history file holds every conversation name's
// entries (it is the terminal's, as a shell's history is).
const (
	// HistoryEntries is how many entries the input history keeps, newest
	// last; older ones are dropped.
	HistoryEntries = 500
	// HistoryEntryMax is the longest entry, in bytes, that is kept; a
	// longer message (a large paste) is not recorded.
	HistoryEntryMax = 8 << 10
	// historyLineMax bounds a line of the history file: an entry of
	// HistoryEntryMax bytes quoted as JSON, with room to spare.
	historyLineMax = 8 * HistoryEntryMax
)

// history is the input history: entries recalled with ↑ and ↓, kept in a
// file, one JSON string per line, appended to as entries are added and
// rewritten when it holds twice as many lines as are kept.
type history struct {
	path    string // "" keeps the history in memory only
	entries []string
	lines   int // lines in the file
}

// loadHistory reads the history file at path; a missing file is an empty
// history. Lines that are not JSON strings are skipped. An error leaves
// what could be read.
func loadHistory(path string) (*history, error) {
	h := &history{path: path}
	if path == "" {
		return h, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("console: read history: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), historyLineMax)
	for sc.Scan() {
		h.lines++
		var e string
		if json.Unmarshal(sc.Bytes(), &e) == nil && e != "" {
			h.entries = append(h.entries, e)
		}
	}
	if len(h.entries) > HistoryEntries {
		h.entries = h.entries[len(h.entries)-HistoryEntries:]
	}
	if err := sc.Err(); err != nil {
		return h, fmt.Errorf("console: read history %s: %w", path, err)
	}
	return h, nil
}

// add records an entry, unless it is empty, too long, or the same as the
// newest, and saves it.
func (h *history) add(e string) error {
	if e == "" || len(e) > HistoryEntryMax || (len(h.entries) > 0 && h.entries[len(h.entries)-1] == e) {
		return nil
	}
	h.entries = append(h.entries, e)
	if len(h.entries) > HistoryEntries {
		h.entries = h.entries[len(h.entries)-HistoryEntries:]
	}
	if h.path == "" {
		return nil
	}
	if h.lines+1 > 2*HistoryEntries {
		return h.rewrite()
	}
	line, _ := json.Marshal(e)
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("console: save history: %w", err)
	}
	_, werr := f.Write(append(line, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("console: save history: %w", err)
	}
	h.lines++
	return nil
}

// rewrite replaces the file with the entries kept, through a temporary
// file renamed over it, so that a crash leaves one or the other.
func (h *history) rewrite() error {
	tmp, err := os.CreateTemp(filepath.Dir(h.path), filepath.Base(h.path)+".*")
	if err != nil {
		return fmt.Errorf("console: save history: %w", err)
	}
	w := bufio.NewWriter(tmp)
	for _, e := range h.entries {
		line, _ := json.Marshal(e)
		w.Write(append(line, '\n'))
	}
	err = errors.Join(w.Flush(), tmp.Chmod(0o600), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), h.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("console: save history: %w", err)
	}
	h.lines = len(h.entries)
	return nil
}
