package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
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
// 1), or anonymousKey when the server has no keys. ok is false when keys
// are set and the request has none of them. Every key is compared, in
// constant time, whatever matched.
func (kr keyring) identify(r *http.Request) (id string, ok bool) {
	if len(kr) == 0 {
		return anonymousKey, true
	}
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
// none of the configured ones.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, ok := s.keys.identify(r)
	if ok {
		entryFrom(r).key = id
		return id, true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="palaver"`)
	msg := "invalid API key: send one of the keys in gateway.api_keys as \"Authorization: Bearer KEY\""
	if r.Header.Get("Authorization") == "" {
		msg = "missing API key: send one of the keys in gateway.api_keys as \"Authorization: Bearer KEY\""
	}
	writeError(w, r, newError(http.StatusUnauthorized, typeAuthentication, "invalid_api_key", "%s", msg))
	return "", false
}
