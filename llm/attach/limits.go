package attach

import "time"

// Default limits; see the package documentation for what each one bounds.
const (
	DefaultMaxFileBytes   = 20 << 20 // Telegram's bot download limit
	DefaultFetchTimeout   = 60 * time.Second
	DefaultMaxImageSide   = 1568
	DefaultMaxImagePixels = 40_000_000
	DefaultJPEGQuality    = 85
	DefaultMaxTextChars   = 20_000
	DefaultMaxPDFPages    = 100
	DefaultPDFTimeout     = 15 * time.Second
)

// Limits bounds the work done on one file. A zero field takes its default.
type Limits struct {
	// MaxFileBytes caps the size of a file: Fetch refuses a larger download
	// before reading it (by its Content-Length) or as soon as it passes the
	// cap, and Prepare refuses larger data. Default 20 MiB.
	MaxFileBytes int64
	// FetchTimeout bounds one download, headers and body. Default 60 s.
	FetchTimeout time.Duration
	// MaxImageSide is the longest side, in pixels, of a prepared image;
	// larger images are scaled down. Default 1568.
	MaxImageSide int
	// MaxImagePixels refuses images with more pixels than this, read from
	// the header before any pixel is decoded. Default 40,000,000.
	MaxImagePixels int
	// JPEGQuality is the quality (1–100) of prepared JPEG images.
	// Default 85.
	JPEGQuality int
	// MaxTextChars is the number of characters of a text file or of a
	// PDF's text given to the model; the rest is cut with a visible note.
	// Default 20,000.
	MaxTextChars int
	// MaxPDFPages is the number of pages of a PDF that are read; the rest
	// are skipped with a visible note. Default 100.
	MaxPDFPages int
	// PDFTimeout bounds the extraction of a PDF's text. Default 15 s.
	PDFTimeout time.Duration
}

// withDefaults returns l with every zero or negative field set to its default.
func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.FetchTimeout <= 0 {
		l.FetchTimeout = DefaultFetchTimeout
	}
	if l.MaxImageSide <= 0 {
		l.MaxImageSide = DefaultMaxImageSide
	}
	if l.MaxImagePixels <= 0 {
		l.MaxImagePixels = DefaultMaxImagePixels
	}
	if l.JPEGQuality <= 0 || l.JPEGQuality > 100 {
		l.JPEGQuality = DefaultJPEGQuality
	}
	if l.MaxTextChars <= 0 {
		l.MaxTextChars = DefaultMaxTextChars
	}
	if l.MaxPDFPages <= 0 {
		l.MaxPDFPages = DefaultMaxPDFPages
	}
	if l.PDFTimeout <= 0 {
		l.PDFTimeout = DefaultPDFTimeout
	}
	return l
}
