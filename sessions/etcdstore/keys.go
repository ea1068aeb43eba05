package etcdstore

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/palaver-bot/palaver/sessions"
)

// Key names of the layout documented in the package documentation.

// escape makes s one segment of a key: '/' and '%' are escaped, so that
// a segment never holds the separator and the mapping is reversible.
func escape(s string) string { return escaper.Replace(s) }

// unescape is the inverse of escape.
func unescape(s string) string { return unescaper.Replace(s) }

var (
	escaper   = strings.NewReplacer("%", "%25", "/", "%2F")
	unescaper = strings.NewReplacer("%2F", "/", "%25", "%")
)

// keyName validates key and returns its name, Key.String().
func keyName(key sessions.Key) (string, error) {
	if key.Platform == "" || key.Chat == "" {
		return "", fmt.Errorf("etcd store: invalid conversation key %q", key.String())
	}
	return key.String(), nil
}

// seqHex formats a history sequence or turn id as a key segment that
// sorts by number.
func seqHex(n uint64) string { return fmt.Sprintf("%016x", n) }

// parseSeqHex is the inverse of seqHex.
func parseSeqHex(s string) (uint64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil
}

func (s *Store) convKey(name, field string) string {
	return s.p + "conv/" + escape(name) + "/" + field
}

func (s *Store) settingsKey(name string) string { return s.convKey(name, "settings") }
func (s *Store) headKey(name string) string     { return s.convKey(name, "head") }
func (s *Store) lastKey(name string) string     { return s.convKey(name, "last_message") }
func (s *Store) recentKey(name string) string   { return s.convKey(name, "recent_messages") }

func (s *Store) histPrefix(id string) string { return s.p + "hist/" + id + "/" }
func (s *Store) histKey(id string, seq uint64) string {
	return s.histPrefix(id) + seqHex(seq)
}

// turnKey is the key of turn id's record of conversation name under kind
// ("progress" or "queued").
func (s *Store) turnKey(kind, name string, id uint64) string {
	return s.turnPrefix(kind, name) + seqHex(id)
}

func (s *Store) turnPrefix(kind, name string) string {
	return s.p + kind + "/" + escape(name) + "/"
}

// parseTurnKey is the inverse of turnKey.
func (s *Store) parseTurnKey(kind, k string) (sessions.Key, uint64, bool) {
	rest, ok := strings.CutPrefix(k, s.p+kind+"/")
	if !ok {
		return sessions.Key{}, 0, false
	}
	name, idHex, ok := strings.Cut(rest, "/")
	if !ok {
		return sessions.Key{}, 0, false
	}
	id, ok := parseSeqHex(idHex)
	if !ok {
		return sessions.Key{}, 0, false
	}
	key, ok := sessions.ParseKey(unescape(name))
	return key, id, ok
}

func (s *Store) valueKey(name string) string { return s.p + "values/" + escape(name) }
func (s *Store) claimKey(name string) string { return s.p + "claims/" + escape(name) }
func (s *Store) handoffKey(name string) string {
	return s.p + "handoff/" + escape(name)
}
func (s *Store) releaseKey(id string) string { return s.p + "release/" + id }
