package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/followed"
)

var _ attachments.Store = (*DB)(nil)

type attachmentDoc struct {
	ID          string `bson:"id"`
	MessageID   string `bson:"message_id"`
	Idx         int    `bson:"idx"`
	Name        string `bson:"name"`
	Size        int64  `bson:"size"`
	ContentType string `bson:"content_type"`
	Requested   int64  `bson:"requested"`
	Shared      int64  `bson:"shared"`
	Note        string `bson:"note"`
	DriveItem   string `bson:"drive_item"`
	ShareURL    string `bson:"share_url"`
	Blob        string `bson:"blob"`
	CreatedAt   int64  `bson:"created_at"`
}

func (x attachmentDoc) attachment() attachments.Attachment {
	return attachments.Attachment{ID: x.ID, MessageID: x.MessageID, Index: x.Idx, Name: x.Name, Size: x.Size, ContentType: x.ContentType,
		Requested: x.Requested != 0, Shared: x.Shared != 0, Note: x.Note, DriveItem: x.DriveItem, ShareURL: x.ShareURL, Blob: x.Blob,
		CreatedAt: ms(x.CreatedAt)}
}

// sendStarted tells whether a message's send has begun: a job being sent or sent, or any render that
// reached the mailbox (a failed job may have sent some).
func (db *DB) sendStarted(ctx context.Context, messageID string) (bool, error) {
	n, err := db.c("delivery_jobs").CountDocuments(ctx, bson.D{{Key: "message_id", Value: messageID},
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{"SENDING", "SENT"}}}}})
	if err != nil || n > 0 {
		return n > 0, err
	}
	n, err = db.c("render_sends").CountDocuments(ctx, bson.D{{Key: "message_id", Value: messageID}})
	return n > 0, err
}

// guardMessage writes the message's guard inside the caller's transaction, so that it conflicts with
// any other transaction that does while checking or changing the message's send (found: the message exists).
func (db *DB) guardMessage(ctx context.Context, messageID string) (found bool, err error) {
	res, err := db.c("messages").UpdateOne(ctx, bson.D{{Key: "id", Value: messageID}}, bumpGuard())
	if err != nil {
		return false, fmt.Errorf("guard message %s: %w", messageID, err)
	}
	return res.MatchedCount > 0, nil
}

// AddAttachment implements attachments.Store: the send check, the next index and the insert are one
// snapshot transaction that also writes the message's guard, as a claim of its job does, so an add
// and a claim never both commit (two adds conflict too, and one retries).
func (db *DB) AddAttachment(ctx context.Context, a attachments.Attachment) (attachments.Attachment, error) {
	err := db.tx(ctx, "add attachment "+a.ID, func(ctx context.Context) error {
		found, err := db.guardMessage(ctx, a.MessageID)
		if err != nil {
			return err
		}
		if !found {
			return followed.ErrNotFound
		}
		started, err := db.sendStarted(ctx, a.MessageID)
		if err != nil {
			return err
		}
		if started {
			return attachments.ErrSent
		}
		var last attachmentDoc
		err = db.c("attachments").FindOne(ctx, bson.D{{Key: "message_id", Value: a.MessageID}},
			options.FindOne().SetSort(bson.D{{Key: "idx", Value: -1}})).Decode(&last)
		switch {
		case errors.Is(err, mdb.ErrNoDocuments):
			a.Index = 0
		case err != nil:
			return err
		default:
			a.Index = last.Idx + 1
		}
		_, err = db.c("attachments").InsertOne(ctx, attachmentDocOf(a))
		return err
	})
	return a, err
}

func attachmentDocOf(a attachments.Attachment) attachmentDoc {
	return attachmentDoc{ID: a.ID, MessageID: a.MessageID, Idx: a.Index, Name: a.Name, Size: a.Size,
		ContentType: a.ContentType, Requested: b2i(a.Requested), Shared: b2i(a.Shared), Note: a.Note, DriveItem: a.DriveItem,
		ShareURL: a.ShareURL, Blob: a.Blob, CreatedAt: a.CreatedAt.UnixMilli()}
}

// RestoreAttachment implements attachments.Store; an attachment already there is left as it is.
func (db *DB) RestoreAttachment(ctx context.Context, a attachments.Attachment) error {
	_, err := db.c("attachments").UpdateOne(ctx, bson.D{{Key: "id", Value: a.ID}},
		bson.D{{Key: "$setOnInsert", Value: attachmentDocOf(a)}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fail("restore attachment "+a.ID, err)
	}
	return nil
}

// Attachment implements attachments.Store.
func (db *DB) Attachment(ctx context.Context, id string) (attachments.Attachment, error) {
	x, err := one[attachmentDoc](ctx, db.c("attachments"), bson.D{{Key: "id", Value: id}}, "attachment "+id, followed.ErrNotFound)
	if err != nil {
		return attachments.Attachment{}, err
	}
	return x.attachment(), nil
}

// Attachments implements attachments.Store.
func (db *DB) Attachments(ctx context.Context, messageID string) ([]attachments.Attachment, error) {
	docs, err := all[attachmentDoc](ctx, db.c("attachments"), bson.D{{Key: "message_id", Value: messageID}}, byIdx)
	if err != nil {
		return nil, fail("attachments of "+messageID, err)
	}
	out := make([]attachments.Attachment, len(docs))
	for i, x := range docs {
		out[i] = x.attachment()
	}
	return out, nil
}

// RemoveAttachment implements attachments.Store, writing the message's guard so that a claim of its
// job and the removal never both commit.
func (db *DB) RemoveAttachment(ctx context.Context, id string) error {
	return db.tx(ctx, "remove attachment "+id, func(ctx context.Context) error {
		var x attachmentDoc
		err := db.c("attachments").FindOne(ctx, bson.D{{Key: "id", Value: id}}).Decode(&x)
		if errors.Is(err, mdb.ErrNoDocuments) {
			return followed.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := db.guardMessage(ctx, x.MessageID); err != nil {
			return err
		}
		started, err := db.sendStarted(ctx, x.MessageID)
		if err != nil {
			return err
		}
		if started {
			return attachments.ErrSent
		}
		_, err = db.c("attachments").DeleteOne(ctx, bson.D{{Key: "id", Value: id}})
		return err
	})
}

// SendStarted implements attachments.Store.
func (db *DB) SendStarted(ctx context.Context, messageID string) (bool, error) {
	started, err := db.sendStarted(ctx, messageID)
	if err != nil {
		return false, fail("send state of "+messageID, err)
	}
	return started, nil
}
