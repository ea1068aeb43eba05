package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/palaver-bot/palaver/llm/attach"
	"github.com/palaver-bot/palaver/sessions"
)

// cdnHosts are the hosts of Discord's attachment links: url and
// proxy_url.
var cdnHosts = []string{"cdn.discordapp.com", "media.discordapp.net"}

// ErrLinkExpired is the cause, inside a *sessions.UserError, of a download
// refused because Discord's CDN no longer serves the link: attachment
// links are signed and expire after about a day.
var ErrLinkExpired = errors.New("attachment link expired")

// linkExpired is what the sender of a file whose link expired is told.
const linkExpired = "The attachment link has expired; send the file again."

// Fetch downloads an attachment of a Discord message (sessions.Fetcher;
// New registers the Bot with the Manager). Attachment.Ref is the file's
// CDN URL as Discord gave it, used unchanged; a URL on another host than
// Discord's CDN (or, with Options.APIBase, that server's own host, which
// serves the files of a self-hosted or fake Discord) is refused.
//
// The request is a plain GET through the Bot's HTTP transport without the
// bot token: the CDN needs no authorization, and the token never goes
// there. A file declared larger than limit (a limit of 0 or less means
// attach.DefaultMaxFileBytes) is refused before any request, and one
// whose download passes limit as soon as it does, with a
// *attach.TooLargeError. The download must end within
// attach.DefaultFetchTimeout and ctx. A link the CDN no longer serves
// (404, 403 or 410: it expired) gives a *sessions.UserError wrapping
// ErrLinkExpired that tells the sender to send the file again.
func (b *Bot) Fetch(ctx context.Context, a sessions.Attachment, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = attach.DefaultMaxFileBytes
	}
	if a.Size > limit {
		return nil, fmt.Errorf("discord: fetch %q: %w", a.Name, &attach.TooLargeError{Size: a.Size, Limit: limit})
	}
	if !cdnURL(a.Ref, b.apiBaseURL) {
		return nil, fmt.Errorf("discord: fetch %q: not a Discord attachment link", a.Name)
	}
	in, err := attach.Fetch(ctx, &http.Client{Transport: b.s.Client.Transport}, a.Ref, attach.Limits{MaxFileBytes: limit})
	var se *attach.StatusError
	switch {
	case err == nil:
		return in.Data, nil
	case errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusForbidden || se.Code == http.StatusGone):
		return nil, fmt.Errorf("discord: fetch %q: status %d: %w", a.Name, se.Code,
			&sessions.UserError{Err: ErrLinkExpired, Msg: linkExpired})
	default:
		return nil, fmt.Errorf("discord: fetch %q: %w", a.Name, err)
	}
}

// cdnURL reports whether ref is an attachment link the Bot downloads: an
// https URL on Discord's CDN, or a URL on apiBase's scheme and host (nil
// for the real Discord).
func cdnURL(ref string, apiBase *url.URL) bool {
	u, err := url.Parse(ref)
	if err != nil || u.User != nil {
		return false
	}
	if apiBase != nil && u.Scheme == apiBase.Scheme && strings.EqualFold(u.Host, apiBase.Host) {
		return true
	}
	if u.Scheme != "https" || u.Port() != "" {
		return false
	}
	for _, h := range cdnHosts {
		if strings.EqualFold(u.Hostname(), h) {
			return true
		}
	}
	return false
}
