package labbench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/stat and /proc/PID/stat times (USER_HZ,
// 100 on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time used so far by the whole machine (every state
// but idle and iowait) and by some processes (all their threads, user and
// system), by label.
type cpuSample struct {
	machine time.Duration
	procs   map[string]time.Duration
}

// sampleCPU reads /proc/stat and /proc/PID/stat of each of pids (label ->
// PID).
func sampleCPU(pids map[string]int) (cpuSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}, err
	}
	m, err := machineBusy(b)
	if err != nil {
		return cpuSample{}, err
	}
	s := cpuSample{machine: m, procs: map[string]time.Duration{}}
	for label, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return cpuSample{}, fmt.Errorf("%s (pid %d): %w", label, pid, err)
		}
		if s.procs[label], err = procCPU(b); err != nil {
			return cpuSample{}, fmt.Errorf("%s (pid %d): %w", label, pid, err)
		}
	}
	return s, nil
}

// machineBusy sums the first ("cpu") line of /proc/stat but for idle and
// iowait.
func machineBusy(stat []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: field %d: %w", i+1, err)
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// procCPU returns utime + stime of a /proc/PID/stat line. The fields are
// counted after the command name's closing parenthesis, since the name
// may hold spaces and parentheses.
func procCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name, want at least 13", len(f))
	}
	var t uint64
	for _, v := range f[11:13] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		t += n
	}
	return time.Duration(t) * clockTick, nil
}

// perConnection divides the CPU time used between two samples by n
// connections: µs of CPU per connection, by label, and "machine".
func perConnection(a, b cpuSample, n uint64) map[string]float64 {
	if n == 0 {
		return nil
	}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	out := map[string]float64{"machine": us(b.machine - a.machine)}
	for label, t := range b.procs {
		if t0, ok := a.procs[label]; ok {
			out[label] = us(t - t0)
		}
	}
	return out
}

// cpuNote says a connection's CPU cost, the machine's first, then each
// process's: "machine 43.1 µs, active fw-a 21.0 µs, ...".
func cpuNote(perConn map[string]float64) string {
	if len(perConn) == 0 {
		return ""
	}
	labels := make([]string, 0, len(perConn))
	for l := range perConn {
		if l != "machine" {
			labels = append(labels, l)
		}
	}
	slices.Sort(labels)
	parts := []string{fmt.Sprintf("machine %.1f µs", perConn["machine"])}
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s %.1f µs", l, perConn[l]))
	}
	return strings.Join(parts, ", ")
}
