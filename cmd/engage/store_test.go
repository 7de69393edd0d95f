package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/engage-email/engage/store"
)

func TestMongoConfigAndStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "" = accepted
	}{
		{"mongodb with a tracking key", map[string]string{"ENGAGE_MONGODB_URI": "mongodb://db1,db2/engage?replicaSet=rs0",
			"ENGAGE_TRACKING_KEY": "k1:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}, ""},
		{"mongodb without a tracking key", map[string]string{"ENGAGE_MONGODB_URI": "mongodb://db1/engage"}, "ENGAGE_TRACKING_KEY"},
		{"not a mongodb uri", map[string]string{"ENGAGE_MONGODB_URI": "postgres://db1/engage", "ENGAGE_TRACKING_KEY": "k1:x"},
			"ENGAGE_MONGODB_URI: want a mongodb://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(func(k string) string { return tc.env[k] })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}

	// Nothing listening: start-up stops with an error saying the store is unavailable, not a hang.
	cfg, err := loadConfig(func(k string) string {
		return map[string]string{"ENGAGE_MONGODB_URI": "mongodb://127.0.0.1:1/engage?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
			"ENGAGE_TRACKING_KEY": "k1:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = openStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "no primary answered") {
		t.Fatalf("unreachable MongoDB: err = %v", err)
	}
}
