// Package replytext is what the crash and cluster harnesses share about
// the text of Palaver's replies: the answers the fake model gives to
// numbered questions, and how a reply's final note or status line is told
// apart from its answer on each platform.
package replytext

import (
	"regexp"
	"strings"
)

// Vocabulary makes answers: plain words that Markdown leaves as they are.
var Vocabulary = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa")

// Answer is the fake model's full answer to question n: its tag, then
// words-1 words chosen by n.
func Answer(tag string, n, words int) string {
	var b strings.Builder
	b.WriteString(tag)
	for i := 1; i < words; i++ {
		b.WriteString(" ")
		b.WriteString(Vocabulary[(n*7+i)%len(Vocabulary)])
	}
	return b.String()
}

// NotePattern matches the notes that finalise an answer Palaver could not
// finish: "⚠️ Interrupted: Palaver restarted. Use /retry …", "… is
// restarting …", "⚠️ Palaver restarted before answering this. Use /retry
// …".
var NotePattern = regexp.MustCompile(`^⚠️[^\n]*[Rr]estart[^\n]*/retry[^\n]*$`)

// SplitTelegram splits a Telegram reply's text into the answer shown and
// its final note or status line ("⏳ …"): a paragraph of its own under the
// answer, or the whole text. A text with neither is all content.
func SplitTelegram(text string) (content, note, status string) {
	last := text
	if i := strings.LastIndex(text, "\n\n"); i >= 0 {
		last, content = text[i+2:], text[:i]
	}
	switch {
	case NotePattern.MatchString(last):
		return content, last, ""
	case strings.HasPrefix(last, "⏳"):
		return content, "", last
	}
	return text, "", ""
}

// SplitDiscord splits a Discord reply's text the same way: there the note
// or status is its last line, in subtext ("-# ").
func SplitDiscord(text string) (content, note, status string) {
	line, rest := text, ""
	if i := strings.LastIndex(text, "\n"); i >= 0 {
		line, rest = text[i+1:], text[:i]
	}
	sub, ok := strings.CutPrefix(line, "-# ")
	switch {
	case ok && NotePattern.MatchString(sub):
		return rest, sub, ""
	case ok && strings.HasPrefix(sub, "⏳"):
		return rest, "", sub
	}
	return text, "", ""
}
