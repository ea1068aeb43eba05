package attach

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// Input is one file a user sent.
type Input struct {
	// Name is the file name the platform gives ("IMG_0042.JPG",
	// "main.go"); it may be empty, as for Telegram photos.
	Name string
	// MIME is the type the platform declares ("image/jpeg"); it may be
	// empty or wrong. The bytes decide the kind of file; the name and the
	// declared type tell text files apart and settle containers that may
	// hold sound or video.
	MIME string
	// Data is the whole file.
	Data []byte
	// AsAudio marks a voice or video note, whose sound is what counts: an
	// MP4, WebM or Ogg video then passes as Audio, which transcription
	// endpoints accept.
	AsAudio bool
}

// Part is what Prepare makes of an Input: an *Image, a *Text or an *Audio.
type Part interface{ part() }

// Image is a picture ready for a vision model: decoded, turned upright,
// scaled down and encoded again, which also drops its metadata (such as a
// photo's location).
type Image struct {
	// Data is the encoded image: a JPEG, or a PNG when it has transparency.
	Data []byte
	// MIME is "image/jpeg" or "image/png".
	MIME string
	// Width and Height are Data's size in pixels.
	Width, Height int
	// SourceWidth and SourceHeight are the sent image's size, upright.
	SourceWidth, SourceHeight int
	// SHA256 is the hash of Data, for content-addressed storage.
	SHA256 [sha256.Size]byte
}

// DataURL returns the image as a data: URL, as an OpenAI image_url content
// part carries it.
func (im *Image) DataURL() string {
	return "data:" + im.MIME + ";base64," + base64.StdEncoding.EncodeToString(im.Data)
}

// Text is a text file, or a PDF's text, ready to be put in a message for the
// model.
type Text struct {
	// Block is what the model reads: a header line naming the file, its
	// type and size, any notes, then the text in a fenced block.
	Block string
	// Name is the file name as shown in Block ("untitled" when none was
	// given); Type describes the file ("Go source", "PDF").
	Name, Type string
	// Chars is the number of characters of the whole text; Shown is the
	// number in Block, fewer when the text was cut at Limits.MaxTextChars.
	Chars, Shown int
	// Notes tell the sender what was not read as it was sent, in
	// sentences: a cut, replaced bytes, skipped pages. Block carries them
	// too, for the model.
	Notes []string
}

// Audio is a voice message or audio file, classified for transcription;
// its bytes are passed on as they came.
type Audio struct {
	Data []byte
	// MIME is the type found in the bytes ("audio/ogg", "audio/mpeg",
	// "video/mp4" for a round video note).
	MIME string
	// Name is the file name to send with the bytes, with an extension that
	// matches MIME (transcription endpoints go by it).
	Name string
	// Duration is the length of the sound, or 0 when the bytes do not say
	// cheaply (only WAV and Ogg are read).
	Duration time.Duration
	// SHA256 is the hash of Data, for content-addressed storage.
	SHA256 [sha256.Size]byte
}

func (*Image) part() {}
func (*Text) part()  {}
func (*Audio) part() {}

// Prepare turns a file a user sent into a Part a model can read, within
// lim. It refuses files over lim.MaxFileBytes (*TooLargeError), images over
// lim.MaxImagePixels (*TooManyPixelsError), kinds it does not read
// (*UnsupportedError), damaged files (ErrCorrupt), password-protected PDFs
// (ErrEncrypted) and PDFs without readable text (ErrNoText); UserMessage
// turns any of them into a sentence for the sender. Prepare is safe for
// concurrent use; ctx bounds the extraction of a PDF's text.
func Prepare(ctx context.Context, in Input, lim Limits) (Part, error) {
	lim = lim.withDefaults()
	if int64(len(in.Data)) > lim.MaxFileBytes {
		return nil, &TooLargeError{Size: int64(len(in.Data)), Limit: lim.MaxFileBytes}
	}
	if len(in.Data) == 0 {
		return nil, fmt.Errorf("attach: empty file: %w", ErrCorrupt)
	}
	t, err := detect(in)
	if err != nil {
		return nil, err
	}
	// Each case returns its own nil on error: a nil *Image in a Part
	// would not be a nil Part.
	switch t.kind {
	case kindImage:
		im, err := prepareImage(in.Data, t.mime, lim)
		if err != nil {
			return nil, err
		}
		return im, nil
	case kindPDF:
		txt, err := preparePDF(ctx, in, lim)
		if err != nil {
			return nil, err
		}
		return txt, nil
	case kindText:
		return prepareText(in, t, lim), nil
	default:
		return prepareAudio(in, t), nil
	}
}
