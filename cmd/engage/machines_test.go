package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/machines"
	"github.com/engage-email/engage/store/sqlite"
)

// TestMachineRulesFile: ENGAGE_MACHINE_RULES puts a file's rules in force; a missing or malformed
// file leaves the built-in ones with one clear log line, and Engage runs on.
func TestMachineRulesFile(t *testing.T) {
	custom := strings.Replace(string(machines.DefaultRulesJSON()), `"rules": [`,
		`"rules": [{"name": "acme-scanner", "reason": "SECURITY_SCANNER", "agent_contains": ["acme-linkcheck"]},`, 1)
	tests := []struct {
		name     string
		file     string // contents; "" = no file at all
		wantLog  string
		wantRule string // for an open by the agent "Acme-LinkCheck/2.0"
	}{
		{"missing file", "", `"msg":"machines: rules file unusable, using built-in defaults"`, ""},
		{"malformed file", `{"windows": `, `"msg":"machines: rules file unusable, using built-in defaults"`, ""},
		{"custom rules", custom, `"msg":"machines: rules loaded"`, "acme-scanner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rules.json")
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			logs := &lockedBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			db := sqlite.OpenTemp(t)
			labels, err := startMachines(ctx, config{MachineRules: path, DataDir: t.TempDir()}, db,
				followed.NewRecorder(db, followed.RecorderOptions{}), slog.New(slog.NewJSONHandler(logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if labels == nil {
				t.Fatal("no labeller on the embedded store")
			}
			// Watch loads the file as it starts, in its own goroutine: wait for its word.
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), tt.wantLog) {
				if time.Now().After(deadline) {
					t.Fatalf("no %s in the log:\n%s", tt.wantLog, logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if n := strings.Count(logs.String(), `"level":"WARN"`); (tt.wantRule == "") != (n == 1) {
				t.Fatalf("%d warnings, log:\n%s", n, logs.String())
			}
			tok := followed.Token{Kind: followed.TokenOpen, MessageID: "m1"}
			h := followed.Hit{Token: tok, At: time.Now(), IP: "203.0.113.1", UserAgent: "Acme-LinkCheck/2.0", Method: "GET"}
			ev := followed.Event{ID: "e1"}
			labels.Settle(ctx, labels.Label(h, &ev))
			if ev.Rule != tt.wantRule {
				t.Fatalf("rule %q, want %q", ev.Rule, tt.wantRule)
			}
		})
	}

	t.Run("a store that keeps no labels", func(t *testing.T) {
		logs := &lockedBuffer{}
		if l, err := startMachines(context.Background(), config{}, struct{}{}, nil, slog.New(slog.NewJSONHandler(logs, nil))); l != nil || err != nil {
			t.Fatal("a labeller without a label store")
		}
		if !strings.Contains(logs.String(), "keeps no machine labels") {
			t.Fatalf("log: %s", logs.String())
		}
	})
}
