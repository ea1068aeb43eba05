package attach

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// photo returns a w×h 4:2:0 YCbCr image with the detail of a photograph:
// smooth gradients, edges, and some noise.
func photo(w, h int) *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	r := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			v := (x*200)/w + (y*40)/h + r.IntN(16)
			if (x/97+y/89)%2 == 0 {
				v += 15
			}
			m.Y[y*m.YStride+x] = uint8(v)
		}
	}
	for y := range (h + 1) / 2 {
		for x := range (w + 1) / 2 {
			m.Cb[y*m.CStride+x] = uint8(96 + (x*64)/w + r.IntN(4))
			m.Cr[y*m.CStride+x] = uint8(160 - (y*64)/h + r.IntN(4))
		}
	}
	return m
}

// encodeJPEG encodes m, which the tests make valid: it panics on error.
func encodeJPEG(m image.Image, quality int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// quadrants returns a w×h image whose top-left quarter is red, top-right
// green, bottom-left blue and bottom-right white: turned or mirrored, it
// shows which way.
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			var c color.RGBA
			switch {
			case x < w/2 && y < h/2:
				c = color.RGBA{255, 0, 0, 255}
			case y < h/2:
				c = color.RGBA{0, 255, 0, 255}
			case x < w/2:
				c = color.RGBA{0, 0, 255, 255}
			default:
				c = color.RGBA{255, 255, 255, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// colorName names the colour at the centre of a quarter of m: "red",
// "green", "blue", "white", or "?".
func colorName(m image.Image, qx, qy int) string {
	b := m.Bounds()
	r, g, bl, _ := m.At(b.Min.X+b.Dx()*(2*qx+1)/4, b.Min.Y+b.Dy()*(2*qy+1)/4).RGBA()
	hi := func(v uint32) bool { return v > 0xB000 }
	lo := func(v uint32) bool { return v < 0x5000 }
	switch {
	case hi(r) && lo(g) && lo(bl):
		return "red"
	case lo(r) && hi(g) && lo(bl):
		return "green"
	case lo(r) && lo(g) && hi(bl):
		return "blue"
	case hi(r) && hi(g) && hi(bl):
		return "white"
	}
	return "?"
}

func layout(m image.Image) string {
	return colorName(m, 0, 0) + " " + colorName(m, 1, 0) + " / " + colorName(m, 0, 1) + " " + colorName(m, 1, 1)
}

func prepareImageT(t *testing.T, in Input, lim Limits) *Image {
	t.Helper()
	part, err := Prepare(context.Background(), in, lim)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	im, ok := part.(*Image)
	if !ok {
		t.Fatalf("Prepare gave %T, want *Image", part)
	}
	if im.SHA256 != sha256.Sum256(im.Data) {
		t.Error("SHA256 is not the hash of Data")
	}
	if !strings.HasPrefix(im.DataURL(), "data:"+im.MIME+";base64,") {
		t.Errorf("DataURL starts %.40q", im.DataURL())
	}
	return im
}

func decode(t *testing.T, im *Image) image.Image {
	t.Helper()
	m, format, err := image.Decode(bytes.NewReader(im.Data))
	if err != nil {
		t.Fatalf("decode prepared image: %v", err)
	}
	if "image/"+format != im.MIME {
		t.Errorf("data is %s, MIME says %s", format, im.MIME)
	}
	if b := m.Bounds(); b.Dx() != im.Width || b.Dy() != im.Height {
		t.Errorf("data is %v, Image says %d×%d", b.Size(), im.Width, im.Height)
	}
	return m
}

func TestPrepare_Image(t *testing.T) {
	alpha := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	for i := range alpha.Pix {
		alpha.Pix[i] = byte(i)
	}
	frame := func(c color.Color) *image.Paletted {
		p := image.NewPaletted(image.Rect(0, 0, 64, 48), color.Palette{color.Black, c})
		for i := range p.Pix {
			p.Pix[i] = 1
		}
		return p
	}
	var anim bytes.Buffer
	if err := gif.EncodeAll(&anim, &gif.GIF{Image: []*image.Paletted{frame(color.RGBA{255, 0, 0, 255}), frame(color.RGBA{0, 0, 255, 255})}, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	lossy, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	withAlpha, err := os.ReadFile("testdata/gopher-doc.with-alpha.lossless.webp")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		in            Input
		mime          string
		width, height int
		layout        string
	}{
		{"JPEGLarge", Input{Name: "IMG_0001.JPG", Data: encodeJPEG(quadrants(4000, 3000), 90)}, "image/jpeg", 1568, 1176, "red green / blue white"},
		{"JPEGPortrait", Input{Data: encodeJPEG(quadrants(1000, 2000), 90)}, "image/jpeg", 784, 1568, "red green / blue white"},
		{"JPEGSmall", Input{Data: encodeJPEG(quadrants(120, 80), 90)}, "image/jpeg", 120, 80, "red green / blue white"},
		{"JPEGGray", Input{Data: encodeJPEG(image.NewGray(image.Rect(0, 0, 2000, 100)), 90)}, "image/jpeg", 1568, 78, ""},
		{"PNGOpaque", Input{Name: "shot.png", Data: encodePNG(t, quadrants(3136, 100))}, "image/jpeg", 1568, 50, "red green / blue white"},
		{"PNGAlpha", Input{Data: encodePNG(t, alpha)}, "image/png", 300, 200, ""},
		{"GIFFirstFrame", Input{Data: anim.Bytes()}, "image/jpeg", 64, 48, "red red / red red"},
		{"WebPLossy", Input{Data: lossy}, "image/jpeg", 0, 0, ""},
		{"WebPAlpha", Input{Data: withAlpha}, "image/png", 0, 0, ""},
		{"WrongDeclaredType", Input{Name: "x.png", MIME: "image/png", Data: encodeJPEG(quadrants(100, 100), 90)}, "image/jpeg", 100, 100, "red green / blue white"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := prepareImageT(t, tt.in, Limits{})
			m := decode(t, im)
			if im.MIME != tt.mime {
				t.Errorf("MIME = %s, want %s", im.MIME, tt.mime)
			}
			if tt.width != 0 && (im.Width != tt.width || im.Height != tt.height) {
				t.Errorf("size = %d×%d, want %d×%d", im.Width, im.Height, tt.width, tt.height)
			}
			if tt.layout != "" && layout(m) != tt.layout {
				t.Errorf("layout = %s, want %s", layout(m), tt.layout)
			}
		})
	}
}

// withOrientation inserts an EXIF APP1 segment holding orientation o after
// a JPEG's SOI marker, in the byte order given.
func withOrientation(jpg []byte, o int, order binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+12+4)
	if order == binary.LittleEndian {
		copy(tiff, "II")
	} else {
		copy(tiff, "MM")
	}
	order.PutUint16(tiff[2:], 42)
	order.PutUint32(tiff[4:], 8)
	order.PutUint16(tiff[8:], 1)          // one entry
	order.PutUint16(tiff[10:], 0x0112)    // Orientation
	order.PutUint16(tiff[12:], 3)         // SHORT
	order.PutUint32(tiff[14:], 1)         // count
	order.PutUint16(tiff[18:], uint16(o)) // value
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out := append([]byte{}, jpg[:2]...)
	out = append(out, app1...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func TestPrepare_ImageOrientation(t *testing.T) {
	src := encodeJPEG(quadrants(400, 200), 95)
	// What a viewer shows for each EXIF orientation of the 400×200 image
	// "red green / blue white".
	tests := []struct {
		o             int
		width, height int
		layout        string
	}{
		{1, 400, 200, "red green / blue white"},
		{2, 400, 200, "green red / white blue"},
		{3, 400, 200, "white blue / green red"},
		{4, 400, 200, "blue white / red green"},
		{5, 200, 400, "red blue / green white"},
		{6, 200, 400, "blue red / white green"},
		{7, 200, 400, "white green / blue red"},
		{8, 200, 400, "green white / red blue"},
	}
	for _, tt := range tests {
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			t.Run(string(rune('0'+tt.o))+order.String(), func(t *testing.T) {
				data := withOrientation(src, tt.o, order)
				if got := jpegOrientation(data); got != tt.o {
					t.Fatalf("jpegOrientation = %d, want %d", got, tt.o)
				}
				im := prepareImageT(t, Input{Data: data}, Limits{})
				m := decode(t, im)
				if im.Width != tt.width || im.Height != tt.height || im.SourceWidth != tt.width || im.SourceHeight != tt.height {
					t.Errorf("size = %d×%d from %d×%d, want %d×%d", im.Width, im.Height, im.SourceWidth, im.SourceHeight, tt.width, tt.height)
				}
				if got := layout(m); got != tt.layout {
					t.Errorf("layout = %s, want %s", got, tt.layout)
				}
			})
		}
	}
}

// pngHeader returns a PNG signature and IHDR chunk (with its CRC) for a
// w×h 8-bit RGBA image: enough for DecodeConfig, with no pixels at all.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 4+13)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 6
	out := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

func TestPrepare_ImageErrors(t *testing.T) {
	jpg := encodeJPEG(photo(640, 480), 90)
	// A JPEG whose frame header claims 60000×60000 pixels.
	bomb := bytes.Clone(jpg)
	if i := bytes.Index(bomb, []byte{0xFF, 0xC0}); i < 0 {
		t.Fatal("no SOF0")
	} else {
		binary.BigEndian.PutUint16(bomb[i+5:], 60000)
		binary.BigEndian.PutUint16(bomb[i+7:], 60000)
	}
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want any
	}{
		{"PNGBomb", pngHeader(100_000, 100_000), Limits{}, &TooManyPixelsError{Width: 100_000, Height: 100_000, Limit: DefaultMaxImagePixels}},
		{"JPEGBomb", bomb, Limits{}, &TooManyPixelsError{Width: 60000, Height: 60000, Limit: DefaultMaxImagePixels}},
		{"PixelLimit", jpg, Limits{MaxImagePixels: 640*480 - 1}, &TooManyPixelsError{Width: 640, Height: 480, Limit: 640*480 - 1}},
		{"ByteLimit", jpg, Limits{MaxFileBytes: 1000}, &TooLargeError{Size: int64(len(jpg)), Limit: 1000}},
		{"TruncatedJPEG", jpg[:len(jpg)/2], Limits{}, ErrCorrupt},
		{"PNGNoPixels", pngHeader(10, 10), Limits{}, ErrCorrupt},
		{"PNGZeroSize", pngHeader(0, 10), Limits{}, ErrCorrupt},
		{"JPEGHeaderOnly", jpg[:200], Limits{}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(context.Background(), Input{Data: tt.data}, tt.lim)
			switch want := tt.want.(type) {
			case *TooManyPixelsError:
				var got *TooManyPixelsError
				if !errors.As(err, &got) || *got != *want {
					t.Fatalf("err = %v, want %v", err, want)
				}
			case *TooLargeError:
				var got *TooLargeError
				if !errors.As(err, &got) || *got != *want {
					t.Fatalf("err = %v, want %v", err, want)
				}
			case error:
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
			if UserMessage(err) == "" {
				t.Error("no user message")
			}
		})
	}
}

func TestJPEGOrientation_Malformed(t *testing.T) {
	jpg := encodeJPEG(image.NewGray(image.Rect(0, 0, 8, 8)), 50)
	tests := []struct {
		name string
		data []byte
	}{
		{"NoEXIF", jpg},
		{"Empty", nil},
		{"NotJPEG", []byte("hello world")},
		{"ShortSegment", []byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00}},
		{"SegmentPastEnd", []byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x'}},
		{"BadTIFF", withOrientation(jpg, 6, binary.LittleEndian)[:30]},
		{"OutOfRange", withOrientation(jpg, 9, binary.BigEndian)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jpegOrientation(tt.data); got != 1 {
				t.Errorf("jpegOrientation = %d, want 1", got)
			}
		})
	}
}
