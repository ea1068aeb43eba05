package attach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"
)

// Bounds on the structures of a PDF, checked before the PDF library reads
// it (see preflightPDF).
const (
	maxPDFObjects     = 1_000_000 // object numbers; the xref table holds 32 bytes each
	maxPDFNesting     = 10_000    // nested arrays and dictionaries
	maxPDFStreamBytes = 64 << 20  // one stream, decoded
	maxPDFDecoded     = 256 << 20 // all streams, decoded
	maxPDFPageNodes   = 100_000   // page tree nodes walked
	maxPDFTreeDepth   = 64        // page tree depth
	maxPDFCMapEntries = 10_000    // entries in one CMap block (the spec allows 100)
)

// errPDFStopped ends an extraction from inside the PDF library's
// interpreter, by panic, when the text is long enough or time is up.
var errPDFStopped = errors.New("extraction stopped")

// pdfText is what extractPDF read.
type pdfText struct {
	text  string
	chars int
	// pages is the number of pages in the PDF; read is how many were read.
	pages, read int
	// cut is true when the text passed maxChars and reading stopped.
	cut bool
}

// preparePDF extracts a PDF's text, within lim, into a block for the
// model. It refuses PDFs that need a password, that have no readable text
// or whose text is mostly not printable characters (fonts without a
// Unicode mapping), rather than pass garbage on.
func preparePDF(ctx context.Context, in Input, lim Limits) (*Text, error) {
	ctx, cancel := context.WithTimeout(ctx, lim.PDFTimeout)
	defer cancel()
	if err := preflightPDF(in.Data); err != nil {
		return nil, fmt.Errorf("attach: %w: pdf: %v", ErrCorrupt, err)
	}
	// The library has no context: it runs on its own goroutine, and every
	// read it makes fails once ctx is done, which ends its loops.
	type result struct {
		t   pdfText
		err error
	}
	done := make(chan result, 1)
	go func() {
		t, err := extractPDF(ctx, in.Data, lim)
		done <- result{t, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("attach: pdf: reading the text: %w", context.Cause(ctx))
	}
	if r.err != nil {
		return nil, r.err
	}
	t := r.t
	if err := checkReadable(t.text); err != nil {
		return nil, err
	}
	var notes []string
	if t.cut {
		notes = append(notes, fmt.Sprintf("truncated: the first %s characters are shown, from pages 1–%d of %d",
			formatCount(lim.MaxTextChars), t.read, t.pages))
	} else if t.read < t.pages {
		notes = append(notes, fmt.Sprintf("pages %d–%d were not read: the PDF has %d pages; the first %d are read",
			t.read+1, t.pages, t.pages, t.read))
	}
	about := fmt.Sprintf("PDF, %d pages, %s", t.pages, formatBytes(int64(len(in.Data))))
	if t.pages == 1 {
		about = fmt.Sprintf("PDF, 1 page, %s", formatBytes(int64(len(in.Data))))
	}
	return textBlock(in.Name, "PDF", "", about, t.text, notes, lim), nil
}

// extractPDF reads the text of data's pages, in order, until
// lim.MaxPDFPages pages or more than lim.MaxTextChars characters, and cuts
// it at lim.MaxTextChars. Panics inside the library become errors.
func extractPDF(ctx context.Context, data []byte, lim Limits) (t pdfText, err error) {
	defer func() {
		if r := recover(); r != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("attach: pdf: reading the text: %w", context.Cause(ctx))
				return
			}
			err = fmt.Errorf("attach: %w: pdf: %v", ErrCorrupt, r)
		}
	}()
	rd, err := pdf.NewReader(ctxReaderAt{ctx, data}, int64(len(data)))
	if err != nil && bytes.HasPrefix(data, []byte("%PDF-2.")) {
		// The library wants a 1.x header; PDF 2.0 files read the same.
		patched := bytes.Clone(data)
		copy(patched[5:], "1.7")
		rd, err = pdf.NewReader(ctxReaderAt{ctx, patched}, int64(len(patched)))
	}
	if err != nil {
		msg := err.Error()
		if errors.Is(err, pdf.ErrInvalidPassword) || strings.Contains(msg, "encrypt") {
			return t, fmt.Errorf("attach: %w: %v", ErrEncrypted, err)
		}
		return t, fmt.Errorf("attach: %w: pdf: %v", ErrCorrupt, err)
	}
	pages, total := pdfPages(rd.Trailer().Key("Root").Key("Pages"), lim.MaxPDFPages)
	t.pages = total
	var b strings.Builder
	limit := lim.MaxTextChars
	for _, p := range pages {
		if ctx.Err() != nil {
			return t, fmt.Errorf("attach: pdf: reading the text: %w", context.Cause(ctx))
		}
		pageText(ctx, &b, p, &t.chars, limit)
		t.read++
		if t.chars > limit {
			t.cut = true
			break
		}
		b.WriteString("\n\n")
	}
	if ctx.Err() != nil { // it may have cut the last page short
		return t, fmt.Errorf("attach: pdf: reading the text: %w", context.Cause(ctx))
	}
	t.text = strings.TrimSpace(b.String())
	if t.cut {
		t.text = t.text[:runeOffset(t.text, limit)]
	}
	return t, nil
}

// pdfPage is a page dictionary with the resources it inherits.
type pdfPage struct {
	v, resources pdf.Value
}

// pdfPages walks the page tree depth first and returns its first max pages,
// and the number of pages it found. The walk is bounded in depth and
// nodes, so a cyclic or huge tree ends it early.
func pdfPages(root pdf.Value, max int) ([]pdfPage, int) {
	type node struct {
		v, resources pdf.Value
		depth        int
	}
	var pages []pdfPage
	total, visited := 0, 0
	stack := []node{{root, root.Key("Resources"), 0}}
	for len(stack) > 0 && visited < maxPDFPageNodes {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		visited++
		res := n.v.Key("Resources")
		if res.IsNull() {
			res = n.resources
		}
		kids := n.v.Key("Kids")
		if n.v.Key("Type").Name() == "Page" || kids.Kind() != pdf.Array {
			total++
			if len(pages) < max {
				pages = append(pages, pdfPage{n.v, res})
			}
			continue
		}
		if n.depth >= maxPDFTreeDepth {
			continue
		}
		for i := kids.Len() - 1; i >= 0; i-- { // reversed: the stack pops the first kid first
			stack = append(stack, node{kids.Index(i), res, n.depth + 1})
		}
	}
	return pages, total
}

// pageText writes the text shown on page p to b, with line breaks where
// the text moves to a new line and spaces where it jumps along one, and
// stops (by panicking with errPDFStopped, recovered here) once *chars
// passes limit or ctx is done.
func pageText(ctx context.Context, b *strings.Builder, p pdfPage, chars *int, limit int) {
	defer func() {
		if r := recover(); r != nil && r != errPDFStopped {
			panic(r)
		}
	}()
	contents := p.v.Key("Contents")
	if contents.IsNull() {
		return
	}
	fonts := p.resources.Key("Font")
	encoders := map[string]pdf.TextEncoding{}
	var enc pdf.TextEncoding
	write := func(s string) {
		b.WriteString(s)
		*chars += utf8.RuneCountInString(s)
		if *chars > limit {
			panic(errPDFStopped)
		}
	}
	newline := func() {
		if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
			write("\n")
		}
	}
	space := func() {
		if s := b.String(); s != "" && !strings.HasSuffix(s, " ") && !strings.HasSuffix(s, "\n") {
			write(" ")
		}
	}
	show := func(raw string) {
		if enc == nil {
			write(raw)
			return
		}
		write(enc.Decode(raw))
	}
	ops := 0
	pdf.Interpret(contents, func(stk *pdf.Stack, op string) {
		if ops++; ops%1024 == 0 && ctx.Err() != nil {
			panic(errPDFStopped)
		}
		args := make([]pdf.Value, stk.Len())
		for i := len(args) - 1; i >= 0; i-- {
			args[i] = stk.Pop()
		}
		switch op {
		case "BT", "T*":
			newline()
		case "Td", "TD":
			if len(args) == 2 && args[1].Float64() != 0 {
				newline()
			} else {
				space()
			}
		case "Tf":
			if len(args) != 2 {
				return
			}
			name := args[0].Name()
			e, ok := encoders[name]
			if !ok {
				f := pdf.Font{V: fonts.Key(name)}
				e = f.Encoder()
				encoders[name] = e
			}
			enc = e
		case "Tj":
			if len(args) == 1 {
				show(args[0].RawString())
			}
		case "'", "\"":
			newline()
			if len(args) >= 1 {
				show(args[len(args)-1].RawString())
			}
		case "TJ":
			if len(args) != 1 {
				return
			}
			a := args[0]
			for i := 0; i < a.Len(); i++ {
				switch x := a.Index(i); x.Kind() {
				case pdf.String:
					show(x.RawString())
				case pdf.Integer, pdf.Real:
					// A shift of more than a quarter em is a space
					// between words that the PDF did not write.
					if x.Float64() < -250 {
						space()
					}
				}
			}
		}
	})
}

// checkReadable refuses text that has nothing to read or that is mostly
// characters no one can read: what fonts without a Unicode mapping give.
func checkReadable(s string) error {
	var good, bad, letters int
	for _, r := range s {
		switch {
		case r == utf8.RuneError || unicode.Is(unicode.Co, r) ||
			unicode.IsControl(r) && !unicode.IsSpace(r):
			bad++
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			letters++
			good++
		case unicode.IsPrint(r) || unicode.IsSpace(r):
			good++
		default:
			bad++
		}
	}
	switch {
	case letters == 0:
		return fmt.Errorf("attach: pdf: %w: no text on its pages", ErrNoText)
	case bad*10 > good+bad:
		return fmt.Errorf("attach: pdf: %w: %d of %d characters are not printable", ErrNoText, bad, good+bad)
	}
	return nil
}

// ctxReaderAt reads from data until ctx is done, then fails every read.
type ctxReaderAt struct {
	ctx  context.Context
	data []byte
}

func (r ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
