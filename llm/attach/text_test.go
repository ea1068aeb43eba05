package attach

import (
	"context"
	"strings"
	"testing"
	"unicode/utf16"
)

func prepareTextT(t *testing.T, in Input, lim Limits) *Text {
	t.Helper()
	part, err := Prepare(context.Background(), in, lim)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	txt, ok := part.(*Text)
	if !ok {
		t.Fatalf("Prepare gave %T, want *Text", part)
	}
	return txt
}

func utf16Bytes(s string, bigEndian bool) []byte {
	out := []byte{0xFF, 0xFE}
	if bigEndian {
		out = []byte{0xFE, 0xFF}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if bigEndian {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

func TestPrepare_Text(t *testing.T) {
	tests := []struct {
		name  string
		in    Input
		block string
		notes []string
	}{
		{"Go", Input{Name: "main.go", Data: []byte("package main\n\nfunc main() {}\n")},
			"File: main.go (Go source, 29 bytes)\n```go\npackage main\n\nfunc main() {}\n```\n", nil},
		{"DeclaredJSON", Input{Name: "data", MIME: "application/json", Data: []byte(`{"a": 1}`)},
			"File: data (JSON, 8 bytes)\n```json\n{\"a\": 1}\n```\n", nil},
		{"SniffedCSV", Input{Data: []byte("name,age\nann,3\nbob,4\n")},
			"File: untitled (CSV, 21 bytes)\n```csv\nname,age\nann,3\nbob,4\n```\n", nil},
		{"Markdown", Input{Name: "README.md", MIME: "application/octet-stream", Data: []byte("# Title\n")},
			"File: README.md (Markdown, 8 bytes)\n```markdown\n# Title\n```\n", nil},
		{"Dockerfile", Input{Name: "Dockerfile", Data: []byte("FROM scratch\n")},
			"File: Dockerfile (Dockerfile, 13 bytes)\n```dockerfile\nFROM scratch\n```\n", nil},
		{"Log", Input{Name: "server.log", MIME: "text/plain", Data: []byte("12:00 started\n")},
			"File: server.log (log, 14 bytes)\n```\n12:00 started\n```\n", nil},
		{"Fences", Input{Name: "doc.md", Data: []byte("```go\nx\n```\n")},
			"File: doc.md (Markdown, 12 bytes)\n````markdown\n```go\nx\n```\n````\n", nil},
		{"UTF8BOM", Input{Name: "a.txt", Data: []byte("\xEF\xBB\xBFhé")},
			"File: a.txt (plain text, 6 bytes)\n```\nhé\n```\n", nil},
		{"UTF16LE", Input{Name: "a.txt", Data: utf16Bytes("héllo 😀", false)},
			"File: a.txt (plain text, 18 bytes)\n```\nhéllo 😀\n```\n", nil},
		{"UTF16BE", Input{Name: "a.csv", Data: utf16Bytes("x,y\n1,2\n", true)},
			"File: a.csv (CSV, 18 bytes)\n```csv\nx,y\n1,2\n```\n", nil},
		{"InvalidUTF8", Input{Name: "latin1.txt", Data: []byte("caf\xe9 cr\xe8me\n")},
			"File: latin1.txt (plain text, 11 bytes)\n[the file is not valid UTF-8: 2 invalid bytes were replaced with U+FFFD (�)]\n```\ncaf� cr�me\n```\n",
			[]string{"the file is not valid UTF-8: 2 invalid bytes were replaced with U+FFFD (�)"}},
		{"NameWithNewline", Input{Name: "evil\n```\nname.txt", Data: []byte("x")},
			"File: evil ``` name.txt (plain text, 1 byte)\n```\nx\n```\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txt := prepareTextT(t, tt.in, Limits{})
			if txt.Block != tt.block {
				t.Errorf("block:\n%s\nwant:\n%s", txt.Block, tt.block)
			}
			if strings.Join(txt.Notes, "|") != strings.Join(tt.notes, "|") {
				t.Errorf("notes = %q, want %q", txt.Notes, tt.notes)
			}
		})
	}
}

func TestPrepare_TextTruncated(t *testing.T) {
	data := []byte(strings.Repeat("ab€\n", 308_642) + "abc") // 1,234,571 characters
	txt := prepareTextT(t, Input{Name: "big.txt", Data: data}, Limits{MaxTextChars: 20_000})
	want := "truncated: the file has 1,234,571 characters; the first 20,000 are shown"
	if len(txt.Notes) != 1 || txt.Notes[0] != want {
		t.Fatalf("notes = %q, want [%q]", txt.Notes, want)
	}
	if !strings.Contains(txt.Block, "["+want+"]\n") {
		t.Errorf("block lacks the note")
	}
	if txt.Chars != 1_234_571 || txt.Shown != 20_000 {
		t.Errorf("Chars, Shown = %d, %d, want 1234571, 20000", txt.Chars, txt.Shown)
	}
	body := txt.Block[strings.Index(txt.Block, "```\n")+4 : strings.LastIndex(txt.Block, "```")]
	if got := len([]rune(body)); got != 20_000 {
		t.Errorf("body has %d characters, want 20,000", got)
	}
}

func TestFormat(t *testing.T) {
	bytesTests := map[int64]string{0: "0 bytes", 1: "1 byte", 1023: "1023 bytes", 1024: "1 KB", 12 << 10: "12 KB",
		20 << 20: "20 MB", 50 << 20: "50 MB", 4_900_000: "4.7 MB"}
	for n, want := range bytesTests {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	countTests := map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -20000: "-20,000"}
	for n, want := range countTests {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}
