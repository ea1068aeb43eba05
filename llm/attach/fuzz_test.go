package attach

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"os"
	"testing"
	"time"
)

// fuzzLimits keep each fuzzed input cheap.
var fuzzLimits = Limits{MaxImagePixels: 1 << 20, MaxImageSide: 64, MaxPDFPages: 5, MaxTextChars: 2000, PDFTimeout: 2 * time.Second}

func FuzzPrepareImage(f *testing.F) {
	small := quadrants(40, 30)
	f.Add(encodeJPEG(small, 80))
	f.Add(withOrientation(encodeJPEG(small, 80), 6, binary.BigEndian))
	f.Add(encodePNG(f, small))
	f.Add(encodePNG(f, image.NewNRGBA(image.Rect(0, 0, 9, 7))))
	var g bytes.Buffer
	pal := image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.Black, color.Transparent})
	if err := gif.Encode(&g, pal, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(g.Bytes())
	for _, name := range []string{"testdata/blue-purple-pink.lossy.webp", "testdata/gopher-doc.with-alpha.lossless.webp"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		part, err := Prepare(context.Background(), Input{Data: data}, fuzzLimits)
		if err != nil {
			return
		}
		im, ok := part.(*Image)
		if !ok {
			return
		}
		m, _, err := image.Decode(bytes.NewReader(im.Data))
		if err != nil {
			t.Fatalf("prepared image does not decode: %v", err)
		}
		if b := m.Bounds(); b.Dx() != im.Width || b.Dy() != im.Height || max(im.Width, im.Height) > fuzzLimits.MaxImageSide {
			t.Fatalf("prepared image is %v, says %d×%d", b, im.Width, im.Height)
		}
	})
}

func FuzzPreparePDF(f *testing.F) {
	f.Add(fpdfDoc(f, []string{"Hello, wörld.", "Page two."}, "", ""))
	f.Add(fpdfDoc(f, []string{"Secret."}, "user", "owner"))
	f.Add(unicodePDF("Привет", "你好"))
	f.Add(rawPDF("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>", pdfStream("BT (Hi) Tj [(a) -300 (b)] TJ ET")))
	f.Fuzz(func(t *testing.T, data []byte) {
		part, err := Prepare(context.Background(), Input{Name: "f.pdf", Data: data}, fuzzLimits)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("extraction did not end within %v", fuzzLimits.PDFTimeout)
		}
		if txt, ok := part.(*Text); ok && txt.Shown > fuzzLimits.MaxTextChars {
			t.Fatalf("%d characters shown, limit %d", txt.Shown, fuzzLimits.MaxTextChars)
		}
	})
}

func FuzzJPEGOrientation(f *testing.F) {
	f.Add(withOrientation(encodeJPEG(quadrants(8, 8), 50), 8, binary.LittleEndian))
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := jpegOrientation(data); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}
