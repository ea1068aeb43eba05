package sessions

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm"
)

// promptImage is a stored 1568×1176 image named by n (in its hash).
func promptImage(n int) Image {
	return Image{SHA256: fmt.Sprintf("%064d", n), MIME: "image/jpeg", Size: 100, Width: 1568, Height: 1176}
}

// loadAll reads every image as its number; loadNot2 fails for image 2.
func loadAll(im Image) (llm.Image, bool) {
	return llm.Image{MIME: im.MIME, Data: []byte(strings.TrimLeft(im.SHA256, "0"))}, true
}

func loadNot2(im Image) (llm.Image, bool) {
	if im.SHA256 == promptImage(2).SHA256 {
		return llm.Image{}, false
	}
	return loadAll(im)
}

// shown describes the messages: "role:text" and "+N" for each image
// sent, by name.
func shown(msgs []llm.Message) []string {
	var out []string
	for _, m := range msgs {
		s := m.Role[:1] + ":" + m.Content
		for _, im := range m.Images {
			s += " +" + string(im.Data)
		}
		out = append(out, s)
	}
	return out
}

func TestBuildPrompt_Images(t *testing.T) {
	user := func(text string, ims ...int) Entry {
		e := Entry{Role: llm.RoleUser, Text: text}
		for _, n := range ims {
			e.Images = append(e.Images, promptImage(n))
		}
		return e
	}
	answer := Entry{Role: llm.RoleAssistant, Text: "ok", Reasoning: "never sent"}
	history := []Entry{user("a", 1), answer, user("b", 2, 3), answer, user("", 4)}
	tests := []struct {
		name      string
		images    func(Image) (llm.Image, bool)
		maxImages int
		budget    int
		want      []string
	}{
		{"AllFit", loadAll, 5, 100000, []string{"u:a +1", "a:ok", "u:b +2 +3", "a:ok", "u: +4"}},
		{"NewestKept", loadAll, 2, 100000, []string{"u:a\n\n[image]", "a:ok", "u:b\n\n[image] +2", "a:ok", "u: +4"}},
		{"NoVision", nil, 5, 100000, []string{"u:a\n\n[image]", "a:ok", "u:b\n\n[image] [image]", "a:ok", "u:[image]"}},
		{"Unreadable", loadNot2, 5, 100000, []string{"u:a +1", "a:ok", "u:b\n\n[image] +3", "a:ok", "u: +4"}},
		// Three images fit the budget (2,459 tokens each), not four: the
		// oldest turn goes.
		{"Budget", loadAll, 5, 4*2459 - 100, []string{"u:b +2 +3", "a:ok", "u: +4"}},
		{"BudgetNoVision", nil, 5, 40, []string{"u:b\n\n[image] [image]", "a:ok", "u:[image]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shown(buildPrompt(promptInput{history: history, budget: tt.budget, images: tt.images, maxImages: tt.maxImages}))
			if !slices.Equal(got, tt.want) {
				t.Errorf("prompt = %q\nwant      %q", got, tt.want)
			}
		})
	}
}

func TestModelText(t *testing.T) {
	e := Entry{Role: llm.RoleUser, Text: "look", Inline: "File: a.txt\n```\nhi\n```",
		Images:      []Image{promptImage(1)},
		Attachments: []Attachment{{Kind: KindVoice, Ref: "v"}, {Kind: KindFile, Name: "b.pdf", Ref: "b"}, {Kind: KindImage, Ref: "s", Unsupported: "stickers"}}}
	want := "look\n\nFile: a.txt\n```\nhi\n```\n\n[image]\n\n[voice message, not transcribed]\n\n[file b.pdf, not read]\n\n[stickers: not readable]"
	if got := modelText(e, 1); got != want {
		t.Errorf("modelText = %q\nwant %q", got, want)
	}
	if got := imageTokens(promptImage(1)); got != 2459 {
		t.Errorf("imageTokens(1568×1176) = %d, want 2459", got)
	}
	if got := imageTokens(Image{}); got != 3279 {
		t.Errorf("imageTokens(unknown size) = %d, want 3279", got)
	}
}

func TestMatchVision(t *testing.T) {
	globs := []string{"*vision*", "*-vl-*", "ollama/llava*"}
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"deepinfra/meta-llama/Llama-3.2-11B-Vision-Instruct", true},
		{"deepinfra/Qwen/Qwen2.5-VL-32B-Instruct", true},
		{"ollama/llava:13b", true},
		{"OLLAMA/LLAVA", true},
		{"other/llava", false},
		{"deepinfra/deepseek-ai/DeepSeek-V3", false},
	} {
		if got := matchVision(globs, tt.name); got != tt.want {
			t.Errorf("matchVision(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
