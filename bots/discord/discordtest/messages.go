package discordtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"unicode/utf8"
)

// Content and embed limits Discord enforces.
const (
	MaxContent          = 2000
	MaxEmbeds           = 10
	MaxEmbedTitle       = 256
	MaxEmbedDescription = 4096
	MaxEmbedFields      = 25
	MaxEmbedFieldName   = 256
	MaxEmbedFieldValue  = 1024
	MaxEmbedFooter      = 2048
	MaxEmbedAuthor      = 256
	MaxEmbedTotal       = 6000
	MaxActionRows       = 5
	MaxRowComponents    = 5
	MaxCustomID         = 100
	MaxButtonLabel      = 80
)

// Message types the fake produces.
const (
	messageDefault   = 0
	messageReply     = 19
	messageChatInput = 20
)

// Mention is the text that mentions a user in message content.
func Mention(userID string) string { return "<@" + userID + ">" }

var mentionRE = regexp.MustCompile(`<@!?(\d+)>`)

// messagePayload is the body of a message create or edit. Raw fields keep
// "absent" apart from "null" and "[]".
type messagePayload struct {
	Content          json.RawMessage `json:"content"`
	Embeds           json.RawMessage `json:"embeds"`
	Components       json.RawMessage `json:"components"`
	Flags            *int            `json:"flags"`
	MessageReference *struct {
		MessageID       string `json:"message_id"`
		FailIfNotExists *bool  `json:"fail_if_not_exists"`
	} `json:"message_reference"`
}

// formErrors builds the "errors" object of a 50035 answer.
type formErrors map[string]any

func (f formErrors) add(code, msg string, path ...string) {
	m := map[string]any(f)
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	errs, _ := m["_errors"].([]any)
	m["_errors"] = append(errs, map[string]string{"code": code, "message": msg})
}

func tooLong(n int) string { return fmt.Sprintf("Must be %d or fewer in length.", n) }

// isEmptyJSON reports whether raw is absent, null or an empty array.
func isEmptyJSON(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null" || string(t) == "[]"
}

// setsV2 reports whether the payload sets FlagComponentsV2.
func (p *messagePayload) setsV2() bool { return p.Flags != nil && *p.Flags&FlagComponentsV2 != 0 }

// validate checks the payload's fields against Discord's limits, as a new
// message (current nil) or an edit of current. A message with
// FlagComponentsV2, or an edit setting it, takes components only: content
// or embeds are refused (an edit setting the flag must null those the
// message has), and its components are checked as Components V2. With
// Options.RefuseComponentsV2 the flag itself is refused.
func (s *Server) validate(p *messagePayload, current *Message) formErrors {
	errs := formErrors{}
	v2 := p.setsV2() || current != nil && current.Flags&FlagComponentsV2 != 0
	if p.setsV2() && s.opts.RefuseComponentsV2 {
		errs.add("BASE_TYPE_CHOICES", "Invalid message flags.", "flags")
		return errs
	}
	hasContent := len(p.Content) > 0 && string(p.Content) != "null"
	if hasContent {
		var c string
		if json.Unmarshal(p.Content, &c) != nil {
			errs.add("STRING_TYPE_CONVERT", "Could not interpret value as string.", "content")
		} else if utf8.RuneCountInString(c) > MaxContent {
			errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxContent), "content")
		} else if v2 && c != "" {
			errs.add(legacyFieldsV2, "The 'content' field cannot be used when using MessageFlags.IS_COMPONENTS_V2", "content")
		}
	}
	if v2 && current != nil && current.Flags&FlagComponentsV2 == 0 {
		// Setting the flag on a message made without it: its content and
		// embeds must be nulled in the same edit.
		if current.Content != "" && len(p.Content) == 0 {
			errs.add(legacyFieldsV2, "The 'content' field cannot be used when using MessageFlags.IS_COMPONENTS_V2", "content")
		}
		if current.Embeds != nil && len(p.Embeds) == 0 {
			errs.add(legacyFieldsV2, "The 'embeds' field cannot be used when using MessageFlags.IS_COMPONENTS_V2", "embeds")
		}
	}
	if !isEmptyJSON(p.Embeds) {
		if v2 {
			errs.add(legacyFieldsV2, "The 'embeds' field cannot be used when using MessageFlags.IS_COMPONENTS_V2", "embeds")
		} else {
			validateEmbeds(p.Embeds, errs)
		}
	}
	if !isEmptyJSON(p.Components) {
		if v2 {
			validateComponentsV2(p.Components, errs)
		} else {
			validateComponents(p.Components, errs)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func validateEmbeds(raw json.RawMessage, errs formErrors) {
	type text struct {
		Text string `json:"text"`
		Name string `json:"name"`
	}
	var embeds []struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		Fields      []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"fields"`
		Footer *text `json:"footer"`
		Author *text `json:"author"`
	}
	if err := json.Unmarshal(raw, &embeds); err != nil {
		errs.add("MODEL_TYPE_CONVERT", "Only iterables may be used in a ListType", "embeds")
		return
	}
	if len(embeds) > MaxEmbeds {
		errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxEmbeds), "embeds")
		return
	}
	total := 0
	n := utf8.RuneCountInString
	check := func(s string, limit int, path ...string) {
		total += n(s)
		if n(s) > limit {
			errs.add("BASE_TYPE_MAX_LENGTH", tooLong(limit), path...)
		}
	}
	for i, e := range embeds {
		idx := fmt.Sprint(i)
		check(e.Title, MaxEmbedTitle, "embeds", idx, "title")
		check(e.Description, MaxEmbedDescription, "embeds", idx, "description")
		if len(e.Fields) > MaxEmbedFields {
			errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxEmbedFields), "embeds", idx, "fields")
		}
		for j, f := range e.Fields {
			check(f.Name, MaxEmbedFieldName, "embeds", idx, "fields", fmt.Sprint(j), "name")
			check(f.Value, MaxEmbedFieldValue, "embeds", idx, "fields", fmt.Sprint(j), "value")
		}
		if e.Footer != nil {
			check(e.Footer.Text, MaxEmbedFooter, "embeds", idx, "footer", "text")
		}
		if e.Author != nil {
			check(e.Author.Name, MaxEmbedAuthor, "embeds", idx, "author", "name")
		}
	}
	if total > MaxEmbedTotal {
		errs.add("MAX_EMBED_SIZE_EXCEEDED", fmt.Sprintf("Embed size exceeds maximum size of %d", MaxEmbedTotal), "embeds")
	}
}

func validateComponents(raw json.RawMessage, errs formErrors) {
	type component struct {
		Type       int         `json:"type"`
		CustomID   string      `json:"custom_id"`
		Label      string      `json:"label"`
		Style      int         `json:"style"`
		URL        string      `json:"url"`
		Components []component `json:"components"`
	}
	var rows []component
	if err := json.Unmarshal(raw, &rows); err != nil {
		errs.add("MODEL_TYPE_CONVERT", "Only iterables may be used in a ListType", "components")
		return
	}
	if len(rows) > MaxActionRows {
		errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxActionRows), "components")
		return
	}
	seen := map[string]bool{}
	for i, row := range rows {
		idx := fmt.Sprint(i)
		if row.Type != 1 {
			errs.add("UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (1,).", "components", idx, "type")
			continue
		}
		if len(row.Components) == 0 || len(row.Components) > MaxRowComponents {
			errs.add("BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between 1 and %d in length.", MaxRowComponents), "components", idx, "components")
			continue
		}
		for j, c := range row.Components {
			path := []string{"components", idx, "components", fmt.Sprint(j)}
			if c.Type == 2 && c.Style == 5 {
				if c.URL == "" {
					errs.add("BASE_TYPE_REQUIRED", "This field is required", append(path, "url")...)
				}
			} else if c.CustomID == "" {
				errs.add("BASE_TYPE_REQUIRED", "This field is required", append(path, "custom_id")...)
			}
			if utf8.RuneCountInString(c.CustomID) > MaxCustomID {
				errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxCustomID), append(path, "custom_id")...)
			}
			if utf8.RuneCountInString(c.Label) > MaxButtonLabel {
				errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxButtonLabel), append(path, "label")...)
			}
			if c.CustomID != "" {
				if seen[c.CustomID] {
					errs.add("COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated", append(path, "custom_id")...)
				}
				seen[c.CustomID] = true
			}
		}
	}
}

// normalize returns nil for an absent, null or empty JSON array.
func normalize(raw json.RawMessage) json.RawMessage {
	if isEmptyJSON(raw) {
		return nil
	}
	return slices.Clone(raw)
}

// applyLocked applies the payload's present fields to m; allowedFlags are
// the flag bits the caller may set (or clear). FlagComponentsV2 may always
// be set and is never cleared.
func (s *Server) applyLocked(m *Message, p *messagePayload, allowedFlags int) {
	v2 := m.Flags & FlagComponentsV2
	defer func() { m.Flags |= v2 }()
	allowedFlags |= FlagComponentsV2 &^ v2
	if len(p.Content) > 0 {
		var c string
		json.Unmarshal(p.Content, &c) // null leaves c empty
		m.Content = c
		m.MentionIDs = s.mentionsLocked(c)
	}
	if len(p.Embeds) > 0 {
		m.Embeds = normalize(p.Embeds)
	}
	if len(p.Components) > 0 {
		m.Components = normalize(p.Components)
	}
	if p.Flags != nil {
		m.Flags = m.Flags&^allowedFlags | *p.Flags&allowedFlags
	}
}

func (m *Message) empty() bool {
	return m.Content == "" && m.Embeds == nil && m.Components == nil
}

// mentionsLocked lists the known users mentioned in content, once each.
func (s *Server) mentionsLocked(content string) []string {
	var ids []string
	for _, sm := range mentionRE.FindAllStringSubmatch(content, -1) {
		if _, ok := s.users[sm[1]]; ok && !slices.Contains(ids, sm[1]) {
			ids = append(ids, sm[1])
		}
	}
	return ids
}

// addMessageLocked stores a new message and records its first version.
func (s *Server) addMessageLocked(m *Message) {
	m.ID = s.newIDLocked()
	m.Created = s.nowLocked()
	m.snapshot(m.Created)
	s.messages[m.ID] = m
	s.msgOrder = append(s.msgOrder, m.ID)
	s.notifyLocked()
}

// editLocked records an edit of m made at the current time.
func (s *Server) editLocked(m *Message) {
	m.Edited = s.nowLocked()
	m.Edits++
	m.snapshot(m.Edited)
	s.notifyLocked()
}

// wireMessageLocked renders m as Discord sends it.
func (s *Server) wireMessageLocked(m *Message, withReferenced bool) *wireMessage {
	w := &wireMessage{
		ID: m.ID, Type: m.Type, ChannelID: m.ChannelID, GuildID: m.GuildID,
		Content: m.Content, Timestamp: timestamp(m.Created),
		Mentions: []*wireUser{}, MentionRoles: []string{}, Attachments: []*wireAttachment{},
		Embeds: m.Embeds, Components: m.Components, Flags: m.Flags, WebhookID: m.WebhookID,
	}
	for _, a := range m.Attachments {
		w.Attachments = append(w.Attachments, s.attachments[a.ID].wire())
	}
	for _, st := range m.Stickers {
		w.StickerItems = append(w.StickerItems, wireStickerItem(st))
	}
	if w.Embeds == nil {
		w.Embeds = json.RawMessage("[]")
	}
	if w.Components == nil {
		w.Components = json.RawMessage("[]")
	}
	if !m.Edited.IsZero() {
		t := timestamp(m.Edited)
		w.EditedTimestamp = &t
	}
	if u := s.users[m.AuthorID]; u != nil {
		w.Author = u.wire()
	}
	if m.InteractionID != "" {
		w.ApplicationID = s.appID
	}
	for _, id := range m.MentionIDs {
		w.Mentions = append(w.Mentions, s.users[id].wire())
	}
	if g := s.guilds[m.GuildID]; g != nil && m.WebhookID == "" {
		w.Member = s.wireMemberLocked(g, m.AuthorID, false, false)
	}
	if m.ReferenceID != "" {
		w.MessageReference = &wireReference{MessageID: m.ReferenceID, ChannelID: m.ChannelID, GuildID: m.GuildID}
		if ref := s.messages[m.ReferenceID]; withReferenced && ref != nil && !ref.Deleted {
			w.ReferencedMessage = s.wireMessageLocked(ref, false)
		}
	}
	return w
}

// echoLocked prepares the gateway event Discord sends for a change to one
// of the bot's messages; call the returned function after unlocking.
func (s *Server) echoLocked(t string, m *Message) func() {
	if s.opts.NoEcho || m.Flags&FlagEphemeral != 0 {
		return func() {}
	}
	if t == "MESSAGE_DELETE" {
		d := map[string]string{"id": m.ID, "channel_id": m.ChannelID}
		if m.GuildID != "" {
			d["guild_id"] = m.GuildID
		}
		return func() { s.dispatch(m.GuildID, t, d) }
	}
	w := s.wireMessageLocked(m, true)
	return func() { s.dispatchMessage(t, w, true) }
}

func (s *Server) getMessage(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[rq.r.PathValue("message")]
	rq.call.ChannelID = rq.r.PathValue("channel")
	if !ok || m.Deleted || m.ChannelID != rq.call.ChannelID || m.Flags&FlagEphemeral != 0 {
		rq.fail(http.StatusNotFound, 10008, "Unknown Message", nil)
		return
	}
	rq.writeJSON(http.StatusOK, s.wireMessageLocked(m, true))
}

// createMessage serves POST /channels/{channel}/messages.
func (s *Server) createMessage(rq *request) {
	var p messagePayload
	if !rq.decode(&p) {
		return
	}
	s.mu.Lock()
	chID := rq.r.PathValue("channel")
	rq.call.ChannelID = chID
	ch, ok := s.channels[chID]
	if !ok {
		s.mu.Unlock()
		rq.fail(http.StatusNotFound, 10003, "Unknown Channel", nil)
		return
	}
	if errs := s.validate(&p, nil); errs != nil {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", errs)
		return
	}
	m := &Message{ChannelID: ch.ID, GuildID: ch.GuildID, AuthorID: s.bot.ID, Type: messageDefault}
	s.applyLocked(m, &p, FlagSuppressEmbeds|1<<12)
	if m.empty() {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 50006, "Cannot send an empty message", nil)
		return
	}
	if ref := p.MessageReference; ref != nil && ref.MessageID != "" {
		target, ok := s.messages[ref.MessageID]
		if !ok || target.Deleted || target.ChannelID != ch.ID {
			if ref.FailIfNotExists == nil || *ref.FailIfNotExists {
				s.mu.Unlock()
				errs := formErrors{}
				errs.add("MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message", "message_reference")
				rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", errs)
				return
			}
		} else {
			m.Type = messageReply
			m.ReferenceID = target.ID
		}
	}
	if !s.admitWriteLocked(rq, ch.ID, "") {
		s.mu.Unlock()
		return
	}
	s.addMessageLocked(m)
	rq.writeJSON(http.StatusOK, s.wireMessageLocked(m, true))
	echo := s.echoLocked("MESSAGE_CREATE", m)
	s.mu.Unlock()
	echo()
}

// editMessage serves PATCH /channels/{channel}/messages/{message}.
func (s *Server) editMessage(rq *request) {
	var p messagePayload
	if !rq.decode(&p) {
		return
	}
	s.mu.Lock()
	chID := rq.r.PathValue("channel")
	rq.call.ChannelID = chID
	m, ok := s.messages[rq.r.PathValue("message")]
	if !ok || m.Deleted || m.ChannelID != chID || m.Flags&FlagEphemeral != 0 {
		s.mu.Unlock()
		rq.fail(http.StatusNotFound, 10008, "Unknown Message", nil)
		return
	}
	if m.AuthorID != s.bot.ID || m.WebhookID != "" {
		s.mu.Unlock()
		rq.fail(http.StatusForbidden, 50005, "Cannot edit a message authored by another user", nil)
		return
	}
	s.editWithPayloadLocked(rq, m, &p, "")
}

// editWithPayloadLocked validates and applies an edit to m, answering rq;
// it unlocks s.mu.
func (s *Server) editWithPayloadLocked(rq *request, m *Message, p *messagePayload, hookToken string) {
	if errs := s.validate(p, m); errs != nil {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", errs)
		return
	}
	next := *m
	s.applyLocked(&next, p, FlagSuppressEmbeds)
	next.Flags &^= FlagLoading
	if next.empty() {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 50006, "Cannot send an empty message", nil)
		return
	}
	if !s.admitWriteLocked(rq, m.ChannelID, hookToken) {
		s.mu.Unlock()
		return
	}
	*m = next
	s.editLocked(m)
	rq.writeJSON(http.StatusOK, s.wireMessageLocked(m, true))
	echo := s.echoLocked("MESSAGE_UPDATE", m)
	s.mu.Unlock()
	echo()
}

// deleteMessage serves DELETE /channels/{channel}/messages/{message}.
func (s *Server) deleteMessage(rq *request) {
	s.mu.Lock()
	chID := rq.r.PathValue("channel")
	rq.call.ChannelID = chID
	m, ok := s.messages[rq.r.PathValue("message")]
	if !ok || m.Deleted || m.ChannelID != chID || m.Flags&FlagEphemeral != 0 {
		s.mu.Unlock()
		rq.fail(http.StatusNotFound, 10008, "Unknown Message", nil)
		return
	}
	if m.AuthorID != s.bot.ID {
		if g := s.guilds[m.GuildID]; g == nil || g.permissions(s.bot.ID)&PermManageMessages == 0 {
			s.mu.Unlock()
			rq.fail(http.StatusForbidden, 50013, "Missing Permissions", nil)
			return
		}
	}
	m.Deleted = true
	s.notifyLocked()
	echo := s.echoLocked("MESSAGE_DELETE", m)
	s.mu.Unlock()
	rq.noContent()
	echo()
}

// typing serves POST /channels/{channel}/typing.
func (s *Server) typing(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chID := rq.r.PathValue("channel")
	rq.call.ChannelID = chID
	if _, ok := s.channels[chID]; !ok {
		rq.fail(http.StatusNotFound, 10003, "Unknown Channel", nil)
		return
	}
	rq.noContent()
}

// UserMessage is a message a user posts, for SendMessage.
type UserMessage struct {
	ChannelID string
	AuthorID  string
	// Content may mention users with Mention(id); Discord fills the
	// message's mentions from it.
	Content string
	// ReplyTo is the id of the message this one replies to.
	ReplyTo string
	// NoReplyPing turns off the mention of the replied-to author that
	// Discord clients add to replies by default.
	NoReplyPing bool
	// Attachments are the message's files, at most MaxAttachments.
	Attachments []Attachment
	// Stickers are the message's stickers, at most MaxStickers.
	Stickers []Sticker
	// Voice makes the message a voice message (FlagVoiceMessage): no
	// content and one audio/ogg attachment with DurationSecs and Waveform.
	Voice bool
}

// check validates what Discord validates of a user's message other than
// its place and author.
func (um *UserMessage) check() error {
	if utf8.RuneCountInString(um.Content) > MaxContent {
		return fmt.Errorf("discordtest: content is longer than %d characters", MaxContent)
	}
	if um.Content == "" && len(um.Attachments) == 0 && len(um.Stickers) == 0 {
		return errors.New("discordtest: a message needs content, attachments or stickers")
	}
	if len(um.Stickers) > MaxStickers {
		return fmt.Errorf("discordtest: %d stickers; Discord allows %d per message", len(um.Stickers), MaxStickers)
	}
	if err := checkAttachments(um.Attachments); err != nil {
		return err
	}
	if um.Voice {
		if um.Content != "" || len(um.Attachments) != 1 {
			return errors.New("discordtest: a voice message has no content and exactly one attachment")
		}
		if a := um.Attachments[0]; a.ContentType != "audio/ogg" || a.DurationSecs <= 0 || a.Waveform == "" {
			return errors.New("discordtest: a voice message's attachment is audio/ogg with duration_secs and a waveform")
		}
	}
	return nil
}

// SendMessage posts a user's message and dispatches MESSAGE_CREATE to the
// gateway sessions whose intents cover it. The author must be a member of
// the channel's guild, or the recipient of the DM.
func (s *Server) SendMessage(um UserMessage) (Message, error) {
	s.mu.Lock()
	ch, ok := s.channels[um.ChannelID]
	if !ok {
		s.mu.Unlock()
		return Message{}, fmt.Errorf("discordtest: unknown channel %s", um.ChannelID)
	}
	if _, ok := s.users[um.AuthorID]; !ok {
		s.mu.Unlock()
		return Message{}, fmt.Errorf("discordtest: unknown user %s", um.AuthorID)
	}
	if ch.Type == ChannelDM && ch.RecipientID != um.AuthorID || ch.Type == ChannelGroupDM && !slices.Contains(ch.Recipients, um.AuthorID) {
		s.mu.Unlock()
		return Message{}, fmt.Errorf("discordtest: user %s is not in DM %s", um.AuthorID, ch.ID)
	}
	if g := s.guilds[ch.GuildID]; g != nil && g.members[um.AuthorID] == nil {
		s.mu.Unlock()
		return Message{}, fmt.Errorf("discordtest: user %s is not a member of guild %s", um.AuthorID, g.ID)
	}
	if err := um.check(); err != nil {
		s.mu.Unlock()
		return Message{}, err
	}
	m := &Message{ChannelID: ch.ID, GuildID: ch.GuildID, AuthorID: um.AuthorID, Type: messageDefault,
		Content: um.Content, MentionIDs: s.mentionsLocked(um.Content)}
	if um.Voice {
		m.Flags |= FlagVoiceMessage
	}
	for _, a := range um.Attachments {
		m.Attachments = append(m.Attachments, s.addAttachmentLocked(a, ch.ID, false))
	}
	for _, st := range um.Stickers {
		if st.ID == "" {
			st.ID = s.newIDLocked()
		}
		if st.FormatType == 0 {
			st.FormatType = 1
		}
		m.Stickers = append(m.Stickers, st)
	}
	if um.ReplyTo != "" {
		ref, ok := s.messages[um.ReplyTo]
		if !ok || ref.Deleted || ref.ChannelID != ch.ID {
			s.mu.Unlock()
			return Message{}, fmt.Errorf("discordtest: no message %s in channel %s", um.ReplyTo, ch.ID)
		}
		m.Type = messageReply
		m.ReferenceID = ref.ID
		if !um.NoReplyPing && !slices.Contains(m.MentionIDs, ref.AuthorID) {
			m.MentionIDs = append(m.MentionIDs, ref.AuthorID)
		}
	}
	s.addMessageLocked(m)
	w := s.wireMessageLocked(m, true)
	out := m.clone()
	sees := s.botSeesLocked(ch)
	s.mu.Unlock()
	if sees {
		s.dispatchMessage("MESSAGE_CREATE", w, false)
	}
	return out, nil
}

// SetComponents replaces a message's components with raw (a JSON array),
// as if its author had last sent them, without an event: tests use it to
// leave a button behind. The components are validated as the message's
// kind (Components V2 or not) requires.
func (s *Server) SetComponents(messageID, raw string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[messageID]
	if !ok || m.Deleted {
		return fmt.Errorf("discordtest: unknown message %s", messageID)
	}
	p := messagePayload{Components: json.RawMessage(raw)}
	if errs := s.validate(&p, m); errs != nil {
		b, _ := json.Marshal(errs)
		return fmt.Errorf("discordtest: invalid components: %s", b)
	}
	m.Components = normalize(p.Components)
	s.editLocked(m)
	return nil
}
