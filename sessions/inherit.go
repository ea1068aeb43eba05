package sessions

import (
	"context"
	"fmt"
	"reflect"
)

// Inherit gives the conversation child the settings of parent (model,
// system prompt, temperature, token limit, reasoning mode) when child has
// none of its own, as a Discord thread opened for a question takes its
// channel's. A child with settings, or a parent without, is left as it
// is. It costs two store reads and at most one write (SaveSettings).
//
// The copy is a snapshot: later changes to either conversation do not
// reach the other. It is not atomic with a settings change to child made
// at the same moment, so call it before anyone can talk in child (right
// after the platform created it).
func (m *Manager) Inherit(ctx context.Context, child, parent Key) error {
	c, err := m.store.Settings(ctx, child)
	if err != nil {
		return fmt.Errorf("sessions: inherit settings: %w", err)
	}
	if !reflect.ValueOf(c).IsZero() {
		return nil
	}
	p, err := m.store.Settings(ctx, parent)
	if err != nil {
		return fmt.Errorf("sessions: inherit settings: %w", err)
	}
	if reflect.ValueOf(p).IsZero() {
		return nil
	}
	if err := m.store.SaveSettings(ctx, child, p); err != nil {
		return fmt.Errorf("sessions: inherit settings: %w", err)
	}
	return nil
}
