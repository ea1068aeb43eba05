//go:build cgo && libjpeg

package attach

/*
#cgo pkg-config: libjpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

struct pv_error {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	char msg[JMSG_LENGTH_MAX];
};

static void pv_error_exit(j_common_ptr c) {
	struct pv_error *e = (struct pv_error *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jump, 1);
}

// pv_emit turns libjpeg's first warning (a premature end of file, data
// it had to skip) into an error, as the standard library's decoder would
// refuse such a file: a damaged photo is reported, not shown grey.
static void pv_emit(j_common_ptr c, int level) {
	if (level < 0) {
		pv_error_exit(c);
	}
}

// pv_decode decodes data scaled by 1/denom into out (out_w×out_h pixels of
// comps bytes: YCbCr or gray), returning comps, 0 for an image of another
// colour space (CMYK), or -1 with msg set on an error or a warning.
static int pv_decode(const unsigned char *data, unsigned long size, int denom,
		unsigned char *out, int out_w, int out_h, int comps, char *msg) {
	struct jpeg_decompress_struct d;
	struct pv_error e;
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = pv_error_exit;
	e.pub.emit_message = pv_emit;
	if (setjmp(e.jump)) {
		strncpy(msg, e.msg, JMSG_LENGTH_MAX - 1);
		jpeg_destroy_decompress(&d);
		return -1;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, data, size);
	jpeg_read_header(&d, TRUE);
	if ((comps == 3 && d.jpeg_color_space != JCS_YCbCr) || (comps == 1 && d.jpeg_color_space != JCS_GRAYSCALE)) {
		jpeg_destroy_decompress(&d);
		return 0;
	}
	d.scale_num = 1;
	d.scale_denom = denom;
	d.out_color_space = comps == 3 ? JCS_YCbCr : JCS_GRAYSCALE;
	// The chroma is averaged down again at once: smooth upsampling would
	// be wasted work.
	d.do_fancy_upsampling = FALSE;
	jpeg_start_decompress(&d);
	if ((int)d.output_width != out_w || (int)d.output_height != out_h || d.output_components != comps) {
		snprintf(msg, JMSG_LENGTH_MAX, "scaled to %ux%u, expected %dx%d", d.output_width, d.output_height, out_w, out_h);
		jpeg_destroy_decompress(&d);
		return -1;
	}
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = out + (size_t)d.output_scanline * out_w * comps;
		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return comps;
}
// pv_encode compresses w×h pixels of comps bytes (YCbCr or gray) at
// quality into a buffer it allocates (*out, *out_size; free it), returning
// 0, or -1 with msg set.
static int pv_encode(const unsigned char *in, int w, int h, int comps, int quality,
		unsigned char **out, unsigned long *out_size, char *msg) {
	struct jpeg_compress_struct c;
	struct pv_error e;
	*out = NULL;
	*out_size = 0;
	c.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = pv_error_exit;
	e.pub.emit_message = pv_emit;
	if (setjmp(e.jump)) {
		strncpy(msg, e.msg, JMSG_LENGTH_MAX - 1);
		jpeg_destroy_compress(&c);
		free(*out);
		*out = NULL;
		return -1;
	}
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, out, out_size);
	c.image_width = w;
	c.image_height = h;
	c.input_components = comps;
	c.in_color_space = comps == 3 ? JCS_YCbCr : JCS_GRAYSCALE;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, quality, TRUE);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(in + (size_t)c.next_scanline * w * comps);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	return 0;
}
*/
import "C"

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"unsafe"
)

// jpegDecoder names the JPEG decoder this build uses: libjpeg(-turbo)
// through cgo, built with -tags libjpeg.
const jpegDecoder = "libjpeg"

// decodeJPEG decodes a JPEG with libjpeg, scaled down in the DCT by the
// largest of 1/2, 1/4 and 1/8 that keeps it at least w×h (the size it
// will be resampled to): most of a large photo's decoding is never done.
// A JPEG that is neither YCbCr nor grayscale (CMYK) goes to the standard
// library, whole.
func decodeJPEG(data []byte, w, h int) (image.Image, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var comps int
	switch cfg.ColorModel {
	case color.YCbCrModel:
		comps = 3
	case color.GrayModel:
		comps = 1
	default:
		return jpeg.Decode(bytes.NewReader(data))
	}
	denom := 1
	for _, d := range []int{8, 4, 2} {
		if ceilDiv(cfg.Width, d) >= w && ceilDiv(cfg.Height, d) >= h {
			denom = d
			break
		}
	}
	ow, oh := ceilDiv(cfg.Width, denom), ceilDiv(cfg.Height, denom)
	out := make([]byte, ow*oh*comps)
	msg := make([]byte, C.JMSG_LENGTH_MAX)
	n := C.pv_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(denom),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.int(ow), C.int(oh), C.int(comps), (*C.char)(unsafe.Pointer(&msg[0])))
	switch {
	case n == 0:
		return jpeg.Decode(bytes.NewReader(data))
	case n < 0:
		return nil, errors.New("libjpeg: " + C.GoString((*C.char)(unsafe.Pointer(&msg[0]))))
	}
	r := image.Rect(0, 0, ow, oh)
	if comps == 1 {
		return &image.Gray{Pix: out, Stride: ow, Rect: r}, nil
	}
	// Interleaved YCbCr into planes, the chroma averaged over 2×2 (4:2:0,
	// what the photo most likely had and what the output has).
	m := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	for y := range oh {
		row := out[y*ow*3 : (y+1)*ow*3]
		yrow := m.Y[y*m.YStride : y*m.YStride+ow]
		for x := range ow {
			yrow[x] = row[3*x]
		}
	}
	cw := (ow + 1) / 2
	for cy := range (oh + 1) / 2 {
		r0 := out[2*cy*ow*3 : (2*cy+1)*ow*3]
		r1 := r0
		if 2*cy+1 < oh {
			r1 = out[(2*cy+1)*ow*3 : (2*cy+2)*ow*3]
		}
		cb, cr := m.Cb[cy*m.CStride:cy*m.CStride+cw], m.Cr[cy*m.CStride:cy*m.CStride+cw]
		for cx := range cw {
			x0, x1 := 2*cx, min(2*cx+1, ow-1)
			cb[cx] = uint8((int(r0[3*x0+1]) + int(r0[3*x1+1]) + int(r1[3*x0+1]) + int(r1[3*x1+1]) + 2) / 4)
			cr[cx] = uint8((int(r0[3*x0+2]) + int(r0[3*x1+2]) + int(r1[3*x0+2]) + int(r1[3*x1+2]) + 2) / 4)
		}
	}
	return m, nil
}

// writeJPEG compresses m (a *image.YCbCr at 4:2:0 or an *image.Gray, as
// prepareImage makes them; any other goes to the standard library) with
// libjpeg.
func writeJPEG(w io.Writer, m image.Image, quality int) error {
	b := m.Bounds()
	var in []byte
	comps := 3
	switch m := m.(type) {
	case *image.Gray:
		comps = 1
		in = make([]byte, b.Dx()*b.Dy())
		for y := range b.Dy() {
			copy(in[y*b.Dx():], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:b.Dx()])
		}
	case *image.YCbCr:
		if m.SubsampleRatio != image.YCbCrSubsampleRatio420 || b.Min != (image.Point{}) {
			return jpeg.Encode(w, m, &jpeg.Options{Quality: quality})
		}
		wd := b.Dx()
		in = make([]byte, wd*b.Dy()*3)
		for y := range b.Dy() {
			row := in[y*wd*3 : (y+1)*wd*3]
			ys := m.Y[y*m.YStride : y*m.YStride+wd]
			cb, cr := m.Cb[(y/2)*m.CStride:], m.Cr[(y/2)*m.CStride:]
			for x, v := range ys {
				row[3*x], row[3*x+1], row[3*x+2] = v, cb[x/2], cr[x/2]
			}
		}
	default:
		return jpeg.Encode(w, m, &jpeg.Options{Quality: quality})
	}
	if len(in) == 0 {
		return errors.New("libjpeg: empty image")
	}
	var out *C.uchar
	var size C.ulong
	msg := make([]byte, C.JMSG_LENGTH_MAX)
	if C.pv_encode((*C.uchar)(unsafe.Pointer(&in[0])), C.int(b.Dx()), C.int(b.Dy()), C.int(comps), C.int(quality),
		&out, &size, (*C.char)(unsafe.Pointer(&msg[0]))) != 0 {
		return errors.New("libjpeg: " + C.GoString((*C.char)(unsafe.Pointer(&msg[0]))))
	}
	defer C.free(unsafe.Pointer(out))
	_, err := w.Write(C.GoBytes(unsafe.Pointer(out), C.int(size)))
	return err
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
