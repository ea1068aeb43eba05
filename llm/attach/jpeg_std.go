//go:build !(cgo && libjpeg)

package attach

import (
	"bytes"
	"image"
	"image/jpeg"
	"io"
)

// jpegDecoder names the JPEG decoder this build uses (see jpeg_libjpeg.go).
const jpegDecoder = "image/jpeg"

// decodeJPEG decodes a JPEG at full size with the standard library; w×h
// (the size it will be scaled to) is a hint this decoder cannot use.
func decodeJPEG(data []byte, w, h int) (image.Image, error) {
	return jpeg.Decode(bytes.NewReader(data))
}

// writeJPEG compresses m with the standard library.
func writeJPEG(w io.Writer, m image.Image, quality int) error {
	return jpeg.Encode(w, m, &jpeg.Options{Quality: quality})
}
