package attachments

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Dir keeps files under one directory by random key: the copies delivery attaches to mails, and the
// local drive's content. Writes stream through a fixed buffer, so memory stays flat whatever the size.
type Dir struct {
	root string
}

// NewDir returns a Dir rooted at root, creating it (owner-only) if needed.
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("attachments: create %s: %w", root, err)
	}
	return &Dir{root: root}, nil
}

// copyBuffer is the size of the buffer a file streams through.
const copyBuffer = 256 << 10

// Put stores exactly size bytes of r under a new key; a short or long read, a cancelled ctx or a failed
// write leaves nothing behind.
func (d *Dir) Put(ctx context.Context, r io.Reader, size int64) (string, error) {
	key := newKey()
	tmp, err := os.CreateTemp(d.root, ".put-*")
	if err != nil {
		return "", fmt.Errorf("attachments: store file: %w", err)
	}
	err = writeExactly(ctx, tmp, r, size)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), d.path(key))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("attachments: store file: %w", err)
	}
	return key, nil
}

// Open opens the file stored under key; followed.ErrNotFound-like os.ErrNotExist when absent.
func (d *Dir) Open(key string) (*os.File, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("attachments: open %q: %w", key, os.ErrNotExist)
	}
	f, err := os.Open(d.path(key))
	if err != nil {
		return nil, fmt.Errorf("attachments: open stored file: %w", err)
	}
	return f, nil
}

// Delete removes the file stored under key; one already gone is not an error.
func (d *Dir) Delete(key string) error {
	if !validKey(key) {
		return nil
	}
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("attachments: delete stored file: %w", err)
	}
	return nil
}

func (d *Dir) path(key string) string { return filepath.Join(d.root, key) }

// writeExactly copies size bytes of r to w, checking ctx between chunks, and fails when r holds more
// or fewer bytes than announced.
func writeExactly(ctx context.Context, w io.Writer, r io.Reader, size int64) error {
	buf := make([]byte, copyBuffer)
	var n int64
	for n < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := buf[:min(int64(len(buf)), size-n)]
		k, err := io.ReadFull(r, chunk)
		if k > 0 {
			if _, werr := w.Write(chunk[:k]); werr != nil {
				return werr
			}
			n += int64(k)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: the file ended after %d of %d bytes", errSizeMismatch, n, size)
			}
			return err
		}
	}
	var one [1]byte
	if k, _ := r.Read(one[:]); k > 0 {
		return fmt.Errorf("%w: the file holds more than the %d bytes announced", errSizeMismatch, size)
	}
	return nil
}

// errSizeMismatch means a file's content was not as long as announced: the upload was cut or forged.
var errSizeMismatch = errors.New("size mismatch")

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validKey(k string) bool {
	if len(k) != 32 {
		return false
	}
	_, err := hex.DecodeString(k)
	return err == nil
}
