package attach

import (
	"strconv"
	"strings"
)

// formatBytes writes a size for people: "512 bytes", "12 KB", "4.7 MB",
// "20 MB", with 1 KB = 1024 bytes.
func formatBytes(n int64) string {
	switch {
	case n < 1024:
		if n == 1 {
			return "1 byte"
		}
		return strconv.FormatInt(n, 10) + " bytes"
	case n < 1<<20:
		return strconv.FormatInt((n+512)>>10, 10) + " KB"
	default:
		mb := float64(n) / (1 << 20)
		s := strconv.FormatFloat(mb, 'f', 1, 64)
		return strings.TrimSuffix(s, ".0") + " MB"
	}
}

// formatCount writes n with thousands separators: 1234567 → "1,234,567".
func formatCount(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + formatCount(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
