package discord

import (
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

// Attachments. A message's files (and a /chat attachment option's file)
// reach the Manager as references: their CDN URL in Attachment.Ref, with
// Discord's name, type and size. Nothing is downloaded while the event is
// handled; the Manager downloads each file through Bot.Fetch when the
// message's turn starts, which follows receipt within seconds unless the
// conversation has answers queued. Discord's attachment links are signed
// and expire (after about a day), so a turn that starts later than that (a
// queue that waited out a restart) finds its link expired and says so
// instead of answering about the file. Downloading at receipt would avoid
// that, at the cost of holding every queued file in memory or in the
// store before it is needed.

// maxAttachments is the most files Discord allows on one message; more
// are ignored.
const maxAttachments = 10

// Unsupported reasons an Attachment carries: the Manager names them in
// its answer ("Palaver can't read stickers").
const (
	unsupportedStickers = "stickers"
	unsupportedVideos   = "videos"
)

// messageAttachments are the files and stickers of a message: at most
// maxAttachments files, then one entry per sticker (at most 3).
func messageAttachments(m *discordgo.Message) []sessions.Attachment {
	voice := m.Flags&discordgo.MessageFlagsIsVoiceMessage != 0
	var out []sessions.Attachment
	for _, a := range m.Attachments {
		if len(out) == maxAttachments {
			break
		}
		if a != nil {
			out = append(out, attachment(a, voice))
		}
	}
	for _, st := range m.StickerItems {
		if st != nil {
			out = append(out, sessions.Attachment{Kind: sessions.KindImage, Name: st.Name, Unsupported: unsupportedStickers})
		}
	}
	return out
}

// commandAttachments are the files of a slash command's attachment
// options, from the interaction's resolved data.
func commandAttachments(data discordgo.ApplicationCommandInteractionData) []sessions.Attachment {
	var out []sessions.Attachment
	for _, o := range data.Options {
		if o.Type != discordgo.ApplicationCommandOptionAttachment || data.Resolved == nil {
			continue
		}
		id, _ := o.Value.(string)
		if a := data.Resolved.Attachments[id]; a != nil && len(out) < maxAttachments {
			out = append(out, attachment(a, false))
		}
	}
	return out
}

// attachment describes one Discord file for the Manager. Its kind comes
// from the declared content type: image/* is an image; audio/*, and the
// file of a voice message (voice: the message has IS_VOICE_MESSAGE), is
// voice; video/* is refused as a video; anything else, or no type, is a
// file whose bytes the Manager reads.
func attachment(a *discordgo.MessageAttachment, voice bool) sessions.Attachment {
	out := sessions.Attachment{Kind: sessions.KindFile, Name: a.Filename, MIME: a.ContentType, Size: int64(a.Size), Ref: a.URL}
	media, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(a.ContentType)), ";")
	top, _, _ := strings.Cut(media, "/")
	switch {
	case voice || top == "audio":
		out.Kind = sessions.KindVoice
	case top == "image":
		out.Kind = sessions.KindImage
	case top == "video":
		out.Unsupported = unsupportedVideos
	}
	return out
}

// maxShownName is the most characters of a file name attachmentNames
// shows.
const maxShownName = 100

// attachmentNames lists atts for people, one line each, starting with a
// line break: "📎 `name`". It is at most maxAttachments+3 lines of
// maxShownName characters.
func attachmentNames(atts []sessions.Attachment) string {
	var sb strings.Builder
	for _, a := range atts {
		name := strings.ReplaceAll(a.Name, "`", "")
		if name == "" {
			name = string(a.Kind)
		}
		sb.WriteString("\n📎 `" + clipRunes(name, maxShownName) + "`")
	}
	return sb.String()
}
