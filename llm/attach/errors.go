package attach

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Errors that callers may test with errors.Is. Each is returned wrapped, with
// the cause in its message.
var (
	// ErrCorrupt means the file could not be decoded: a damaged or
	// truncated image or PDF, or a file that is not what its type says.
	ErrCorrupt = errors.New("corrupt file")
	// ErrEncrypted means the PDF needs a password.
	ErrEncrypted = errors.New("encrypted PDF")
	// ErrNoText means the PDF has no text that can be read: a scan, or
	// fonts that do not map their glyphs to characters.
	ErrNoText = errors.New("no readable text")
)

// TooLargeError is a file over Limits.MaxFileBytes.
type TooLargeError struct {
	// Size is the file's size in bytes, or -1 when it is not known (a
	// download that did not declare its length and passed the cap).
	Size  int64
	Limit int64
	// Who, when set, names whose limit it is when that is not Palaver's:
	// "Telegram lets bots download" says "…; Telegram lets bots download
	// files up to 20 MB."
	Who string
}

func (e *TooLargeError) Error() string {
	if e.Who != "" {
		return fmt.Sprintf("attach: file too large: %s files up to %s", e.Who, formatBytes(e.Limit))
	}
	if e.Size < 0 {
		return fmt.Sprintf("attach: file is larger than %s (the limit)", formatBytes(e.Limit))
	}
	return fmt.Sprintf("attach: file is %s; the limit is %s", formatBytes(e.Size), formatBytes(e.Limit))
}

// StatusError is a download the server answered with a status other than
// 200 OK (the URL is left out: it may carry a token).
type StatusError struct{ Code int }

func (e *StatusError) Error() string {
	return fmt.Sprintf("attach: fetch: status %d %s", e.Code, http.StatusText(e.Code))
}

// TooManyPixelsError is an image over Limits.MaxImagePixels, found from its
// header before any pixel was decoded.
type TooManyPixelsError struct {
	Width, Height int
	Limit         int
}

func (e *TooManyPixelsError) Error() string {
	return fmt.Sprintf("attach: image is %d×%d (%s pixels); the limit is %s pixels",
		e.Width, e.Height, formatCount(e.Width*e.Height), formatCount(e.Limit))
}

// UnsupportedError is a file of a kind that Palaver does not read.
type UnsupportedError struct {
	// Kind names the kind for people: "video", "ZIP archive", "animated
	// sticker", "HEIC image".
	Kind string
	// MIME is the type found in the file's bytes.
	MIME string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("attach: unsupported file: %s (%s)", e.Kind, e.MIME)
}

// UserMessage returns the sentence to show the sender of a file that Fetch
// or Prepare refused with err, or "" for a nil error. It names the limit
// that was hit, so that the sender knows what would pass.
func UserMessage(err error) string {
	var (
		tooLarge    *TooLargeError
		tooMany     *TooManyPixelsError
		unsupported *UnsupportedError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &tooLarge):
		who := tooLarge.Who
		if who == "" {
			who = "Palaver reads"
		}
		if tooLarge.Size < 0 || formatBytes(tooLarge.Size) == formatBytes(tooLarge.Limit) {
			return fmt.Sprintf("This file is larger than %s; %s files up to %s.", formatBytes(tooLarge.Limit), who, formatBytes(tooLarge.Limit))
		}
		return fmt.Sprintf("This file is %s; %s files up to %s.", formatBytes(tooLarge.Size), who, formatBytes(tooLarge.Limit))
	case errors.As(err, &tooMany):
		limit := formatCount(tooMany.Limit) + " pixels"
		if tooMany.Limit%1_000_000 == 0 {
			limit = formatCount(tooMany.Limit/1_000_000) + " megapixels"
		}
		return fmt.Sprintf("This image is %d×%d pixels; Palaver reads images up to %s.", tooMany.Width, tooMany.Height, limit)
	case errors.As(err, &unsupported):
		return fmt.Sprintf("Palaver can't read this file (%s). It reads images (JPEG, PNG, WebP, GIF), text and code files, PDFs and voice messages.", unsupported.Kind)
	case errors.Is(err, ErrEncrypted):
		return "This PDF is protected by a password, so Palaver can't read it."
	case errors.Is(err, ErrNoText):
		return "This PDF has no text Palaver can read (it may be a scan); send the pages as images instead."
	case errors.Is(err, ErrCorrupt):
		return "This file could not be read: it looks damaged or incomplete."
	case errors.Is(err, context.DeadlineExceeded):
		return "Reading this file took too long, so Palaver gave up."
	default:
		return "This file could not be downloaded or read."
	}
}
