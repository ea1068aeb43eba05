package llm

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Kinds of sseEvent.
const (
	eventMessage    = iota // a data event
	eventError             // a data event whose type is "error"
	eventErrorField        // an "error:" field (llama.cpp, 2025), value in data
)

// sseEvent is one server-sent event; data is valid until the next call.
type sseEvent struct {
	kind int
	data []byte
	// atEOF is true for an event ended by the end of the input rather than
	// by a blank line: it may have been cut short.
	atEOF bool
}

// sseReader reads server-sent events (text/event-stream) tolerantly:
// "data:" with or without a space, CRLF line ends, comments (keep-alives),
// "id"/"retry" fields ignored, and a last event without its blank line.
// Several data lines of one event are joined with "\n", as the spec says.
type sseReader struct {
	r       *bufio.Reader
	data    []byte
	hasData bool
	isError bool
	long    []byte // a line longer than the reader's buffer
	started bool
}

// newSSEReader reads events from r. The 4 KiB buffer holds a typical chunk
// (about 300 bytes) many times over; longer lines are assembled in long, so
// a thousand concurrent streams cost 4 MiB of buffers rather than 64.
func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 4<<10)}
}

// next returns the next event, or io.EOF at a clean end of input. Other
// read errors are returned as they are.
func (d *sseReader) next() (sseEvent, error) {
	for {
		line, err := d.line()
		if err != nil {
			if err == io.EOF && d.hasData {
				ev := d.dispatch()
				ev.atEOF = true
				return ev, nil
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if d.hasData {
				return d.dispatch(), nil
			}
			d.isError = false
			continue
		}
		if line[0] == ':' {
			continue
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
			return sseEvent{kind: eventErrorField, data: d.data}, nil
		}
	}
}

func (d *sseReader) dispatch() sseEvent {
	ev := sseEvent{kind: eventMessage, data: d.data}
	if d.isError {
		ev.kind = eventError
	}
	d.hasData, d.isError = false, false
	return ev
}

// line returns the next line without its end of line. The last line of
// the input need not end with one.
func (d *sseReader) line() ([]byte, error) {
	line, err := d.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		d.long = append(d.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = d.r.ReadSlice('\n')
			d.long = append(d.long, line...)
		}
		line = d.long
	}
	if err != nil {
		if err != io.EOF || len(line) == 0 {
			return nil, err
		}
		err = nil
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if !d.started {
		d.started = true
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	return line, nil
}
