package discordtest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Call is one REST request the fake served.
type Call struct {
	// Time is when the fake received the call, on its clock.
	Time time.Time
	// Method is the HTTP method; Route the matched route without the
	// "/api/v9" prefix ("/channels/{channel}/messages/{message}"); Path the
	// request path.
	Method string
	Route  string
	Path   string
	// ChannelID is the channel the call concerns, when it concerns one
	// (for interaction webhooks, the interaction's channel).
	ChannelID string
	// InteractionID is set for interaction callbacks and webhook calls.
	InteractionID string
	// Body is the request body; Status and Response the answer.
	Body     []byte
	Status   int
	Response []byte
	// Write is true for message creates and edits counted against the
	// channel's rate limit (whether or not the fake accepted them).
	Write bool
}

// Version is one visible state of a message.
type Version struct {
	Time       time.Time
	Content    string
	Embeds     json.RawMessage
	Components json.RawMessage
	Flags      int
}

// Message is a message as the fake holds it: its current state and every
// version users saw.
type Message struct {
	ID        string
	ChannelID string
	GuildID   string
	AuthorID  string
	// Type is Discord's message type: 0 default, 19 reply, 20 the response
	// to a slash command.
	Type       int
	Content    string
	Embeds     json.RawMessage // nil when none
	Components json.RawMessage // nil when none
	Flags      int
	// ReferenceID is the message this one replies to.
	ReferenceID string
	MentionIDs  []string
	// Attachments are the files of a user's message, with their ids and
	// URLs; Stickers its stickers.
	Attachments []Attachment
	Stickers    []Sticker
	// InteractionID is the interaction this message answers (the original
	// response or a follow-up).
	InteractionID string
	WebhookID     string
	Created       time.Time
	Edited        time.Time // zero when never edited
	Edits         int
	Deleted       bool
	// Versions are the message's states, oldest first: as created, then
	// after each edit.
	Versions []Version
}

// Message flags the fake uses (Discord's numbering).
const (
	FlagSuppressEmbeds = 1 << 2
	FlagEphemeral      = 1 << 6
	FlagLoading        = 1 << 7
	// FlagComponentsV2 (IS_COMPONENTS_V2) makes a message's components its
	// whole content: no content or embeds, text in text displays. Once
	// set, it cannot be removed from the message.
	FlagComponentsV2 = 1 << 15
)

// Text is what a reader sees of the message as text: its content, or for
// a Components V2 message the content of its text displays, depth first,
// joined by line breaks.
func (m Message) Text() string { return messageText(m.Content, m.Components, m.Flags) }

// Text is the version's text, as Message.Text.
func (v Version) Text() string { return messageText(v.Content, v.Components, v.Flags) }

func messageText(content string, components json.RawMessage, flags int) string {
	if flags&FlagComponentsV2 == 0 || len(components) == 0 {
		return content
	}
	var texts []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if t, _ := x["type"].(float64); t == typeTextDisplay {
				c, _ := x["content"].(string)
				texts = append(texts, c)
			}
			walk(x["components"])
		}
	}
	var v any
	if json.Unmarshal(components, &v) == nil {
		walk(v)
	}
	return strings.Join(texts, "\n")
}

// CustomIDs lists the custom_id of every component (buttons, selects) in
// the message, depth first.
func (m Message) CustomIDs() []string {
	var ids []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if id, ok := x["custom_id"].(string); ok {
				ids = append(ids, id)
			}
			walk(x["components"])
		}
	}
	if len(m.Components) > 0 {
		var v any
		if json.Unmarshal(m.Components, &v) == nil {
			walk(v)
		}
	}
	return ids
}

func (m *Message) clone() Message {
	c := *m
	c.MentionIDs = slices.Clone(m.MentionIDs)
	c.Attachments = slices.Clone(m.Attachments)
	c.Stickers = slices.Clone(m.Stickers)
	c.Versions = slices.Clone(m.Versions)
	return c
}

func (m *Message) snapshot(t time.Time) {
	m.Versions = append(m.Versions, Version{Time: t, Content: m.Content, Embeds: m.Embeds,
		Components: m.Components, Flags: m.Flags})
}

// Calls returns every REST call so far, in the order they finished.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Message returns a message by id.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return Message{}, false
	}
	return m.clone(), true
}

// Messages returns the messages of a channel (all channels when channelID
// is empty), deleted ones included, in creation order.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ms []Message
	for _, id := range s.msgOrder {
		if m := s.messages[id]; channelID == "" || m.ChannelID == channelID {
			ms = append(ms, m.clone())
		}
	}
	return ms
}

// wait calls check (without holding the lock) at once and again after
// every change to the fake's state, until it returns true or ctx ends.
// Predicates may therefore call the Server's methods.
func (s *Server) wait(ctx context.Context, check func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if check() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// WaitCall waits for a REST call matching pred (calls already made count)
// and returns the first one.
func (s *Server) WaitCall(ctx context.Context, pred func(Call) bool) (Call, error) {
	var got Call
	err := s.wait(ctx, func() bool {
		for _, c := range s.Calls() {
			if pred(c) {
				got = c
				return true
			}
		}
		return false
	})
	return got, err
}

// WaitMessage waits until some message satisfies pred and returns it
// (the oldest such message).
func (s *Server) WaitMessage(ctx context.Context, pred func(Message) bool) (Message, error) {
	var got Message
	err := s.wait(ctx, func() bool {
		for _, m := range s.Messages("") {
			if pred(m) {
				got = m
				return true
			}
		}
		return false
	})
	return got, err
}

// MaxWritesInWindow returns the largest number of accepted message creates
// and edits that any one channel received within any span of length w, and
// that channel. A test of "never more than 5 in 5 s" asserts n ≤ 5.
func (s *Server) MaxWritesInWindow(w time.Duration) (channelID string, n int) {
	s.mu.Lock()
	byChannel := map[string][]time.Time{}
	for _, c := range s.calls {
		if c.Write && c.Status/100 == 2 {
			byChannel[c.ChannelID] = append(byChannel[c.ChannelID], c.Time)
		}
	}
	s.mu.Unlock()
	for ch, ts := range byChannel {
		slices.SortFunc(ts, time.Time.Compare)
		lo := 0
		for hi := range ts {
			for ts[hi].Sub(ts[lo]) >= w {
				lo++
			}
			if hi-lo+1 > n {
				channelID, n = ch, hi-lo+1
			}
		}
	}
	return channelID, n
}
