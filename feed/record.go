// Package feed sends response data back to the CRM: a cursor over response records (opens, clicks,
// replies, auto-replies, opt-outs, bounces) read from the event log, signed webhook deliveries with
// retries and a delivery log, and the recipient's opt-out link.
package feed

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
)

// Category is a response record's kind, in the CRM's words.
type Category string

// The response categories the CRM knows.
const (
	Open           Category = "OPEN"
	Click          Category = "CLICK"
	Reply          Category = "REPLY"
	Autoresponder  Category = "AUTORESPONDER"
	Unsubscription Category = "UNSUBSCRIPTION"
	Bounce         Category = "BOUNCE"
)

// AllCategories lists every category, in the order the CRM documents them.
func AllCategories() []Category {
	return []Category{Open, Click, Reply, Autoresponder, Unsubscription, Bounce}
}

// CategoryOf maps an event kind to its category; an attachment opened counts as a click on it.
func CategoryOf(k followed.EventKind) (Category, bool) {
	switch k {
	case followed.Opened:
		return Open, true
	case followed.LinkClicked, followed.AttachmentOpened:
		return Click, true
	case followed.Replied:
		return Reply, true
	case followed.AutoReplied:
		return Autoresponder, true
	case followed.Unsubscribed:
		return Unsubscription, true
	case followed.Bounced:
		return Bounce, true
	}
	return "", false
}

// Kinds lists the event kinds of the given categories (all when none), for the store's filter.
func Kinds(cs []Category) []followed.EventKind {
	if len(cs) == 0 {
		cs = AllCategories()
	}
	var out []followed.EventKind
	for _, k := range []followed.EventKind{followed.Opened, followed.LinkClicked, followed.AttachmentOpened,
		followed.Replied, followed.AutoReplied, followed.Unsubscribed, followed.Bounced} {
		c, _ := CategoryOf(k)
		for _, want := range cs {
			if c == want {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// ParseCategories checks a caller's list: known names, none twice; empty means every category.
func ParseCategories(in []string) ([]Category, error) {
	if len(in) == 0 {
		return AllCategories(), nil
	}
	seen := map[Category]bool{}
	out := make([]Category, 0, len(in))
	for _, s := range in {
		c := Category(strings.ToUpper(strings.TrimSpace(s)))
		if _, ok := categoryKnown(c); !ok {
			return nil, fmt.Errorf("%w: unknown response category %q", followed.ErrBadInput, s)
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, nil
}

func categoryKnown(c Category) (int, bool) {
	for i, k := range AllCategories() {
		if k == c {
			return i, true
		}
	}
	return 0, false
}

// Record is one response as the CRM receives it. Seq is its position in the event log, which only
// grows, so a reader that has seen Seq n has seen every record before it.
type Record struct {
	Seq       int64
	EventID   string
	Category  Category
	Kind      followed.EventKind
	MessageID string
	Subject   string
	Owner     string // the salesperson who sent the message
	Recipient string // the recipient's address; "" for a shared render, which names no one
	At        time.Time
	URL       string // the link clicked or attachment opened
	Device    followed.Device
	Machine   bool
	Reason    string // why it is labelled a machine's
}

// Query selects records after a position; the store scans at most ScanLimit positions per call, so a
// selective filter over a long log still answers quickly (with an empty page and a moved cursor).
type Query struct {
	After          int64
	Through        int64 // last position to read; 0 = up to the newest event
	Limit          int
	Kinds          []followed.EventKind
	IncludeMachine bool
}

// ScanLimit bounds the positions one query reads.
const ScanLimit = 20000

// Page is what a query found and how far it read: the next query starts after Through, so positions
// scanned but filtered out are never read again.
type Page struct {
	Records []Record
	Through int64
	// Newest is the newest position stored when the page was read; Through < Newest means more to read.
	Newest int64
}

const cursorPrefix = "resp:"

// EncodeCursor turns a log position into the opaque cursor callers pass back as `since`.
func EncodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

// DecodeCursor reads a cursor made by EncodeCursor; "" is the start of the log.
func DecodeCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, fmt.Errorf("%w: %q is not a response cursor", followed.ErrBadInput, s)
	}
	digits := strings.TrimPrefix(string(b), cursorPrefix)
	seq, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != digits {
		return 0, fmt.Errorf("%w: %q is not a response cursor", followed.ErrBadInput, s)
	}
	return seq, nil
}
