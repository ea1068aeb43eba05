package llm

import "strings"

// applyTags sets the capabilities a provider's model tags state. Tags are
// compared ignoring case, with '-' and '_' alike: "vision" sets Vision;
// "tools", "tool_calling", "tool_use" and "function_calling" set Tools;
// "reasoning", "reasoning_effort" and "thinking" set Reasoning. Other tags
// are ignored, and no tag clears a capability.
func (m *Model) applyTags(tags []string) {
	for _, t := range tags {
		switch strings.ReplaceAll(strings.ToLower(t), "-", "_") {
		case "vision":
			m.Vision = true
		case "tools", "tool_calling", "tool_use", "function_calling":
			m.Tools = true
		case "reasoning", "reasoning_effort", "thinking":
			m.Reasoning = true
		}
	}
}
