package attach

import "math"

// plane is an 8-bit image of ch interleaved channels: one for a Y, Cb or Cr
// plane or a gray image, four for RGBA.
type plane struct {
	pix      []byte
	stride   int
	w, h, ch int
}

func newPlane(w, h, ch int) plane {
	return plane{pix: make([]byte, w*h*ch), stride: w * ch, w: w, h: h, ch: ch}
}

// Weights are fixed-point numbers with weightBits fractional bits.
const weightBits = 14

// catmullRom is the Catmull-Rom cubic (B=0, C=0.5), support 2: sharp
// without the ringing of Lanczos, and half its taps. See
// TestResize_Quality for how it was chosen.
func catmullRom(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return (1.5*x-2.5)*x*x + 1
	case x < 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}

const catmullRomSupport = 2

// axisWeights holds, for each destination pixel along one axis, the first
// source pixel it reads and its taps' weights (n a pixel, the unused
// trailing ones zero).
type axisWeights struct {
	start []int
	n     int
	w     []int32
}

// makeWeights computes the weights that scale srcN pixels to dstN with the
// Catmull-Rom kernel, stretched by the scale factor when shrinking so that
// it filters out what the smaller image cannot hold. Taps past the edges
// are dropped and the rest renormalised.
func makeWeights(srcN, dstN int) axisWeights {
	scale := float64(srcN) / float64(dstN)
	stretch := max(scale, 1)
	support := catmullRomSupport * stretch
	n := min(int(math.Ceil(2*support)), srcN) // the most taps within ±support
	if n < 8 && srcN >= 8 {
		n = 8 // the unrolled loop of resizeAcross8; the extra taps weigh 0
	}
	aw := axisWeights{start: make([]int, dstN), n: n, w: make([]int32, dstN*n)}
	f := make([]float64, n)
	for i := range dstN {
		center := (float64(i) + 0.5) * scale
		lo := max(int(math.Floor(center-support+0.5)), 0)
		hi := min(int(math.Floor(center+support+0.5)), srcN)
		// hi-lo <= n; starting earlier near the end keeps all n taps
		// inside the source, the extra ones weighing nothing.
		start := min(lo, srcN-n)
		clear(f)
		var sum float64
		for s := lo; s < hi; s++ {
			f[s-start] = catmullRom((float64(s) + 0.5 - center) / stretch)
			sum += f[s-start]
		}
		ws := aw.w[i*n : (i+1)*n]
		var total int32
		big := 0
		for j := range n {
			ws[j] = int32(math.Round(f[j] / sum * (1 << weightBits)))
			total += ws[j]
			if ws[j] > ws[big] {
				big = j
			}
		}
		ws[big] += 1<<weightBits - total // the rounding error goes to the largest tap
		aw.start[i] = start
	}
	return aw
}

// resize scales src to dst's size (both with the same channels) in two
// passes, down then across, through an 8-bit intermediate: down first
// leaves fewer rows for the pass across, which is the slower one.
func resize(dst, src plane) {
	if dst.w == src.w && dst.h == src.h {
		for y := range src.h {
			copy(dst.pix[y*dst.stride:y*dst.stride+dst.w*dst.ch], src.pix[y*src.stride:])
		}
		return
	}
	tmp := newPlane(src.w, dst.h, src.ch)
	resizeDown(tmp, src, makeWeights(src.h, dst.h))
	resizeAcross(dst, tmp, makeWeights(src.w, dst.w))
}

// resizeAcross scales each row of src to dst.w pixels.
func resizeAcross(dst, src plane, aw axisWeights) {
	if src.ch == 1 && aw.n == 8 {
		resizeAcross8(dst, src, aw)
		return
	}
	ch, n := src.ch, aw.n
	for y := range src.h {
		srow := src.pix[y*src.stride : y*src.stride+src.w*ch]
		drow := dst.pix[y*dst.stride : y*dst.stride+dst.w*ch]
		for x := range dst.w {
			ws := aw.w[x*n : x*n+n]
			s := srow[aw.start[x]*ch : (aw.start[x]+n)*ch]
			if ch == 1 {
				s = s[:len(ws)] // lets the compiler drop the bounds checks
				var acc int32
				for j, w := range ws {
					acc += w * int32(s[j])
				}
				drow[x] = clamp8(acc)
				continue
			}
			var a0, a1, a2, a3 int32
			for j, w := range ws {
				p := s[j*4 : j*4+4]
				a0 += w * int32(p[0])
				a1 += w * int32(p[1])
				a2 += w * int32(p[2])
				a3 += w * int32(p[3])
			}
			d := drow[x*4 : x*4+4]
			d[0], d[1], d[2], d[3] = clamp8(a0), clamp8(a1), clamp8(a2), clamp8(a3)
		}
	}
}

// resizeAcross8 is resizeAcross for one channel and 8 taps, unrolled:
// the case of a shrink by at most a half, for which makeWeights pads the
// taps to 8.
func resizeAcross8(dst, src plane, aw axisWeights) {
	for y := range src.h {
		srow := src.pix[y*src.stride : y*src.stride+src.w]
		drow := dst.pix[y*dst.stride : y*dst.stride+dst.w]
		for x := range drow {
			w := (*[8]int32)(aw.w[x*8:])
			s := (*[8]byte)(srow[aw.start[x]:])
			drow[x] = clamp8(w[0]*int32(s[0]) + w[1]*int32(s[1]) + w[2]*int32(s[2]) + w[3]*int32(s[3]) +
				w[4]*int32(s[4]) + w[5]*int32(s[5]) + w[6]*int32(s[6]) + w[7]*int32(s[7]))
		}
	}
}

// resizeDown scales each column of src to dst.h pixels, a whole row at a
// time so that memory is read in order.
func resizeDown(dst, src plane, aw axisWeights) {
	row := dst.w * dst.ch
	acc := make([]int32, row)
	for y := range dst.h {
		clear(acc)
		for j, w := range aw.w[y*aw.n : y*aw.n+aw.n] {
			if w == 0 {
				continue
			}
			s := src.pix[(aw.start[y]+j)*src.stride:][:row]
			acc := acc[:len(s)]
			for x, v := range s {
				acc[x] += w * int32(v)
			}
		}
		d := dst.pix[y*dst.stride:][:row]
		for x, a := range acc {
			d[x] = clamp8(a)
		}
	}
}

// clamp8 rounds a fixed-point sum to a byte.
func clamp8(a int32) byte {
	a = (a + 1<<(weightBits-1)) >> weightBits
	switch {
	case a < 0:
		return 0
	case a > 255:
		return 255
	}
	return byte(a)
}

// orient turns p upright given its EXIF orientation (1–8), returning p
// itself for 1.
func orient(p plane, o int) plane {
	if o <= 1 || o > 8 {
		return p
	}
	w, h, ch := p.w, p.h, p.ch
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	d := newPlane(dw, dh, ch)
	for y := range dh {
		for x := range dw {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			copy(d.pix[y*d.stride+x*ch:y*d.stride+x*ch+ch], p.pix[sy*p.stride+sx*ch:])
		}
	}
	return d
}
