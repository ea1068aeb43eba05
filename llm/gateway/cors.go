package gateway

import (
	"log/slog"
	"net/http"
	"strings"
)

// corsPolicy decides which browser origins may call the API. Credentials
// (cookies) are never allowed: clients authenticate with a bearer token,
// which CORS treats as an ordinary request header.
type corsPolicy struct {
	any     bool
	origins map[string]bool
}

func newCORSPolicy(origins []string) corsPolicy {
	p := corsPolicy{origins: make(map[string]bool, len(origins))}
	for _, o := range origins {
		o = normalizeOrigin(o)
		if o == "*" {
			p.any = true
		} else if o != "" {
			p.origins[o] = true
		}
	}
	return p
}

func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
}

// annotate sets the CORS response headers for a request from origin, when
// the origin is allowed.
func (p corsPolicy) annotate(h http.Header, origin string) bool {
	h.Add("Vary", "Origin")
	switch {
	case p.any:
		h.Set("Access-Control-Allow-Origin", "*")
	case p.origins[normalizeOrigin(origin)]:
		h.Set("Access-Control-Allow-Origin", origin)
	default:
		return false
	}
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	return true
}

// preflight answers a CORS preflight request: 204 with the allowed
// methods and, echoed, the headers the browser asked for (OpenAI's
// JavaScript SDK sends x-stainless-* headers), or 403 for an origin that
// is not allowed. ServeHTTP has already set the origin headers.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	e := entryFrom(r)
	e.level = slog.LevelDebug // browsers send one before most requests
	h := w.Header()
	if h.Get("Access-Control-Allow-Origin") == "" {
		writeError(w, r, newError(http.StatusForbidden, typeInvalidRequest, "origin_not_allowed",
			"origin %q is not in gateway.cors_origins", r.Header.Get("Origin")))
		return
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if req := r.Header.Values("Access-Control-Request-Headers"); len(req) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(req, ", "))
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
