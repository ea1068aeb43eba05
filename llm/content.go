package llm

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
)

// The JSON around one image part; the data: URL goes in between.
const (
	imagePartStart = `{"type":"image_url","image_url":{"url":"data:`
	imagePartEnd   = `"}}`
)

// imagesSize checks the images of msgs and returns the bytes their parts
// take in a request body, 0 when there are none.
func imagesSize(msgs []Message) (int, error) {
	n := 0
	for i, m := range msgs {
		if len(m.Images) > 0 && m.Role != RoleUser {
			return 0, fmt.Errorf("llm: message %d: only user messages may carry images, not %q", i, m.Role)
		}
		for j, im := range m.Images {
			if err := im.check(); err != nil {
				return 0, fmt.Errorf("llm: message %d, image %d: %w", i, j, err)
			}
			n += len(imagePartStart) + len(im.MIME) + len(";base64,") +
				base64.StdEncoding.EncodedLen(len(im.Data)) + len(imagePartEnd) + 1
		}
	}
	return n, nil
}

// check reports what makes im unfit to send.
func (im Image) check() error {
	mt, params, err := mime.ParseMediaType(im.MIME)
	switch {
	case err != nil || len(params) > 0 || mt != im.MIME || !strings.HasPrefix(mt, "image/"):
		// mt == im.MIME keeps the data: URL free of spaces and upper case.
		return fmt.Errorf("media type %q is not of the form image/TYPE", im.MIME)
	case len(im.Data) == 0:
		return fmt.Errorf("no image data")
	case len(im.Data) > MaxImageBytes:
		return fmt.Errorf("%d bytes, more than the %d MiB an image may have", len(im.Data), MaxImageBytes>>20)
	}
	return nil
}

// textSize is about how many bytes the parts of req other than images take
// in a request body: enough, unless its text is heavy with characters JSON
// escapes, that the body's buffer need not grow (and copy the images).
func textSize(req Request) int {
	n := 256 + len(req.Model)
	for _, m := range req.Messages {
		n += 64 + len(m.Role) + len(m.Name) + len(m.Content) + len(m.Content)/8
	}
	for k, v := range req.Extra {
		n += 4 + len(k) + len(v)
	}
	return n
}

// appendMessages appends msgs as a JSON array: runs of messages without
// images as encoding/json writes them, messages with images as content
// parts.
func appendMessages(b []byte, msgs []Message) ([]byte, error) {
	b = append(b, '[')
	for i := 0; i < len(msgs); {
		if i > 0 {
			b = append(b, ',')
		}
		if len(msgs[i].Images) == 0 {
			j := i + 1
			for j < len(msgs) && len(msgs[j].Images) == 0 {
				j++
			}
			data, err := json.Marshal(msgs[i:j])
			if err != nil {
				return nil, err
			}
			b = append(b, data[1:len(data)-1]...) // without the brackets
			i = j
			continue
		}
		b = appendImageMessage(b, msgs[i])
		i++
	}
	return append(b, ']'), nil
}

// appendImageMessage appends m, which has images, with content parts; the
// images are base64-encoded straight into b.
func appendImageMessage(b []byte, m Message) []byte {
	b = append(b, `{"role":`...)
	b = appendString(b, m.Role)
	b = append(b, `,"content":[`...)
	if m.Content != "" {
		b = append(b, `{"type":"text","text":`...)
		b = appendString(b, m.Content)
		b = append(b, `},`...)
	}
	for j, im := range m.Images {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, imagePartStart...)
		b = append(b, im.MIME...)
		b = append(b, ";base64,"...)
		b = base64.StdEncoding.AppendEncode(b, im.Data)
		b = append(b, imagePartEnd...)
	}
	b = append(b, ']')
	if m.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, m.Name)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	data, _ := json.Marshal(s) // a string always encodes
	return append(b, data...)
}
