package child_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEngageDiesWithItsTool: a tool killed by SIGKILL, which runs no clean-up, leaves no Engage it
// started running, even when the goroutine that started it is long gone.
func TestEngageDiesWithItsTool(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tool := exec.Command(exe)
	tool.Env = append(os.Environ(), toolEnv+"=1")
	out, err := tool.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tool.Start(); err != nil {
		t.Fatal(err)
	}
	defer tool.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the tool printed no pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("the tool printed %q, not a pid", line)
	}
	if !running(pid) {
		t.Fatalf("engage %d is not running while its tool is", pid)
	}
	tool.Process.Kill()
	tool.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
			t.Fatalf("engage %d still runs 10 s after its tool was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running is true while pid is a process that has not exited: a zombie (exited, and not yet reaped by
// whoever inherited it) counts as exited.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}
