package discordtest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// Threads. A bot starts a public thread from a message with
// POST /channels/{channel}/messages/{message}/threads (the thread's id is
// the message's, as on Discord), or without one with
// POST /channels/{channel}/threads (which, as on Discord, also posts a
// "thread created" system message in the parent). Both answer 201 with the
// thread's channel object (type 11, parent_id, owner_id, name) and send
// THREAD_CREATE to the gateway. A thread is a channel of its own: messages
// in it carry its id as channel_id, and its writes are charged to its own
// rate-limit window, apart from its parent's.
//
// Refusals are Discord's: 404 10003 for an unknown parent, 404 10008 for
// an unknown message, 400 50024 where the parent is not a guild text
// channel, 400 160004 for a message that already has a thread, 400 50035
// for a bad name or archive duration, 403 50013 where DenyThreads took the
// bot's Create Public Threads permission, and 429 (scope "shared") past a
// LimitThreads window. Discord's own limit on thread creation is dynamic
// and undocumented, so the fake has none until LimitThreads sets one.
//
// DeleteThread deletes a thread as a moderator would: THREAD_DELETE is
// dispatched and every later request naming it answers 404 10003 Unknown
// Channel.

// PermCreatePublicThreads is Discord's Create Public Threads permission.
const PermCreatePublicThreads int64 = 1 << 35

// MaxThreadName is the longest thread name Discord accepts, in characters.
const MaxThreadName = 100

// messageThreadCreated is the type of the system message a thread started
// without a message leaves in its parent.
const messageThreadCreated = 18

// autoArchiveDurations are the auto_archive_duration values Discord
// accepts, in minutes.
var autoArchiveDurations = []int{60, 1440, 4320, 10080}

// Thread is a thread as the fake holds it.
type Thread struct {
	Channel
	// OwnerID is the user who created it.
	OwnerID string
	// StarterID is the message it was started from; empty when none.
	StarterID string
}

// threads is the fake's thread bookkeeping, guarded by Server.mu. Its maps
// are made on first use, so that the zero value is ready.
type threads struct {
	owners   map[string]string // thread id → creator
	starters map[string]string // thread id → starter message id
	started  map[string]string // message id → thread started from it
	deleted  map[string]bool   // deleted channel ids
	denied   map[string]bool   // parents where the bot lacks Create Public Threads
	limit    int               // creations per window per parent; 0: none
	span     time.Duration
	windows  map[string]*window // by parent channel id
}

func (t *threads) init() {
	if t.owners == nil {
		t.owners = map[string]string{}
		t.starters = map[string]string{}
		t.started = map[string]string{}
		t.deleted = map[string]bool{}
		t.denied = map[string]bool{}
		t.windows = map[string]*window{}
	}
}

// threadOwnerLocked is a thread's owner_id: its creator, or the bot for a
// thread added with AddThread.
func (s *Server) threadOwnerLocked(c *Channel) string {
	if id := s.threads.owners[c.ID]; id != "" {
		return id
	}
	return s.bot.ID
}

// DenyThreads takes the bot's Create Public Threads permission in a
// channel (as a permission overwrite would): creating a thread there
// answers 403 50013 Missing Permissions.
func (s *Server) DenyThreads(channelID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.threads.init()
	s.threads.denied[channelID] = true
}

// LimitThreads allows at most limit thread creations per parent channel in
// any window (a sliding window, like the message limits); past it the fake
// answers 429 with X-RateLimit-Scope: shared. A limit ≤ 0 removes it.
func (s *Server) LimitThreads(limit int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.threads.init()
	s.threads.limit, s.threads.span = limit, window
	clear(s.threads.windows)
}

// StartThread starts a public thread under a guild text channel as a user
// would, owned by that user, and dispatches THREAD_CREATE.
func (s *Server) StartThread(parentID, name, ownerID string) (Thread, error) {
	s.mu.Lock()
	p, ok := s.channels[parentID]
	if !ok || p.Type != ChannelGuildText {
		s.mu.Unlock()
		return Thread{}, fmt.Errorf("discordtest: %s is not a guild text channel", parentID)
	}
	if g := s.guilds[p.GuildID]; g == nil || g.members[ownerID] == nil {
		s.mu.Unlock()
		return Thread{}, fmt.Errorf("discordtest: user %s is not a member of the guild of %s", ownerID, parentID)
	}
	th, w := s.addThreadLocked(p, name, ownerID, "")
	s.mu.Unlock()
	s.dispatch(w.GuildID, "THREAD_CREATE", w)
	return th, nil
}

// Threads lists the threads under a parent channel, deleted ones
// excluded, oldest first.
func (s *Server) Threads(parentID string) []Thread {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Thread
	for _, id := range s.channelIDsLocked() {
		if c := s.channels[id]; c.ParentID == parentID && c.Type == ChannelPublicThread {
			out = append(out, Thread{Channel: *c, OwnerID: s.threadOwnerLocked(c), StarterID: s.threads.starters[c.ID]})
		}
	}
	return out
}

// DeleteThread deletes a thread and its messages and dispatches
// THREAD_DELETE. Later requests naming the thread answer 404 10003.
func (s *Server) DeleteThread(threadID string) error {
	s.mu.Lock()
	c, ok := s.channels[threadID]
	if !ok || c.Type != ChannelPublicThread {
		s.mu.Unlock()
		return fmt.Errorf("discordtest: %s is not a thread", threadID)
	}
	s.threads.init()
	delete(s.channels, threadID)
	s.threads.deleted[threadID] = true
	for _, m := range s.messages {
		if m.ChannelID == threadID {
			m.Deleted = true
		}
	}
	d := map[string]any{"id": c.ID, "guild_id": c.GuildID, "parent_id": c.ParentID, "type": c.Type}
	s.notifyLocked()
	s.mu.Unlock()
	s.dispatch(c.GuildID, "THREAD_DELETE", d)
	return nil
}

// refuseDeletedChannel answers 404 10003 to a request whose {channel} is a
// deleted channel, as Discord answers every request naming it.
func (s *Server) refuseDeletedChannel(rq *request) {
	id := rq.r.PathValue("channel")
	if id == "" {
		return
	}
	s.mu.Lock()
	gone := s.threads.deleted[id]
	s.mu.Unlock()
	if gone {
		rq.call.ChannelID = id
		rq.fail(http.StatusNotFound, 10003, "Unknown Channel", nil)
	}
}

// threadPayload is the body of a thread creation.
type threadPayload struct {
	Name                string `json:"name"`
	AutoArchiveDuration *int   `json:"auto_archive_duration"`
	Type                *int   `json:"type"`
}

func (p *threadPayload) validate(withMessage bool) formErrors {
	errs := formErrors{}
	if n := utf8.RuneCountInString(p.Name); n < 1 || n > MaxThreadName {
		errs.add("BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between 1 and %d in length.", MaxThreadName), "name")
	}
	if d := p.AutoArchiveDuration; d != nil && !slices.Contains(autoArchiveDurations, *d) {
		errs.add("BASE_TYPE_CHOICES", "Value must be one of (60, 1440, 4320, 10080).", "auto_archive_duration")
	}
	// Discord's default for a thread without a message is a private
	// thread, which the fake does not model.
	if !withMessage && (p.Type == nil || *p.Type != ChannelPublicThread) {
		errs.add("BASE_TYPE_CHOICES", "The fake models public threads (type 11) only.", "type")
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// startThreadFromMessage serves
// POST /channels/{channel}/messages/{message}/threads.
func (s *Server) startThreadFromMessage(rq *request) {
	s.createThread(rq, true)
}

// startThreadWithoutMessage serves POST /channels/{channel}/threads.
func (s *Server) startThreadWithoutMessage(rq *request) {
	s.createThread(rq, false)
}

func (s *Server) createThread(rq *request, withMessage bool) {
	var p threadPayload
	if !rq.decode(&p) {
		return
	}
	s.mu.Lock()
	s.threads.init()
	chID := rq.r.PathValue("channel")
	rq.call.ChannelID = chID
	parent, ok := s.channels[chID]
	if !ok {
		s.mu.Unlock()
		rq.fail(http.StatusNotFound, 10003, "Unknown Channel", nil)
		return
	}
	if parent.Type != ChannelGuildText {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 50024, "Cannot execute action on this channel type", nil)
		return
	}
	var starter *Message
	if withMessage {
		starter = s.messages[rq.r.PathValue("message")]
		if starter == nil || starter.Deleted || starter.ChannelID != chID || starter.Flags&FlagEphemeral != 0 {
			s.mu.Unlock()
			rq.fail(http.StatusNotFound, 10008, "Unknown Message", nil)
			return
		}
	}
	if s.threads.denied[chID] {
		s.mu.Unlock()
		rq.fail(http.StatusForbidden, 50013, "Missing Permissions", nil)
		return
	}
	if errs := p.validate(withMessage); errs != nil {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 50035, "Invalid Form Body", errs)
		return
	}
	if starter != nil && s.threads.started[starter.ID] != "" {
		s.mu.Unlock()
		rq.fail(http.StatusBadRequest, 160004, "A thread has already been created for this message", nil)
		return
	}
	if !s.admitThreadLocked(rq, chID) {
		s.mu.Unlock()
		return
	}
	starterID := ""
	if starter != nil {
		starterID = starter.ID
	}
	th, w := s.addThreadLocked(parent, p.Name, s.bot.ID, starterID)
	echo := func() {}
	if starter == nil {
		m := &Message{ChannelID: parent.ID, GuildID: parent.GuildID, AuthorID: s.bot.ID,
			Type: messageThreadCreated, Content: th.Name}
		s.addMessageLocked(m)
		echo = s.echoLocked("MESSAGE_CREATE", m)
	}
	rq.writeJSON(http.StatusCreated, w)
	s.mu.Unlock()
	s.dispatch(w.GuildID, "THREAD_CREATE", threadCreate{wireChannel: w, NewlyCreated: true})
	echo()
}

// threadCreate is THREAD_CREATE for a thread just created: the channel's
// fields and newly_created.
type threadCreate struct {
	*wireChannel
	NewlyCreated bool `json:"newly_created"`
}

// addThreadLocked adds a public thread under parent and returns it with
// its wire form.
func (s *Server) addThreadLocked(parent *Channel, name, ownerID, starterID string) (Thread, *wireChannel) {
	s.threads.init()
	// As on Discord, a thread started from a message has the message's id.
	id := starterID
	if id == "" {
		id = s.newIDLocked()
	}
	c := &Channel{ID: id, Type: ChannelPublicThread, GuildID: parent.GuildID, ParentID: parent.ID, Name: name}
	s.channels[c.ID] = c
	s.threads.owners[c.ID] = ownerID
	if starterID != "" {
		s.threads.starters[c.ID] = starterID
		s.threads.started[starterID] = c.ID
	}
	s.notifyLocked()
	return Thread{Channel: *c, OwnerID: ownerID, StarterID: starterID}, s.wireChannelLocked(c)
}

// admitThreadLocked charges one thread creation to parent's window, or
// writes the 429 and returns false.
func (s *Server) admitThreadLocked(rq *request, parentID string) bool {
	if s.threads.limit <= 0 {
		return true
	}
	now := s.nowLocked()
	w := s.threads.windows[parentID]
	if w == nil {
		w = &window{limit: s.threads.limit, span: s.threads.span}
		s.threads.windows[parentID] = w
	}
	w.prune(now)
	if ra := w.retryAfter(now); ra > 0 {
		rq.tooMany(now, rateHeaders{bucket: "fake-threads", limit: w.limit, resetAfter: ra, shared: true}, false)
		return false
	}
	w.times = append(w.times, now)
	return true
}
