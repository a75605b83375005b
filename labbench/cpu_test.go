package labbench

import (
	"os"
	"testing"
	"time"
)

func TestMachineBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := []byte("cpu  100 5 50 9000 40 1 4 2 7 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n")
	got, err := machineBusy(stat)
	if err != nil {
		t.Fatal(err)
	}
	// idle and iowait left out; guest is already inside user.
	if want := time.Duration(100+5+50+1+4+2) * clockTick; got != want {
		t.Errorf("busy %v, want %v", got, want)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, err := machineBusy([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestProcCPU(t *testing.T) {
	// A command name with a space and a parenthesis must not shift the
	// fields: utime 300 and stime 45 are fields 14 and 15.
	stat := []byte("1234 (fal ab) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 300 45 0 0 20 0 9 0 5000 1000 100\n")
	got, err := procCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 345 * clockTick; got != want {
		t.Errorf("cpu %v, want %v", got, want)
	}
	if _, err := procCPU([]byte("1234 (x) S 1 2")); err == nil {
		t.Error("short line: no error")
	}
}

func TestPerConnection(t *testing.T) {
	a := cpuSample{machine: time.Second, procs: map[string]time.Duration{"active fw-a": 100 * time.Millisecond}}
	b := cpuSample{machine: 3 * time.Second, procs: map[string]time.Duration{"active fw-a": 1100 * time.Millisecond}}
	got := perConnection(a, b, 50_000)
	if got["machine"] != 40 || got["active fw-a"] != 20 {
		t.Errorf("per connection %v, want machine 40 and active fw-a 20 µs", got)
	}
	if perConnection(a, b, 0) != nil {
		t.Error("no connection: want nil, not a division by zero")
	}
	if s := cpuNote(got); s != "machine 40.0 µs, active fw-a 20.0 µs" {
		t.Errorf("note %q", s)
	}
}

// TestSampleCPULive reads this very process and the machine: both move
// forward while it spins.
func TestSampleCPULive(t *testing.T) {
	pids := map[string]int{"self": os.Getpid()}
	a, err := sampleCPU(pids)
	if err != nil {
		t.Fatal(err)
	}
	// Spin until a tick is counted (a loaded machine gives this process
	// less than its wall time), for at most 5 s.
	var b cpuSample
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		if b, err = sampleCPU(pids); err != nil {
			t.Fatal(err)
		}
		if b.procs["self"] > a.procs["self"] && b.machine > a.machine {
			break
		}
	}
	if b.procs["self"] <= a.procs["self"] || b.machine <= a.machine {
		t.Errorf("no CPU time counted: %+v then %+v", a, b)
	}
	if _, err := sampleCPU(map[string]int{"gone": 1 << 30}); err == nil {
		t.Error("a PID that does not exist: no error")
	}
}
