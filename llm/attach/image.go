package attach

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"
)

// imageCodec decodes one of the formats detect accepts as an image.
type imageCodec struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var imageCodecs = map[string]imageCodec{
	"image/jpeg": {jpeg.DecodeConfig, jpeg.Decode},
	"image/png":  {png.DecodeConfig, png.Decode},
	"image/gif":  {gif.DecodeConfig, gif.Decode}, // the first frame
	"image/webp": {webp.DecodeConfig, webp.Decode},
}

// prepareImage decodes an image of type mime, checking its size from the
// header first, then scales it to fit lim.MaxImageSide, turns it upright
// and encodes it as a JPEG, or as a PNG if it has transparency.
func prepareImage(data []byte, mime string, lim Limits) (im *Image, err error) {
	codec, ok := imageCodecs[mime]
	if !ok {
		return nil, &UnsupportedError{Kind: "image", MIME: mime}
	}
	cfg, err := codec.config(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("attach: %w: %s header: %v", ErrCorrupt, mime, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("attach: %w: %s is %d×%d", ErrCorrupt, mime, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(lim.MaxImagePixels) {
		return nil, &TooManyPixelsError{Width: cfg.Width, Height: cfg.Height, Limit: lim.MaxImagePixels}
	}
	// The decoders are fuzzed upstream, but a panic on a user's file must
	// not take the process down.
	defer func() {
		if r := recover(); r != nil {
			im, err = nil, fmt.Errorf("attach: %w: %s decoder panicked: %v", ErrCorrupt, mime, r)
		}
	}()
	dw, dh := fitSize(cfg.Width, cfg.Height, lim.MaxImageSide)
	var src image.Image
	if mime == "image/jpeg" {
		src, err = decodeJPEG(data, dw, dh)
	} else {
		src, err = codec.decode(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("attach: %w: %s: %v", ErrCorrupt, mime, err)
	}
	sb := src.Bounds()
	if sb.Dx() <= 0 || sb.Dy() <= 0 {
		return nil, fmt.Errorf("attach: %w: %s decodes to an empty image", ErrCorrupt, mime)
	}
	orientation := 1
	if mime == "image/jpeg" {
		orientation = jpegOrientation(data)
	}
	if sb.Dx() < dw || sb.Dy() < dh { // a GIF frame smaller than its screen
		dw, dh = fitSize(sb.Dx(), sb.Dy(), lim.MaxImageSide)
	}

	var out image.Image
	switch m := src.(type) {
	case *image.YCbCr:
		out = scaleYCbCr(m, dw, dh, orientation)
	case *image.Gray:
		p := newPlane(dw, dh, 1)
		resize(p, plane{pix: m.Pix[m.PixOffset(sb.Min.X, sb.Min.Y):], stride: m.Stride, w: sb.Dx(), h: sb.Dy(), ch: 1})
		p = orient(p, orientation)
		out = &image.Gray{Pix: p.pix, Stride: p.stride, Rect: image.Rect(0, 0, p.w, p.h)}
	default:
		rgba := toRGBA(src)
		p := newPlane(dw, dh, 4)
		resize(p, plane{pix: rgba.Pix, stride: rgba.Stride, w: sb.Dx(), h: sb.Dy(), ch: 4})
		p = orient(p, orientation)
		out = &image.RGBA{Pix: p.pix, Stride: p.stride, Rect: image.Rect(0, 0, p.w, p.h)}
	}

	var buf bytes.Buffer
	outMIME := "image/jpeg"
	if rgba, ok := out.(*image.RGBA); ok && !rgba.Opaque() {
		outMIME = "image/png"
		err = png.Encode(&buf, rgba)
	} else {
		err = writeJPEG(&buf, out, lim.JPEGQuality)
	}
	if err != nil {
		return nil, fmt.Errorf("attach: encode %s: %w", outMIME, err)
	}
	ob := out.Bounds()
	sw, sh := cfg.Width, cfg.Height
	if orientation >= 5 {
		sw, sh = sh, sw
	}
	return &Image{
		Data: buf.Bytes(), MIME: outMIME,
		Width: ob.Dx(), Height: ob.Dy(),
		SourceWidth: sw, SourceHeight: sh,
		SHA256: sha256.Sum256(buf.Bytes()),
	}, nil
}

// fitSize scales w×h down, keeping its aspect ratio, so that its longest
// side is at most side; sizes that fit are kept.
func fitSize(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, int((int64(h)*int64(side)+int64(w)/2)/int64(w)))
	}
	return max(1, int((int64(w)*int64(side)+int64(h)/2)/int64(h))), side
}

// scaleYCbCr scales a YCbCr image plane by plane to dw×dh and turns it
// upright, giving 4:2:0, which is what the JPEG encoder writes.
func scaleYCbCr(m *image.YCbCr, dw, dh, orientation int) *image.YCbCr {
	sb := m.Bounds()
	cw0, ch0 := chromaSize(sb, m.SubsampleRatio)
	y := newPlane(dw, dh, 1)
	resize(y, plane{pix: m.Y[m.YOffset(sb.Min.X, sb.Min.Y):], stride: m.YStride, w: sb.Dx(), h: sb.Dy(), ch: 1})
	cw, chh := (dw+1)/2, (dh+1)/2
	c := [2]plane{newPlane(cw, chh, 1), newPlane(cw, chh, 1)}
	off := m.COffset(sb.Min.X, sb.Min.Y)
	for i, pix := range [2][]byte{m.Cb, m.Cr} {
		resize(c[i], plane{pix: pix[off:], stride: m.CStride, w: cw0, h: ch0, ch: 1})
	}
	y = orient(y, orientation)
	c[0], c[1] = orient(c[0], orientation), orient(c[1], orientation)
	return &image.YCbCr{
		Y: y.pix, Cb: c[0].pix, Cr: c[1].pix,
		YStride: y.stride, CStride: c[0].stride,
		SubsampleRatio: image.YCbCrSubsampleRatio420,
		Rect:           image.Rect(0, 0, y.w, y.h),
	}
}

// toRGBA converts any decoded image to premultiplied RGBA, the form in
// which transparent pixels scale without colour fringes.
func toRGBA(src image.Image) *image.RGBA {
	b := src.Bounds()
	if m, ok := src.(*image.RGBA); ok && b.Min == (image.Point{}) {
		return m
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if p, ok := src.(*image.Paletted); ok {
		// A palette lookup, where draw.Draw would call At for each pixel.
		var pal [256][4]byte
		for i, c := range p.Palette {
			r, g, b, a := c.RGBA()
			pal[i] = [4]byte{byte(r >> 8), byte(g >> 8), byte(b >> 8), byte(a >> 8)}
		}
		for y := range b.Dy() {
			srow := p.Pix[p.PixOffset(b.Min.X, b.Min.Y+y):][:b.Dx()]
			drow := dst.Pix[y*dst.Stride:][:4*b.Dx()]
			for x, i := range srow {
				copy(drow[4*x:4*x+4], pal[i][:])
			}
		}
		return dst
	}
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	return dst
}

// chromaSize is the size of the chroma planes of a YCbCr image with bounds r
// and subsampling ratio sr, as image.NewYCbCr lays them out.
func chromaSize(r image.Rectangle, sr image.YCbCrSubsampleRatio) (w, h int) {
	w, h = r.Dx(), r.Dy()
	switch sr {
	case image.YCbCrSubsampleRatio422:
		w = (r.Max.X+1)/2 - r.Min.X/2
	case image.YCbCrSubsampleRatio420:
		w, h = (r.Max.X+1)/2-r.Min.X/2, (r.Max.Y+1)/2-r.Min.Y/2
	case image.YCbCrSubsampleRatio440:
		h = (r.Max.Y+1)/2 - r.Min.Y/2
	case image.YCbCrSubsampleRatio411:
		w = (r.Max.X+3)/4 - r.Min.X/4
	case image.YCbCrSubsampleRatio410:
		w, h = (r.Max.X+3)/4-r.Min.X/4, (r.Max.Y+1)/2-r.Min.Y/2
	}
	return w, h
}
