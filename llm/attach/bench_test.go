package attach

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// photo12MP is a 4000×3000 JPEG at quality 90 with the detail of a photo
// (about 3 bits a pixel, as phone cameras write), made once.
var photo12MP = sync.OnceValue(func() []byte {
	return encodeJPEG(photo(4000, 3000), 90)
})

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPrepareImage12MP prepares a 12-megapixel JPEG for a vision
// model. cpu-ms/op is the process's CPU time per image, the garbage
// collector's included.
func BenchmarkPrepareImage12MP(b *testing.B) {
	data := photo12MP()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := Prepare(context.Background(), Input{Data: data}, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// TestPrepareImage12MP_PeakHeap reports the heap that preparing a
// 12-megapixel JPEG needs at its peak: with the collector off, the heap
// grows by everything allocated, an upper bound of the peak; and checks it
// against the target of 64 MB.
func TestPrepareImage12MP_PeakHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a 12-megapixel image")
	}
	data := photo12MP()
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	part, err := Prepare(context.Background(), Input{Data: data}, Limits{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	peak := after.HeapAlloc - before.HeapAlloc
	im := part.(*Image)
	t.Logf("input %d bytes; output %d×%d, %d bytes; heap growth %.1f MB", len(data), im.Width, im.Height, len(im.Data), float64(peak)/(1<<20))
	if peak > 64<<20 {
		t.Errorf("heap grew by %.1f MB, over the 64 MB target", float64(peak)/(1<<20))
	}
}

// BenchmarkPreparePDF extracts the text of a 50-page PDF, preflight
// included.
func BenchmarkPreparePDF(b *testing.B) {
	pages := make([]string, 50)
	for i := range pages {
		pages[i] = strings.Repeat("Some words on a line of a page of a document.\n", 40)
	}
	data := fpdfDoc(b, pages, "", "")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Prepare(context.Background(), Input{Name: "doc.pdf", Data: data}, Limits{MaxTextChars: 1 << 20}); err != nil {
			b.Fatal(err)
		}
	}
}
