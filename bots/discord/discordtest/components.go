package discordtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Component types (Discord's numbering, docs/components/reference).
const (
	typeActionRow         = 1
	typeButton            = 2
	typeStringSelect      = 3
	typeUserSelect        = 5
	typeRoleSelect        = 6
	typeMentionableSelect = 7
	typeChannelSelect     = 8
	typeSection           = 9
	typeTextDisplay       = 10
	typeThumbnail         = 11
	typeMediaGallery      = 12
	typeFile              = 13
	typeSeparator         = 14
	typeContainer         = 17
)

// Limits of a Components V2 message (FlagComponentsV2): at most 40
// components counting nested ones, and at most 4000 characters across its
// text displays (where a message's content allows 2000).
const (
	MaxComponentsV2   = 40
	MaxTextDisplaysV2 = 4000
	MaxSectionTexts   = 3
)

// legacyFieldsV2 is Discord's refusal of content or embeds in a message
// with FlagComponentsV2.
const legacyFieldsV2 = "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"

var (
	// topLevelV2 are the types a V2 message's components may have.
	topLevelV2 = []int{typeActionRow, typeSection, typeTextDisplay, typeMediaGallery, typeFile, typeSeparator, typeContainer}
	// inContainer are the types a container's components may have.
	inContainer = []int{typeActionRow, typeTextDisplay, typeSection, typeMediaGallery, typeSeparator, typeFile}
	selects     = []int{typeStringSelect, typeUserSelect, typeRoleSelect, typeMentionableSelect, typeChannelSelect}
)

// componentV2 is any component as a V2 message carries it.
type componentV2 struct {
	Type       int             `json:"type"`
	CustomID   string          `json:"custom_id"`
	Label      string          `json:"label"`
	Style      int             `json:"style"`
	URL        string          `json:"url"`
	Content    *string         `json:"content"`
	Spacing    *int            `json:"spacing"`
	Components []componentV2   `json:"components"`
	Accessory  *componentV2    `json:"accessory"`
	Items      json.RawMessage `json:"items"`
}

// v2Check walks a V2 component tree, counting components and text.
type v2Check struct {
	errs  formErrors
	count int
	text  int
	seen  map[string]bool
}

// validateComponentsV2 checks the components of a V2 message: the types
// allowed where they are, the shape of rows, sections and buttons, unique
// custom ids, at most MaxComponentsV2 components and MaxTextDisplaysV2
// characters of text. The two totals are reported on "components" with
// the fake's own wording: Discord documents the limits, not the error.
func validateComponentsV2(raw json.RawMessage, errs formErrors) {
	var top []componentV2
	if err := json.Unmarshal(raw, &top); err != nil {
		errs.add("MODEL_TYPE_CONVERT", "Only iterables may be used in a ListType", "components")
		return
	}
	c := &v2Check{errs: errs, seen: map[string]bool{}}
	for i, comp := range top {
		c.component(comp, topLevelV2, "components", fmt.Sprint(i))
	}
	if c.count > MaxComponentsV2 {
		errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxComponentsV2), "components")
	}
	if c.text > MaxTextDisplaysV2 {
		errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxTextDisplaysV2), "components")
	}
}

func (c *v2Check) component(comp componentV2, allowed []int, path ...string) {
	c.count++
	if !slices.Contains(allowed, comp.Type) {
		c.errs.add("UNION_TYPE_CHOICES", fmt.Sprintf("Value of field \"type\" must be one of %v.", allowed), append(path, "type")...)
		return
	}
	sub := func(i int, rest ...string) []string {
		return append(slices.Clone(path), append(rest, fmt.Sprint(i))...)
	}
	switch comp.Type {
	case typeContainer:
		for i, child := range comp.Components {
			c.component(child, inContainer, sub(i, "components")...)
		}
	case typeActionRow:
		n := len(comp.Components)
		if n == 0 || n > MaxRowComponents {
			c.errs.add("BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between 1 and %d in length.", MaxRowComponents), append(path, "components")...)
			return
		}
		for i, child := range comp.Components {
			if slices.Contains(selects, child.Type) && n > 1 {
				c.errs.add("COMPONENT_LAYOUT_WIDTH_EXCEEDED", "The specified component exceeds the maximum width", sub(i, "components")...)
			}
			c.component(child, append([]int{typeButton}, selects...), sub(i, "components")...)
		}
	case typeSection:
		if n := len(comp.Components); n < 1 || n > MaxSectionTexts {
			c.errs.add("BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between 1 and %d in length.", MaxSectionTexts), append(path, "components")...)
		}
		for i, child := range comp.Components {
			c.component(child, []int{typeTextDisplay}, sub(i, "components")...)
		}
		if comp.Accessory == nil {
			c.errs.add("BASE_TYPE_REQUIRED", "This field is required", append(path, "accessory")...)
		} else {
			c.component(*comp.Accessory, []int{typeButton, typeThumbnail}, append(slices.Clone(path), "accessory")...)
		}
	case typeTextDisplay:
		if comp.Content == nil || *comp.Content == "" {
			c.errs.add("BASE_TYPE_REQUIRED", "This field is required", append(path, "content")...)
			return
		}
		c.text += utf8.RuneCountInString(*comp.Content)
	case typeSeparator:
		if comp.Spacing != nil && *comp.Spacing != 1 && *comp.Spacing != 2 {
			c.errs.add("BASE_TYPE_CHOICES", "Value must be one of (1, 2).", append(path, "spacing")...)
		}
	case typeButton:
		c.button(comp, path)
	}
}

// button checks a button as validateComponents does for legacy rows.
func (c *v2Check) button(b componentV2, path []string) {
	if b.Style == 5 {
		if b.URL == "" {
			c.errs.add("BASE_TYPE_REQUIRED", "This field is required", append(path, "url")...)
		}
	} else if b.CustomID == "" {
		c.errs.add("BASE_TYPE_REQUIRED", "This field is required", append(path, "custom_id")...)
	}
	if utf8.RuneCountInString(b.CustomID) > MaxCustomID {
		c.errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxCustomID), append(path, "custom_id")...)
	}
	if utf8.RuneCountInString(b.Label) > MaxButtonLabel {
		c.errs.add("BASE_TYPE_MAX_LENGTH", tooLong(MaxButtonLabel), append(path, "label")...)
	}
	if b.CustomID != "" {
		if c.seen[b.CustomID] {
			c.errs.add("COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated", append(path, "custom_id")...)
		}
		c.seen[b.CustomID] = true
	}
}
