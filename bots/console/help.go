package console

import "strings"

// help is the command list in Markdown; in a terminal, with its keys.
func help(terminal bool) string {
	lines := []string{
		"**Palaver** answers with a large language model. Type a message and press Enter.",
		"",
		"- `/model [name]` — show or choose the model",
		"- `/models` — list the models you can choose",
		"- `/system [prompt]` — show or set the system prompt (`/system clear` for the default)",
		"- `/reset` — forget this conversation's history",
		"- `/retry` — answer the last message again",
		"- `/stop` — stop the answer in progress",
		"- `/settings` — show this conversation's settings",
		"- `/usage` — the tokens you used today and this month, per model, and what they cost",
		"- `/attach PATH` — a picture, text file, PDF or recording to send with your next message",
		"- `/help` — this list",
		"- `/quit` — leave",
	}
	if terminal {
		lines = append(lines,
			"",
			"Keys:",
			"",
			"- **Enter** sends; **Alt-Enter** or **Ctrl-J** starts a new line (so does Enter after a `\\`)",
			"- a paste is one message, however many lines it has",
			"- **↑ ↓** recall earlier messages",
			"- **Ctrl-A**/**Ctrl-E** go to the start/end of the line, **Ctrl-W** deletes a word, **Ctrl-U** the line before the cursor",
			"- **Ctrl-L** clears the screen",
			"- **Ctrl-C** stops an answer or clears the input; twice at an empty prompt it leaves, as **Ctrl-D** does",
			"- what you send while an answer is written waits for its end (`/stop` and `/quit` act at once)",
		)
	}
	return strings.Join(lines, "\n")
}
