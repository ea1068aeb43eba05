package discordtest

import (
	"encoding/json"
	"strconv"
	"time"
)

// The types in this file are Discord's wire format (API v9/v10) as the
// fake sends it. Ids and permission bit sets are JSON strings, timestamps
// RFC 3339, exactly as Discord writes them: discordgo silently drops a
// field of the wrong JSON type.

type wireUser struct {
	ID            string  `json:"id"`
	Username      string  `json:"username"`
	Discriminator string  `json:"discriminator"`
	GlobalName    string  `json:"global_name,omitempty"`
	Avatar        *string `json:"avatar"`
	Bot           bool    `json:"bot,omitempty"`
	PublicFlags   int     `json:"public_flags"`
}

type wireMember struct {
	User        *wireUser `json:"user,omitempty"`
	Nick        *string   `json:"nick"`
	Roles       []string  `json:"roles"`
	JoinedAt    string    `json:"joined_at"`
	Deaf        bool      `json:"deaf"`
	Mute        bool      `json:"mute"`
	Flags       int       `json:"flags"`
	Pending     bool      `json:"pending"`
	Permissions string    `json:"permissions,omitempty"`
}

type wireRole struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Color       int    `json:"color"`
	Hoist       bool   `json:"hoist"`
	Position    int    `json:"position"`
	Permissions string `json:"permissions"`
	Managed     bool   `json:"managed"`
	Mentionable bool   `json:"mentionable"`
	Flags       int    `json:"flags"`
}

type wireChannel struct {
	ID                   string      `json:"id"`
	Type                 int         `json:"type"`
	GuildID              string      `json:"guild_id,omitempty"`
	Name                 string      `json:"name,omitempty"`
	ParentID             string      `json:"parent_id,omitempty"`
	Position             int         `json:"position"`
	PermissionOverwrites []any       `json:"permission_overwrites"`
	Recipients           []*wireUser `json:"recipients,omitempty"`
	OwnerID              string      `json:"owner_id,omitempty"`
	ThreadMetadata       *wireThread `json:"thread_metadata,omitempty"`
}

type wireThread struct {
	Archived            bool   `json:"archived"`
	AutoArchiveDuration int    `json:"auto_archive_duration"`
	ArchiveTimestamp    string `json:"archive_timestamp"`
	Locked              bool   `json:"locked"`
}

type wireGuild struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	OwnerID     string         `json:"owner_id"`
	Roles       []wireRole     `json:"roles"`
	Channels    []*wireChannel `json:"channels,omitempty"`
	Threads     []*wireChannel `json:"threads,omitempty"`
	Members     []wireMember   `json:"members,omitempty"`
	MemberCount int            `json:"member_count,omitempty"`
	JoinedAt    string         `json:"joined_at,omitempty"`
	Unavailable bool           `json:"unavailable"`
	Large       bool           `json:"large"`
}

type wireReference struct {
	Type      int    `json:"type"`
	MessageID string `json:"message_id"`
	ChannelID string `json:"channel_id"`
	GuildID   string `json:"guild_id,omitempty"`
}

type wireMessage struct {
	ID                string            `json:"id"`
	Type              int               `json:"type"`
	ChannelID         string            `json:"channel_id"`
	GuildID           string            `json:"guild_id,omitempty"`
	Author            *wireUser         `json:"author"`
	Member            *wireMember       `json:"member,omitempty"`
	Content           string            `json:"content"`
	Timestamp         string            `json:"timestamp"`
	EditedTimestamp   *string           `json:"edited_timestamp"`
	TTS               bool              `json:"tts"`
	MentionEveryone   bool              `json:"mention_everyone"`
	Mentions          []*wireUser       `json:"mentions"`
	MentionRoles      []string          `json:"mention_roles"`
	Attachments       []*wireAttachment `json:"attachments"`
	StickerItems      []wireStickerItem `json:"sticker_items,omitempty"`
	Embeds            json.RawMessage   `json:"embeds"`
	Components        json.RawMessage   `json:"components"`
	Pinned            bool              `json:"pinned"`
	Flags             int               `json:"flags"`
	WebhookID         string            `json:"webhook_id,omitempty"`
	ApplicationID     string            `json:"application_id,omitempty"`
	MessageReference  *wireReference    `json:"message_reference,omitempty"`
	ReferencedMessage *wireMessage      `json:"referenced_message,omitempty"`
}

type wireOption struct {
	Name    string        `json:"name"`
	Type    int           `json:"type"`
	Value   any           `json:"value,omitempty"`
	Options []*wireOption `json:"options,omitempty"`
	Focused bool          `json:"focused,omitempty"`
}

type wireCommandData struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Type    int           `json:"type"`
	GuildID string        `json:"guild_id,omitempty"`
	Options []*wireOption `json:"options,omitempty"`
	// Resolved carries the objects options refer to by id: here the files
	// of attachment options.
	Resolved *wireResolved `json:"resolved,omitempty"`
}

type wireResolved struct {
	Attachments map[string]*wireAttachment `json:"attachments,omitempty"`
}

type wireComponentData struct {
	CustomID      string `json:"custom_id"`
	ComponentType int    `json:"component_type"`
}

type wireInteraction struct {
	ID                           string            `json:"id"`
	ApplicationID                string            `json:"application_id"`
	Type                         int               `json:"type"`
	Data                         any               `json:"data"`
	GuildID                      string            `json:"guild_id,omitempty"`
	Channel                      *wireChannel      `json:"channel,omitempty"`
	ChannelID                    string            `json:"channel_id"`
	Member                       *wireMember       `json:"member,omitempty"`
	User                         *wireUser         `json:"user,omitempty"`
	Token                        string            `json:"token"`
	Version                      int               `json:"version"`
	Message                      *wireMessage      `json:"message,omitempty"`
	AppPermissions               string            `json:"app_permissions"`
	Locale                       string            `json:"locale"`
	GuildLocale                  string            `json:"guild_locale,omitempty"`
	Entitlements                 []any             `json:"entitlements"`
	AuthorizingIntegrationOwners map[string]string `json:"authorizing_integration_owners"`
	Context                      int               `json:"context"`
}

type wireError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Errors  json.RawMessage `json:"errors,omitempty"`
}

type wireRateLimit struct {
	Message    string  `json:"message"`
	RetryAfter float64 `json:"retry_after"`
	Global     bool    `json:"global"`
}

// gatewayFrame is one gateway payload.
type gatewayFrame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }

func permString(p int64) string { return strconv.FormatInt(p, 10) }
