package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
)

// TestLoadRunningKeepsOverrides: a lab brought up by a scenario with
// failover overrides is seen with them by every later command.
func TestLoadRunningKeepsOverrides(t *testing.T) {
	t.Setenv("FALAB_RUN_DIR", t.TempDir())
	data, _ := labs.Get("default")
	on := true
	st := &State{Name: "default", Source: "builtin:default", Phase: PhaseUp, MACMode: labfile.MACBurnedIn, HTTPReplication: &on}
	if err := WriteState(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(Dir("default"), "lab.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, l, err := LoadRunning("default")
	if err != nil {
		t.Fatal(err)
	}
	if l.Failover.MACMode != labfile.MACBurnedIn || !l.Failover.HTTPReplication {
		t.Errorf("failover = %+v, want burned-in MACs and HTTP replication on", l.Failover)
	}
}

func TestProcAliveJudgesZombiesDead(t *testing.T) {
	self := Proc{Name: "self", PID: os.Getpid()}
	if !self.Alive() {
		t.Fatal("this process is not alive")
	}
	st, err := StartTimeOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if (Proc{PID: os.Getpid(), StartTime: st + 1}).Alive() {
		t.Error("a process with another start time (a reused PID) counts as alive")
	}
	if (Proc{PID: 0}).Alive() {
		t.Error("PID 0 counts as alive")
	}
	// A child that exited and was not reaped is a zombie: kill(pid, 0)
	// still succeeds on it, Alive must not.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	z := Proc{Name: "zombie", PID: cmd.Process.Pid}
	deadline := time.Now().Add(5 * time.Second)
	for {
		state, _, err := procStat(z.PID)
		if err == nil && state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child never became a zombie (state %c, err %v)", state, err)
		}
		time.Sleep(time.Millisecond)
	}
	if syscall.Kill(z.PID, 0) != nil {
		t.Fatal("kill(pid, 0) fails on the zombie: the test proves nothing")
	}
	if z.Alive() {
		t.Error("a zombie counts as alive")
	}
}
