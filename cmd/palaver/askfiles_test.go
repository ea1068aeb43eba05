package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palaver-bot/palaver/llm/llmtest"
)

// writePNG writes a w×h picture, red on the left half, to dir/name.
func writePNG(t *testing.T, dir, name string, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{0, 0, 255, 255}
			if x < w/2 {
				c = color.RGBA{255, 0, 0, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// palaver ask --image sends the picture, scaled, as an image part; --file
// sends a text file's text after the question.
func TestAsk_ImageAndFile(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	dir := t.TempDir()
	pic := writePNG(t, dir, "chart.png", 3000, 1000)
	notes := filepath.Join(dir, "notes.md")
	if err := os.WriteFile(notes, []byte("# Notes\nbuy milk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"ask", "--config", upstreamConfig(t, up.URL, ""), "--image", pic, "--file", notes, "what is this?"}
	if code := Main(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	imgs := reqs[0].Request.Images()
	if len(imgs) != 1 {
		t.Fatalf("%d images upstream, want 1", len(imgs))
	}
	m, _, err := image.Decode(bytes.NewReader(imgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if b := m.Bounds(); b.Dx() != 1568 || b.Dy() != 523 {
		t.Errorf("image upstream is %v, want 1568×523", b.Size())
	}
	if r, _, bl, _ := m.At(100, 200).RGBA(); r < 0xe000 || bl > 0x2000 {
		t.Errorf("left of the image is not red: %v", m.At(100, 200))
	}
	msgs := reqs[0].Request.Messages
	last := msgs[len(msgs)-1]
	if !strings.Contains(last.Content, "what is this?") || !strings.Contains(last.Content, "notes.md") || !strings.Contains(last.Content, "buy milk") {
		t.Errorf("question upstream = %q, want the question then the file", last.Content)
	}
}

// A file over chat.max_attachment_bytes is refused before it is read, with
// the limit named.
func TestAsk_FileTooLarge(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	big := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cfg := upstreamConfig(t, up.URL, "chat:\n  max_attachment_bytes: 2048\n")
	code := Main(t.Context(), []string{"ask", "--config", cfg, "--file", big, "summarise"}, strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "big.txt") || !strings.Contains(stderr.String(), "2 KB") {
		t.Errorf("exit %d, stderr %q: want 2 naming the file and the limit", code, stderr.String())
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d upstream requests, want none", n)
	}
}

// In palaver chat, /attach PATH sends the file with the next message: a
// picture reaches a vision model as an image part, a text file's text the
// model; a missing file is named without sending anything.
func TestMain_ChatAttach(t *testing.T) {
	up := llmtest.NewServer()
	t.Cleanup(up.Close)
	dir := t.TempDir()
	pic := writePNG(t, dir, "cat.png", 800, 600)
	cfg := upstreamConfig(t, up.URL, "  vision: [\"fake/*\"]\n") // continues the models section
	in := strings.NewReader("/attach " + filepath.Join(dir, "missing.png") + "\n/attach " + pic + "\nwhat is this?\n")
	var stdout, stderr bytes.Buffer
	if code := Main(t.Context(), []string{"chat", "--config", cfg, "--user", "tester"}, in, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "missing.png: no such file") || !strings.Contains(out, "cat.png (") {
		t.Errorf("chat output:\n%s", out)
	}
	var reqs []llmtest.Recorded
	for _, r := range up.Requests() {
		if strings.HasSuffix(r.Path, "/chat/completions") {
			reqs = append(reqs, r)
		}
	}
	if len(reqs) != 1 {
		t.Fatalf("%d chat requests, want 1\n%s", len(reqs), out)
	}
	imgs := reqs[0].Request.Images()
	if len(imgs) != 1 {
		t.Fatalf("%d images upstream, want 1", len(imgs))
	}
	m, _, err := image.Decode(bytes.NewReader(imgs[0].Data))
	if err != nil || m.Bounds().Dx() != 800 {
		t.Errorf("image upstream: %v %v", m.Bounds(), err)
	}
}
