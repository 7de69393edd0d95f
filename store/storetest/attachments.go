package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
)

func attachment(id, messageID, name string, shared bool) attachments.Attachment {
	a := attachments.Attachment{ID: id, MessageID: messageID, Name: name, Size: 1234, ContentType: "application/pdf",
		Requested: true, Shared: shared, CreatedAt: t0}
	if shared {
		a.DriveItem, a.ShareURL = "item-"+id, "https://contoso-my.sharepoint.com/:b:/g/"+id
	} else {
		a.Blob, a.Note = "blob-"+id, attachments.NoteNotFollowed
	}
	return a
}

func runAttachments(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("add, list, get, remove", func(t *testing.T) {
		st := open(t)
		s := st.Attachments
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, false, "a@x.com"))
		var added []attachments.Attachment
		for i, a := range []attachments.Attachment{attachment("a1", "m1", "offer.pdf", true), attachment("a2", "m1", "price list.xlsx", false)} {
			got, err := s.AddAttachment(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			a.Index = i
			if !reflect.DeepEqual(got, a) {
				t.Fatalf("added %+v, want %+v", got, a)
			}
			added = append(added, got)
		}
		list, err := s.Attachments(ctx, "m1")
		if err != nil || !reflect.DeepEqual(list, added) {
			t.Fatalf("list = %+v, %v; want %+v", list, err, added)
		}
		if one, err := s.Attachment(ctx, "a2"); err != nil || !reflect.DeepEqual(one, added[1]) {
			t.Fatalf("get a2 = %+v, %v", one, err)
		}
		if err := s.RemoveAttachment(ctx, "a1"); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			err  error
		}{
			{"get removed", func() error { _, err := s.Attachment(ctx, "a1"); return err }()},
			{"remove twice", s.RemoveAttachment(ctx, "a1")},
			{"add to unknown message", func() error { _, err := s.AddAttachment(ctx, attachment("a9", "nope", "x.pdf", true)); return err }()},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if !errors.Is(tc.err, followed.ErrNotFound) {
					t.Fatalf("err %v, want ErrNotFound", tc.err)
				}
			})
		}
		if list, _ := s.Attachments(ctx, "m1"); len(list) != 1 || list[0].ID != "a2" {
			t.Fatalf("after remove: %+v", list)
		}
		if list, err := s.Attachments(ctx, "other"); err != nil || len(list) != 0 {
			t.Fatalf("attachments of a message without any: %+v, %v", list, err)
		}
	})

	t.Run("no change once the send started", func(t *testing.T) {
		tests := []struct {
			name    string
			prepare func(t *testing.T, st Stores)
			locked  bool
		}{
			{"draft", func(*testing.T, Stores) {}, false},
			{"scheduled", func(t *testing.T, st Stores) { createJob(t, st, scheduledJob("m1", t0.Add(time.Hour))) }, false},
			{"sending", func(t *testing.T, st Stores) {
				createJob(t, st, scheduledJob("m1", t0))
				if js, err := st.Delivery.ClaimDueJobs(ctx, "w1", t0, time.Minute, 1); err != nil || len(js) != 1 {
					t.Fatalf("claim: %v, %v", js, err)
				}
			}, true},
			{"failed after a render was drafted", func(t *testing.T, st Stores) {
				createJob(t, st, scheduledJob("m1", t0))
				if _, err := st.Delivery.ClaimDueJobs(ctx, "w1", t0, time.Minute, 1); err != nil {
					t.Fatal(err)
				}
				if err := st.Delivery.RecordDraft(ctx, "w1", delivery.RenderSend{MessageID: "m1", Render: 0, DraftID: "d0"}); err != nil {
					t.Fatal(err)
				}
				if err := st.Delivery.FinishJob(ctx, "w1", delivery.Job{MessageID: "m1", Status: delivery.StatusFailed, DueAt: t0}); err != nil {
					t.Fatal(err)
				}
			}, true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				st := open(t)
				s := st.Attachments
				mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, false, "a@x.com"))
				if _, err := s.AddAttachment(ctx, attachment("a1", "m1", "before.pdf", true)); err != nil {
					t.Fatal(err)
				}
				tc.prepare(t, st)
				started, err := s.SendStarted(ctx, "m1")
				if err != nil || started != tc.locked {
					t.Fatalf("SendStarted = %v, %v; want %v", started, err, tc.locked)
				}
				_, addErr := s.AddAttachment(ctx, attachment("a2", "m1", "after.pdf", true))
				removeErr := s.RemoveAttachment(ctx, "a1")
				for what, err := range map[string]error{"add": addErr, "remove": removeErr} {
					if tc.locked != errors.Is(err, attachments.ErrSent) || (!tc.locked && err != nil) {
						t.Errorf("%s: err %v, want ErrSent: %v", what, err, tc.locked)
					}
				}
				// Nor may its renders change (a retried follow), in the same transaction as the check.
				re := message("m1", "rep@contoso.com", "Deal", t0, false, "a@x.com")
				re.NotFollowedReason, re.Renders[0].HTML = "re-rendered", "<p>re-rendered</p>"
				err = st.Followed.UpdateRenders(ctx, re)
				if tc.locked != errors.Is(err, followed.ErrSendStarted) || (!tc.locked && err != nil) {
					t.Errorf("update renders: err %v, want ErrSendStarted: %v", err, tc.locked)
				}
				if rs, err := st.Followed.Renders(ctx, "m1"); err != nil || len(rs) == 0 || (rs[0].HTML == re.Renders[0].HTML) == tc.locked {
					t.Errorf("renders after the update: %+v, %v (locked: %v)", rs, err, tc.locked)
				}
				// Locked: a1 alone, as before; open: a1 removed and a2 added.
				wantID := "a1"
				if !tc.locked {
					wantID = "a2"
				}
				if list, _ := s.Attachments(ctx, "m1"); len(list) != 1 || list[0].ID != wantID {
					t.Fatalf("attachments left %+v, want %s alone", list, wantID)
				}
			})
		}
	})

	t.Run("a removal undone puts the attachment back as it was", func(t *testing.T) {
		st := open(t)
		s := st.Attachments
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, false, "a@x.com"))
		a0, err := s.AddAttachment(ctx, attachment("a0", "m1", "first.pdf", true))
		if err != nil {
			t.Fatal(err)
		}
		a1, err := s.AddAttachment(ctx, attachment("a1", "m1", "second.pdf", false))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveAttachment(ctx, a0.ID); err != nil {
			t.Fatal(err)
		}
		// The send starts before the renders drop the file: the undo must not be refused.
		createJob(t, st, scheduledJob("m1", t0))
		if _, err := st.Delivery.ClaimDueJobs(ctx, "w1", t0, time.Minute, 1); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a second undo changes nothing
			if err := s.RestoreAttachment(ctx, a0); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.Attachments(ctx, "m1")
		if err != nil || len(list) != 2 || !reflect.DeepEqual(list[0], a0) || list[1].ID != a1.ID {
			t.Fatalf("after the undo: %+v, %v; want %+v first", list, err, a0)
		}
	})

	t.Run("concurrent adds get distinct indexes", func(t *testing.T) {
		st := open(t)
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, false, "a@x.com"))
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := st.Attachments.AddAttachment(ctx, attachment(fmt.Sprintf("c%02d", i), "m1", "f.pdf", i%2 == 0))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		list, err := st.Attachments.Attachments(ctx, "m1")
		if err != nil || len(list) != n {
			t.Fatalf("list: %d, %v", len(list), err)
		}
		for i, a := range list {
			if a.Index != i {
				t.Fatalf("attachment %d has index %d: indexes must be 0..%d without gaps or repeats", i, a.Index, n-1)
			}
		}
	})
}

func createJob(t *testing.T, st Stores, j delivery.Job) {
	t.Helper()
	if err := st.Delivery.CreateJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
}
