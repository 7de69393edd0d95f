-- Delivery: the files each local outbox mail carries (attachment id, name, type, size; the content stays
-- in the attachment store), as JSON [{"AttachmentID": ..., "Name": ..., "ContentType": ..., "Size": ...}].
ALTER TABLE outbox ADD COLUMN files TEXT NOT NULL DEFAULT '[]';
