package main

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// uploadSlack is what a multipart request may carry beyond the file: the operation, the map, the part headers.
const uploadSlack = 64 << 10

// newAttachments builds the attachments feature: shared files go to the sender's OneDrive with a
// tenant, else to the data dir, served under /files/ (the returned handler, nil with a tenant); the
// copies delivery attaches live in the data dir either way. Renders list the shared files from now on.
func newAttachments(cfg config, db backend, svc *followed.Service, consents *consent.Service, md mode,
	log *slog.Logger) (*attachments.Service, http.Handler, error) {
	root := filepath.Join(cfg.DataDir, "attachments")
	blobs, err := attachments.NewDir(filepath.Join(root, "blobs"))
	if err != nil {
		return nil, nil, err
	}
	drive, files := md.drive, http.Handler(nil)
	if drive == nil {
		local, err := attachments.NewLocalDrive(filepath.Join(root, "drive"), cfg.PublicURL, time.Now)
		if err != nil {
			return nil, nil, err
		}
		drive, files = local, local
	}
	att := attachments.New(db, db, svc, drive, blobs, consents, attachments.Options{MaxBytes: cfg.MaxAttachmentBytes, MaxMailBytes: cfg.MaxMailBytes, Log: log})
	svc.SetFiles(att)
	return att, files, nil
}
