// Package sse reads server-sent events (text/event-stream) tolerantly, as
// OpenAI-compatible servers write them: "data:" with or without its space,
// CRLF line ends, "id"/"retry" ignored, several data lines of one event
// joined with "\n", a last event without its blank line, "event: error",
// and llama.cpp's "error:" field. The llm client and the gateway's relay
// share it.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"time"
)

// MaxLine is the most bytes one line of a stream may hold, and the data of
// one event (its data lines together). A line is one chunk of a streamed
// completion: a few hundred bytes, one token or a few. 1 MiB holds a whole
// long answer sent as one chunk (32,000 tokens of text, even with every
// character escaped as \uXXXX in JSON) with room to spare, and bounds what
// a broken or hostile server can make a reader hold: no more than MaxLine
// plus the read buffer, whatever it sends.
const MaxLine = 1 << 20

// ErrLineTooLong is returned by Reader.Next when a line, or the data of one
// event, is longer than MaxLine. The stream cannot be read further: the
// reader returns it on every later call, and the caller should close the
// connection.
var ErrLineTooLong = errors.New("sse: line longer than 1 MiB")

// Kind is what an Event is.
type Kind int

// Kinds of Event.
const (
	Data       Kind = iota // a data event
	Error                  // a data event whose type is "error"
	ErrorField             // an "error:" field (llama.cpp builds of 2025)
	Comment                // a comment line between events (only with Comments)
)

// Event is one server-sent event. Data (the event's data, or the whole
// comment line) is valid until the next call to Next.
type Event struct {
	Kind Kind
	Data []byte
	// AtEOF is true for an event ended by the end of the input rather than
	// by a blank line: it may have been cut short.
	AtEOF bool
}

// Reader reads events. It is not safe for concurrent use.
type Reader struct {
	// Comments makes Next return comment lines between events (for a
	// relay that forwards keep-alives); by default they are skipped.
	Comments bool

	r       *bufio.Reader
	data    []byte
	hasData bool
	isError bool
	long    []byte // a line longer than the buffer
	started bool
	err     error // ErrLineTooLong, once seen
}

// NewReader reads events from r with a buffer of size bytes. A few KiB hold
// a typical chunk (about 300 bytes) many times over; longer lines are
// assembled separately, so a small buffer costs nothing in correctness.
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, size)}
}

// Buffered reports whether input is already buffered, so that the next
// call to Next may return without waiting for the server.
func (d *Reader) Buffered() bool { return d.r.Buffered() > 0 }

// Next returns the next event, io.EOF at a clean end of input, the read
// error, or ErrLineTooLong.
func (d *Reader) Next() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	for {
		line, err := d.line()
		if err != nil {
			if err == io.EOF && d.hasData {
				ev := d.dispatch()
				ev.AtEOF = true
				return ev, nil
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if d.hasData {
				return d.dispatch(), nil
			}
			d.isError = false
			continue
		}
		if line[0] == ':' {
			if !d.Comments || d.hasData {
				continue // a comment inside an event is not worth relaying
			}
			return Event{Kind: Comment, Data: line}, nil
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "data":
			if len(d.data)+1+len(value) > MaxLine && d.hasData {
				d.err = ErrLineTooLong
				return Event{}, d.err
			}
			if d.hasData {
				d.data = append(d.data, '\n')
			} else {
				d.data = d.data[:0]
			}
			d.data = append(d.data, value...)
			d.hasData = true
		case "event":
			d.isError = string(value) == "error"
		case "error":
			d.data = append(d.data[:0], value...)
			d.hasData, d.isError = false, false
			return Event{Kind: ErrorField, Data: d.data}, nil
		}
	}
}

func (d *Reader) dispatch() Event {
	ev := Event{Kind: Data, Data: d.data}
	if d.isError {
		ev.Kind = Error
	}
	d.hasData, d.isError = false, false
	return ev
}

// line returns the next line without its end of line; the last line of
// the input need not have one. A line longer than MaxLine is read no
// further than that: it is ErrLineTooLong.
func (d *Reader) line() ([]byte, error) {
	line, err := d.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		d.long = append(d.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(d.long) <= MaxLine+2 {
			line, err = d.r.ReadSlice('\n')
			d.long = append(d.long, line...)
		}
		line = d.long
	}
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		if err != io.EOF || len(line) == 0 {
			return nil, err
		}
		err = nil
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if err != nil || len(line) > MaxLine {
		d.long = nil // do not keep a megabyte for the rest of the stream
		d.err = ErrLineTooLong
		return nil, d.err
	}
	if !d.started {
		d.started = true
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	return line, nil
}

// Drain reads what follows the last event (the end of a chunked body, at
// most 64 KiB) so that the connection can be reused; a server that keeps
// the body open longer than wait gets body closed.
func (d *Reader) Drain(body io.Closer, wait time.Duration) {
	t := time.AfterFunc(wait, func() { body.Close() })
	io.CopyN(io.Discard, d.r, 64<<10)
	t.Stop()
}
