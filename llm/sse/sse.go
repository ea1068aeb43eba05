// Package sse reads server-sent events (text/event-stream) tolerantly, as
// OpenAI-compatible servers write them: "data:" with or without its space,
// CRLF line ends, "id"/"retry" ignored, several data lines of one event
// joined with "\n", a last event without its blank line, "event: error",
// and llama.cpp's "error:" field. The llm client and the gateway's relay
// share it.
package sse

import (
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
// a broken or hostile server can make a reader hold: a read buffer of
// MaxLine (and its CR LF) and an event's data of as much, whatever it
// sends.
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

	r       io.Reader
	buf     []byte // buf[start:end] is read and not yet taken
	start   int
	end     int
	fast    bool  // the last read filled more than half the buffer: grow it
	readErr error // the last read's error, returned once buf is taken
	data    []byte
	hasData bool
	isError bool
	started bool
	err     error // ErrLineTooLong, once seen
}

// fastBuffer is the most a Reader's buffer grows to for a fast stream.
const fastBuffer = 16 << 10

// maxBuffer holds the longest line there may be: MaxLine bytes and CR LF.
const maxBuffer = MaxLine + 2

// NewReader reads events from r with a buffer of size bytes (at least 16)
// at first. The buffer grows, doubling, to hold a line longer than it (up
// to MaxLine), and up to 16 KiB when a read fills more than half of it
// (input arrives faster than it is read, or is read only now and then), so
// that a slow stream, a few hundred bytes at a time, costs size bytes, and
// a fast one is read in a few large reads rather than many small ones. It
// never shrinks.
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{r: r, buf: make([]byte, max(size, 16))}
}

// Buffered reports whether input is already buffered, so that the next
// call to Next may return without waiting for the server.
func (d *Reader) Buffered() bool { return d.end > d.start }

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
	scanned := 0 // bytes of buf[start:end] known to hold no '\n'
	for {
		if i := bytes.IndexByte(d.buf[d.start+scanned:d.end], '\n'); i >= 0 {
			line := d.buf[d.start : d.start+scanned+i]
			d.start += scanned + i + 1
			return d.trim(line)
		}
		scanned = d.end - d.start
		if d.readErr != nil {
			if scanned == 0 || d.readErr != io.EOF {
				return nil, d.readErr
			}
			line := d.buf[d.start:d.end]
			d.start = d.end
			return d.trim(line)
		}
		if err := d.fill(); err != nil {
			return nil, err
		}
	}
}

// trim removes a line's CR, and the byte order mark before the first line.
func (d *Reader) trim(line []byte) ([]byte, error) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > MaxLine {
		return nil, d.tooLong()
	}
	if !d.started {
		d.started = true
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	return line, nil
}

// tooLong ends the stream with ErrLineTooLong, releasing the buffer (a
// megabyte, by then).
func (d *Reader) tooLong() error {
	d.buf, d.start, d.end = nil, 0, 0
	d.err = ErrLineTooLong
	return d.err
}

// fill reads more input after the buffered bytes. It first moves them to
// the front of the buffer, and grows the buffer when they fill it (a line
// longer than the buffer: up to maxBuffer, beyond which the line is too
// long) or when the last read filled more than half of it (a fast stream:
// up to fastBuffer).
func (d *Reader) fill() error {
	d.end = copy(d.buf, d.buf[d.start:d.end])
	d.start = 0
	switch n := len(d.buf); {
	case d.end == n && n >= maxBuffer:
		return d.tooLong()
	case d.end == n:
		d.grow(min(2*n, maxBuffer))
	case d.fast:
		d.grow(min(2*n, fastBuffer))
	}
	room := len(d.buf) - d.end
	for range 100 { // as bufio.Reader, give up after 100 empty reads
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		d.fast = n == room && 2*room > len(d.buf) && len(d.buf) < fastBuffer
		if n > 0 || err != nil {
			d.readErr = err
			return nil
		}
	}
	d.readErr = io.ErrNoProgress
	return nil
}

// grow replaces the buffer with one of size bytes holding the same input.
func (d *Reader) grow(size int) {
	buf := make([]byte, size)
	d.end = copy(buf, d.buf[d.start:d.end])
	d.buf, d.start = buf, 0
}

// Drain reads what follows the last event (the end of a chunked body, at
// most 64 KiB with what is buffered) so that the connection can be reused;
// a server that keeps the body open longer than wait gets body closed.
func (d *Reader) Drain(body io.Closer, wait time.Duration) {
	t := time.AfterFunc(wait, func() { body.Close() })
	buffered := d.end - d.start
	d.start = d.end
	if d.readErr == nil && buffered < 64<<10 {
		io.CopyN(io.Discard, d.r, int64(64<<10-buffered))
	}
	t.Stop()
}
