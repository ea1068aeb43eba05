// Package attach turns what a user sends (a photo, a document, a voice
// message) into what a model can read: an image scaled for vision models,
// a text block, or sound for transcription. It knows no platform, model or
// store: adapters call it with the bytes and the platform's word on them,
// and the session manager puts its Parts into the conversation.
//
// # Use
//
// An adapter that receives a file:
//
//	lim := attach.Limits{}                                  // the defaults below
//	if err := lim.Check(doc.FileName, doc.MimeType, doc.FileSize, false); err != nil {
//		reply(attach.UserMessage(err))                     // before any download
//		return
//	}
//	in, err := attach.Fetch(ctx, client, fileURL, lim)      // memory only, bounded
//	if err != nil {
//		reply(attach.UserMessage(err))
//		return
//	}
//	in.Name, in.MIME = doc.FileName, doc.MimeType           // the platform's word
//	in.AsAudio = isVoiceOrVideoNote
//	part, err := attach.Prepare(ctx, in, lim)
//	switch p := part.(type) {
//	case *attach.Image: // an image_url content part: p.DataURL(); store p.Data under p.SHA256
//	case *attach.Text:  // p.Block goes into the user's message; tell the user p.Notes
//	case *attach.Audio: // p.Data, named p.Name, to /audio/transcriptions
//	}
//
// Errors say what was refused: *TooLargeError (with the size and the
// limit), *TooManyPixelsError, *UnsupportedError (with the kind: "video",
// "ZIP archive", "animated sticker"), ErrCorrupt, ErrEncrypted, ErrNoText,
// and context.DeadlineExceeded for a download or PDF that took too long.
// UserMessage turns any of them into one sentence for the sender, naming
// the limit ("This file is 50 MB; Palaver reads files up to 20 MB.").
// Prepare and Fetch are safe for concurrent use and write nothing to disk.
//
// # Kinds
//
// The bytes decide the kind; the file name and the declared MIME type
// only tell text files apart and settle containers that hold sound or
// video:
//
//   - Images: JPEG, PNG, WebP and GIF (its first frame). Other images
//     (HEIC, AVIF, BMP, TIFF) are refused; SVG is read as text.
//   - Text: text/*, JSON, CSV, Markdown, YAML, XML, logs, and source code
//     known by its extension or name (".go", "Dockerfile", ...), as long
//     as the bytes read as text.
//   - PDF: its text, extracted with github.com/ledongthuc/pdf.
//   - Audio: Ogg (Opus, Vorbis), MP3, M4A, WAV, FLAC, and WebM or MP4
//     declared as audio or marked Input.AsAudio (voice and round video
//     notes). Only classified here; transcription is elsewhere.
//   - Refused with a reason: video, archives, Office documents, programs,
//     fonts, animated stickers (.tgs; a .webm sticker is a video), and
//     binary files whatever their name says.
//
// # Images
//
// The size in the header is checked before any pixel is decoded, then the
// image is decoded whole by the standard library's decoders (x/image for
// WebP; a GIF's first frame). It is then scaled with
// a Catmull-Rom filter in fixed point so that its longest side is at most
// MaxImageSide, turned upright from a JPEG's EXIF orientation, and
// encoded again: as a JPEG at JPEGQuality, or as a PNG when it has
// transparency. Encoding again drops all metadata, a photo's location
// included. Preparing a 12-megapixel JPEG takes about 28 MB of heap and
// 300 ms of CPU on a 2-core machine: about 190 ms in image/jpeg's decoder,
// which decodes every pixel at full size, 80 ms scaling and 60 ms encoding
// (BenchmarkPrepareImage12MP, TestPrepareImage12MP_PeakHeap).
//
// # Text
//
// UTF-8 is read as it is (a byte order mark dropped), UTF-16 when a byte
// order mark says so; otherwise each invalid byte becomes U+FFFD and a
// note says how many. Text.Block is what the model reads:
//
//	File: main.go (Go source, 12 KB)
//	[truncated: the file has 1,234,567 characters; the first 20,000 are shown]
//	```go
//	...
//	```
//
// The fence is longer than any run of backticks in the text, and the file
// name is shown on one line, cut at 200 characters.
//
// # PDFs
//
// Pages are read in order until MaxPDFPages or MaxTextChars, each stop
// told in a note. A PDF that needs a password gives ErrEncrypted; one
// whose text is empty or mostly not printable characters (a scan, fonts
// without a Unicode mapping) gives ErrNoText rather than garbage. The
// library panics on some damaged files: its panics become ErrCorrupt.
// Before it runs, a check of the raw bytes refuses what could exhaust
// memory or the stack, which no recover catches (see Caps); it runs on
// its own goroutine, which stops at its next read of the file once
// PDFTimeout or ctx ends it. Known gaps: text inside form XObjects is not
// read; 40-bit RC4 encrypted files fail (the library derives the wrong
// key), and AES-256 encryption is unsupported; streams of encrypted files
// go unchecked for their decoded size.
//
// # Caps
//
// Every limit, with its default (a zero Limits field takes the default):
//
//   - MaxFileBytes, 20 MiB: the size of any file. Fetch refuses a larger
//     Content-Length before reading the body and reads at most
//     MaxFileBytes+1 bytes of a body (in a buffer of at most about twice
//     that when the length is not declared); Prepare refuses larger data.
//   - FetchTimeout, 60 s: one download, headers and body.
//   - MaxImagePixels, 40,000,000: width × height from the header. Decoding
//     holds the pixels: up to 4 bytes each for PNG, GIF and WebP (8 for a
//     16-bit PNG), 1.5 for a 4:2:0 JPEG, 3 for 4:4:4, up to 8 for CMYK.
//   - MaxImageSide, 1568 px, and JPEGQuality, 85: the prepared image.
//   - MaxTextChars, 20,000 characters: the text of a file or PDF shown.
//   - MaxPDFPages, 100 pages, and PDFTimeout, 15 s: PDF extraction.
//   - Fixed PDF structure bounds, checked before extraction: 1,000,000
//     objects; nesting 10,000 deep; 64 MiB decoded per stream and 256 MiB
//     for all streams (images and embedded fonts, which are never read,
//     not counted); 10,000 entries per CMap block; a page tree of 100,000
//     nodes and 64 levels.
package attach
