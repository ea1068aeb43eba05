package llmtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/palaver-bot/palaver/llm"
)

// Part is one content part of a chat message, as sent.
type Part struct {
	// Type is the part's "type": "text", "image_url", or another the
	// server records without reading.
	Type string
	// Text is a text part's text.
	Text string
	// URL and Detail are an image_url part's url and detail ("" when
	// absent); a bare string image_url, which some clients send, is URL.
	URL, Detail string
	// Image is the decoded data: URL of an image_url part; zero for an
	// http(s) URL, which the server does not fetch.
	Image llm.Image
}

// wireMessage is a chat message whose content may be a string or parts.
type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
}

// wirePart is one content part as sent.
type wirePart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	ImageURL json.RawMessage `json:"image_url"`
}

// decodeMessages reads req.Fields["messages"] into req.Messages and
// req.Parts, noting in req.badPart an image the server cannot read.
func decodeMessages(req *Request) {
	raw, ok := req.Fields["messages"]
	if !ok {
		return
	}
	var wms []wireMessage
	if json.Unmarshal(raw, &wms) != nil {
		// As much as encoding/json reads of an odd shape, as before parts.
		_ = json.Unmarshal(raw, &req.Messages)
		return
	}
	req.Messages = make([]llm.Message, len(wms))
	for i, wm := range wms {
		m := llm.Message{Role: wm.Role, Name: wm.Name}
		var wps []wirePart
		if json.Unmarshal(wm.Content, &m.Content) != nil && json.Unmarshal(wm.Content, &wps) == nil {
			if req.Parts == nil {
				req.Parts = make([][]Part, len(wms))
			}
			parts := make([]Part, len(wps))
			var texts []string
			for j, wp := range wps {
				p, err := decodePart(wp)
				if err != nil && req.badPart == "" {
					req.badPart = fmt.Sprintf("Invalid image_url in messages[%d].content[%d]: %v", i, j, err)
				}
				parts[j] = p
				switch {
				case p.Type == "text":
					texts = append(texts, p.Text)
				case p.Image.Data != nil:
					m.Images = append(m.Images, p.Image)
				}
			}
			m.Content = strings.Join(texts, "\n")
			req.Parts[i] = parts
		}
		req.Messages[i] = m
	}
}

// decodePart reads one content part; the error is about its image.
func decodePart(wp wirePart) (Part, error) {
	p := Part{Type: wp.Type, Text: wp.Text}
	if wp.Type != "image_url" {
		return p, nil
	}
	var obj struct {
		URL    string `json:"url"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(wp.ImageURL, &p.URL) != nil {
		if err := json.Unmarshal(wp.ImageURL, &obj); err != nil || obj.URL == "" {
			return p, fmt.Errorf("no url")
		}
		p.URL, p.Detail = obj.URL, obj.Detail
	}
	if !strings.HasPrefix(p.URL, "data:") {
		return p, nil
	}
	im, err := decodeDataURL(p.URL)
	p.Image = im
	return p, err
}

// decodeDataURL decodes a "data:image/TYPE;base64,DATA" URL.
func decodeDataURL(u string) (llm.Image, error) {
	head, data, ok := strings.Cut(strings.TrimPrefix(u, "data:"), ",")
	mt, isBase64 := strings.CutSuffix(head, ";base64")
	switch {
	case !ok || !isBase64:
		return llm.Image{}, fmt.Errorf("a data: URL must be data:image/TYPE;base64,DATA")
	case !strings.HasPrefix(mt, "image/"):
		return llm.Image{}, fmt.Errorf("media type %q is not an image", mt)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return llm.Image{}, fmt.Errorf("bad base64: %v", err)
	}
	if len(b) == 0 {
		return llm.Image{}, fmt.Errorf("no image data")
	}
	return llm.Image{MIME: mt, Data: b}, nil
}

// ImageRefusal is the body of RefuseImages' 400, in OpenAI's words for an
// image sent to a model that cannot see.
const ImageRefusal = `{"error":{"message":"Invalid content type. image_url is only supported by certain models.","type":"invalid_request_error","param":"messages","code":null}}`

// RefuseImages answers as a model that cannot see images does: a request
// with an image_url part is refused with 400 and ImageRefusal; any other
// request gets Echo. Use it with SetModelScript.
func RefuseImages(req Request) Script {
	for _, parts := range req.Parts {
		for _, p := range parts {
			if p.Type == "image_url" {
				return Script{Status: 400, Body: ImageRefusal}
			}
		}
	}
	return Echo(req)
}
