package telegramtest

import (
	"slices"
	"testing"
)

func TestParseHTML(t *testing.T) {
	tests := []struct {
		name, html, text string
		entities         []MessageEntity
	}{
		{"Plain", "a &lt; b &amp;&amp; c &gt; d &quot;", `a < b && c > d "`, nil},
		{"LiteralAmpersand", "AT&T &copy", "AT&T &copy", nil},
		{"Bold", "<b>hi</b> 😀<i>x</i>", "hi 😀x", []MessageEntity{{Type: "bold", Offset: 0, Length: 2}, {Type: "italic", Offset: 5, Length: 1}}},
		{"PreCode", `<pre><code class="language-go">x</code></pre>`, "x", []MessageEntity{{Type: "pre", Offset: 0, Length: 1, Language: "go"}}},
		{"Link", `<a href="https://e.com/?a=1&amp;b">t</a>`, "t", []MessageEntity{{Type: "text_link", Offset: 0, Length: 1, URL: "https://e.com/?a=1&b"}}},
		{"Expandable", "<blockquote expandable>q</blockquote>", "q", []MessageEntity{{Type: "expandable_blockquote", Offset: 0, Length: 1}}},
		{"Spoiler", `<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>`, "st", []MessageEntity{{Type: "spoiler", Offset: 0, Length: 1}, {Type: "spoiler", Offset: 1, Length: 1}}},
		{"EmptyEntityDropped", "<b></b>x", "x", nil},
		{"ShortEndTag", "<b>x</>", "x", []MessageEntity{{Type: "bold", Offset: 0, Length: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, ents, err := ParseHTML(tt.html)
			if err != nil {
				t.Fatalf("ParseHTML(%q): %v", tt.html, err)
			}
			if text != tt.text || !slices.Equal(ents, tt.entities) {
				t.Errorf("ParseHTML(%q) = %q %+v, want %q %+v", tt.html, text, ents, tt.text, tt.entities)
			}
		})
	}
}

func TestValidateHTML_Errors(t *testing.T) {
	tests := []struct{ html, want string }{
		{"<div>x</div>", `Unsupported start tag "div" at byte offset 0`},
		{"a < b", `Unsupported start tag "" at byte offset 2`},
		{"<b>x", "Can't find end tag corresponding to start tag b"},
		{"x</b>", "Unexpected end tag at byte offset 1"},
		{"<b>x</i>", `Unmatched end tag at byte offset 4, expected "</b>", found "</i>"`},
		{"<b", "Unclosed start tag at byte offset 0"},
		{"<b>x</b", "Unclosed end tag at byte offset 4"},
		{`<a href>x</a>`, `Expected equal sign in declaration of an attribute of the tag "a" at byte offset 0`},
		{`<span class="x">y</span>`, `Tag "span" must have class "tg-spoiler" at byte offset 0`},
		{"&#xD800;", "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units"},
		{"\xff", "text must be encoded in UTF-8"},
	}
	for _, tt := range tests {
		err := ValidateHTML(tt.html)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ValidateHTML(%q) = %v, want %q", tt.html, err, tt.want)
		}
	}
}
