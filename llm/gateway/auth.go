package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// anonymousKey names the clients of a server without keys in logs and
// limits.
const anonymousKey = "anonymous"

// keyring holds the SHA-256 digests of the API keys, so that every
// comparison is of 32 bytes whatever the lengths of the keys.
type keyring [][sha256.Size]byte

func newKeyring(keys []string) (keyring, error) {
	kr := make(keyring, 0, len(keys))
	for i, k := range keys {
		if strings.TrimSpace(k) == "" {
			return nil, errors.New("gateway: API key #" + strconv.Itoa(i+1) + " is empty")
		}
		kr = append(kr, sha256.Sum256([]byte(k)))
	}
	return kr, nil
}

// identify returns the name of the key a request carries ("key#2", from
// 1); ok is false when it has none of them. Every key is compared, in
// constant time, whatever matched.
func (kr keyring) identify(r *http.Request) (id string, ok bool) {
	token, found := bearer(r.Header.Get("Authorization"))
	if !found {
		return "", false
	}
	sum := sha256.Sum256([]byte(token))
	match := 0
	for i := range kr {
		eq := subtle.ConstantTimeCompare(sum[:], kr[i][:])
		match = subtle.ConstantTimeSelect(eq, i+1, match)
	}
	if match == 0 {
		return "", false
	}
	return "key#" + strconv.Itoa(match), true
}

// bearer extracts the token of an "Authorization: Bearer TOKEN" value.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authenticate identifies the request's key, answering 401 when it has
// none of the configured ones. With keys set, a client address refused for
// its failed authentications (see authGuard) gets 429 and Retry-After
// without its key being checked; the failure that gets it refused is
// logged, with the address, and the refused requests' own log lines go to
// the debug level, so that a storm of attempts costs a few log lines.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	e := entryFrom(r)
	if len(s.keys) == 0 {
		e.key = anonymousKey
		return anonymousKey, true
	}
	client, now := clientAddr(r), time.Now()
	if wait, refused := s.guard.refused(client, now); refused {
		e.client, e.level = client, slog.LevelDebug
		err := newError(http.StatusTooManyRequests, typeRateLimit, "too_many_failed_authentications",
			"too many failed authentications from your address; retry in %s", wait)
		err.retryAfter = wait
		writeError(w, r, err)
		return "", false
	}
	if id, ok := s.keys.identify(r); ok {
		e.key = id
		return id, true
	}
	e.client = client
	if s.guard.fail(client, now) {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "too many failed authentications; refusing the client",
			slog.String("client", client), slog.Int("failures", AuthMaxFailures), slog.Duration("for", AuthWindow))
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="palaver"`)
	msg := "invalid API key: send one of the keys in gateway.api_keys as \"Authorization: Bearer KEY\""
	if r.Header.Get("Authorization") == "" {
		msg = "missing API key: send one of the keys in gateway.api_keys as \"Authorization: Bearer KEY\""
	}
	writeError(w, r, newError(http.StatusUnauthorized, typeAuthentication, "invalid_api_key", "%s", msg))
	return "", false
}
