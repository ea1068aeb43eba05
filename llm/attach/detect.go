package attach

import (
	"bytes"
	"mime"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
)

// kind is what Prepare does with a file.
type kind int

const (
	kindImage kind = iota + 1
	kindText
	kindPDF
	kindAudio
)

// fileType is what detect found: the kind, the MIME type, and for text
// files a description and a fence language for the model.
type fileType struct {
	kind kind
	mime string
	// desc names text files for the model: "Go source", "CSV".
	desc string
	// lang is the fenced block's info string: "go", "csv"; may be "".
	lang string
}

// detect finds what data is from its bytes, using the declared MIME type
// and the file name's extension where the bytes do not settle it (text and
// code files, audio in a container that may hold video).
func detect(in Input) (fileType, error) {
	ext := strings.ToLower(path.Ext(in.Name))
	declared, _, _ := mime.ParseMediaType(in.MIME)
	declared = strings.ToLower(declared)
	m := mimetype.Detect(in.Data)
	sniffed := m.String()
	if i := strings.IndexByte(sniffed, ';'); i >= 0 {
		sniffed = sniffed[:i]
	}

	if kindName, ok := refusedExt[ext]; ok {
		return fileType{}, &UnsupportedError{Kind: kindName, MIME: sniffed}
	}
	switch sniffed {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
		return fileType{kind: kindImage, mime: sniffed}, nil
	case "application/pdf":
		return fileType{kind: kindPDF, mime: sniffed, desc: "PDF"}, nil
	case "audio/mpeg", "audio/ogg", "audio/wav", "audio/flac", "audio/x-m4a", "audio/mp4":
		return fileType{kind: kindAudio, mime: sniffed}, nil
	case "video/webm", "video/mp4", "application/ogg", "video/ogg":
		// Containers that hold sound alone as often as video: a voice
		// message recorded in a browser, a round video note.
		if in.AsAudio || strings.HasPrefix(declared, "audio/") || audioExt[ext] {
			return fileType{kind: kindAudio, mime: sniffed}, nil
		}
	}
	for t := m; t != nil; t = t.Parent() {
		if name, ok := refusedMIME[t.String()]; ok {
			return fileType{}, &UnsupportedError{Kind: name, MIME: sniffed}
		}
	}
	switch top, _, _ := strings.Cut(sniffed, "/"); top {
	case "image":
		if sniffed != "image/svg+xml" {
			return fileType{}, &UnsupportedError{Kind: strings.ToUpper(strings.TrimPrefix(m.Extension(), ".")) + " image", MIME: sniffed}
		}
	case "video":
		return fileType{}, &UnsupportedError{Kind: "video", MIME: sniffed}
	case "audio":
		return fileType{}, &UnsupportedError{Kind: "audio format " + strings.TrimPrefix(m.Extension(), "."), MIME: sniffed}
	}
	// mimetype's text/plain has checked the bytes; a name or a declared
	// type alone needs a look at them.
	if t, ok := textType(in.Name, ext, declared, m); ok && (isText(m) || looksLikeText(in.Data)) {
		return t, nil
	}
	return fileType{}, &UnsupportedError{Kind: "binary file", MIME: sniffed}
}

// textType says whether a file is text, and which: by its name first (a
// ".go" file is Go source even where its bytes sniff as plain text), then by
// the declared type, then by its bytes.
func textType(name, ext, declared string, m *mimetype.MIME) (fileType, bool) {
	base := strings.ToLower(path.Base(name))
	if t, ok := textNames[base]; ok {
		return fileType{kind: kindText, mime: "text/plain", desc: t.desc, lang: t.lang}, true
	}
	if t, ok := textExts[ext]; ok {
		return fileType{kind: kindText, mime: "text/plain", desc: t.desc, lang: t.lang}, true
	}
	for _, mt := range []string{declared, m.String()} {
		if i := strings.IndexByte(mt, ';'); i >= 0 {
			mt = mt[:i]
		}
		if t, ok := textMIMEs[mt]; ok {
			return fileType{kind: kindText, mime: mt, desc: t.desc, lang: t.lang}, true
		}
		if strings.HasPrefix(mt, "text/") {
			return fileType{kind: kindText, mime: mt, desc: "text", lang: ""}, true
		}
	}
	if isText(m) {
		return fileType{kind: kindText, mime: "text/plain", desc: "text"}, true
	}
	return fileType{}, false
}

// isText reports whether mimetype found text: text/plain or a type under it.
func isText(m *mimetype.MIME) bool {
	for t := m; t != nil; t = t.Parent() {
		if t.Is("text/plain") {
			return true
		}
	}
	return false
}

// looksLikeText reports whether data reads as text: a UTF-16 byte order
// mark, or no NUL byte and at most one byte in ten outside UTF-8 text in
// the first 8 KiB.
func looksLikeText(data []byte) bool {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return true
	}
	head := data[:min(len(data), 8<<10)]
	if bytes.IndexByte(head, 0) >= 0 {
		return false
	}
	bad := 0
	for i := 0; i < len(head); {
		r, size := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && size == 1 && len(head)-i >= utf8.UTFMax ||
			r < ' ' && r != '\t' && r != '\n' && r != '\r' && r != '\f' && r != '\v' && r != 0x1b {
			bad++
		}
		i += size
	}
	return bad*10 <= len(head)
}

// audioExt lists the extensions of audio files whose container may also
// hold video.
var audioExt = map[string]bool{
	".ogg": true, ".oga": true, ".opus": true, ".weba": true,
	".m4a": true, ".mp3": true, ".wav": true, ".flac": true,
}

// refusedExt names kinds refused by their extension alone, whatever their
// bytes are.
var refusedExt = map[string]string{
	".tgs": "animated sticker",
	".exe": "program",
	".dll": "program",
	".msi": "installer",
	".apk": "Android app",
	".dmg": "disk image",
	".iso": "disk image",
}

// refusedMIME names the kinds of common files Palaver does not read, by
// their MIME type or that of a parent in mimetype's tree.
var refusedMIME = map[string]string{
	"application/zip":              "ZIP archive",
	"application/gzip":             "gzip archive",
	"application/x-tar":            "tar archive",
	"application/x-7z-compressed":  "7-Zip archive",
	"application/x-rar-compressed": "RAR archive",
	"application/x-xz":             "xz archive",
	"application/x-bzip2":          "bzip2 archive",
	"application/zstd":             "zstd archive",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   "Word document",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         "Excel spreadsheet",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint presentation",
	"application/vnd.oasis.opendocument.text":                                   "OpenDocument text",
	"application/vnd.oasis.opendocument.spreadsheet":                            "OpenDocument spreadsheet",
	"application/msword":                            "Word document",
	"application/vnd.ms-excel":                      "Excel spreadsheet",
	"application/vnd.ms-powerpoint":                 "PowerPoint presentation",
	"application/epub+zip":                          "e-book",
	"application/x-ole-storage":                     "Office document",
	"application/x-elf":                             "program",
	"application/x-mach-binary":                     "program",
	"application/vnd.microsoft.portable-executable": "program",
	"application/wasm":                              "program",
	"application/x-java-applet":                     "program",
	"application/x-sqlite3":                         "database",
	"font/ttf":                                      "font",
	"font/otf":                                      "font",
	"font/woff":                                     "font",
	"font/woff2":                                    "font",
	"image/heic":                                    "HEIC image",
	"image/heif":                                    "HEIF image",
	"image/avif":                                    "AVIF image",
}

type textInfo struct{ desc, lang string }

// textNames are text files known by their whole name.
var textNames = map[string]textInfo{
	"dockerfile":     {"Dockerfile", "dockerfile"},
	"makefile":       {"Makefile", "makefile"},
	"gnumakefile":    {"Makefile", "makefile"},
	"go.mod":         {"Go module file", ""},
	"go.sum":         {"Go checksums", ""},
	"cmakelists.txt": {"CMake file", "cmake"},
	"license":        {"license", ""},
	"readme":         {"README", ""},
	".gitignore":     {"gitignore", "gitignore"},
	".env":           {"environment file", "sh"},
}

// textExts are text and source files known by their extension.
var textExts = map[string]textInfo{
	".txt": {"plain text", ""}, ".text": {"plain text", ""}, ".log": {"log", ""},
	".md": {"Markdown", "markdown"}, ".markdown": {"Markdown", "markdown"}, ".rst": {"reStructuredText", "rst"},
	".json": {"JSON", "json"}, ".jsonl": {"JSON Lines", "json"}, ".ndjson": {"JSON Lines", "json"},
	".csv": {"CSV", "csv"}, ".tsv": {"TSV", "tsv"},
	".yaml": {"YAML", "yaml"}, ".yml": {"YAML", "yaml"}, ".toml": {"TOML", "toml"},
	".ini": {"INI file", "ini"}, ".cfg": {"config file", "ini"}, ".conf": {"config file", ""},
	".xml": {"XML", "xml"}, ".html": {"HTML", "html"}, ".htm": {"HTML", "html"}, ".svg": {"SVG image (XML)", "xml"},
	".css": {"CSS", "css"}, ".scss": {"SCSS", "scss"},
	".go": {"Go source", "go"}, ".py": {"Python source", "python"}, ".ipynb": {"Jupyter notebook (JSON)", "json"},
	".js": {"JavaScript source", "javascript"}, ".mjs": {"JavaScript source", "javascript"}, ".jsx": {"JSX source", "jsx"},
	".ts": {"TypeScript source", "typescript"}, ".tsx": {"TSX source", "tsx"},
	".java": {"Java source", "java"}, ".kt": {"Kotlin source", "kotlin"}, ".scala": {"Scala source", "scala"},
	".c": {"C source", "c"}, ".h": {"C header", "c"}, ".cc": {"C++ source", "cpp"}, ".cpp": {"C++ source", "cpp"},
	".hpp": {"C++ header", "cpp"}, ".cs": {"C# source", "csharp"}, ".rs": {"Rust source", "rust"},
	".rb": {"Ruby source", "ruby"}, ".php": {"PHP source", "php"}, ".swift": {"Swift source", "swift"},
	".m": {"Objective-C source", "objectivec"}, ".dart": {"Dart source", "dart"}, ".lua": {"Lua source", "lua"},
	".pl": {"Perl source", "perl"}, ".r": {"R source", "r"}, ".jl": {"Julia source", "julia"},
	".hs": {"Haskell source", "haskell"}, ".ex": {"Elixir source", "elixir"}, ".exs": {"Elixir source", "elixir"},
	".erl": {"Erlang source", "erlang"}, ".clj": {"Clojure source", "clojure"}, ".zig": {"Zig source", "zig"},
	".sh": {"shell script", "sh"}, ".bash": {"shell script", "bash"}, ".zsh": {"shell script", "zsh"},
	".fish": {"fish script", "fish"}, ".ps1": {"PowerShell script", "powershell"}, ".bat": {"batch file", "bat"},
	".sql": {"SQL", "sql"}, ".graphql": {"GraphQL", "graphql"}, ".proto": {"Protocol Buffers", "protobuf"},
	".tf": {"Terraform", "hcl"}, ".hcl": {"HCL", "hcl"}, ".nix": {"Nix", "nix"},
	".vue": {"Vue component", "vue"}, ".svelte": {"Svelte component", "svelte"},
	".tex": {"LaTeX", "latex"}, ".bib": {"BibTeX", "bibtex"}, ".srt": {"subtitles", "srt"}, ".vtt": {"subtitles", "vtt"},
	".diff": {"diff", "diff"}, ".patch": {"patch", "diff"}, ".ics": {"calendar", ""}, ".vcf": {"vCard", ""},
}

// textMIMEs are text types known by their MIME type.
var textMIMEs = map[string]textInfo{
	"application/json":          {"JSON", "json"},
	"application/x-ndjson":      {"JSON Lines", "json"},
	"text/csv":                  {"CSV", "csv"},
	"text/tab-separated-values": {"TSV", "tsv"},
	"text/markdown":             {"Markdown", "markdown"},
	"application/yaml":          {"YAML", "yaml"},
	"application/x-yaml":        {"YAML", "yaml"},
	"text/yaml":                 {"YAML", "yaml"},
	"application/xml":           {"XML", "xml"},
	"text/xml":                  {"XML", "xml"},
	"text/html":                 {"HTML", "html"},
	"image/svg+xml":             {"SVG image (XML)", "xml"},
	"application/javascript":    {"JavaScript source", "javascript"},
	"text/javascript":           {"JavaScript source", "javascript"},
	"text/x-python":             {"Python source", "python"},
	"text/x-php":                {"PHP source", "php"},
	"text/x-shellscript":        {"shell script", "sh"},
	"application/x-sh":          {"shell script", "sh"},
	"application/toml":          {"TOML", "toml"},
	"application/sql":           {"SQL", "sql"},
	"text/plain":                {"plain text", ""},
}

// Check refuses, before a download, a file that Prepare would refuse for
// what the platform says of it: a size over l.MaxFileBytes (a size of 0 or
// less is taken as unknown), an extension refused whatever the bytes
// (".tgs" animated stickers, programs), or a declared video, unless
// asAudio says that its sound is wanted (see Input.AsAudio). The bytes
// still decide in Prepare.
func (l Limits) Check(name, mimeType string, size int64, asAudio bool) error {
	l = l.withDefaults()
	if size > l.MaxFileBytes {
		return &TooLargeError{Size: size, Limit: l.MaxFileBytes}
	}
	if kind, ok := refusedExt[strings.ToLower(path.Ext(name))]; ok {
		return &UnsupportedError{Kind: kind, MIME: mimeType}
	}
	declared, _, _ := mime.ParseMediaType(mimeType)
	if strings.HasPrefix(strings.ToLower(declared), "video/") && !asAudio {
		return &UnsupportedError{Kind: "video", MIME: declared}
	}
	return nil
}
