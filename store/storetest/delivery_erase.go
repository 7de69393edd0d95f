package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/engage-email/engage/delivery"
)

// runDeliveryErasure checks that an erased address leaves the outbox: its place in each mail gets a
// placeholder, a mail to it alone loses its body, and the erasure is idempotent.
func runDeliveryErasure(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	st := open(t)
	if st.DeliveryEraser == nil {
		t.Skip("backend has no delivery eraser")
	}
	const ann = "ann@fabrikam.com"
	alone := delivery.OutboxEntry{ID: "o1", From: "rep@contoso.com", To: []delivery.Address{{Email: "Ann@Fabrikam.com", Name: "Ann"}},
		Subject: "For ann@fabrikam.com", HTML: "<p>Dear Ann</p>", Headers: map[string]string{delivery.HeaderMessageID: "m1"}, CreatedAt: t0}
	shared := delivery.OutboxEntry{ID: "o2", From: "rep@contoso.com", To: []delivery.Address{{Email: "bob@fabrikam.com"}},
		Cc: []delivery.Address{{Email: ann}}, Subject: "Deal", HTML: "<p>Bob, ann@fabrikam.com is in copy</p>",
		Headers: map[string]string{delivery.HeaderMessageID: "m2"}, CreatedAt: t0.Add(1)}
	for _, e := range []delivery.OutboxEntry{alone, shared} {
		if err := st.Outbox.AddOutboxDraft(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	data, err := st.DeliveryEraser.RecipientData(ctx, ann)
	if err != nil || len(data) != 2 || data[0].ID != "o1" || data[1].Fields["header"] != "cc" {
		t.Fatalf("recipient data %+v, %v", data, err)
	}
	counts, err := st.DeliveryEraser.ForgetRecipient(ctx, ann)
	if err != nil || fmt.Sprint(counts) != "[{outbox 2} {delivery texts 2}]" {
		t.Fatalf("forget: %v, %v", counts, err)
	}
	got1, err1 := st.Outbox.OutboxEntry(ctx, "o1")
	got2, err2 := st.Outbox.OutboxEntry(ctx, "o2")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !reflect.DeepEqual(got1.To, []delivery.Address{{Email: "erased-0@erased.invalid"}}) || got1.HTML != "" || got1.Subject != "For [erased]" {
		t.Errorf("mail to ann alone after erasure: %+v", got1)
	}
	if !reflect.DeepEqual(got2.Cc, []delivery.Address{{Email: "erased-1@erased.invalid"}}) || got2.To[0].Email != "bob@fabrikam.com" ||
		got2.HTML != "<p>Bob, [erased] is in copy</p>" {
		t.Errorf("shared mail after erasure: %+v", got2)
	}
	if strings.Contains(strings.ToLower(fmt.Sprint(got1, got2)), ann) {
		t.Errorf("the address is still in the outbox")
	}
	if data, err := st.DeliveryEraser.RecipientData(ctx, ann); err != nil || len(data) != 0 {
		t.Fatalf("recipient data after erasure %+v, %v", data, err)
	}
	if again, err := st.DeliveryEraser.ForgetRecipient(ctx, ann); err != nil || fmt.Sprint(again) != "[{outbox 0} {delivery texts 0}]" {
		t.Fatalf("forget again: %v, %v", again, err)
	}
}
