package discord

import (
	"net/url"
	"testing"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

func TestAttachment_Kind(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		voice       bool
		kind        sessions.AttachmentKind
		unsupported string
	}{
		{"photo.jpg", "image/jpeg", false, sessions.KindImage, ""},
		{"anim.gif", "IMAGE/GIF", false, sessions.KindImage, ""},
		{"voice-message.ogg", "audio/ogg", true, sessions.KindVoice, ""},
		{"song.mp3", "audio/mpeg", false, sessions.KindVoice, ""},
		{"voice-message.ogg", "", true, sessions.KindVoice, ""},
		{"clip.mp4", "video/mp4", false, sessions.KindFile, "videos"},
		{"notes.txt", "text/plain; charset=utf-8", false, sessions.KindFile, ""},
		{"report.pdf", "application/pdf", false, sessions.KindFile, ""},
		{"blob", "", false, sessions.KindFile, ""},
	}
	for _, tt := range tests {
		a := &discordgo.MessageAttachment{Filename: tt.name, ContentType: tt.contentType, Size: 1234,
			URL: "https://cdn.discordapp.com/attachments/1/2/" + tt.name + "?ex=1&is=1&hm=ab&"}
		got := attachment(a, tt.voice)
		want := sessions.Attachment{Kind: tt.kind, Name: tt.name, MIME: tt.contentType, Size: 1234, Ref: a.URL, Unsupported: tt.unsupported}
		if got != want {
			t.Errorf("attachment(%q, %q, voice=%v) = %+v, want %+v", tt.name, tt.contentType, tt.voice, got, want)
		}
	}
}

func TestCDNURL(t *testing.T) {
	fake, _ := url.Parse("http://127.0.0.1:4321")
	tests := []struct {
		ref     string
		apiBase *url.URL
		want    bool
	}{
		{"https://cdn.discordapp.com/attachments/1/2/a.png?ex=65d903de&is=65c68ede&hm=24&", nil, true},
		{"https://media.discordapp.net/attachments/1/2/a.png?ex=65d903de", nil, true},
		{"https://CDN.DiscordApp.com/attachments/1/2/a.png", nil, true},
		{"http://cdn.discordapp.com/attachments/1/2/a.png", nil, false},
		{"https://cdn.discordapp.com:8443/attachments/1/2/a.png", nil, false},
		{"https://user:pw@cdn.discordapp.com/attachments/1/2/a.png", nil, false},
		{"https://cdn.discordapp.com.example.net/a.png", nil, false},
		{"https://discord.com/api/v10/users/@me", nil, false},
		{"http://127.0.0.1:4321/attachments/1/2/a.png", nil, false},
		{"http://127.0.0.1:4321/attachments/1/2/a.png", fake, true},
		{"http://127.0.0.1:9999/attachments/1/2/a.png", fake, false},
		{"https://cdn.discordapp.com/attachments/1/2/a.png", fake, true},
		{"file:///etc/passwd", fake, false},
		{"", nil, false},
		{"%zz", nil, false},
	}
	for _, tt := range tests {
		if got := cdnURL(tt.ref, tt.apiBase); got != tt.want {
			t.Errorf("cdnURL(%q, %v) = %v, want %v", tt.ref, tt.apiBase, got, tt.want)
		}
	}
}
