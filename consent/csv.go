package consent

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/engage-email/engage/followed"
)

// Row is one valid line of a preferences file.
type Row struct {
	Line       int
	Target     string
	Preference Preference
}

// MaxImportRows bounds one import; a larger list is split by the admin, not half-applied by Engage.
const MaxImportRows = 50000

// maxLineErrors is how many bad lines an error names before it says "and N more".
const maxLineErrors = 20

// ParseCSV reads a preferences file: a header "email_or_domain,preference", then one target and one
// ALLOW or DO_NOT_ALLOW per line. Any bad line fails the whole file, and the error names every bad
// line (up to 20) by its number, so that the admin fixes the file once.
func ParseCSV(text string) ([]Row, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "\ufeff")))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var rows []Row
	var bad []string
	more := 0
	fail := func(line int, msg string) {
		if len(bad) < maxLineErrors {
			bad = append(bad, fmt.Sprintf("line %d: %s", line, msg))
		} else {
			more++
		}
	}
	header := true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, msg := 0, err.Error()
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line, msg = pe.StartLine, pe.Err.Error()
			}
			fail(line, "not valid CSV: "+msg)
			break // the reader cannot resynchronise after a broken quote
		}
		line, _ := r.FieldPos(0)
		if header {
			header = false
			if len(rec) != 2 || !strings.EqualFold(strings.TrimSpace(rec[0]), "email_or_domain") ||
				!strings.EqualFold(strings.TrimSpace(rec[1]), "preference") {
				fail(line, `the header must be "email_or_domain,preference"`)
				break
			}
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if len(rec) != 2 {
			fail(line, fmt.Sprintf("%d fields, want 2 (email_or_domain,preference)", len(rec)))
			continue
		}
		target, err := NormalizeTarget(rec[0])
		if err != nil {
			fail(line, userText(err))
			continue
		}
		p, err := ParsePreference(rec[1])
		if err != nil {
			fail(line, userText(err))
			continue
		}
		if len(rows) >= MaxImportRows {
			fail(line, fmt.Sprintf("over the limit of %d rows per import", MaxImportRows))
			break
		}
		rows = append(rows, Row{Line: line, Target: target, Preference: p})
	}
	if header && len(bad) == 0 {
		return nil, fmt.Errorf("%w: the file is empty: it needs the header \"email_or_domain,preference\"", followed.ErrBadInput)
	}
	if len(bad) > 0 {
		msg := strings.Join(bad, "; ")
		if more > 0 {
			msg += fmt.Sprintf("; and %d more bad lines", more)
		}
		return nil, fmt.Errorf("%w: nothing imported: %s", followed.ErrBadInput, msg)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: the file has a header but no rows", followed.ErrBadInput)
	}
	return rows, nil
}

// userText strips the "bad input: " prefix of a sentinel-wrapped error, to fit a line's message.
func userText(err error) string {
	return strings.TrimPrefix(err.Error(), followed.ErrBadInput.Error()+": ")
}
