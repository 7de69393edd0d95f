package machines

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log output from the watcher goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds or a generous deadline passes; it waits on a condition, it
// does not time anything.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	custom := minimalRules(`[{"name": "test-agent", "reason": "SECURITY_SCANNER", "agent_contains": ["engage-test"]}]`)
	probe := Hit{Kind: Click, UserAgent: "engage-test/1", IP: personAddr}
	usesCustom := func(c *Classifier) bool { return c.Rules().staticLabel(&probe).Rule == "test-agent" }
	usesDefaults := func(c *Classifier) bool {
		return c.Rules().staticLabel(&probe).Human() && c.Rules().Len() == DefaultRules().Len()
	}

	tests := []struct {
		name     string
		initial  string // "" means no file
		change   func(path string) error
		first    func(*Classifier) bool
		then     func(*Classifier) bool
		wantLogs []string
	}{
		{
			name:    "file appears and is loaded",
			initial: "",
			change:  func(p string) error { return os.WriteFile(p, []byte(custom), 0o600) },
			first:   usesDefaults, then: usesCustom,
			wantLogs: []string{"using built-in defaults", "rules loaded"},
		},
		{
			name:    "file becomes malformed",
			initial: custom,
			change:  func(p string) error { return os.WriteFile(p, []byte(`{"windows":`), 0o600) },
			first:   usesCustom, then: usesDefaults,
			wantLogs: []string{"rules loaded", "using built-in defaults"},
		},
		{
			name:    "file is removed",
			initial: custom,
			change:  os.Remove,
			first:   usesCustom, then: usesDefaults,
			wantLogs: []string{"rules loaded", "using built-in defaults"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rules.json")
			if tt.initial != "" {
				if err := os.WriteFile(path, []byte(tt.initial), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			logs := &logBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			c := NewClassifier(DefaultRules(), nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); Watch(ctx, path, 10*time.Millisecond, c, log) }()
			defer func() { cancel(); <-done }()

			waitFor(t, "first load", func() bool { return strings.Count(logs.String(), "\n") >= 1 })
			if !tt.first(c) {
				t.Fatalf("after the first load the classifier has the wrong rules; log:\n%s", logs)
			}
			if err := tt.change(path); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "reload", func() bool { return strings.Count(logs.String(), "\n") >= 2 })
			if !tt.then(c) {
				t.Fatalf("after the change the classifier has the wrong rules; log:\n%s", logs)
			}
			// Several more polls of an unchanged file must not log again.
			time.Sleep(50 * time.Millisecond)
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != len(tt.wantLogs) {
				t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(tt.wantLogs), logs)
			}
			for i, want := range tt.wantLogs {
				if !strings.Contains(lines[i], want) {
					t.Fatalf("log line %d = %q, want it to contain %q", i, lines[i], want)
				}
			}
		})
	}
}

func TestReadRulesFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"missing", filepath.Join(dir, "none.json"), "read rules file"},
		{"malformed", bad, "bad.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadRulesFile(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
