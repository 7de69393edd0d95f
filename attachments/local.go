package attachments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LocalDrive is the Drive of local mode: files kept under a directory and shared through Engage's own
// /files/{link} URL, so the whole tracked-attachment flow works without Microsoft 365.
type LocalDrive struct {
	root    string
	baseURL string
	now     func() time.Time
	mu      sync.Mutex // serialises the choice of a free name
}

// PathFiles is where LocalDrive's sharing links live under Engage's public URL; server routes it to
// the drive's handler.
const PathFiles = "/files/"

// NewLocalDrive keeps files under root and makes links under publicURL.
func NewLocalDrive(root, publicURL string, now func() time.Time) (*LocalDrive, error) {
	for _, sub := range []string{"items", "links", "meta"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			return nil, fmt.Errorf("attachments: local drive: %w", err)
		}
	}
	if now == nil {
		now = time.Now
	}
	return &LocalDrive{root: root, baseURL: strings.TrimRight(publicURL, "/"), now: now}, nil
}

var _ Drive = (*LocalDrive)(nil)

// itemPath is where an item lives: items/<owner hash>/<folder>/<name>; the item id is the part after items/.
func (d *LocalDrive) itemPath(id string) (string, error) {
	// Clean keeps a clean id as it is and changes any other, "a/../b" and "../b" included; ".." inside
	// a name ("v2..final.pdf") is a name like any other.
	clean := path.Clean("/" + id)[1:]
	if clean == "" || clean != id {
		return "", fmt.Errorf("attachments: local drive item %q: %w", id, os.ErrNotExist)
	}
	return filepath.Join(d.root, "items", filepath.FromSlash(id)), nil
}

func ownerDir(o Owner) string {
	h := sha256.Sum256([]byte(strings.ToLower(o.Mailbox)))
	return hex.EncodeToString(h[:8])
}

// Upload implements Drive: a name already taken becomes "name 1.ext", "name 2.ext"…, as OneDrive renames.
func (d *LocalDrive) Upload(ctx context.Context, owner Owner, f DriveFile, content io.ReadSeeker) (DriveItem, error) {
	folder := path.Clean("/" + f.Folder)[1:] // rooted first, so no ".." is left to climb out
	dir := path.Join(ownerDir(owner), folder)
	full, err := d.itemPath(dir)
	if err != nil {
		return DriveItem{}, err
	}
	if err := os.MkdirAll(full, 0o700); err != nil {
		return DriveItem{}, fmt.Errorf("attachments: local drive: %w", err)
	}
	file, name, err := d.create(full, f.Name)
	if err != nil {
		return DriveItem{}, err
	}
	err = writeExactly(ctx, file, content, f.Size)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	id := path.Join(dir, name)
	if err == nil {
		err = writeJSON(d.metaPath(id), itemMeta{ContentType: f.ContentType})
	}
	if err != nil {
		os.Remove(file.Name())
		os.Remove(d.metaPath(id))
		return DriveItem{}, fmt.Errorf("attachments: local drive: upload %s: %w", f.Name, err)
	}
	return DriveItem{ID: id, Name: name}, nil
}

// create opens a new file in dir under name or the first free renamed variant; never an existing one.
func (d *LocalDrive) create(dir, name string) (*os.File, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	stem, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		stem, ext = name[:i], name[i:]
	}
	for n := 0; n < 10000; n++ {
		try := name
		if n > 0 {
			try = stem + " " + strconv.Itoa(n) + ext
		}
		f, err := os.OpenFile(filepath.Join(dir, try), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("attachments: local drive: create %s: %w", try, err)
		}
		return f, try, nil
	}
	return nil, "", fmt.Errorf("attachments: local drive: no free name for %s", name)
}

// metaPath is where an item's content type is kept, apart from the items so no name is taken.
func (d *LocalDrive) metaPath(id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(d.root, "meta", hex.EncodeToString(h[:]))
}

type itemMeta struct {
	ContentType string `json:"contentType"`
}

type linkMeta struct {
	Item       string    `json:"item"`
	Owner      string    `json:"owner"`
	Scope      Scope     `json:"scope"`
	Recipients []string  `json:"recipients,omitempty"`
	Expires    time.Time `json:"expires,omitzero"`
}

// Share implements Drive with an unguessable token under PathFiles, recording the scope and recipients
// without enforcing them, since local mode has no way to sign a recipient in.
func (d *LocalDrive) Share(ctx context.Context, owner Owner, itemID string, link Link) (string, error) {
	p, err := d.itemPath(itemID)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(itemID, ownerDir(owner)+"/") {
		return "", fmt.Errorf("attachments: local drive: share %s: %w", itemID, os.ErrNotExist)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("attachments: local drive: share %s: %w", itemID, err)
	}
	token := newKey()
	if err := writeJSON(filepath.Join(d.root, "links", token), linkMeta{Item: itemID, Owner: owner.Mailbox, Scope: link.Scope,
		Recipients: link.Recipients, Expires: link.Expires}); err != nil {
		return "", fmt.Errorf("attachments: local drive: share %s: %w", itemID, err)
	}
	return d.baseURL + PathFiles + token, nil
}

// LinkOf reads back what a link Share made was asked to be, since serving it shows nothing of its scope.
func (d *LocalDrive) LinkOf(shareURL string) (Link, error) {
	token, ok := strings.CutPrefix(shareURL, d.baseURL+PathFiles)
	var m linkMeta
	if !ok || !validKey(token) {
		return Link{}, fmt.Errorf("attachments: local drive: %q is not one of its links: %w", shareURL, os.ErrNotExist)
	}
	if err := readJSON(filepath.Join(d.root, "links", token), &m); err != nil {
		return Link{}, fmt.Errorf("attachments: local drive: link %s: %w", token, err)
	}
	return Link{Scope: m.Scope, Recipients: m.Recipients, Expires: m.Expires}, nil
}

// Delete implements Drive, removing the item and the links to it.
func (d *LocalDrive) Delete(ctx context.Context, owner Owner, itemID string) error {
	p, err := d.itemPath(itemID)
	if err != nil {
		return err // not a name this drive gave: nothing can be gone, and the caller should hear of it
	}
	if !strings.HasPrefix(itemID, ownerDir(owner)+"/") {
		return fmt.Errorf("attachments: local drive: delete %s: not in %s's drive: %w", itemID, owner.Mailbox, os.ErrPermission)
	}
	for _, f := range []string{p, d.metaPath(itemID)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("attachments: local drive: delete %s: %w", itemID, err)
		}
	}
	links, err := os.ReadDir(filepath.Join(d.root, "links"))
	if err != nil {
		return fmt.Errorf("attachments: local drive: delete links of %s: %w", itemID, err)
	}
	for _, l := range links {
		var m linkMeta
		lp := filepath.Join(d.root, "links", l.Name())
		if readJSON(lp, &m) == nil && m.Item == itemID {
			os.Remove(lp)
		}
	}
	return nil
}

// ServeHTTP serves GET {PathFiles}{link}: the file as a download, 404 for an unknown link, 410 once
// expired. The tracked link in the mail has recorded the open before redirecting here.
func (d *LocalDrive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, PathFiles)
	var link linkMeta
	if !validKey(token) || readJSON(filepath.Join(d.root, "links", token), &link) != nil {
		http.Error(w, "no such file: the link is wrong, or the file was removed", http.StatusNotFound)
		return
	}
	if !link.Expires.IsZero() && !d.now().Before(link.Expires) {
		http.Error(w, "this link has expired: ask the sender for the file again", http.StatusGone)
		return
	}
	p, err := d.itemPath(link.Item)
	var f *os.File
	if err == nil {
		f, err = os.Open(p)
	}
	if err != nil {
		http.Error(w, "no such file: it was removed", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "file not readable", http.StatusInternalServerError)
		return
	}
	var meta itemMeta
	_ = readJSON(d.metaPath(link.Item), &meta)
	if meta.ContentType == "" {
		meta.ContentType = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", meta.ContentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(link.Item)}))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Security-Policy", "sandbox")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func writeJSON(p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
