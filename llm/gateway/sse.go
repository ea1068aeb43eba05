package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Kinds of event.
const (
	eventData       = iota // a data event
	eventError             // a data event whose type is "error"
	eventErrorField        // an "error:" field (llama.cpp builds of 2025)
	eventComment           // a comment line (": keep-alive") between events
)

// event is one server-sent event. data (the event's data, or the whole
// comment line) is valid until the next call to next.
type event struct {
	kind int
	data []byte
}

// eventReader reads server-sent events tolerantly: "data:" with or
// without its space, CRLF line ends, "id" and "retry" ignored, several
// data lines joined with "\n", a last event without its blank line.
type eventReader struct {
	r       *bufio.Reader
	data    []byte
	hasData bool
	isError bool
	long    []byte
	started bool
}

func newEventReader(r io.Reader) *eventReader {
	return &eventReader{r: bufio.NewReaderSize(r, 16<<10)}
}

// buffered reports whether input is already buffered, so that the next
// call to next may return without waiting for the server.
func (d *eventReader) buffered() bool { return d.r.Buffered() > 0 }

// next returns the next event, io.EOF at the end of the input (after a
// last event without its blank line), or the read error.
func (d *eventReader) next() (event, error) {
	for {
		line, err := d.line()
		if err != nil {
			if err == io.EOF && d.hasData {
				return d.dispatch(), nil
			}
			return event{}, err
		}
		if len(line) == 0 {
			if d.hasData {
				return d.dispatch(), nil
			}
			d.isError = false
			continue
		}
		if line[0] == ':' {
			if d.hasData {
				continue // a comment inside an event: not worth relaying
			}
			return event{kind: eventComment, data: line}, nil
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
			return event{kind: eventErrorField, data: d.data}, nil
		}
	}
}

func (d *eventReader) dispatch() event {
	ev := event{kind: eventData, data: d.data}
	if d.isError {
		ev.kind = eventError
	}
	d.hasData, d.isError = false, false
	return ev
}

// line returns the next line without its end of line; the last line of
// the input need not have one.
func (d *eventReader) line() ([]byte, error) {
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
