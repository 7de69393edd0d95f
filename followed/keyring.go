package followed

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Key is one tracking secret; its ID travels in every token it signs so keys can rotate.
type Key struct {
	ID     string // 1-16 characters of [A-Za-z0-9_-]
	Secret []byte // at least 32 bytes
}

// KeyRing signs tracking tokens with its first key and verifies them with any, so a new key can be put
// first while mail already sent with the old one keeps working.
type KeyRing struct {
	keys []Key
	byID map[string][]byte
}

const (
	maxKeyIDLength    = 16
	minKeySecretBytes = 32
	// keyRingFileName is the file LoadOrCreateKeyRing keeps the ring in, inside its data directory.
	keyRingFileName = "tracking.key"
)

// NewKeyRing builds a ring whose first key signs; it refuses no keys, duplicate ids and short secrets.
func NewKeyRing(keys ...Key) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, errors.New("new key ring: no keys")
	}
	r := &KeyRing{keys: make([]Key, 0, len(keys)), byID: make(map[string][]byte, len(keys))}
	for i, k := range keys {
		if err := checkKeyID(k.ID); err != nil {
			return nil, fmt.Errorf("new key ring: key %d: %w", i, err)
		}
		if len(k.Secret) < minKeySecretBytes {
			return nil, fmt.Errorf("new key ring: key %q: secret of %d bytes, want at least %d", k.ID, len(k.Secret), minKeySecretBytes)
		}
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("new key ring: key id %q appears twice", k.ID)
		}
		secret := append([]byte(nil), k.Secret...) // the caller's slice may change later
		r.keys = append(r.keys, Key{ID: k.ID, Secret: secret})
		r.byID[k.ID] = secret
	}
	return r, nil
}

// checkKeyID accepts the URL-safe ids a token can carry.
func checkKeyID(id string) error {
	if id == "" || len(id) > maxKeyIDLength {
		return fmt.Errorf("key id %q: want 1-%d characters", id, maxKeyIDLength)
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("key id %q: only letters, digits, '-' and '_' are allowed", id)
		}
	}
	return nil
}

// ParseKeyRing reads the ENGAGE_TRACKING_KEY format, "id1:base64url-secret,id2:...", first key signing;
// newlines separate keys as well as commas, and padding on the secrets is optional.
func ParseKeyRing(spec string) (*KeyRing, error) {
	var keys []Key
	for _, entry := range strings.FieldsFunc(spec, func(c rune) bool { return c == ',' || c == '\n' || c == '\r' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, secret, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("parse key ring: entry %q is not id:secret", shortKeyEntry(entry))
		}
		id, secret = strings.TrimSpace(id), strings.TrimRight(strings.TrimSpace(secret), "=")
		b, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil {
			return nil, fmt.Errorf("parse key ring: key %q: secret is not base64url: %w", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: b})
	}
	r, err := NewKeyRing(keys...)
	if err != nil {
		return nil, fmt.Errorf("parse key ring: %w", err)
	}
	return r, nil
}

// shortKeyEntry keeps secrets out of error messages.
func shortKeyEntry(entry string) string {
	if len(entry) > 8 {
		return entry[:4] + "..."
	}
	return entry
}

// String names the ring's keys without their secrets, so a ring printed into a log leaks nothing.
func (r *KeyRing) String() string {
	if r == nil {
		return "KeyRing()"
	}
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.ID
	}
	return "KeyRing(" + strings.Join(ids, ",") + ")"
}

// spec writes the ring, secrets included, in the format ParseKeyRing reads.
func (r *KeyRing) spec() string {
	parts := make([]string, len(r.keys))
	for i, k := range r.keys {
		parts[i] = k.ID + ":" + base64.RawURLEncoding.EncodeToString(k.Secret)
	}
	return strings.Join(parts, ",")
}

// LoadOrCreateKeyRing gives a configured ring precedence, else keeps one in dir/tracking.key so that links
// in mail already sent keep verifying across restarts; the file is created with a fresh random key (mode
// 0600, written atomically, never overwriting one another process made first) when absent.
func LoadOrCreateKeyRing(dir, spec string) (*KeyRing, error) {
	if strings.TrimSpace(spec) != "" {
		return ParseKeyRing(spec)
	}
	path := filepath.Join(dir, keyRingFileName)
	if r, err := readKeyRingFile(path); !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	if err := createKeyRingFile(dir, path); err != nil {
		return nil, err
	}
	return readKeyRingFile(path)
}

func readKeyRingFile(path string) (*KeyRing, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tracking key file: %w", err)
	}
	r, err := ParseKeyRing(string(b))
	if err != nil {
		return nil, fmt.Errorf("tracking key file %s: %w", path, err)
	}
	return r, nil
}

// createKeyRingFile writes a one-key ring to a temporary file and links it into place, so readers never
// see a partial file and two processes starting together end up sharing whichever key landed first.
func createKeyRingFile(dir, path string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create tracking key directory: %w", err)
	}
	var idBytes [4]byte
	secret := make([]byte, minKeySecretBytes)
	if _, err := rand.Read(idBytes[:]); err != nil {
		return fmt.Errorf("generate tracking key id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("generate tracking key: %w", err)
	}
	r, err := NewKeyRing(Key{ID: "k" + hex.EncodeToString(idBytes[:]), Secret: secret})
	if err != nil {
		return fmt.Errorf("generate tracking key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, keyRingFileName+".*.tmp")
	if err != nil {
		return fmt.Errorf("create tracking key file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the link (or rename) only the final name remains
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("protect tracking key file: %w", err)
	}
	if _, err := tmp.WriteString(r.spec() + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("write tracking key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync tracking key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close tracking key file: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		// Ours, or another process's that won the race: either way the file at path is the ring.
	default:
		// Some file systems have no hard links; a rename is still atomic, only not exclusive.
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("install tracking key file: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the new name durable; not every platform can sync a directory
		d.Close()
	}
	return nil
}
