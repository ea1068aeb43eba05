package attach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"

	"codeberg.org/go-pdf/fpdf"
)

// fpdfDoc writes a PDF of pages (one string a page, Latin-1 text in a core
// font) with fpdf, compressed, optionally protected by passwords.
func fpdfDoc(t testing.TB, pages []string, userPass, ownerPass string) []byte {
	t.Helper()
	doc := fpdf.New("P", "mm", "A4", "")
	tr := doc.UnicodeTranslatorFromDescriptor("") // cp1252
	if userPass != "" || ownerPass != "" {
		doc.SetProtection(fpdf.CnProtectPrint, userPass, ownerPass)
	}
	for _, p := range pages {
		doc.AddPage()
		doc.SetFont("Helvetica", "", 12)
		for _, line := range strings.Split(p, "\n") {
			doc.Cell(0, 8, tr(line))
			doc.Ln(8)
		}
	}
	var buf bytes.Buffer
	if err := doc.Output(&buf); err != nil {
		t.Fatalf("fpdf: %v", err)
	}
	return buf.Bytes()
}

// rawPDF assembles a PDF from numbered objects (objs[0] is object 1, the
// catalog), with a correct cross-reference table.
func rawPDF(objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

func pdfStream(s string) string {
	return fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(s), s)
}

// unicodePDF writes one page per string with a Type0 font whose ToUnicode
// CMap maps code i+1 to the i-th distinct rune, the way PDFs carry
// Cyrillic, CJK and emoji text.
func unicodePDF(pages ...string) []byte {
	codes := map[rune]int{}
	var runes []rune
	for _, p := range pages {
		for _, r := range p {
			if _, ok := codes[r]; !ok && r != '\n' {
				runes = append(runes, r)
				codes[r] = len(runes)
			}
		}
	}
	var cmap strings.Builder
	cmap.WriteString("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n")
	for i := 0; i < len(runes); i += 100 {
		block := runes[i:min(i+100, len(runes))]
		fmt.Fprintf(&cmap, "%d beginbfchar\n", len(block))
		for j, r := range block {
			fmt.Fprintf(&cmap, "<%04X> <", i+j+1)
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&cmap, "%04X", u)
			}
			cmap.WriteString(">\n")
		}
		cmap.WriteString("endbfchar\n")
	}
	cmap.WriteString("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend")

	// 1 catalog, 2 pages, 3 font, 4 descendant, 5 cmap, then page and
	// content pairs.
	objs := []string{"<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type0 /BaseFont /Test /Encoding /Identity-H /DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
		"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Test /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>",
		pdfStream(cmap.String())}
	var kids []string
	for _, p := range pages {
		var content strings.Builder
		content.WriteString("BT /F1 12 Tf 72 760 Td 14 TL\n")
		for _, line := range strings.Split(p, "\n") {
			content.WriteString("<")
			for _, r := range line {
				fmt.Fprintf(&content, "%04X", codes[r])
			}
			content.WriteString("> Tj T*\n")
		}
		content.WriteString("ET")
		n := len(objs) + 1
		kids = append(kids, fmt.Sprintf("%d 0 R", n))
		objs = append(objs, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", n+1), pdfStream(content.String()))
	}
	objs[1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages))
	return rawPDF(objs...)
}

func preparePDFText(t *testing.T, data []byte, lim Limits) (*Text, error) {
	t.Helper()
	part, err := Prepare(context.Background(), Input{Name: "doc.pdf", MIME: "application/pdf", Data: data}, lim)
	if err != nil {
		return nil, err
	}
	txt, ok := part.(*Text)
	if !ok {
		t.Fatalf("Prepare gave %T, want *Text", part)
	}
	return txt, nil
}

func TestPrepare_PDF(t *testing.T) {
	pages := []string{
		"Page one: Grüße aus Köln, café crème, 5 €.\nSecond line of page one.",
		"Page two: naïve façade, Ærø.",
		"Page three: the end.",
	}
	txt, err := preparePDFText(t, fpdfDoc(t, pages, "", ""), Limits{})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	for _, want := range []string{"Grüße aus Köln, café crème, 5 €.", "Second line of page one.", "naïve façade, Ærø.", "Page three: the end.", "File: doc.pdf (PDF, 3 pages,"} {
		if !strings.Contains(txt.Block, want) {
			t.Errorf("block lacks %q:\n%s", want, txt.Block)
		}
	}
	if i, j := strings.Index(txt.Block, "Page one"), strings.Index(txt.Block, "Page three"); i < 0 || j < i {
		t.Errorf("pages out of order:\n%s", txt.Block)
	}
	if len(txt.Notes) != 0 {
		t.Errorf("notes = %q, want none", txt.Notes)
	}
}

func TestPrepare_PDFUnicode(t *testing.T) {
	pages := []string{"Привет, мир! Это проверка.\nВторая строка.", "你好，世界。日本語のテキスト。", "Emoji: 😀 and Ελληνικά"}
	txt, err := preparePDFText(t, unicodePDF(pages...), Limits{})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	for _, p := range pages {
		for _, line := range strings.Split(p, "\n") {
			if !strings.Contains(txt.Block, line) {
				t.Errorf("block lacks %q:\n%s", line, txt.Block)
			}
		}
	}
}

func TestPrepare_PDFLimits(t *testing.T) {
	var pages []string
	for i := range 5 {
		pages = append(pages, fmt.Sprintf("This is page number %d with some words on it.", i+1))
	}
	data := fpdfDoc(t, pages, "", "")

	t.Run("Pages", func(t *testing.T) {
		txt, err := preparePDFText(t, data, Limits{MaxPDFPages: 2})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(txt.Block, "page number 3") || !strings.Contains(txt.Block, "page number 2") {
			t.Errorf("block:\n%s", txt.Block)
		}
		want := "pages 3–5 were not read: the PDF has 5 pages; the first 2 are read"
		if len(txt.Notes) != 1 || txt.Notes[0] != want {
			t.Errorf("notes = %q, want [%q]", txt.Notes, want)
		}
	})
	t.Run("Chars", func(t *testing.T) {
		txt, err := preparePDFText(t, data, Limits{MaxTextChars: 60})
		if err != nil {
			t.Fatal(err)
		}
		if txt.Shown != 60 {
			t.Errorf("Shown = %d, want 60", txt.Shown)
		}
		want := "truncated: the first 60 characters are shown, from pages 1–2 of 5"
		if len(txt.Notes) != 1 || txt.Notes[0] != want {
			t.Errorf("notes = %q, want [%q]", txt.Notes, want)
		}
		if !strings.Contains(txt.Block, "["+want+"]") {
			t.Errorf("block lacks the note:\n%s", txt.Block)
		}
	})
}

func TestPrepare_PDFErrors(t *testing.T) {
	good := fpdfDoc(t, []string{"Hello, world."}, "", "")
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"Truncated", good[:len(good)/2], ErrCorrupt},
		{"Garbage", append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte{0x9c, 0x01}, 500)...), ErrCorrupt},
		{"BadXref", bytes.Replace(good, []byte("xref"), []byte("xrex"), 1), ErrCorrupt},
		{"UserPassword", fpdfDoc(t, []string{"Secret text."}, "user", "owner"), ErrEncrypted},
		{"NoText", rawPDF("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>", pdfStream("0 0 m 100 100 l S")), ErrNoText},
		{"Unmapped", rawPDF("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
			pdfStream("BT /F1 12 Tf <0102030405060708090A0B0C0D0E0F10111213> Tj ET"),
			"<< /Type /Font /Subtype /Type0 /Encoding /Identity-H >>"), ErrNoText},
		{"HugeXref", []byte("%PDF-1.4\nxref\n0 4000000000\ntrailer\n<< /Size 3 >>\nstartxref\n9\n%%EOF\n"), ErrCorrupt},
		{"HugeSize", []byte("%PDF-1.4\n1 0 obj << /Type /XRef /Size 9999999999 /W [1 2 1] >> stream\nendstream\nstartxref\n9\n%%EOF\n"), ErrCorrupt},
		{"Nesting", append([]byte("%PDF-1.4\n1 0 obj "), bytes.Repeat([]byte("["), maxPDFNesting+1)...), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := preparePDFText(t, tt.data, Limits{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if UserMessage(err) == "" {
				t.Errorf("UserMessage(%v) is empty", err)
			}
		})
	}
}

// A PDF with only an owner password (printing restricted, anyone may open
// it) and 40-bit RC4 fails cleanly: the library derives a 16-byte key
// where the standard says 10 (n/8+5), so it decrypts garbage, which must
// come out as ErrCorrupt, not as text.
func TestPrepare_PDFOwnerPassword40Bit(t *testing.T) {
	_, err := preparePDFText(t, fpdfDoc(t, []string{"Open to all readers."}, "", "owner"), Limits{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}
