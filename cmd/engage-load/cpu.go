package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of a process's CPU times in /proc/<pid>/stat (USER_HZ), 100 a second on every
// Linux architecture Go runs on.
const clockTicks = 100

// processCPU is the CPU time (user and system, all threads) pid has used so far, read from /proc: the
// process's own cost, without the load's share that dilutes a ratio of req/s.
func processCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return parseStatCPU(stat)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of a /proc/<pid>/stat line. The command name
// (field 2) is in parentheses and may hold spaces and parentheses itself, so fields are counted from
// its last closing parenthesis.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu time: %q is not a stat line", stat)
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time: %q has too few fields", stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("cpu time: field %q is not a count of ticks", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// cpuMeter measures the CPU time of the bare handler's and Engage's processes over each kind of hit,
// when each runs in a process of its own that this one started.
type cpuMeter struct {
	bare, engage int // pids
	from         [2]time.Duration
	lines        []string
	err          error // the first failure to read; then nothing more is measured
}

// read returns both processes' CPU time so far.
func (m *cpuMeter) read() (bare, engage time.Duration, err error) {
	if bare, err = processCPU(m.bare); err != nil {
		return 0, 0, err
	}
	engage, err = processCPU(m.engage)
	return bare, engage, err
}

// start notes both processes' CPU time before a kind's turns begin.
func (m *cpuMeter) start() {
	if m.err == nil {
		m.from[0], m.from[1], m.err = m.read()
	}
}

// stop charges each process's CPU time since start to its hits of kind: all of it, since what Engage
// does in the bare handler's turns (indexing, checkpoints) is the cost of its own hits. It returns the
// bare handler's CPU time per hit over Engage's, or 0 when either was not read.
func (m *cpuMeter) stop(kind string, bareHits, engageHits int) float64 {
	if m.err != nil {
		return 0
	}
	b, e, err := m.read()
	if err != nil {
		m.err = err
		return 0
	}
	if bareHits == 0 || engageHits == 0 {
		return 0
	}
	pb, pe := (b-m.from[0])/time.Duration(bareHits), (e-m.from[1])/time.Duration(engageHits)
	ratio, shown := 0.0, "-"
	if pe > 0 {
		ratio = float64(pb) / float64(pe)
		shown = fmt.Sprintf("%.2f", ratio)
	}
	m.lines = append(m.lines, fmt.Sprintf("%s bare %.1f µs, engage %.1f µs (ratio %s)", kind,
		float64(pb)/float64(time.Microsecond), float64(pe)/float64(time.Microsecond), shown))
	return ratio
}

// print writes one line for the run.
func (m *cpuMeter) print(out io.Writer) {
	if m.err != nil {
		fmt.Fprintf(out, "CPU per hit: not read: %v\n", m.err)
		return
	}
	if len(m.lines) > 0 {
		fmt.Fprintf(out, "CPU per hit, each process's own time (the load's not counted): %s\n", strings.Join(m.lines, "; "))
	}
}
