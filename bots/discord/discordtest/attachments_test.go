package discordtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/bots/discord"
	"github.com/palaver-bot/palaver/bots/discord/discordtest"
)

func voiceFile() discordtest.Attachment {
	return discordtest.Attachment{Filename: "voice-message.ogg", ContentType: "audio/ogg", Data: []byte("OggS voice"),
		DurationSecs: 3.5, Waveform: "AAECAwQ="}
}

// TestAttachments_MessageCreate checks the attachments and stickers of
// MESSAGE_CREATE as Discord writes them, and as discordgo reads them.
func TestAttachments_MessageCreate(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	dm, err := w.srv.DM(w.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := rawGateway(t, w.srv, int64(discord.Intents))
	mention := discordtest.Mention(w.srv.AppID())
	photo := discordtest.Attachment{Filename: "my photo.png", ContentType: "image/png", Data: []byte("\x89PNG...."), Width: 640, Height: 480}
	urlRE := regexp.MustCompile(`^` + regexp.QuoteMeta(w.srv.URL()) + `/attachments/(\d+)/(\d+)/([^?]+)\?ex=[0-9a-f]+&is=[0-9a-f]+&hm=[0-9a-f]{64}&$`)

	tests := []struct {
		name string
		msg  discordtest.UserMessage
		// want are the attachments' JSON objects without id, url and
		// proxy_url, which are checked apart.
		want     []map[string]any
		stickers string // sticker_items as JSON, "" when absent
		flags    int
	}{
		{"Image", discordtest.UserMessage{ChannelID: w.channel.ID, Content: mention + " look", Attachments: []discordtest.Attachment{photo}},
			[]map[string]any{{"filename": "my_photo.png", "size": 8.0, "content_type": "image/png", "width": 640.0, "height": 480.0}}, "", 0},
		{"VoiceMessage", discordtest.UserMessage{ChannelID: dm.ID, Voice: true, Attachments: []discordtest.Attachment{voiceFile()}},
			[]map[string]any{{"filename": "voice-message.ogg", "size": 10.0, "content_type": "audio/ogg", "duration_secs": 3.5, "waveform": "AAECAwQ="}},
			"", discordtest.FlagVoiceMessage},
		{"UnknownType", discordtest.UserMessage{ChannelID: dm.ID, Attachments: []discordtest.Attachment{{Filename: "x.bin", Data: []byte{1, 2, 3}, Size: 70 << 20}}},
			[]map[string]any{{"filename": "x.bin", "size": float64(70 << 20)}}, "", 0},
		{"Stickers", discordtest.UserMessage{ChannelID: w.channel.ID, Content: mention, Stickers: []discordtest.Sticker{{ID: "749054660769218631", Name: "Wave"}}},
			[]map[string]any{}, `[{"id":"749054660769218631","name":"Wave","format_type":1}]`, 0},
		// Without MESSAGE_CONTENT a message that does not mention the bot
		// comes without its files; its stickers stay.
		{"Withheld", discordtest.UserMessage{ChannelID: w.channel.ID, Attachments: []discordtest.Attachment{photo}, Stickers: []discordtest.Sticker{{ID: "1", Name: "Hi"}}},
			[]map[string]any{}, `[{"id":"1","name":"Hi","format_type":1}]`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.msg.AuthorID = w.user.ID
			sent, err := w.srv.SendMessage(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			f := readUntil(t, c, "MESSAGE_CREATE")
			var raw struct {
				Attachments  []map[string]any `json:"attachments"`
				StickerItems json.RawMessage  `json:"sticker_items"`
				Flags        int              `json:"flags"`
			}
			if err := json.Unmarshal(f.D, &raw); err != nil {
				t.Fatal(err)
			}
			if len(raw.Attachments) != len(tt.want) {
				t.Fatalf("attachments %v, want %d", raw.Attachments, len(tt.want))
			}
			for i, a := range raw.Attachments {
				u, _ := a["url"].(string)
				m := urlRE.FindStringSubmatch(u)
				if m == nil || m[1] != tt.msg.ChannelID || m[2] != a["id"] || a["proxy_url"] != u || u != sent.Attachments[i].URL {
					t.Errorf("attachment %d: id %v, url %q, proxy_url %v; sent %+v", i, a["id"], u, a["proxy_url"], sent.Attachments[i])
				}
				delete(a, "id")
				delete(a, "url")
				delete(a, "proxy_url")
				if got, _ := json.Marshal(a); string(got) != mustJSON(t, tt.want[i]) {
					t.Errorf("attachment %d: %s, want %s", i, got, mustJSON(t, tt.want[i]))
				}
			}
			if string(raw.StickerItems) != tt.stickers {
				t.Errorf("sticker_items %s, want %s", raw.StickerItems, tt.stickers)
			}
			if raw.Flags != tt.flags {
				t.Errorf("flags %d, want %d", raw.Flags, tt.flags)
			}
			// discordgo reads every field.
			var dm discordgo.Message
			if err := json.Unmarshal(f.D, &dm); err != nil {
				t.Fatal(err)
			}
			if len(dm.Attachments) > 0 {
				a, s := dm.Attachments[0], tt.msg.Attachments[0]
				if a.ContentType != s.ContentType || a.Width != s.Width || a.DurationSecs != s.DurationSecs || a.Waveform != s.Waveform {
					t.Errorf("discordgo read %+v from %+v", a, s)
				}
			}
			if tt.msg.Voice != (dm.Flags&discordgo.MessageFlagsIsVoiceMessage != 0) {
				t.Errorf("discordgo flags %d", dm.Flags)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAttachments_Download checks the CDN route: the bytes without
// authorization, and 404 for altered or expired links.
func TestAttachments_Download(t *testing.T) {
	w := newWorld(t, discordtest.Options{AttachmentTTL: time.Hour})
	dm, err := w.srv.DM(w.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.srv.SendMessage(discordtest.UserMessage{ChannelID: dm.ID, AuthorID: w.user.ID,
		Attachments: []discordtest.Attachment{{Filename: "a.txt", ContentType: "text/plain; charset=utf-8", Data: []byte("hello file")}}})
	if err != nil {
		t.Fatal(err)
	}
	link := m.Attachments[0].URL
	get := func(t *testing.T, u string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get(t, link); code != 200 || ct != "text/plain; charset=utf-8" || body != "hello file" {
		t.Errorf("GET: %d %q %q", code, ct, body)
	}
	u, _ := url.Parse(link)
	q := u.Query()
	q.Set("hm", strings.Repeat("0", 64))
	u.RawQuery = q.Encode()
	if code, _, body := get(t, u.String()); code != 404 || body != "This content is no longer available." {
		t.Errorf("altered link: %d %q", code, body)
	}
	w.srv.Advance(time.Hour)
	if code, _, body := get(t, link); code != 404 || body != "This content is no longer available." {
		t.Errorf("expired link: %d %q", code, body)
	}
	ds := w.srv.Downloads()
	if len(ds) != 3 || ds[0].Status != 200 || ds[1].Status != 404 || ds[2].Status != 404 || ds[0].AttachmentID != m.Attachments[0].ID ||
		ds[0].Header.Get("User-Agent") == "" {
		t.Errorf("Downloads = %+v", ds)
	}
}

// TestAttachments_SlashOption checks a slash command's attachment option:
// its value is the file's id and resolved.attachments holds the file, as
// discordgo reads them.
func TestAttachments_SlashOption(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	_, err := w.s.ApplicationCommandBulkOverwrite(w.srv.AppID(), "", []*discordgo.ApplicationCommand{{
		Name: "chat", Description: "Talk",
		Options: []*discordgo.ApplicationCommandOption{
			{Type: discordgo.ApplicationCommandOptionString, Name: "prompt", Description: "what", Required: true},
			{Type: discordgo.ApplicationCommandOptionAttachment, Name: "attachment", Description: "a file"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := rawGateway(t, w.srv, int64(discord.Intents))
	it, err := w.srv.SendSlash("chat", []discordtest.Option{{Name: "prompt", Value: "see"},
		{Name: "attachment", Value: discordtest.Attachment{Filename: "pic.jpg", ContentType: "image/jpeg", Data: []byte("jpeg"), Width: 2, Height: 1}}},
		w.user.ID, w.channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(it.Attachments) != 1 || it.Attachments[0].ID == "" {
		t.Fatalf("Interaction.Attachments = %+v", it.Attachments)
	}
	f := readUntil(t, c, "INTERACTION_CREATE")
	var ev discordgo.InteractionCreate
	if err := json.Unmarshal(f.D, &ev); err != nil {
		t.Fatal(err)
	}
	data := ev.ApplicationCommandData()
	o := data.GetOption("attachment")
	if o == nil || o.Type != discordgo.ApplicationCommandOptionAttachment || o.Value != it.Attachments[0].ID {
		t.Fatalf("attachment option %+v, want type 11 with the file's id", o)
	}
	a := data.Resolved.Attachments[it.Attachments[0].ID]
	if a == nil || a.Filename != "pic.jpg" || a.ContentType != "image/jpeg" || a.Size != 4 || a.Width != 2 || !a.Ephemeral || a.URL != it.Attachments[0].URL {
		t.Errorf("resolved attachment %+v", a)
	}
}

func TestAttachments_Refused(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	w.registerChat(t)
	file := discordtest.Attachment{Filename: "f.txt", Data: []byte("f")}
	eleven := make([]discordtest.Attachment, 11)
	for i := range eleven {
		eleven[i] = file
	}
	noWave := voiceFile()
	noWave.Waveform = ""
	messages := []struct {
		name string
		msg  discordtest.UserMessage
	}{
		{"Empty", discordtest.UserMessage{}},
		{"ElevenFiles", discordtest.UserMessage{Attachments: eleven}},
		{"FourStickers", discordtest.UserMessage{Stickers: make([]discordtest.Sticker, 4)}},
		{"NoFileName", discordtest.UserMessage{Attachments: []discordtest.Attachment{{Data: []byte("x")}}}},
		{"VoiceWithText", discordtest.UserMessage{Content: "hi", Voice: true, Attachments: []discordtest.Attachment{voiceFile()}}},
		{"VoiceWithoutWaveform", discordtest.UserMessage{Voice: true, Attachments: []discordtest.Attachment{noWave}}},
		{"VoiceOfTwoFiles", discordtest.UserMessage{Voice: true, Attachments: []discordtest.Attachment{voiceFile(), voiceFile()}}},
	}
	for _, tt := range messages {
		tt.msg.ChannelID, tt.msg.AuthorID = w.channel.ID, w.user.ID
		if _, err := w.srv.SendMessage(tt.msg); err == nil {
			t.Errorf("%s: SendMessage succeeded", tt.name)
		}
	}
	slashes := []struct {
		name string
		opts []discordtest.Option
	}{
		{"Undeclared", []discordtest.Option{{Name: "prompt", Value: "p"}, {Name: "attachment", Value: file}}},
		{"WrongType", []discordtest.Option{{Name: "prompt", Value: file}}},
		{"MissingRequired", nil},
	}
	for _, tt := range slashes {
		if _, err := w.srv.SendSlash("chat", tt.opts, w.user.ID, w.channel.ID); err == nil {
			t.Errorf("%s: SendSlash succeeded", tt.name)
		}
	}
	if len(w.srv.Downloads()) != 0 {
		t.Error("refused files were served")
	}
}

func TestServer_CommandOptions(t *testing.T) {
	w := newWorld(t, discordtest.Options{})
	opt := func(typ discordgo.ApplicationCommandOptionType, name string, required, auto bool) *discordgo.ApplicationCommandOption {
		return &discordgo.ApplicationCommandOption{Type: typ, Name: name, Description: name, Required: required, Autocomplete: auto}
	}
	tests := []struct {
		name string
		opts []*discordgo.ApplicationCommandOption
		ok   bool
	}{
		{"OK", []*discordgo.ApplicationCommandOption{opt(3, "prompt", true, false), opt(11, "attachment", false, false)}, true},
		{"ErrRequiredAfterOptional", []*discordgo.ApplicationCommandOption{opt(11, "attachment", false, false), opt(3, "prompt", true, false)}, false},
		{"ErrType", []*discordgo.ApplicationCommandOption{opt(12, "what", false, false)}, false},
		{"ErrAutocompleteAttachment", []*discordgo.ApplicationCommandOption{opt(11, "file", false, true)}, false},
		{"ErrName", []*discordgo.ApplicationCommandOption{opt(3, "Prompt", false, false)}, false},
	}
	for _, tt := range tests {
		_, err := w.s.ApplicationCommandBulkOverwrite(w.srv.AppID(), "", []*discordgo.ApplicationCommand{{Name: "chat", Description: "d", Options: tt.opts}})
		if _, code := restCode(err); tt.ok != (err == nil) || !tt.ok && code != 50035 {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
