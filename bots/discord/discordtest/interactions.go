package discordtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// Interaction types (Discord's numbering).
const (
	InteractionCommand      = 2
	InteractionComponent    = 3
	InteractionAutocomplete = 4
)

// Interaction callback types (Discord's numbering).
const (
	ResponseMessage         = 4
	ResponseDeferredMessage = 5
	ResponseDeferredUpdate  = 6
	ResponseUpdateMessage   = 7
	ResponseAutocomplete    = 8
	ResponseModal           = 9
)

// Application command option types (Discord's numbering).
const (
	OptionSubCommand      = 1
	OptionSubCommandGroup = 2
	OptionString          = 3
	OptionInteger         = 4
	OptionBoolean         = 5
	OptionNumber          = 10
)

// MaxChoices is the most autocomplete choices a response may carry.
const MaxChoices = 25

// MaxUserInstallFollowups is the most follow-up messages an interaction
// authorized by a user install alone may have ("Apps are limited to 5
// followup messages per interaction if it was initiated from a
// user-installed app and isn't installed in the server"). Discord's error
// for one more is 40094; its HTTP status is not documented, the fake's is
// 400.
const MaxUserInstallFollowups = 5

// Option is an option of a slash command as a user filled it in.
type Option struct {
	Name string
	// Type is the option type; zero infers it from Value (string,
	// integer, bool, float64, Attachment).
	Type int
	// Value is the option's value. An Attachment is uploaded: the option
	// carries its id and the interaction's resolved.attachments the file.
	Value   any
	Focused bool
	Options []Option
}

// Choice is one autocomplete suggestion the bot answered.
type Choice struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Interaction identifies an interaction the fake dispatched.
type Interaction struct {
	ID        string
	Token     string
	Type      int
	ChannelID string
	GuildID   string
	UserID    string
	// Attachments are the files of attachment options, with their ids and
	// URLs.
	Attachments []Attachment
	// Owners are the interaction's authorizing_integration_owners
	// (InstallGuild → guild id or "0", InstallUser → user id) and Context
	// its interaction context (ContextGuild, ContextBotDM,
	// ContextPrivateChannel).
	Owners  map[int]string
	Context int
}

// InteractionState is what the bot did with an interaction.
type InteractionState struct {
	Interaction
	// ResponseType is the callback type of the first response, 0 before it.
	ResponseType int
	// OriginalID is the message @original refers to, once there is one.
	OriginalID string
	// FollowupIDs are the follow-up messages, oldest first.
	FollowupIDs []string
	Created     time.Time
}

type interaction struct {
	Interaction
	owners       map[int]string // authorizing_integration_owners
	created      time.Time
	responseType int
	originalID   string
	sourceID     string // the message of a component interaction
	followups    []string
	choices      chan []Choice // autocomplete answers, buffered 1
}

func (it *interaction) state() InteractionState {
	return InteractionState{Interaction: it.Interaction, ResponseType: it.responseType,
		OriginalID: it.originalID, FollowupIDs: slices.Clone(it.followups), Created: it.created}
}

// InteractionState returns the state of an interaction by id.
func (s *Server) InteractionState(id string) (InteractionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.interactions[id]
	if !ok {
		return InteractionState{}, false
	}
	return it.state(), true
}

// WaitInteraction waits until the interaction's state satisfies pred.
func (s *Server) WaitInteraction(ctx context.Context, id string, pred func(InteractionState) bool) (InteractionState, error) {
	var got InteractionState
	err := s.wait(ctx, func() bool {
		st, ok := s.InteractionState(id)
		if ok && pred(st) {
			got = st
			return true
		}
		return false
	})
	return got, err
}

// wireOptions renders options as Discord sends them; upload stores the
// file of an attachment option and returns its id.
func wireOptions(opts []Option, upload func(Attachment) string) ([]*wireOption, error) {
	var out []*wireOption
	for _, o := range opts {
		w := &wireOption{Name: o.Name, Type: o.Type, Value: o.Value, Focused: o.Focused}
		if w.Type == 0 {
			if w.Type = inferType(o.Value); w.Type == 0 {
				return nil, fmt.Errorf("discordtest: option %q: cannot infer type of %T", o.Name, o.Value)
			}
		}
		if a, ok := o.Value.(Attachment); ok {
			if w.Type != OptionAttachment {
				return nil, fmt.Errorf("discordtest: option %q: an Attachment value needs type %d", o.Name, OptionAttachment)
			}
			if err := checkAttachments([]Attachment{a}); err != nil {
				return nil, err
			}
			w.Value = upload(a)
		}
		sub, err := wireOptions(o.Options, upload)
		if err != nil {
			return nil, err
		}
		w.Options = sub
		out = append(out, w)
	}
	return out, nil
}

func newToken(id string) string {
	var b [48]byte
	rand.Read(b[:])
	return "aW50ZXJhY3Rpb246" + id + base64.RawURLEncoding.EncodeToString(b[:])
}

// userAppPermissions is app_permissions where the app is reached by a
// user install alone. Discord documents ATTACH_FILES | EMBED_LINKS |
// MENTION_EVERYONE for (group) DMs with other users; the fake sends the
// same in guilds the bot is not in, for which Discord documents no value.
const userAppPermissions = PermAttachFiles | PermEmbedLinks | PermMentionEveryone

// installsLocked are the installations of the app that reach userID in
// channel ch, as authorizing_integration_owners (installation context →
// guild id, "0" for the bot's DM, or the authorizing user's id), and the
// interaction context there. It fails when the user is not in the channel.
func (s *Server) installsLocked(ch *Channel, userID string) (map[int]string, int, error) {
	if _, ok := s.users[userID]; !ok {
		return nil, 0, fmt.Errorf("discordtest: unknown user %s", userID)
	}
	owners := map[int]string{}
	ictx := ContextGuild
	switch ch.Type {
	case ChannelDM:
		if ch.RecipientID != userID {
			return nil, 0, fmt.Errorf("discordtest: user %s is not in DM %s", userID, ch.ID)
		}
		owners[InstallGuild] = "0"
		ictx = ContextBotDM
	case ChannelGroupDM:
		if !slices.Contains(ch.Recipients, userID) {
			return nil, 0, fmt.Errorf("discordtest: user %s is not in group DM %s", userID, ch.ID)
		}
		ictx = ContextPrivateChannel
	default:
		g := s.guilds[ch.GuildID]
		if g == nil || g.members[userID] == nil {
			return nil, 0, fmt.Errorf("discordtest: user %s is not a member of guild %s", userID, ch.GuildID)
		}
		if g.hasBot(s.bot.ID) {
			owners[InstallGuild] = g.ID
		}
	}
	if s.installs[userID] {
		owners[InstallUser] = userID
	}
	return owners, ictx, nil
}

// userOnly reports whether only a user install authorized the interaction:
// the app is not installed where it happened.
func (it *interaction) userOnly() bool {
	_, guild := it.owners[InstallGuild]
	_, user := it.owners[InstallUser]
	return user && !guild
}

// newInteractionLocked builds an interaction of userID in channelID,
// authorized by owners in interaction context ictx, and its
// INTERACTION_CREATE payload.
func (s *Server) newInteractionLocked(typ int, userID, channelID string, data any, owners map[int]string, ictx int) (*interaction, *wireInteraction, error) {
	ch, ok := s.channels[channelID]
	if !ok {
		return nil, nil, fmt.Errorf("discordtest: unknown channel %s", channelID)
	}
	u, ok := s.users[userID]
	if !ok {
		return nil, nil, fmt.Errorf("discordtest: unknown user %s", userID)
	}
	if len(owners) == 0 {
		return nil, nil, fmt.Errorf("discordtest: the app is not installed where user %s is (channel %s)", userID, channelID)
	}
	it := &interaction{
		Interaction: Interaction{ID: s.newIDLocked(), Type: typ, ChannelID: ch.ID, GuildID: ch.GuildID, UserID: userID,
			Owners: maps.Clone(owners), Context: ictx},
		owners:  owners,
		created: s.nowLocked(),
	}
	it.Token = newToken(it.ID)
	w := &wireInteraction{
		ID: it.ID, ApplicationID: s.appID, Type: typ, Data: data, GuildID: ch.GuildID,
		Channel: s.wireChannelLocked(ch), ChannelID: ch.ID, Token: it.Token, Version: 1,
		Locale: "en-US", Entitlements: []any{}, Context: ictx,
		AuthorizingIntegrationOwners: map[string]string{},
		AppPermissions:               permString(userAppPermissions),
	}
	for k, v := range owners {
		w.AuthorizingIntegrationOwners[fmt.Sprint(k)] = v
	}
	if g := s.guilds[ch.GuildID]; g != nil {
		w.Member = s.wireMemberLocked(g, userID, true, true)
		if g.hasBot(s.bot.ID) {
			w.AppPermissions = permString(g.permissions(s.bot.ID))
		}
		w.GuildLocale = "en-US"
	} else {
		w.User = u.wire()
		if ch.Type == ChannelDM {
			w.AppPermissions = permString(DefaultEveryonePermissions)
		}
	}
	s.interactions[it.ID] = it
	s.byToken[it.Token] = it
	s.notifyLocked()
	return it, w, nil
}

// SendSlash dispatches a slash command a user ran in a channel. The command
// must have been registered (globally or for the channel's guild).
func (s *Server) SendSlash(name string, options []Option, userID, channelID string) (Interaction, error) {
	it, err := s.sendCommand(InteractionCommand, name, options, userID, channelID)
	if err != nil {
		return Interaction{}, err
	}
	return it.Interaction, nil
}

// SendAutocomplete dispatches an autocomplete query (one option should be
// Focused) and waits for the bot's answer, returning its choices. It fails
// when ctx ends first or the bot answered too late.
func (s *Server) SendAutocomplete(ctx context.Context, name string, options []Option, userID, channelID string) ([]Choice, error) {
	it, err := s.sendCommand(InteractionAutocomplete, name, options, userID, channelID)
	if err != nil {
		return nil, err
	}
	select {
	case c := <-it.choices:
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("discordtest: autocomplete %s: %w", it.ID, context.Cause(ctx))
	}
}

func (s *Server) sendCommand(typ int, name string, options []Option, userID, channelID string) (*interaction, error) {
	s.mu.Lock()
	ch, ok := s.channels[channelID]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("discordtest: unknown channel %s", channelID)
	}
	cmd, ok := s.commandLocked(ch, name, 1)
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("discordtest: no slash command %q registered for channel %s", name, channelID)
	}
	if err := cmd.checkOptions(options, typ == InteractionCommand); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	var files []Attachment
	opts, err := wireOptions(options, func(a Attachment) string {
		a = s.addAttachmentLocked(a, ch.ID, true)
		files = append(files, a)
		return a.ID
	})
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	data := &wireCommandData{ID: cmd.ID, Name: cmd.Name, Type: cmd.Type, GuildID: cmd.GuildID, Options: opts}
	if len(files) > 0 {
		data.Resolved = &wireResolved{Attachments: map[string]*wireAttachment{}}
		for _, a := range files {
			data.Resolved.Attachments[a.ID] = s.attachments[a.ID].wire()
		}
	}
	installs, ictx, err := s.installsLocked(ch, userID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	// Only the installations the command supports authorize it.
	var keys []int
	for k := range installs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	owners := map[int]string{}
	for _, k := range cmd.available(keys, ictx, s.appIntegrationTypesLocked()) {
		owners[k] = installs[k]
	}
	if len(owners) == 0 {
		s.mu.Unlock()
		return nil, fmt.Errorf("discordtest: /%s is not available to user %s in channel %s (installations %v, context %d)",
			name, userID, channelID, keys, ictx)
	}
	it, w, err := s.newInteractionLocked(typ, userID, channelID, data, owners, ictx)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	it.Attachments = files
	if typ == InteractionAutocomplete {
		it.choices = make(chan []Choice, 1)
	}
	s.mu.Unlock()
	s.dispatch(w.GuildID, "INTERACTION_CREATE", w)
	return it, nil
}

// ClickButton dispatches a user's click on the button with customID in a
// message. The button must be in the message's components.
func (s *Server) ClickButton(messageID, customID, userID string) (Interaction, error) {
	s.mu.Lock()
	m, ok := s.messages[messageID]
	if !ok || m.Deleted {
		s.mu.Unlock()
		return Interaction{}, fmt.Errorf("discordtest: unknown message %s", messageID)
	}
	if !slices.Contains(m.CustomIDs(), customID) {
		s.mu.Unlock()
		return Interaction{}, fmt.Errorf("discordtest: message %s has no component %q", messageID, customID)
	}
	data := &wireComponentData{CustomID: customID, ComponentType: 2}
	installs, ictx, err := s.installsLocked(s.channels[m.ChannelID], userID)
	if err != nil {
		s.mu.Unlock()
		return Interaction{}, err
	}
	if src := s.interactions[m.InteractionID]; src != nil {
		// A component on an interaction's message is authorized by the
		// installations that authorized that interaction: for a user
		// install, the user who ran the command, whoever clicks.
		installs = src.owners
	}
	it, w, err := s.newInteractionLocked(InteractionComponent, userID, m.ChannelID, data, installs, ictx)
	if err != nil {
		s.mu.Unlock()
		return Interaction{}, err
	}
	it.sourceID = m.ID
	w.Message = s.wireMessageLocked(m, false)
	s.mu.Unlock()
	s.dispatch(w.GuildID, "INTERACTION_CREATE", w)
	return it.Interaction, nil
}

// interactionCallback serves POST /interactions/{id}/{token}/callback.
func (s *Server) interactionCallback(rq *request) {
	var body struct {
		Type int             `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if !rq.decode(&body) {
		return
	}
	s.mu.Lock()
	it, ok := s.interactions[rq.r.PathValue("id")]
	if ok {
		rq.call.ChannelID = it.ChannelID
		rq.call.InteractionID = it.ID
	}
	if !ok || it.Token != rq.r.PathValue("token") || s.nowLocked().Sub(it.created) > s.opts.InteractionDeadline {
		s.mu.Unlock()
		rq.fail(http.StatusNotFound, 10062, "Unknown interaction", nil)
		return
	}
	if it.responseType != 0 {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 40060, "Interaction has already been acknowledged.", nil)
		return
	}
	allowed := map[int][]int{
		InteractionCommand:      {ResponseMessage, ResponseDeferredMessage, ResponseModal},
		InteractionComponent:    {ResponseMessage, ResponseDeferredMessage, ResponseDeferredUpdate, ResponseUpdateMessage, ResponseModal},
		InteractionAutocomplete: {ResponseAutocomplete},
	}[it.Type]
	if !slices.Contains(allowed, body.Type) {
		s.mu.Unlock()
		errs := formErrors{}
		errs.add("INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type for this interaction", "type")
		rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", errs)
		return
	}
	var p messagePayload
	if len(body.Data) > 0 && string(body.Data) != "null" && body.Type != ResponseAutocomplete {
		if json.Unmarshal(body.Data, &p) != nil {
			s.mu.Unlock()
			rq.fail(http.StatusBadRequest, 50109, "The request body contains invalid JSON.", nil)
			return
		}
	}
	var current *Message
	if body.Type == ResponseUpdateMessage {
		current = s.messages[it.sourceID]
	}
	errs := s.validate(&p, current)
	if body.Type == ResponseDeferredMessage && p.Flags != nil && *p.Flags&^FlagEphemeral != 0 {
		// "the only valid message flag you may use is EPHEMERAL": a V2
		// answer is made by editing the original response.
		if errs == nil {
			errs = formErrors{}
		}
		errs.add("BASE_TYPE_CHOICES", "Invalid message flags for a deferred response.", "flags")
	}
	if errs != nil {
		s.mu.Unlock()
		nested := formErrors{"data": map[string]any(errs)}
		rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", nested)
		return
	}
	echo := func() {}
	switch body.Type {
	case ResponseMessage, ResponseDeferredMessage:
		m := &Message{ChannelID: it.ChannelID, GuildID: it.GuildID, AuthorID: s.bot.ID,
			Type: messageChatInput, InteractionID: it.ID, WebhookID: s.appID}
		if it.Type == InteractionComponent {
			m.Type = messageDefault
		}
		s.applyLocked(m, &p, FlagEphemeral|FlagSuppressEmbeds)
		if body.Type == ResponseDeferredMessage {
			m.Content, m.Embeds, m.Components = "", nil, nil
			m.Flags |= FlagLoading
		} else if m.empty() {
			s.mu.Unlock()
			rq.fail(http.StatusBadRequest, 50006, "Cannot send an empty message", nil)
			return
		}
		s.addMessageLocked(m)
		it.originalID = m.ID
		echo = s.echoLocked("MESSAGE_CREATE", m)
	case ResponseDeferredUpdate:
		it.originalID = it.sourceID
	case ResponseUpdateMessage:
		m := s.messages[it.sourceID]
		if m == nil || m.Deleted {
			s.mu.Unlock()
			rq.fail(http.StatusNotFound, 10008, "Unknown Message", nil)
			return
		}
		next := *m
		s.applyLocked(&next, &p, FlagSuppressEmbeds)
		if next.empty() {
			s.mu.Unlock()
			rq.fail(http.StatusBadRequest, 50006, "Cannot send an empty message", nil)
			return
		}
		*m = next
		s.editLocked(m)
		it.originalID = m.ID
		echo = s.echoLocked("MESSAGE_UPDATE", m)
	case ResponseAutocomplete:
		var d struct {
			Choices []Choice `json:"choices"`
		}
		if len(body.Data) > 0 && json.Unmarshal(body.Data, &d) != nil {
			s.mu.Unlock()
			rq.fail(http.StatusBadRequest, 50109, "The request body contains invalid JSON.", nil)
			return
		}
		if errs := validateChoices(d.Choices); errs != nil {
			s.mu.Unlock()
			rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", errs)
			return
		}
		if d.Choices == nil {
			d.Choices = []Choice{}
		}
		it.choices <- d.Choices
	}
	it.responseType = body.Type
	s.notifyLocked()
	s.mu.Unlock()
	rq.noContent()
	echo()
}

func validateChoices(cs []Choice) formErrors {
	errs := formErrors{}
	if len(cs) > MaxChoices {
		errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxChoices), "data", "choices")
		return errs
	}
	for i, c := range cs {
		if n := utf8.RuneCountInString(c.Name); n < 1 || n > 100 {
			errs.add("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.", "data", "choices", fmt.Sprint(i), "name")
		}
		if v, ok := c.Value.(string); ok && utf8.RuneCountInString(v) > 100 {
			errs.add("BASE_TYPE_MAX_LENGTH", tooLong(100), "data", "choices", fmt.Sprint(i), "value")
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// webhookInteractionLocked resolves an interaction webhook route, writing
// the error answer and returning nil when it does not resolve.
func (s *Server) webhookInteractionLocked(rq *request) *interaction {
	it, ok := s.byToken[rq.r.PathValue("token")]
	if !ok || rq.r.PathValue("app") != s.appID {
		rq.fail(http.StatusNotFound, 10015, "Unknown Webhook", nil)
		return nil
	}
	rq.call.ChannelID = it.ChannelID
	rq.call.InteractionID = it.ID
	if s.nowLocked().Sub(it.created) > s.opts.InteractionTokenTTL {
		rq.fail(http.StatusUnauthorized, 50027, "Invalid Webhook Token", nil)
		return nil
	}
	if it.responseType == 0 || it.responseType == ResponseAutocomplete || it.responseType == ResponseModal {
		rq.fail(http.StatusNotFound, 10015, "Unknown Webhook", nil)
		return nil
	}
	return it
}

// webhookMessageLocked resolves {message} ("@original" or a follow-up id)
// of an interaction.
func (s *Server) webhookMessageLocked(rq *request, it *interaction) *Message {
	id := rq.r.PathValue("message")
	if id == "@original" {
		id = it.originalID
	} else if !slices.Contains(it.followups, id) {
		id = ""
	}
	m := s.messages[id]
	if m == nil || m.Deleted {
		rq.fail(http.StatusNotFound, 10008, "Unknown Message", nil)
		return nil
	}
	return m
}

func (s *Server) webhookGet(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.webhookInteractionLocked(rq)
	if it == nil {
		return
	}
	if m := s.webhookMessageLocked(rq, it); m != nil {
		rq.writeJSON(http.StatusOK, s.wireMessageLocked(m, true))
	}
}

// webhookEdit serves PATCH /webhooks/{app}/{token}/messages/{message},
// charged to the interaction's channel and to the token.
func (s *Server) webhookEdit(rq *request) {
	var p messagePayload
	if !rq.decode(&p) {
		return
	}
	s.mu.Lock()
	it := s.webhookInteractionLocked(rq)
	if it == nil {
		s.mu.Unlock()
		return
	}
	m := s.webhookMessageLocked(rq, it)
	if m == nil {
		s.mu.Unlock()
		return
	}
	s.editWithPayloadLocked(rq, m, &p, it.Token)
}

func (s *Server) webhookDelete(rq *request) {
	s.mu.Lock()
	it := s.webhookInteractionLocked(rq)
	if it == nil {
		s.mu.Unlock()
		return
	}
	m := s.webhookMessageLocked(rq, it)
	if m == nil {
		s.mu.Unlock()
		return
	}
	m.Deleted = true
	s.notifyLocked()
	echo := s.echoLocked("MESSAGE_DELETE", m)
	s.mu.Unlock()
	rq.noContent()
	echo()
}

// webhookExecute serves POST /webhooks/{app}/{token}: a follow-up message.
// As on Discord, the first follow-up to a deferred response that is still
// loading fills the deferred message instead of creating another.
func (s *Server) webhookExecute(rq *request) {
	var p messagePayload
	if !rq.decode(&p) {
		return
	}
	wait := rq.r.URL.Query().Get("wait") == "true"
	s.mu.Lock()
	it := s.webhookInteractionLocked(rq)
	if it == nil {
		s.mu.Unlock()
		return
	}
	if errs := s.validate(&p, nil); errs != nil {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", errs)
		return
	}
	if orig := s.messages[it.originalID]; orig != nil && !orig.Deleted && orig.Flags&FlagLoading != 0 &&
		it.responseType == ResponseDeferredMessage && len(it.followups) == 0 {
		// applyLocked must not change the deferred message's ephemerality;
		// FlagComponentsV2 still applies.
		if p.setsV2() {
			v2 := FlagComponentsV2
			p.Flags = &v2
		} else {
			p.Flags = nil
		}
		s.editWithPayloadLocked(rq, orig, &p, it.Token)
		return
	}
	m := &Message{ChannelID: it.ChannelID, GuildID: it.GuildID, AuthorID: s.bot.ID,
		Type: messageDefault, InteractionID: it.ID, WebhookID: s.appID}
	s.applyLocked(m, &p, FlagEphemeral|FlagSuppressEmbeds)
	if m.empty() {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 50006, "Cannot send an empty message", nil)
		return
	}
	if it.userOnly() && len(it.followups) >= MaxUserInstallFollowups {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 40094, "This interaction has hit the maximum number of follow up messages", nil)
		return
	}
	if !s.admitWriteLocked(rq, it.ChannelID, it.Token) {
		s.mu.Unlock()
		return
	}
	s.addMessageLocked(m)
	it.followups = append(it.followups, m.ID)
	if wait {
		rq.writeJSON(http.StatusOK, s.wireMessageLocked(m, true))
	} else {
		rq.noContent()
	}
	echo := s.echoLocked("MESSAGE_CREATE", m)
	s.mu.Unlock()
	echo()
}
