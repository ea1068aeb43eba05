package attach

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"path"
	"strings"
	"time"
)

// audioExts maps the MIME types detect gives audio to the file extension
// that transcription endpoints expect.
var audioExts = map[string]string{
	"audio/ogg":       ".ogg",
	"application/ogg": ".ogg",
	"video/ogg":       ".ogg",
	"audio/mpeg":      ".mp3",
	"audio/wav":       ".wav",
	"audio/flac":      ".flac",
	"audio/x-m4a":     ".m4a",
	"audio/mp4":       ".m4a",
	"video/mp4":       ".mp4",
	"video/webm":      ".webm",
}

// prepareAudio passes sound on as it came, named for its type.
func prepareAudio(in Input, t fileType) *Audio {
	base := strings.TrimSuffix(path.Base(cleanName(in.Name)), path.Ext(in.Name))
	if in.Name == "" || base == "" || base == "." {
		base = "audio"
	}
	ext := audioExts[t.mime]
	if ext == "" {
		ext = ".bin"
	}
	var d time.Duration
	switch t.mime {
	case "audio/wav":
		d = wavDuration(in.Data)
	case "audio/ogg", "application/ogg":
		d = oggDuration(in.Data)
	}
	return &Audio{Data: in.Data, MIME: t.mime, Name: base + ext, Duration: d, SHA256: sha256.Sum256(in.Data)}
}

// wavDuration reads a WAV file's length from its fmt and data chunks; 0
// when they are missing or odd.
func wavDuration(b []byte) time.Duration {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return 0
	}
	var byteRate, dataSize uint32
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), binary.LittleEndian.Uint32(b[p+4:p+8])
		body := b[p+8:]
		switch {
		case id == "fmt " && len(body) >= 12:
			byteRate = binary.LittleEndian.Uint32(body[8:12])
		case id == "data":
			dataSize = min(size, uint32(len(body)))
		}
		if id == "data" || uint64(size) > uint64(len(body)) {
			break
		}
		p += 8 + int(size) + int(size&1)
	}
	if byteRate == 0 {
		return 0
	}
	return time.Duration(uint64(dataSize) * uint64(time.Second) / uint64(byteRate))
}

// oggDuration reads an Ogg Opus or Vorbis stream's length from the granule
// position of its last page; 0 when it cannot tell.
func oggDuration(b []byte) time.Duration {
	// The first page holds the codec's identification header at byte 28.
	if len(b) < 28+19 || string(b[:4]) != "OggS" {
		return 0
	}
	var rate, skip uint64
	switch head := b[28:]; {
	case bytes.HasPrefix(head, []byte("OpusHead")):
		rate, skip = 48000, uint64(binary.LittleEndian.Uint16(head[10:12]))
	case bytes.HasPrefix(head, []byte("\x01vorbis")) && len(head) >= 16:
		rate = uint64(binary.LittleEndian.Uint32(head[12:16]))
	}
	last := bytes.LastIndex(b[max(0, len(b)-64<<10):], []byte("OggS"))
	if rate == 0 || last < 0 {
		return 0
	}
	last += max(0, len(b)-64<<10)
	if last+14 > len(b) {
		return 0
	}
	granule := binary.LittleEndian.Uint64(b[last+6 : last+14])
	// A granule of -1 means no packet ends on the page; one over a day
	// of sound is not believed.
	if granule == ^uint64(0) || granule < skip || (granule-skip)/rate > 24*3600 {
		return 0
	}
	return time.Duration(float64(granule-skip) / float64(rate) * float64(time.Second))
}
