package child_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/cmd/internal/child"
)

// notEngageEnv, set to 1, makes the test binary stand in for a program that logs and exits without
// ever listening.
const notEngageEnv = "CHILD_TEST_NOT_ENGAGE"

// fakeEngageEnv makes the test binary stand in for an Engage that says it listens and then waits, and
// toolEnv for a tool that starts such an Engage, prints its pid and waits to be killed.
const (
	fakeEngageEnv = "CHILD_TEST_FAKE_ENGAGE"
	toolEnv       = "CHILD_TEST_TOOL"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(notEngageEnv) == "1":
		fmt.Fprintln(os.Stderr, `{"msg":"config: something is wrong"}`)
		os.Exit(1)
	case os.Getenv(fakeEngageEnv) == "1":
		fmt.Fprintln(os.Stderr, `{"msg":"engage listening","addr":"127.0.0.1:9"}`)
		time.Sleep(time.Hour)
		os.Exit(0)
	case os.Getenv(toolEnv) == "1":
		os.Exit(tool())
	}
	os.Exit(m.Run())
}

// tool starts a fake Engage, prints its pid and waits to be killed.
func tool() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := child.Start(context.Background(), exe, os.TempDir(), fakeEngageEnv+"=1")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(p.Pid())
	time.Sleep(time.Hour)
	return 0
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
