package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/palaver-bot/palaver/sessions"
)

// noMentions lets no text in a bot message ping anyone: model output may
// contain "@everyone" or a user's mention.
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// hook is an interaction's webhook: the original response and follow-ups
// are sent and edited with its token.
type hook struct {
	appID, token string
}

// bucket is the discordgo rate-limit bucket of the hook's requests.
// discordgo puts every interaction-webhook edit into one bucket shared by
// all interactions, so that one answer's webhook limit would stall every
// other answer; a bucket per token keeps them apart, as Discord does.
func (h hook) bucket() string { return discordgo.EndpointWebhookToken(h.appID, h.token) }

// errBucketEmpty reports a request not made because discordgo's bucket
// for it is exhausted: making it would sleep, uncancellably, until the
// bucket resets.
var errBucketEmpty = errors.New("discord: rate-limit bucket exhausted")

// bucketReady returns a *sessions.RateLimitError, without making a
// request, when discordgo would sleep before a request on bucket.
func (b *Bot) bucketReady(bucket string) error {
	bk := b.s.Ratelimiter.GetBucket(bucket)
	if !bk.TryLock() {
		return nil // in use; the request will queue behind it
	}
	wait := b.s.Ratelimiter.GetWaitTime(bk, 1)
	bk.Unlock()
	if wait > 0 {
		return &sessions.RateLimitError{RetryAfter: wait, Err: errBucketEmpty}
	}
	return nil
}

// streamOpts are the options of every request that shows an answer: a 429
// is returned, not slept on.
func streamOpts(ctx context.Context) []discordgo.RequestOption {
	return []discordgo.RequestOption{discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false)}
}

// hookEdit edits the hook's message id ("@original" or a follow-up).
func (b *Bot) hookEdit(ctx context.Context, h hook, id string, body *messageBody) error {
	if err := b.bucketReady(h.bucket()); err != nil {
		return err
	}
	uri := discordgo.EndpointWebhookMessage(h.appID, h.token, id)
	if _, err := b.s.RequestWithBucketID(http.MethodPatch, uri, body, h.bucket(), streamOpts(ctx)...); err != nil {
		return fmt.Errorf("discord: edit interaction message: %w", err)
	}
	return nil
}

// hookFollowup sends a follow-up message with the hook and returns its id.
func (b *Bot) hookFollowup(ctx context.Context, h hook, body *messageBody) (string, error) {
	if err := b.bucketReady(h.bucket()); err != nil {
		return "", err
	}
	uri := discordgo.EndpointWebhookToken(h.appID, h.token) + "?wait=true"
	raw, err := b.s.RequestWithBucketID(http.MethodPost, uri, body, h.bucket(), streamOpts(ctx)...)
	if err != nil {
		return "", fmt.Errorf("discord: send follow-up: %w", err)
	}
	return messageID(raw, "send follow-up")
}

// messageID is the id of the message Discord answered with.
func messageID(raw []byte, what string) (string, error) {
	var m struct {
		ID string `json:"id"`
	}
	if err := discordgo.Unmarshal(raw, &m); err != nil || m.ID == "" {
		return "", fmt.Errorf("discord: %s: unreadable answer: %w", what, err)
	}
	return m.ID, nil
}

// hookDelete deletes the hook's message id.
func (b *Bot) hookDelete(ctx context.Context, h hook, id string) error {
	uri := discordgo.EndpointWebhookMessage(h.appID, h.token, id)
	if _, err := b.s.RequestWithBucketID(http.MethodDelete, uri, nil, h.bucket(), streamOpts(ctx)...); err != nil {
		return fmt.Errorf("discord: delete interaction message: %w", err)
	}
	return nil
}

// channelSend posts a message in a channel, as a reply to replyTo when it
// is not empty (without failing when that message is gone), and returns
// its id.
func (b *Bot) channelSend(ctx context.Context, channelID string, body *messageBody, replyTo string) (string, error) {
	uri := discordgo.EndpointChannelMessages(channelID)
	if err := b.bucketReady(uri); err != nil {
		return "", err
	}
	if replyTo != "" {
		no := false
		withRef := *body
		withRef.Reference = &discordgo.MessageReference{MessageID: replyTo, ChannelID: channelID, FailIfNotExists: &no}
		body = &withRef
	}
	raw, err := b.s.RequestWithBucketID(http.MethodPost, uri, body, uri, streamOpts(ctx)...)
	if err != nil {
		return "", fmt.Errorf("discord: send message: %w", err)
	}
	return messageID(raw, "send message")
}

// channelEdit edits one of the bot's channel messages. Like
// ChannelMessageEditComplex, without decoding the message Discord sends
// back, which under load cost as much as the request.
func (b *Bot) channelEdit(ctx context.Context, channelID, id string, body *messageBody) error {
	bucket := discordgo.EndpointChannelMessage(channelID, "")
	if err := b.bucketReady(bucket); err != nil {
		return err
	}
	uri := discordgo.EndpointChannelMessage(channelID, id)
	if _, err := b.s.RequestWithBucketID(http.MethodPatch, uri, body, bucket, streamOpts(ctx)...); err != nil {
		return fmt.Errorf("discord: edit message: %w", err)
	}
	return nil
}

// channelDelete deletes one of the bot's channel messages.
func (b *Bot) channelDelete(ctx context.Context, channelID, id string) error {
	if err := b.s.ChannelMessageDelete(channelID, id, streamOpts(ctx)...); err != nil {
		return fmt.Errorf("discord: delete message: %w", err)
	}
	return nil
}

// restCode is the Discord JSON error code of err, 0 when it has none.
func restCode(err error) int {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Message != nil {
		return re.Message.Code
	}
	return 0
}

// isHookExpired reports whether err says the interaction token no longer
// works (it lives 15 minutes).
func isHookExpired(err error) bool {
	switch restCode(err) {
	case discordgo.ErrCodeInvalidWebhookTokenProvided, discordgo.ErrCodeUnknownWebhook:
		return true
	}
	var re *discordgo.RESTError
	return errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized
}

// isGone reports whether err says the message no longer exists, by
// itself or with its channel (a thread deleted while its answer streams).
func isGone(err error) bool {
	switch restCode(err) {
	case discordgo.ErrCodeUnknownMessage, discordgo.ErrCodeUnknownChannel:
		return true
	}
	return false
}

// classify turns a refusal into the error the engine understands. A 429
// met while Discord's global limit holds is the bot's, across channels
// (discordgo's error does not say; the transport saw the headers).
func (b *Bot) classify(err error) error {
	var rl *discordgo.RateLimitError
	if errors.As(err, &rl) && rl.RateLimit != nil && rl.TooManyRequests != nil {
		global := time.Now().UnixNano() < b.globalUntil.Load()
		return &sessions.RateLimitError{RetryAfter: rl.RetryAfter, Global: global, Err: err}
	}
	if isGone(err) {
		return fmt.Errorf("%w: %w", sessions.ErrReplyGone, err)
	}
	return err
}
