// Package consent decides who may be followed: the organisation's engagement settings, "Follow Email"
// preferences per address and per domain (a timestamped history where the latest wins), bounce
// suppressions, the admins' audit log, the retention purge, and erasure of and access to a person's data.
package consent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
)

// Preference is a "Follow Email" choice for an address or a domain.
type Preference string

// The preferences, as Dynamics names them.
const (
	Allow      Preference = "ALLOW"
	DoNotAllow Preference = "DO_NOT_ALLOW"
)

// ParsePreference accepts a preference in any case, for CSV files typed by people.
func ParsePreference(s string) (Preference, error) {
	switch p := Preference(strings.ToUpper(strings.TrimSpace(s))); p {
	case Allow, DoNotAllow:
		return p, nil
	}
	return "", fmt.Errorf("%w: preference %q must be ALLOW or DO_NOT_ALLOW", followed.ErrBadInput, s)
}

// Reasons a recipient may not be followed, as followability and NotFollowedReason name them.
const (
	ReasonDoNotAllow         = "DO_NOT_ALLOW"
	ReasonDomainDoNotAllow   = "DOMAIN_DO_NOT_ALLOW"
	ReasonSuppressedBounce   = followed.ReasonSuppressedBounce
	ReasonEngagementDisabled = followed.ReasonEngagementDisabled
	ReasonNoConsent          = "NO_CONSENT" // only when settings require consent and none was given
)

// Entry is one timestamped preference in a target's history; the latest entry is the one in force.
type Entry struct {
	Seq        int64 // order of recording, so that two entries in one millisecond still have a latest
	Target     string
	Preference Preference
	At         time.Time
	By         string // the admin who set it
	Source     string // SourceAdmin, SourceImport or SourceErasure
	Note       string
}

// Where a preference entry came from.
const (
	SourceAdmin   = "ADMIN"
	SourceImport  = "IMPORT"
	SourceErasure = "ERASURE" // the objection kept, as a hash, when the address itself was forgotten
)

// AuditEntry is one admin change: who, when, what, and the state before and after.
type AuditEntry struct {
	Seq    int64
	At     time.Time
	Actor  string
	Action string // e.g. "settings.update", "preference.set"
	Target string // the address, domain or "settings"
	Before string
	After  string
}

// Audit actions.
const (
	ActionSettings       = "settings.update"
	ActionPreference     = "preference.set"
	ActionImport         = "preference.import"
	ActionLiftSuppressed = "suppression.lift"
	ActionForget         = "recipient.forget"
)

// Suppression stops following an address until a time (zero: until lifted), e.g. after a hard bounce.
type Suppression struct {
	Email  string
	Until  time.Time
	Reason string
	At     time.Time
}

// Active reports whether the suppression is in force at now.
func (s Suppression) Active(now time.Time) bool { return s.Until.IsZero() || now.Before(s.Until) }

// NormalizeTarget returns the canonical form of an address ("ann@fabrikam.com") or a domain
// ("fabrikam.com", a leading "@" allowed), so that one target has one history.
func NormalizeTarget(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(strings.TrimPrefix(s, "@"), "@") {
		email, err := auth.NormalizeEmail(s)
		if err != nil {
			return "", fmt.Errorf("%w: %s", followed.ErrBadInput, err)
		}
		return email, nil
	}
	d := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(s, "@"), "."))
	if !validDomain(d) {
		return "", fmt.Errorf("%w: %q is not an email address or a domain", followed.ErrBadInput, s)
	}
	return d, nil
}

func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r >= 0x80) {
				return false
			}
		}
	}
	return true
}

// domainOf is the part of a normalised address after the last "@".
func domainOf(email string) string { return email[strings.LastIndex(email, "@")+1:] }

// ErasedTarget is how a forgotten address's objection is kept: a hash that matches the address when
// it is met again but does not reveal it.
func ErasedTarget(email string) string {
	sum := sha256.Sum256([]byte("engage-erased:" + email))
	return "sha256:" + hex.EncodeToString(sum[:])
}
