package feed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every webhook delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
	SignatureHeader = "Engage-Signature"
	// IdempotencyHeader carries the batch's key: the same on every retry, so a receiver stores a batch once.
	IdempotencyHeader = "Idempotency-Key"
)

// ErrSignature is what Verify returns for a delivery that is not signed with the secret, or too old.
var ErrSignature = errors.New("feed: webhook signature not valid")

// maxSignatureHeader bounds the header Verify reads, so hostile input costs nothing.
const maxSignatureHeader = 4096

// Sign returns the signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(signature(secret, ts, body))
}

func signature(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery as a receiver should: the header names a time within tolerance of now
// (which stops a captured request being replayed later) and a v1 signature of that time and the body
// made with secret. Several v1 entries are accepted, so a sender may sign with an old and a new secret.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(header) > maxSignatureHeader {
		return fmt.Errorf("%w: header of %d bytes", ErrSignature, len(header))
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrSignature, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrSignature)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex SHA-256 signature", ErrSignature)
			}
			sigs = append(sigs, sig)
		}
		// Other schemes are skipped, so a later one can be added without breaking receivers.
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return fmt.Errorf("%w: timestamp %q is not a whole number of seconds", ErrSignature, ts)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed %s from now, outside the %s tolerance", ErrSignature, age.Round(time.Second), tolerance)
	}
	want := signature(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
}
