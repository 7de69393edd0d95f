package child_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/engage-email/engage/cmd/internal/child"
)

// notEngageEnv, set to 1, makes the test binary stand in for a program that logs and exits without
// ever listening.
const notEngageEnv = "CHILD_TEST_NOT_ENGAGE"

func TestMain(m *testing.M) {
	if os.Getenv(notEngageEnv) == "1" {
		fmt.Fprintln(os.Stderr, `{"msg":"config: something is wrong"}`)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestStartRefusesWhatNeverListens: a binary that exits without saying it listens is an error that
// says so, not a hang and not a Process with no address.
func TestStartRefusesWhatNeverListens(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := child.Start(context.Background(), exe, t.TempDir(), notEngageEnv+"=1")
	if err == nil {
		p.Stop()
		t.Fatalf("started %s at %q", exe, p.Addr)
	}
	if !strings.Contains(err.Error(), "engage did not start") {
		t.Fatalf("err %v, want one saying engage did not start", err)
	}
}
