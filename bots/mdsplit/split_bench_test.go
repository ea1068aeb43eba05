package mdsplit

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// discordFits is the fits function of a Discord reply: 1800 characters.
func discordFits(s string) bool { return utf8.RuneCountInString(s) <= 1800 }

// BenchmarkSplit_Runaway1MB splits a model's repetition loop: one line of
// 1 MB.
func BenchmarkSplit_Runaway1MB(b *testing.B) {
	text := strings.Repeat("I will say it again and again. ", (1<<20)/31)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Split(text, discordFits)
	}
}

// BenchmarkSplit_OneWord1MB splits 1 MB without a single boundary.
func BenchmarkSplit_OneWord1MB(b *testing.B) {
	text := strings.Repeat("x", 1<<20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Split(text, discordFits)
	}
}

// BenchmarkStream_Grow1KB is the cost of one call for a 1 MB text that
// grew by 1 KB.
func BenchmarkStream_Grow1KB(b *testing.B) {
	const start = 1 << 20
	text := mixedDoc((start+(b.N+1)*1024)/600 + 1)
	st := &Stream{Fits: discordFits}
	st.Split(text[:start])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st.Split(text[:start+(i+1)*1024])
	}
}

// BenchmarkStream_Answer3KB splits one 3 KB answer for Discord as it
// streams, 300 bytes (a second of tokens) more each call.
func BenchmarkStream_Answer3KB(b *testing.B) {
	text := mixedDoc(8)[:3<<10]
	for b.Loop() {
		st := &Stream{Fits: discordFits, CloseFence: true}
		for n := 300; ; n += 300 {
			st.Split(text[:min(n, len(text))])
			if n >= len(text) {
				break
			}
		}
	}
}
