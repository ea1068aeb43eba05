package telegram

import (
	"fmt"
	"strings"
)

// The answer formats of Options.Format (telegram.format).
const (
	// formatAuto shows answers as rich messages while the Bot API server
	// knows them, and as HTML once it answered "method not found".
	formatAuto = "auto"
	// formatRich always tries rich messages first.
	formatRich = "rich"
	// formatHTML always shows answers as Telegram HTML messages.
	formatHTML = "html"
)

// parseFormat checks an Options.Format value; "" is formatAuto.
func parseFormat(s string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "":
		return formatAuto, nil
	case formatAuto, formatRich, formatHTML:
		return f, nil
	}
	return "", fmt.Errorf("telegram: telegram.format %q: want auto, rich or html", s)
}

// richOn reports whether answers go as rich messages now.
func (b *Bot) richOn() bool {
	switch b.format {
	case formatHTML:
		return false
	case formatRich:
		return true
	}
	return !b.richOff.Load()
}

// richMissing notes that the Bot API server does not know the rich
// methods (err): with format auto, answers go as HTML from now on. It is
// logged once.
func (b *Bot) richMissing(err error) {
	if b.richOff.CompareAndSwap(false, true) {
		b.log.Warn("the Bot API server does not know rich messages (Bot API 10.1); showing answers as HTML from now on", "error", err)
	}
}

// drafting reports whether answers in private chats stream as drafts.
func (b *Bot) drafting() bool { return b.opts.Drafts && !b.draftsOff.Load() }

// refuseDrafts turns drafts off for the process, after Telegram refused
// one with err; it is logged once.
func (b *Bot) refuseDrafts(err error) {
	if b.draftsOff.CompareAndSwap(false, true) {
		b.log.Warn("drafts refused; streaming by editing messages instead", "error", err)
	}
}
