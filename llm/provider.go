package llm

import (
	"net/http"
	"net/url"
	"strings"
)

// Provider is one configured OpenAI-compatible endpoint.
type Provider struct {
	// Name is the provider's configured name, the prefix of user-facing
	// model names ("deepinfra" in "deepinfra/deepseek-ai/DeepSeek-R1").
	// It may not contain '/'.
	Name string
	// BaseURL is the API root that "/chat/completions" and "/models" are
	// appended to, e.g. "https://api.deepinfra.com/v1/openai".
	BaseURL string
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// Headers are sent with every request, after (and over) any others.
	Headers map[string]string
}

// DeepInfraHost is the host whose keyless providers get the web-page preset.
const DeepInfraHost = "api.deepinfra.com"

// browserUserAgent is the desktop-browser User-Agent of the DeepInfra
// web-page preset.
const browserUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36"

// anonymous reports whether requests to p use the DeepInfra web-page
// preset: a base URL on api.deepinfra.com and no API key.
func (p Provider) anonymous() bool {
	if p.APIKey != "" {
		return false
	}
	u, err := url.Parse(p.BaseURL)
	return err == nil && strings.EqualFold(u.Hostname(), DeepInfraHost)
}

// setHeaders puts the provider's headers on h. Every provider gets
// Content-Type (unless contentType is "": no body) and its configured
// Headers; a key adds Authorization; a keyless DeepInfra provider adds the
// headers DeepInfra's own web page sends. Configured Headers win over all
// of these.
func (p Provider) setHeaders(h http.Header, contentType string, stream, anonymous bool) {
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if p.APIKey != "" {
		h.Set("Authorization", "Bearer "+p.APIKey)
	}
	if anonymous {
		h.Set("X-Deepinfra-Source", "web-page")
		h.Set("Origin", "https://deepinfra.com")
		h.Set("Referer", "https://deepinfra.com/")
		h.Set("User-Agent", browserUserAgent)
		if stream {
			h.Set("Accept", "text/event-stream")
		} else {
			h.Set("Accept", "application/json")
		}
	}
	for k, v := range p.Headers {
		h.Set(k, v)
	}
}
