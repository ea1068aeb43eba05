package sessions

import (
	"context"
	"errors"
)

// ErrNotYours refuses a Retry button pressed by someone who may not use it.
var ErrNotYours = errors.New("not the asker")

// Regenerate answers the conversation's latest question again, replacing
// its answer in the history: what a Retry button under an answer does.
// question is the platform id of the question the button belongs to
// (Entry.MsgID; "" skips the check); a button under an older answer is
// refused, since only the latest answer can be replaced. Only the person
// who asked, or an admin (admin true), may regenerate in a shared
// conversation; in a private one the asker is the only person there.
func (m *Manager) Regenerate(ctx context.Context, key Key, question string, by Author, admin bool, reply Reply) (*Turn, error) {
	last, err := m.latestQuestion(ctx, key)
	if err != nil {
		return nil, err
	}
	switch {
	case last == nil:
		return nil, userErr(ErrNothingToRedo, "There is no message to answer again here.")
	case question != "" && last.MsgID != question:
		return nil, userErr(ErrNothingToRedo, "Only the latest answer can be answered again; send that question again instead.")
	case !admin && last.AuthorID != "" && by.ID != last.AuthorID:
		return nil, userErr(ErrNotYours, "Only the person who asked (or an admin) can have this answered again.")
	}
	return m.Retry(ctx, key, reply)
}
