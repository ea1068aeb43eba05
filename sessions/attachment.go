package sessions

import "context"

// Attachment is a file that came with a user's message: a picture, a
// document, a voice note. A message records where the file is (Ref), not
// its bytes: the Manager fetches it through the platform's Fetcher when the
// message's turn starts, so that a download never holds up the platform's
// updates or another conversation, and keeps what the model needs of it (a
// picture, a file's text, a transcript) in the history.
type Attachment struct {
	// Kind is what the platform says the file is; the Manager checks the
	// bytes too.
	Kind AttachmentKind `json:"kind"`
	// Name is the file name, when the platform gives one.
	Name string `json:"name,omitempty"`
	// MIME is the declared type ("image/jpeg"); it may be empty or wrong.
	MIME string `json:"mime,omitempty"`
	// Size is the declared size in bytes, 0 when unknown. A file declared
	// larger than the limit is refused before any download.
	Size int64 `json:"size,omitempty"`
	// Ref is the platform's reference to the file (a Telegram file_id, a
	// Discord attachment URL, a path for the terminal), opaque to the
	// Manager and handed back to the platform's Fetcher.
	Ref string `json:"ref,omitempty"`
	// Unsupported, when not empty, says why this file cannot be read at all
	// ("stickers", "videos"): the Manager says so in the answer instead of
	// fetching it.
	Unsupported string `json:"unsupported,omitempty"`
}

// AttachmentKind is what a platform says an attachment is.
type AttachmentKind string

// Attachment kinds.
const (
	// KindImage is a photo or picture, for a vision model.
	KindImage AttachmentKind = "image"
	// KindFile is a document of any type: text and PDFs are read for the
	// model, pictures go as images, anything else gets a note.
	KindFile AttachmentKind = "file"
	// KindVoice is a voice note, an audio file or a round video note: its
	// sound is transcribed and the transcript answered.
	KindVoice AttachmentKind = "voice"
)

// Fetcher downloads attachments from one platform. Fetch returns the whole
// file, reading at most limit bytes: a larger file is an error wrapping an
// *attach.TooLargeError that names the limit (the platform's own, such as
// Telegram's 20 MB for bots, when it is lower). Fetch must honour ctx.
type Fetcher interface {
	Fetch(ctx context.Context, a Attachment, limit int64) ([]byte, error)
}
