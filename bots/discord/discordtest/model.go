package discordtest

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Channel types the fake models (Discord's numbering).
const (
	ChannelGuildText    = 0
	ChannelDM           = 1
	ChannelGroupDM      = 3
	ChannelPublicThread = 11
)

// Permission bits the fake uses (Discord's numbering).
const (
	PermAdministrator          int64 = 1 << 3
	PermManageChannels         int64 = 1 << 4
	PermViewChannel            int64 = 1 << 10
	PermSendMessages           int64 = 1 << 11
	PermManageMessages         int64 = 1 << 13
	PermEmbedLinks             int64 = 1 << 14
	PermAttachFiles            int64 = 1 << 15
	PermReadMessageHistory     int64 = 1 << 16
	PermMentionEveryone        int64 = 1 << 17
	PermUseApplicationCommands int64 = 1 << 31
	PermSendMessagesInThreads  int64 = 1 << 38
)

// DefaultEveryonePermissions are the @everyone role's permissions in a new
// guild: read and write messages and use commands, nothing administrative.
const DefaultEveryonePermissions = PermViewChannel | PermSendMessages | PermEmbedLinks |
	PermReadMessageHistory | PermUseApplicationCommands | PermSendMessagesInThreads

// botPermissions are the bot's permissions in every guild.
const botPermissions = DefaultEveryonePermissions | PermManageMessages

// User is a Discord user known to the fake.
type User struct {
	ID   string
	Name string
	Bot  bool
}

func (u *User) wire() *wireUser {
	return &wireUser{ID: u.ID, Username: u.Name, Discriminator: "0", GlobalName: u.Name, Bot: u.Bot}
}

// Guild is a Discord server known to the fake.
type Guild struct {
	ID      string
	Name    string
	OwnerID string
}

// Channel is a guild text channel, a thread or a DM.
type Channel struct {
	ID      string
	Type    int
	GuildID string // empty for a DM
	// ParentID is a thread's channel.
	ParentID string
	Name     string
	// RecipientID is the user of a DM channel.
	RecipientID string
	// Recipients are the users of a group DM, which the bot is not in.
	Recipients []string
}

type role struct {
	id    string
	name  string
	perms int64
	pos   int
}

type member struct {
	userID string
	roles  []string
	joined time.Time
}

type guild struct {
	Guild
	joined  time.Time
	roles   []*role // roles[0] is @everyone (id = guild id)
	members map[string]*member
}

// AddUser adds a (human) user.
func (s *Server) AddUser(name string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &User{ID: s.newIDLocked(), Name: name}
	s.users[u.ID] = u
	return *u
}

// AddGuild adds a guild owned by a new user named name+"-owner", with an
// @everyone role holding DefaultEveryonePermissions and the bot as a
// member. Gateway sessions already open receive GUILD_CREATE.
func (s *Server) AddGuild(name string) Guild { return s.addGuild(name, true, 0, 0) }

// AddGuildOnShard adds a guild as AddGuild does, with an id that puts it
// on shard of total: (id >> 22) % total == shard. The time in its
// snowflake is moved up to total-1 milliseconds ahead of the fake's
// clock.
func (s *Server) AddGuildOnShard(name string, shard, total int) (Guild, error) {
	if total < 1 || shard < 0 || shard >= total {
		return Guild{}, fmt.Errorf("discordtest: shard %d of %d: want 0 ≤ shard < total", shard, total)
	}
	return s.addGuild(name, true, shard, total), nil
}

// AddGuildWithoutBot adds a guild as AddGuild does, but without the bot:
// the app is not installed there. The bot receives no event from it and
// is refused its channels (403, 50001 Missing Access); users who installed
// the app to their account (InstallApp) can still run its global commands
// there, which the bot answers through the interaction alone.
func (s *Server) AddGuildWithoutBot(name string) Guild { return s.addGuild(name, false, 0, 0) }

// addGuild adds a guild, on shard of total when total is positive.
func (s *Server) addGuild(name string, withBot bool, shard, total int) Guild {
	s.mu.Lock()
	owner := &User{ID: s.newIDLocked(), Name: name + "-owner"}
	s.users[owner.ID] = owner
	id := s.newIDLocked()
	if total > 0 {
		id = s.shardIDLocked(shard, total)
	}
	g := &guild{
		Guild:   Guild{ID: id, Name: name, OwnerID: owner.ID},
		joined:  s.nowLocked(),
		members: map[string]*member{},
	}
	g.roles = []*role{{id: g.ID, name: "@everyone", perms: DefaultEveryonePermissions}}
	g.members[owner.ID] = &member{userID: owner.ID, joined: g.joined}
	if withBot {
		botRole := &role{id: s.newIDLocked(), name: s.bot.Name, perms: botPermissions, pos: 1}
		g.roles = append(g.roles, botRole)
		g.members[s.bot.ID] = &member{userID: s.bot.ID, roles: []string{botRole.id}, joined: g.joined}
	}
	s.guilds[g.ID] = g
	s.guildOrder = append(s.guildOrder, g.ID)
	s.notifyLocked()
	if !withBot {
		s.mu.Unlock()
		return g.Guild
	}
	wg := s.wireGuildLocked(g)
	s.mu.Unlock()
	s.dispatch(g.ID, "GUILD_CREATE", wg)
	return g.Guild
}

// shardIDLocked returns a fresh snowflake on shard of total: the first
// millisecond from the fake's clock (and after the last id) whose number
// is shard modulo total.
func (s *Server) shardIDLocked(shard, total int) string {
	ms := max(s.nowLocked().UnixMilli()-discordEpoch, int64(s.lastID>>22)+1, 0)
	n := int64(total)
	ms += ((int64(shard)-ms%n)%n + n) % n
	s.lastID = uint64(ms) << 22
	return formatUint(s.lastID)
}

// hasBot reports whether the bot is a member of the guild.
func (g *guild) hasBot(botID string) bool { return g.members[botID] != nil }

// InstallApp installs the app to a user's account (a user install): its
// global commands that allow USER_INSTALL then work for that user in any
// guild, DM or group DM. The app must support user installs
// (Options.UserInstall), as set in the Developer Portal.
func (s *Server) InstallApp(userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opts.UserInstall {
		return errors.New("discordtest: the app does not support user installs (Options.UserInstall)")
	}
	if _, ok := s.users[userID]; !ok {
		return fmt.Errorf("discordtest: unknown user %s", userID)
	}
	s.installs[userID] = true
	s.notifyLocked()
	return nil
}

// AddGroupDM adds a group DM between users (at least two), which the bot
// is not in: only a user install reaches it, through interactions.
func (s *Server) AddGroupDM(name string, userIDs ...string) (Channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(userIDs) < 2 {
		return Channel{}, errors.New("discordtest: a group DM has at least two users")
	}
	for _, id := range userIDs {
		if _, ok := s.users[id]; !ok {
			return Channel{}, fmt.Errorf("discordtest: unknown user %s", id)
		}
	}
	c := &Channel{ID: s.newIDLocked(), Type: ChannelGroupDM, Name: name, Recipients: slices.Clone(userIDs)}
	s.channels[c.ID] = c
	s.notifyLocked()
	return *c, nil
}

// botSeesLocked reports whether the bot can reach a channel: the channels
// and threads of guilds it is a member of, and its own DMs.
func (s *Server) botSeesLocked(c *Channel) bool {
	switch c.Type {
	case ChannelDM:
		return true
	case ChannelGroupDM:
		return false
	}
	g := s.guilds[c.GuildID]
	return g != nil && g.hasBot(s.bot.ID)
}

// refuseNoAccess answers 403 Missing Access to a bot request about a
// channel the bot cannot reach.
func (s *Server) refuseNoAccess(rq *request) {
	id := rq.r.PathValue("channel")
	if id == "" {
		return
	}
	s.mu.Lock()
	c, ok := s.channels[id]
	denied := ok && !s.botSeesLocked(c)
	s.mu.Unlock()
	if denied {
		rq.call.ChannelID = id
		rq.fail(http.StatusForbidden, 50001, "Missing Access", nil)
	}
}

// AddRole adds a role with the given permission bits to a guild and
// returns its id.
func (s *Server) AddRole(guildID, name string, perms int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[guildID]
	if !ok {
		return "", fmt.Errorf("discordtest: unknown guild %s", guildID)
	}
	r := &role{id: s.newIDLocked(), name: name, perms: perms, pos: len(g.roles)}
	g.roles = append(g.roles, r)
	s.notifyLocked()
	return r.id, nil
}

// AddMember makes a user a member of a guild. When perms is not zero the
// member also gets a role of its own with those permission bits, on top of
// @everyone's; further roles are given by id.
func (s *Server) AddMember(guildID, userID string, perms int64, roleIDs ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[guildID]
	if !ok {
		return fmt.Errorf("discordtest: unknown guild %s", guildID)
	}
	u, ok := s.users[userID]
	if !ok {
		return fmt.Errorf("discordtest: unknown user %s", userID)
	}
	m := &member{userID: userID, joined: s.nowLocked()}
	for _, id := range roleIDs {
		if g.role(id) == nil {
			return fmt.Errorf("discordtest: unknown role %s in guild %s", id, guildID)
		}
		m.roles = append(m.roles, id)
	}
	if perms != 0 {
		r := &role{id: s.newIDLocked(), name: u.Name, perms: perms, pos: len(g.roles)}
		g.roles = append(g.roles, r)
		m.roles = append(m.roles, r.id)
	}
	g.members[userID] = m
	s.notifyLocked()
	return nil
}

// AddChannel adds a text channel to a guild. Open gateway sessions
// receive CHANNEL_CREATE when the bot is in the guild.
func (s *Server) AddChannel(guildID, name string) (Channel, error) {
	s.mu.Lock()
	if _, ok := s.guilds[guildID]; !ok {
		s.mu.Unlock()
		return Channel{}, fmt.Errorf("discordtest: unknown guild %s", guildID)
	}
	c := &Channel{ID: s.newIDLocked(), Type: ChannelGuildText, GuildID: guildID, Name: name}
	s.channels[c.ID] = c
	w := s.wireChannelLocked(c)
	sees := s.botSeesLocked(c)
	s.notifyLocked()
	s.mu.Unlock()
	if sees {
		s.dispatch(guildID, "CHANNEL_CREATE", w)
	}
	return *c, nil
}

// AddThread adds a public thread under a guild text channel. Open gateway
// sessions receive THREAD_CREATE.
func (s *Server) AddThread(parentID, name string) (Channel, error) {
	s.mu.Lock()
	p, ok := s.channels[parentID]
	if !ok || p.Type != ChannelGuildText {
		s.mu.Unlock()
		return Channel{}, fmt.Errorf("discordtest: %s is not a guild text channel", parentID)
	}
	c := &Channel{ID: s.newIDLocked(), Type: ChannelPublicThread, GuildID: p.GuildID, ParentID: p.ID, Name: name}
	s.channels[c.ID] = c
	w := s.wireChannelLocked(c)
	sees := s.botSeesLocked(c)
	s.notifyLocked()
	s.mu.Unlock()
	if sees {
		s.dispatch(c.GuildID, "THREAD_CREATE", w)
	}
	return *c, nil
}

// DM returns the DM channel between the bot and a user, creating it.
func (s *Server) DM(userID string) (Channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return Channel{}, fmt.Errorf("discordtest: unknown user %s", userID)
	}
	if id, ok := s.dms[userID]; ok {
		return *s.channels[id], nil
	}
	c := &Channel{ID: s.newIDLocked(), Type: ChannelDM, RecipientID: userID}
	s.channels[c.ID] = c
	s.dms[userID] = c.ID
	s.notifyLocked()
	return *c, nil
}

// Permissions returns a member's guild-level permission bits: the union of
// @everyone's and the member's roles', everything for the owner or an
// administrator. Channel permission overwrites are not modelled.
func (s *Server) Permissions(guildID, userID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[guildID]
	if !ok {
		return 0
	}
	return g.permissions(userID)
}

const allPermissions int64 = 1<<51 - 1

func (g *guild) role(id string) *role {
	for _, r := range g.roles {
		if r.id == id {
			return r
		}
	}
	return nil
}

func (g *guild) permissions(userID string) int64 {
	m, ok := g.members[userID]
	if !ok {
		return 0
	}
	if userID == g.OwnerID {
		return allPermissions
	}
	p := g.roles[0].perms
	for _, id := range m.roles {
		if r := g.role(id); r != nil {
			p |= r.perms
		}
	}
	if p&PermAdministrator != 0 {
		return allPermissions
	}
	return p
}

func (s *Server) wireMemberLocked(g *guild, userID string, withUser, withPerms bool) *wireMember {
	m, ok := g.members[userID]
	if !ok {
		return nil
	}
	w := &wireMember{Roles: slices.Clone(m.roles), JoinedAt: timestamp(m.joined)}
	if w.Roles == nil {
		w.Roles = []string{}
	}
	if withUser {
		w.User = s.users[userID].wire()
	}
	if withPerms {
		w.Permissions = permString(g.permissions(userID))
	}
	return w
}

func (s *Server) wireChannelLocked(c *Channel) *wireChannel {
	w := &wireChannel{ID: c.ID, Type: c.Type, GuildID: c.GuildID, Name: c.Name, ParentID: c.ParentID,
		PermissionOverwrites: []any{}}
	if c.Type == ChannelDM {
		w.Recipients = []*wireUser{s.users[c.RecipientID].wire()}
	}
	for _, id := range c.Recipients {
		w.Recipients = append(w.Recipients, s.users[id].wire())
	}
	if c.Type == ChannelPublicThread {
		w.OwnerID = s.threadOwnerLocked(c)
		w.ThreadMetadata = &wireThread{AutoArchiveDuration: 1440, ArchiveTimestamp: timestamp(s.nowLocked())}
	}
	return w
}

func (g *guild) wireRoles() []wireRole {
	rs := make([]wireRole, len(g.roles))
	for i, r := range g.roles {
		rs[i] = wireRole{ID: r.id, Name: r.name, Position: r.pos, Permissions: permString(r.perms)}
	}
	return rs
}

// wireGuildLocked is the guild as GUILD_CREATE carries it.
func (s *Server) wireGuildLocked(g *guild) *wireGuild {
	w := &wireGuild{ID: g.ID, Name: g.Name, OwnerID: g.OwnerID, Roles: g.wireRoles(),
		Channels: []*wireChannel{}, Threads: []*wireChannel{}, MemberCount: len(g.members),
		JoinedAt: timestamp(g.joined)}
	for _, id := range s.channelIDsLocked() {
		c := s.channels[id]
		if c.GuildID != g.ID {
			continue
		}
		if c.Type == ChannelPublicThread {
			w.Threads = append(w.Threads, s.wireChannelLocked(c))
		} else {
			w.Channels = append(w.Channels, s.wireChannelLocked(c))
		}
	}
	w.Members = []wireMember{*s.wireMemberLocked(g, s.bot.ID, true, false)}
	return w
}

// channelIDsLocked lists channel ids in creation order (snowflakes sort by
// time).
func (s *Server) channelIDsLocked() []string {
	ids := make([]string, 0, len(s.channels))
	for id := range s.channels {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

func compareIDs(a, b string) int {
	x, _ := strconv.ParseUint(a, 10, 64)
	y, _ := strconv.ParseUint(b, 10, 64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }

func (s *Server) getUser(rq *request) {
	id := rq.r.PathValue("user")
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "@me" {
		id = s.bot.ID
	}
	u, ok := s.users[id]
	if !ok {
		rq.fail(http.StatusNotFound, 10013, "Unknown User", nil)
		return
	}
	rq.writeJSON(http.StatusOK, u.wire())
}

func (s *Server) getChannel(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[rq.r.PathValue("channel")]
	if !ok {
		rq.fail(http.StatusNotFound, 10003, "Unknown Channel", nil)
		return
	}
	rq.call.ChannelID = c.ID
	rq.writeJSON(http.StatusOK, s.wireChannelLocked(c))
}

func (s *Server) getGuild(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[rq.r.PathValue("guild")]
	if !ok {
		rq.fail(http.StatusNotFound, 10004, "Unknown Guild", nil)
		return
	}
	rq.writeJSON(http.StatusOK, &wireGuild{ID: g.ID, Name: g.Name, OwnerID: g.OwnerID, Roles: g.wireRoles()})
}

func (s *Server) getRoles(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[rq.r.PathValue("guild")]
	if !ok {
		rq.fail(http.StatusNotFound, 10004, "Unknown Guild", nil)
		return
	}
	rq.writeJSON(http.StatusOK, g.wireRoles())
}

func (s *Server) getMember(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[rq.r.PathValue("guild")]
	if !ok {
		rq.fail(http.StatusNotFound, 10004, "Unknown Guild", nil)
		return
	}
	m := s.wireMemberLocked(g, rq.r.PathValue("user"), true, false)
	if m == nil {
		rq.fail(http.StatusNotFound, 10007, "Unknown Member", nil)
		return
	}
	rq.writeJSON(http.StatusOK, m)
}
