package discord

import (
	"fmt"
	"strings"

	"github.com/bwmarrin/discordgo"
)

// Components V2. An answer's message is a container of text displays (the
// reasoning, the answer, the status line) with its buttons in a row at the
// bottom, sent with the IS_COMPONENTS_V2 flag: its text displays hold up
// to 4000 characters where a message's content holds 2000, so a long
// answer takes half the messages. Discord refuses content and embeds on
// such a message and never removes the flag, so a message made with the
// flag is always edited with components and one made without it (by
// Components "legacy", an older Palaver or the fallback) always with
// content. Where Discord refuses the flag when a message is made, the Bot
// falls back to content messages for good, and logs it once.

// Components modes (Options.Components).
const (
	ComponentsAuto   = "auto"   // Components V2, falling back to content when refused
	ComponentsV2     = "v2"     // Components V2 only
	ComponentsLegacy = "legacy" // message content, buttons in an action row
)

// Custom ids of the buttons under answers.
const (
	stopID = "palaver:stop"
	// retryPrefix is followed by the id of the question the answer
	// answers: its message, or its /chat interaction.
	retryPrefix = "palaver:retry:"
)

// buttons are the buttons under one message of an answer: Stop while it
// runs, Retry (for the question retry, when not empty) once it ended.
type buttons struct {
	stop  bool
	retry string
}

func (bt buttons) list() []discordgo.MessageComponent {
	var out []discordgo.MessageComponent
	if bt.stop {
		out = append(out, discordgo.Button{Label: "Stop", Style: discordgo.SecondaryButton, CustomID: stopID,
			Emoji: &discordgo.ComponentEmoji{Name: "⏹"}})
	}
	if bt.retry != "" {
		out = append(out, discordgo.Button{Label: "Retry", Style: discordgo.SecondaryButton, CustomID: retryPrefix + bt.retry,
			Emoji: &discordgo.ComponentEmoji{Name: "🔄"}})
	}
	return out
}

// messageBody is a message create or edit as the Bot sends it, for the
// channel, webhook and interaction routes alike. Without IS_COMPONENTS_V2
// it carries content and the buttons' row (an empty list removes buttons
// shown before); with it, components only.
type messageBody struct {
	Content         *string                           `json:"content,omitempty"`
	Flags           discordgo.MessageFlags            `json:"flags,omitempty"`
	Components      []discordgo.MessageComponent      `json:"components"`
	AllowedMentions *discordgo.MessageAllowedMentions `json:"allowed_mentions"`
	Reference       *discordgo.MessageReference       `json:"message_reference,omitempty"`
}

// newBody is part p of an answer with its buttons, as a Components V2
// message when v2, else as content.
func newBody(p part, bt buttons, v2 bool) *messageBody {
	if v2 {
		return &messageBody{Flags: discordgo.MessageFlagsIsComponentsV2, Components: containerOf(p, bt),
			AllowedMentions: noMentions()}
	}
	text := p.text()
	return &messageBody{Content: &text, Components: rowOf(bt.list()), AllowedMentions: noMentions()}
}

// rowOf is the action row of a content message's buttons, or none.
func rowOf(bs []discordgo.MessageComponent) []discordgo.MessageComponent {
	if len(bs) == 0 {
		return []discordgo.MessageComponent{}
	}
	return []discordgo.MessageComponent{discordgo.ActionsRow{Components: bs}}
}

// containerOf is part p as Components V2: one container holding a text
// display each for the reasoning, the answer and the status line (those
// not empty), a divider under the reasoning, and the buttons' row. That
// is at most 7 components of the 40 Discord allows, and the text
// displays' characters add up to p.text()'s less its line breaks.
func containerOf(p part, bt buttons) []discordgo.MessageComponent {
	var in []discordgo.MessageComponent
	if p.reasoning != "" {
		in = append(in, discordgo.TextDisplay{Content: p.reasoning})
		if p.body != "" {
			divider, small := true, discordgo.SeparatorSpacingSizeSmall
			in = append(in, discordgo.Separator{Divider: &divider, Spacing: &small})
		}
	}
	if p.body != "" {
		in = append(in, discordgo.TextDisplay{Content: p.body})
	}
	if p.status != "" {
		in = append(in, discordgo.TextDisplay{Content: p.status})
	}
	if bs := bt.list(); len(bs) > 0 {
		in = append(in, discordgo.ActionsRow{Components: bs})
	}
	return []discordgo.MessageComponent{discordgo.Container{Components: in}}
}

// withoutButton is a message's components less the buttons whose custom
// id drop reports true, and less the rows they leave empty; containers
// keep their other components.
func withoutButton(comps []discordgo.MessageComponent, drop func(customID string) bool) []discordgo.MessageComponent {
	out := []discordgo.MessageComponent{}
	for _, c := range comps {
		switch x := c.(type) {
		case *discordgo.Button:
			if drop(x.CustomID) {
				continue
			}
		case discordgo.Button:
			if drop(x.CustomID) {
				continue
			}
		case *discordgo.ActionsRow:
			row := *x
			if row.Components = withoutButton(x.Components, drop); len(row.Components) == 0 {
				continue
			}
			c = row
		case discordgo.ActionsRow:
			if x.Components = withoutButton(x.Components, drop); len(x.Components) == 0 {
				continue
			}
			c = x
		case *discordgo.Container:
			box := *x
			box.Components = withoutButton(x.Components, drop)
			c = box
		case discordgo.Container:
			x.Components = withoutButton(x.Components, drop)
			c = x
		}
		out = append(out, c)
	}
	return out
}

// ourButton reports whether a custom id is one of the Bot's answer
// buttons.
func ourButton(customID string) bool {
	return customID == stopID || strings.HasPrefix(customID, retryPrefix)
}

// isV2 reports whether a message was made with IS_COMPONENTS_V2.
func isV2(m *discordgo.Message) bool {
	return m != nil && m.Flags&discordgo.MessageFlagsIsComponentsV2 != 0
}

// withoutButtons is the body that edits m into itself less the buttons
// drop picks, keeping its text and its kind (Components V2 or content).
func withoutButtons(m *discordgo.Message, drop func(customID string) bool) *messageBody {
	comps := withoutButton(m.Components, drop)
	if isV2(m) {
		return &messageBody{Flags: discordgo.MessageFlagsIsComponentsV2, Components: comps, AllowedMentions: noMentions()}
	}
	content := m.Content
	if content == "" {
		content = "(stopped)"
	}
	return &messageBody{Content: &content, Components: comps, AllowedMentions: noMentions()}
}

// useV2 reports whether the Bot makes new messages with Components V2.
func (b *Bot) useV2() bool {
	return b.opts.Components != ComponentsLegacy && !b.v2Refused.Load()
}

// refusedV2 reports whether err is Discord refusing a message made with
// IS_COMPONENTS_V2 (a 400) while the Bot may fall back; it then makes
// new messages with content from now on, saying so once.
func (b *Bot) refusedV2(err error) bool {
	if b.opts.Components == ComponentsV2 || !badRequest(err) {
		return false
	}
	if !b.v2Refused.Swap(true) {
		b.log.Warn("Discord refused a Components V2 message; answers are plain messages of up to 2000 characters from now on "+
			"(set discord.components to legacy to skip the attempt)", "error", err)
	}
	return true
}

// checkComponents validates Options.Components, "" meaning auto.
func checkComponents(mode string) (string, error) {
	switch mode {
	case "":
		return ComponentsAuto, nil
	case ComponentsAuto, ComponentsV2, ComponentsLegacy:
		return mode, nil
	}
	return "", fmt.Errorf("discord: components %q: want %s, %s or %s", mode, ComponentsAuto, ComponentsV2, ComponentsLegacy)
}
