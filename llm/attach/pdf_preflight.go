package attach

import (
	"bytes"
	"compress/zlib"
	"encoding/ascii85"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// preflightPDF checks a PDF, before the PDF library reads it, for the
// structures with which a crafted file could make the library exhaust
// memory or the stack, which no recover can catch: object tables over
// maxPDFObjects entries, decode buffers sized by the file, streams that
// decode to more than maxPDFStreamBytes (maxPDFDecoded in all), nesting
// deeper than maxPDFNesting and CMap blocks over maxPDFCMapEntries. It
// reads the raw bytes and each Flate or ASCII85 stream that the library
// may decode (not images or embedded fonts, which text extraction never
// reads). Streams of an encrypted PDF cannot be decoded here and go
// unchecked.
func preflightPDF(data []byte) error {
	if m := pdfIndirectKey.Find(data); m != nil {
		return fmt.Errorf("indirect %s, which the reader cannot bound", bytes.Fields(m)[0])
	}
	for _, m := range pdfNumberKey.FindAllSubmatch(data, -1) {
		n, err := strconv.ParseInt(string(m[2]), 10, 64)
		limit := int64(maxPDFObjects)
		if string(m[1]) == "Columns" {
			limit = 1 << 20
		}
		if err != nil || n > limit {
			return fmt.Errorf("/%s %s is over the limit of %d", m[1], m[2], limit)
		}
	}
	for _, m := range pdfArrayKey.FindAllSubmatch(data, -1) {
		nums := bytes.Fields(m[2])
		for i, f := range nums {
			n, err := strconv.ParseInt(string(f), 10, 64)
			switch {
			case err != nil:
				return fmt.Errorf("/%s holds %q", m[1], f)
			case string(m[1]) == "W" && n > 16:
				return fmt.Errorf("/W field of %d bytes", n)
			case string(m[1]) == "Index" && i%2 == 1:
				start, _ := strconv.ParseInt(string(nums[i-1]), 10, 64)
				if start+n > maxPDFObjects {
					return fmt.Errorf("/Index reaches object %d, over the limit of %d", start+n, maxPDFObjects)
				}
			}
		}
	}
	if err := checkXrefTables(data); err != nil {
		return err
	}
	var s pdfScanner
	if err := s.scan(data); err != nil {
		return err
	}
	budget := int64(maxPDFDecoded)
	for _, loc := range pdfStreamStart.FindAllIndex(data, -1) {
		if err := checkStream(data, loc[0], loc[1], &budget); err != nil {
			return err
		}
	}
	return nil
}

var (
	pdfIndirectKey = regexp.MustCompile(`/(?:N|Columns|Size|W|Index)\s+\d+\s+\d+\s+R\b`)
	pdfNumberKey   = regexp.MustCompile(`/(Size|N|Columns)\s+(\d+)`)
	pdfArrayKey    = regexp.MustCompile(`/(W|Index)\s*\[([^\]]*)\]`)
	pdfXref        = regexp.MustCompile(`(?:^|[\r\n])xref\s`)
	pdfStreamStart = regexp.MustCompile(`stream(?:\r\n|\n|\r)`)
	pdfFilter      = regexp.MustCompile(`/Filter\s*(\[[^\]]*\]|/[A-Za-z0-9]+)`)
	pdfName        = regexp.MustCompile(`/([A-Za-z0-9]+)`)
	pdfSkipStream  = regexp.MustCompile(`/Subtype\s*/Image|/Length[123]\b`)
)

// checkXrefTables checks the subsection headers ("first count") of every
// cross-reference table: the library grows its table to the highest
// object number before reading an entry.
func checkXrefTables(data []byte) error {
	for _, loc := range pdfXref.FindAllIndex(data, -1) {
		fields := bytes.Fields(data[loc[1]:min(len(data), loc[1]+64)])
		if len(fields) < 2 {
			continue
		}
		first, err1 := strconv.ParseInt(string(fields[0]), 10, 64)
		count, err2 := strconv.ParseInt(string(fields[1]), 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if first+count > maxPDFObjects || first < 0 || count < 0 {
			return fmt.Errorf("cross-reference table for objects %d–%d, over the limit of %d", first, first+count, maxPDFObjects)
		}
	}
	return nil
}

// checkStream decodes the stream whose data starts at data[start:] (its
// keyword at data[kw:start]) through its Flate and ASCII85 filters,
// counting the bytes against its limit and *budget and scanning them.
func checkStream(data []byte, kw, start int, budget *int64) error {
	// The stream's dictionary lies between "N G obj" and the keyword.
	from := max(0, kw-4096)
	i := bytes.LastIndex(data[from:kw], []byte("obj"))
	if i < 0 {
		return nil
	}
	dict := data[from+i+3 : kw]
	if pdfSkipStream.Match(dict) {
		return nil
	}
	var r io.Reader = bytes.NewReader(data[start:])
	if f := pdfFilter.FindSubmatch(dict); f != nil {
		for _, name := range pdfName.FindAllSubmatch(f[1], -1) {
			switch string(name[1]) {
			case "FlateDecode", "Fl":
				zr, err := zlib.NewReader(r)
				if err != nil {
					return nil // encrypted or damaged: the library fails on it too
				}
				r = zr
			case "ASCII85Decode", "A85":
				r = ascii85.NewDecoder(r)
			default:
				return nil // not a filter the library decodes
			}
		}
	} else {
		return nil // raw bytes: scanned with the file
	}
	limit := min(int64(maxPDFStreamBytes), *budget)
	var s pdfScanner
	n, err := io.Copy(&s, io.LimitReader(r, limit+1))
	*budget -= n
	switch {
	case errors.Is(err, errPDFSyntax):
		return err
	case n > limit:
		return fmt.Errorf("streams decode to more than %d MB", limit>>20)
	}
	return nil
}

// errPDFSyntax is a structure over preflightPDF's bounds.
var errPDFSyntax = errors.New("pdf structure over the limits")

// pdfScanner follows PDF syntax just far enough to measure the nesting of
// arrays and dictionaries and the entry count that opens a CMap block
// ("100 beginbfchar"), across Write calls.
type pdfScanner struct {
	depth int
	tok   []byte
	num   int64 // the last token, if an integer; else -1
}

func (s *pdfScanner) scan(p []byte) error {
	_, err := s.Write(p)
	return err
}

func (s *pdfScanner) Write(p []byte) (int, error) {
	for _, c := range p {
		switch c {
		case '[', '<':
			if err := s.endToken(); err != nil {
				return 0, err
			}
			if s.depth++; s.depth > maxPDFNesting {
				return 0, fmt.Errorf("%w: nesting deeper than %d", errPDFSyntax, maxPDFNesting)
			}
		case ']', '>':
			if err := s.endToken(); err != nil {
				return 0, err
			}
			s.depth = max(0, s.depth-1)
		case ' ', '\t', '\r', '\n', '\f', 0, '(', ')', '{', '}', '/', '%':
			if err := s.endToken(); err != nil {
				return 0, err
			}
		default:
			if len(s.tok) < 16 {
				s.tok = append(s.tok, c)
			}
		}
	}
	return len(p), nil
}

// endToken ends the token being read, checking a CMap block's count.
func (s *pdfScanner) endToken() error {
	if len(s.tok) == 0 {
		return nil
	}
	defer func() { s.tok = s.tok[:0] }()
	if bytes.HasPrefix(s.tok, []byte("begin")) && s.num > maxPDFCMapEntries {
		return fmt.Errorf("%w: %d entries in a %s block", errPDFSyntax, s.num, s.tok)
	}
	// An unsigned integer; tokens are cut at 16 bytes, which keeps it in
	// range.
	s.num = 0
	for _, c := range s.tok {
		if c < '0' || c > '9' {
			s.num = -1
			break
		}
		s.num = s.num*10 + int64(c-'0')
	}
	return nil
}
