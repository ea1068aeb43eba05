package sessions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/palaver-bot/palaver/llm"
	"github.com/palaver-bot/palaver/llm/sse"
)

// Errors the Manager returns for bad input. Explain turns each into the
// sentence a user sees.
var (
	ErrEmpty         = errors.New("message is empty")
	ErrBusy          = errors.New("too many messages waiting")
	ErrUnknownModel  = errors.New("model not available")
	ErrTooLong       = errors.New("message too long")
	ErrPromptTooLong = errors.New("system prompt too long")
	ErrNothingToRedo = errors.New("nothing to retry")
	ErrRateLimited   = errors.New("user sends too fast")
	ErrClosed        = errors.New("manager is shutting down")
	// ErrNotSaved wraps a store failure that kept a user's message or an
	// answer from being committed (a full disk, an I/O error). The message
	// is not confirmed to the platform, so it comes again later.
	ErrNotSaved = errors.New("message not saved")
	// ErrUnread ends a turn whose message had nothing to ask once its
	// files were read: no text, and no file read (or only pictures, for a
	// model that does not see them). The notes with the answer say why.
	ErrUnread = errors.New("nothing in the message could be read")
	// ErrNoTranscription reports a voice message when no transcription
	// model is configured (Config.Transcription), or its provider is not.
	ErrNoTranscription = errors.New("no transcription model configured")
	// ErrCannotFetch reports a file from a platform whose adapter
	// registered no Fetcher.
	ErrCannotFetch = errors.New("no way to download the platform's files")
	// ErrOverBudget refuses a turn (or an endpoint request) over a usage
	// limit; the *BudgetError it comes in says which, and when it resets.
	ErrOverBudget = errors.New("usage limit reached")
	// ErrRestricted refuses a model only admins may choose or use
	// (UsageConfig.Restricted) to someone else.
	ErrRestricted = errors.New("model restricted to admins")
)

// UserError is an error whose text is already meant for the user.
type UserError struct {
	Err error  // one of the sentinel errors above, for errors.Is
	Msg string // the sentence shown
	// Quiet is set when the user was just told Msg for an earlier message
	// (a user sending too fast): the adapter shows nothing (see Silent).
	Quiet bool
}

// Silent reports whether err needs no sentence in the chat: a message
// accepted before (ErrDuplicate) or a refusal the user was just told about.
func Silent(err error) bool {
	var ue *UserError
	return errors.Is(err, ErrDuplicate) || errors.As(err, &ue) && ue.Quiet
}

func (e *UserError) Error() string { return e.Msg }
func (e *UserError) Unwrap() error { return e.Err }

func userErr(err error, format string, args ...any) error {
	return &UserError{Err: err, Msg: fmt.Sprintf(format, args...)}
}

// Explain turns any error from the Manager, the store or the model provider
// into one short sentence for the person in the chat, with what to do next.
// It is the one place where errors become user-facing text. The sentence
// never holds the error's own text (Go error strings, file paths, parser
// messages): only a provider's explanation, a host name and Palaver's own
// words. Callers log err itself, with the conversation.
func Explain(err error) string { return explain(err, inChat) }

// ExplainCommand is Explain for a person at a command line (palaver ask,
// palaver models): the same sentences, with next steps that name flags
// and commands instead of chat commands ("try again", "--model",
// "palaver models"). A *UserError's sentence is its own, as in Explain.
func ExplainCommand(err error) string { return explain(err, atCommand) }

// Unexplained reports whether Explain has no sentence of its own for err
// and sends the reader to Palaver's log instead, where err must then be.
func Unexplained(err error) bool {
	return err != nil && Explain(err) == unexplained
}

// unexplained is Explain's sentence for an error it does not know.
const unexplained = "Something went wrong while answering; the details are in Palaver's log."

// surface is where a sentence is read, for the next steps it names.
type surface struct {
	retry  string // how to try again: "try /retry"
	model  string // how to choose a model: "/model"
	models string // how to list them: "/models"
}

var (
	inChat    = surface{retry: "try /retry", model: "/model", models: "/models"}
	atCommand = surface{retry: "try again", model: "--model", models: "palaver models"}
)

func explain(err error, on surface) string {
	if err == nil {
		return ""
	}
	// A refused model name may come inside a *UserError (the Manager's
	// ResolveModel): its sentence is worded for where it is read.
	if msg, ok := explainModel(err, on); ok {
		return msg
	}
	var ue *UserError
	if errors.As(err, &ue) {
		return ue.Msg
	}
	if be, ok := errors.AsType[*BudgetError](err); ok {
		return be.Error()
	}
	var se *llm.StatusError
	if errors.As(err, &se) {
		return explainStatus(se, on)
	}
	var stream *llm.StreamError
	retry := on.retry
	Retry := strings.ToUpper(retry[:1]) + retry[1:]
	switch {
	case errors.Is(err, ErrNotSaved):
		return "Palaver can't save messages right now; your message will be answered when it can."
	case errors.Is(err, ErrClosed):
		return "Palaver is restarting; please send that again in a moment."
	case errors.Is(err, ErrNotOwner):
		return "Another Palaver process took this conversation over; " + retry + " in a moment."
	case errors.Is(err, ErrUnread):
		return "Palaver could not read what you sent, and there was no text to answer."
	case errors.Is(err, ErrNoTranscription):
		return "Palaver can't turn voice messages into text here: no transcription model is configured (models.transcription)."
	case errors.Is(err, ErrCannotFetch):
		return "Palaver can't download files sent here."
	case errors.As(err, &stream):
		return "The model provider stopped with an error" + providerSays(stream.Message) + "; " + retry + "."
	case errors.Is(err, llm.ErrFirstByteTimeout):
		return "The model provider did not start answering in time; it may be overloaded. " + Retry + "."
	case errors.Is(err, llm.ErrIdleTimeout):
		return "The model provider went silent in the middle of the answer; " + retry + "."
	case errors.Is(err, llm.ErrTruncated):
		return "The connection to the model provider broke off before the answer was complete; " + retry + "."
	case errors.Is(err, sse.ErrLineTooLong):
		return "The model provider sent a piece of the answer too large to read; " + retry + ", or another model with " + on.model + "."
	case errors.Is(err, llm.ErrMalformed):
		return "The model provider sent an answer Palaver could not read; " + retry + ", or another model with " + on.model + "."
	case errors.Is(err, context.DeadlineExceeded):
		return "The model provider took too long to answer; " + retry + "."
	case errors.Is(err, context.Canceled):
		return "The answer was cancelled before it was complete; " + retry + "."
	}
	if host, ok := llm.Unreachable(err); ok {
		switch {
		case host == "":
			return "Palaver could not reach the model provider; check the network connection and the provider's base_url in the config, then " + retry + "."
		case llm.IsLoopback(host):
			return "Palaver could not reach the model server at " + host + ": is it running? Check the provider's base_url in the config, then " + retry + "."
		}
		return "Palaver could not reach the model provider at " + host + "; check the network connection and the provider's base_url in the config, then " + retry + "."
	}
	return unexplained
}

// maxNamed bounds the model names one sentence lists.
const maxNamed = 5

// explainModel is the sentence for a model name that could not be
// resolved (llm.Router.Lookup's errors) or a provider whose model list
// could not be fetched; ok is false for other errors.
func explainModel(err error, on surface) (msg string, ok bool) {
	if ae, ok := errors.AsType[*llm.AliasError](err); ok {
		return fmt.Sprintf("%q is a name for %s, but no provider %q is configured here; choose another model with %s (see %s).",
			ae.Alias, ae.Target, ae.Provider, on.model, on.models), true
	}
	if um, ok := errors.AsType[*llm.UnknownModelError](err); ok {
		switch {
		case um.Name == "":
			return fmt.Sprintf("Name a model: %s provider/model (see %s).", on.model, on.models), true
		case len(um.Matches) > 1:
			return fmt.Sprintf("%q matches several models: %s. Name one of them.", um.Name, namesList(um.Matches)), true
		case len(um.Suggestions) > 0:
			return fmt.Sprintf("Model %q is not available here. Did you mean: %s?", um.Name, namesList(um.Suggestions)), true
		case len(um.Down) > 0:
			return fmt.Sprintf("Model %q was not found; not searched: %s.", um.Name, reasons(um.Down)), true
		}
		return fmt.Sprintf("Model %q is not available here. See %s.", um.Name, on.models), true
	}
	if les := llm.ListErrors(err); len(les) > 0 {
		return "Provider " + reasons(les) + ".", true
	}
	return "", false
}

// namesList joins up to maxNamed names, saying how many more there are.
func namesList(names []string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed)
}

// reasons joins the providers' failures (llm.ListError.Reason).
func reasons(les []*llm.ListError) string {
	rs := make([]string, len(les))
	for i, le := range les {
		rs[i] = le.Reason()
	}
	return strings.Join(rs, "; ")
}

// ModelsNotes is what /models shows under the list for the error of
// Manager.Models: one line per provider whose models could not be listed,
// "(deepinfra unreachable: could not reach api.deepinfra.com; check the
// network connection and providers.deepinfra.base_url)", or Explain's
// sentence for any other error; nothing for nil. Every adapter's /models
// (and the terminal chat's) shows these lines.
func ModelsNotes(err error) []string {
	if err == nil {
		return nil
	}
	les := llm.ListErrors(err)
	if len(les) == 0 {
		return []string{Explain(err)}
	}
	notes := make([]string, len(les))
	for i, le := range les {
		notes[i] = "(" + le.Reason() + ")"
	}
	return notes
}

// providerSays quotes a provider's own message, " (message)", or nothing when
// it is empty.
func providerSays(msg string) string {
	msg = clip(strings.TrimSpace(msg), 200)
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

func explainStatus(se *llm.StatusError, on surface) string {
	msg := providerSays(se.Message)
	switch {
	case se.NeedsKey():
		return fmt.Sprintf("%s refused anonymous access: set providers.%s.api_key in the config (or the DEEPINFRA_API_KEY environment variable).", se.Provider, se.Provider)
	case se.StatusCode == 401 || se.StatusCode == 403:
		return fmt.Sprintf("%s refused the API key%s: check providers.%s.api_key.", se.Provider, msg, se.Provider)
	case se.StatusCode == 402:
		return fmt.Sprintf("%s says the account has no credit left%s.", se.Provider, msg)
	case se.StatusCode == 404:
		return fmt.Sprintf("%s does not know this model%s: pick another with %s (see %s).", se.Provider, msg, on.model, on.models)
	case se.StatusCode == 429:
		if se.RetryAfter > 0 {
			return fmt.Sprintf("%s is rate limiting us%s; try again in %s.", se.Provider, msg, se.RetryAfter.Round(time.Second))
		}
		return fmt.Sprintf("%s is rate limiting us%s; try again shortly.", se.Provider, msg)
	case se.StatusCode >= 500:
		return fmt.Sprintf("%s had a server error (%d)%s; %s in a moment.", se.Provider, se.StatusCode, msg, on.retry)
	}
	return fmt.Sprintf("%s refused the request (%d)%s.", se.Provider, se.StatusCode, msg)
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// ErrorKind classifies an upstream error for metrics: "auth", "rate_limit",
// "client", "server", "stream", "truncated", "malformed", "timeout" or
// "network".
func ErrorKind(err error) string {
	var se *llm.StatusError
	var stream *llm.StreamError
	switch {
	case errors.As(err, &se):
		switch {
		case se.StatusCode == 401 || se.StatusCode == 403:
			return "auth"
		case se.StatusCode == 429:
			return "rate_limit"
		case se.StatusCode >= 500:
			return "server"
		}
		return "client"
	case errors.As(err, &stream):
		return "stream"
	case errors.Is(err, llm.ErrTruncated):
		return "truncated"
	case errors.Is(err, llm.ErrMalformed), errors.Is(err, sse.ErrLineTooLong):
		return "malformed"
	case errors.Is(err, llm.ErrFirstByteTimeout), errors.Is(err, llm.ErrIdleTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "network"
}
