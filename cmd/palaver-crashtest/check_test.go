package main

import (
	"encoding/json"
	"testing"

	"github.com/palaver-bot/palaver/bots/discord/discordtest"
	"github.com/palaver-bot/palaver/bots/telegram/telegramtest"
	"github.com/palaver-bot/palaver/sessions"
)

const (
	interruptedNote = "⚠️ Interrupted: Palaver restarted. Use /retry for a new answer."
	restartingNote  = "⚠️ Interrupted: Palaver is restarting. Use /retry for a new answer."
	queuedNote      = "⚠️ Palaver restarted before answering this. Use /retry to have it answered."
	queuedStatus    = "⏳ Queued: one answer ahead of this one."
	telegramStop    = `{"inline_keyboard":[[{"text":"⏹ Stop","callback_data":"stop"}]]}`
	discordStop     = `[{"type":1,"components":[{"type":2,"style":2,"label":"Stop","custom_id":"palaver:stop"}]}]`
)

func TestTelegramShown(t *testing.T) {
	tests := []struct {
		name string
		msg  telegramtest.Message
		want shown
	}{
		{"Answer", telegramtest.Message{ID: 4, Text: "A0001 alpha bravo"},
			shown{ref: "4", order: 4, text: "A0001 alpha bravo", content: "A0001 alpha bravo"}},
		{"Interrupted", telegramtest.Message{ID: 4, ReplyTo: 3, Text: "A0001 alpha\n\n" + interruptedNote},
			shown{ref: "4", order: 4, replyTo: "3", text: "A0001 alpha\n\n" + interruptedNote, content: "A0001 alpha", note: interruptedNote}},
		{"NoteAlone", telegramtest.Message{ID: 4, Text: queuedNote},
			shown{ref: "4", order: 4, text: queuedNote, note: queuedNote}},
		{"Queued", telegramtest.Message{ID: 4, Text: queuedStatus},
			shown{ref: "4", order: 4, text: queuedStatus, status: queuedStatus}},
		{"OtherStatus", telegramtest.Message{ID: 4, Text: "A0001\n\n⚠️ The model provider failed."},
			shown{ref: "4", order: 4, text: "A0001\n\n⚠️ The model provider failed.", content: "A0001\n\n⚠️ The model provider failed."}},
		{"Stop", telegramtest.Message{ID: 4, Text: "A0001", ReplyMarkup: json.RawMessage(telegramStop)},
			shown{ref: "4", order: 4, text: "A0001", content: "A0001", stop: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := telegramShown(tt.msg); got != tt.want {
				t.Errorf("telegramShown = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDiscordShown(t *testing.T) {
	tests := []struct {
		name string
		msg  discordtest.Message
		want shown
	}{
		{"Answer", discordtest.Message{ID: "9", ReferenceID: "8", Content: "A0001 alpha"},
			shown{ref: "9", replyTo: "8", text: "A0001 alpha", content: "A0001 alpha"}},
		{"Interrupted", discordtest.Message{ID: "9", Content: "A0001 alpha\n-# " + restartingNote},
			shown{ref: "9", text: "A0001 alpha\n-# " + restartingNote, content: "A0001 alpha", note: restartingNote}},
		{"NoteAlone", discordtest.Message{ID: "9", Content: "-# " + interruptedNote},
			shown{ref: "9", text: "-# " + interruptedNote, note: interruptedNote}},
		{"Queued", discordtest.Message{ID: "9", Content: "-# " + queuedStatus},
			shown{ref: "9", text: "-# " + queuedStatus, status: queuedStatus}},
		{"Stop", discordtest.Message{ID: "9", Content: "A0001", Components: json.RawMessage(discordStop)},
			shown{ref: "9", text: "A0001", content: "A0001", stop: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := discordShown(tt.msg); got != tt.want {
				t.Errorf("discordShown = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	q := &question{n: 7, words: 4}
	full := q.answer() // "A0007 …", four words
	complete := &sessions.Entry{Role: "assistant", Text: full}
	cut := &sessions.Entry{Role: "assistant", Text: "A0007 alpha", Status: "interrupted"}
	msg := func(text string, stop bool) shown {
		m := telegramtest.Message{ID: 3, Text: text}
		if stop {
			m.ReplyMarkup = json.RawMessage(telegramStop)
		}
		return telegramShown(m)
	}
	tests := []struct {
		name   string
		answer *sessions.Entry
		reply  shown
		want   string
	}{
		{"Answered", complete, msg(full, false), "answered"},
		{"InterruptedNoted", cut, msg("A0007 alpha\n\n"+interruptedNote, false), "noted"},
		{"QueuedNoted", nil, msg(queuedNote, false), "noted"},
		{"EmptyInterruptedNoted", nil, msg(interruptedNote, false), "noted"},
		{"StopButton", complete, msg(full, true), kindUnfinalised},
		{"Queued", nil, msg(queuedStatus, false), kindUnfinalised},
		{"CutWithoutNote", complete, msg("A0007", false), kindUnfinalised},
		{"CompleteButNoted", complete, msg(full+"\n\n"+interruptedNote, false), kindWrongAnswer},
		{"NotedTextDiffers", cut, msg("A0007\n\n"+interruptedNote, false), kindWrongAnswer},
		{"HistoryHasNoAnswer", nil, msg("A0007 alpha\n\n"+interruptedNote, false), kindWrongAnswer},
		{"AnotherQuestionsAnswer", &sessions.Entry{Role: "assistant", Text: "A0008 alpha"}, msg("A0008 alpha", false), kindWrongAnswer},
		{"OtherText", complete, msg("Unknown command /x.", false), kindWrongAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := judge(q, tt.answer, tt.reply)
			if got != tt.want {
				t.Errorf("judge = %q (%s), want %q", got, why, tt.want)
			}
		})
	}
}
