package attach

import "encoding/binary"

// jpegOrientation returns the EXIF orientation (1–8) of a JPEG file, read
// from the IFD0 of its APP1 "Exif" segment; 1 (upright) when there is none
// or it cannot be read. Only the segments before the first scan are looked
// at, so the cost does not grow with the image.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	for p := 2; p+4 <= len(b); {
		if b[p] != 0xFF {
			return 1
		}
		marker := b[p+1]
		if marker == 0xFF { // fill byte
			p++
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image
			return 1
		}
		size := int(binary.BigEndian.Uint16(b[p+2 : p+4]))
		if size < 2 || p+2+size > len(b) {
			return 1
		}
		seg := b[p+4 : p+2+size]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := tiffOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		p += 2 + size
	}
	return 1
}

// tiffOrientation reads tag 0x0112 (Orientation) from the first IFD of a
// TIFF structure; 0 when it is missing or out of range.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var order binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return 0
	}
	if order.Uint16(t[2:4]) != 42 {
		return 0
	}
	ifd := int64(order.Uint32(t[4:8]))
	if ifd+2 > int64(len(t)) {
		return 0
	}
	n := int64(order.Uint16(t[ifd : ifd+2]))
	for i := int64(0); i < n; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 0
		}
		if order.Uint16(t[e:e+2]) != 0x0112 {
			continue
		}
		// Type SHORT (3), count 1: the value sits in the entry's first
		// two value bytes.
		if order.Uint16(t[e+2:e+4]) != 3 {
			return 0
		}
		if o := int(order.Uint16(t[e+8 : e+10])); o >= 1 && o <= 8 {
			return o
		}
		return 0
	}
	return 0
}
