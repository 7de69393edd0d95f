package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	corpus := filepath.Join("..", "..", "machines", "testdata", "corpus.json")
	dir := t.TempDir()
	badRules := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badRules, []byte(`{"windows": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantErr    string
		wantOutput []string
	}{
		{"built-in rules", []string{"-corpus", corpus}, "", []string{"APPLE_PRIVACY_PROXY", "precision", "0 unexpected"}},
		{"print default rules", []string{"-print-default-rules"}, "", []string{`"windows"`, "gmail-image-proxy"}},
		{"missing corpus", []string{"-corpus", filepath.Join(dir, "none")}, "read corpus", nil},
		{"malformed rules", []string{"-corpus", corpus, "-rules", badRules}, "bad.json", nil},
		{"unknown flag", []string{"-nope"}, "parse flags", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, &out)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			for _, w := range tt.wantOutput {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestRunReportsRegressions(t *testing.T) {
	corpus := filepath.Join("..", "..", "machines", "testdata", "corpus.json")
	rules := filepath.Join(t.TempDir(), "empty.json")
	empty := `{"windows": {"click_after_send": "10s", "click_burst": "2s", "click_burst_links": 2,
		"prefetch_after_send": "15s", "visitor_ttl": "10m", "max_visitors": 100, "max_events_per_visitor": 8},
		"rules": []}`
	if err := os.WriteFile(rules, []byte(empty), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"-corpus", corpus, "-rules", rules}, &out)
	if !errors.Is(err, errMismatch) {
		t.Fatalf("error %v, want errMismatch; output:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "MISMATCH") {
		t.Fatalf("report names no mismatch:\n%s", out.String())
	}
}
