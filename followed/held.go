package followed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// heldFile keeps the relabels a Labeller holds, one JSON object a line, so that a restart during an
// outage does not lose them: the events they name are in the spool, and come back with it. The file
// mirrors the labeller's list: holding appends to it, and a retry rewrites it with what is left.
// Its callers serialise access (the labeller's mutex).
type heldFile struct {
	path string
}

// heldLine is a relabel as the file keeps it.
type heldLine struct {
	EventID string `json:"id"`
	Reason  string `json:"reason"`
	Rule    string `json:"rule,omitempty"`
}

// load reads the relabels the file holds. A line that is not a whole relabel (the torn end of an
// append cut short by a crash) is skipped and counted in bad, never failing the rest.
func (h heldFile) load() (rs []Relabel, bad int, err error) {
	data, err := os.ReadFile(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("followed: read held relabels: %w", err)
	}
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l heldLine
		r := Relabel{}
		if json.Unmarshal(line, &l) == nil {
			r = Relabel(l)
		}
		if r.check() != nil {
			bad++
			continue
		}
		rs = append(rs, r)
	}
	return rs, bad, nil
}

// add appends rs and syncs, so that what is held is on disk before the hit that called for it is
// answered.
func (h heldFile) add(rs []Relabel) error {
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("followed: hold relabels: %w", err)
	}
	// A torn line left by a crash would swallow the first new one: start on a line of its own.
	if err := writeHeld(f, rs, true); err != nil {
		f.Close()
		return fmt.Errorf("followed: hold relabels: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("followed: hold relabels: %w", err)
	}
	return nil
}

// replace makes the file hold exactly rs: a new file, synced and renamed over the old one, so a crash
// leaves either list whole. No relabel held removes the file.
func (h heldFile) replace(rs []Relabel) error {
	if len(rs) == 0 {
		if err := os.Remove(h.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("followed: rewrite held relabels: %w", err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(h.path), filepath.Base(h.path)+".*")
	if err != nil {
		return fmt.Errorf("followed: rewrite held relabels: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if err := writeHeld(tmp, rs, false); err != nil {
		tmp.Close()
		return fmt.Errorf("followed: rewrite held relabels: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("followed: rewrite held relabels: %w", err)
	}
	if err := os.Rename(tmp.Name(), h.path); err != nil {
		return fmt.Errorf("followed: rewrite held relabels: %w", err)
	}
	return nil
}

// writeHeld writes rs a line each to f and syncs it; newline first starts on a fresh line.
func writeHeld(f *os.File, rs []Relabel, newline bool) error {
	w := bufio.NewWriter(f)
	if newline {
		w.WriteByte('\n')
	}
	enc := json.NewEncoder(w) // Encode ends each value with a newline
	for _, r := range rs {
		if err := enc.Encode(heldLine(r)); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Sync()
}
