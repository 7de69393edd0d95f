package auth

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
)

func TestLocal(t *testing.T) {
	l := NewLocal([]string{" Admin@Contoso.com "})
	tests := []struct {
		name      string
		header    string
		wantEmail string
		wantAdmin bool
		wantErr   bool
	}{
		{"rep", "rep@contoso.com", "rep@contoso.com", false, false},
		{"admin case-insensitive", "ADMIN@contoso.com", "admin@contoso.com", true, false},
		{"missing", "", "", false, true},
		{"not an address", "rep", "", false, true},
		{"display name", "Rep <rep@contoso.com>", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				r.Header.Set(LocalHeader, tt.header)
			}
			id, err := l.Authenticate(context.Background(), r)
			if tt.wantErr {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("err = %v, want ErrUnauthenticated", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != tt.wantEmail || id.Admin != tt.wantAdmin {
				t.Fatalf("got %+v, want %s admin=%v", id, tt.wantEmail, tt.wantAdmin)
			}
			viaInit, err := l.AuthenticateInit(context.Background(), map[string]any{LocalHeader: tt.header})
			if err != nil || viaInit != id {
				t.Fatalf("init payload: %+v %v, want %+v", viaInit, err, id)
			}
		})
	}
}
