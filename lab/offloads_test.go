package lab

import (
	"bytes"
	"testing"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
)

// TestOffloadsKnob: `offloads: true` leaves offloads on on every veth of
// the plan and tells the units to read super-frames; the default turns
// them off everywhere.
func TestOffloadsKnob(t *testing.T) {
	data, _ := labs.Get(labs.Default)
	for _, on := range []bool{false, true} {
		src := data
		if on {
			src = append(bytes.Clone(data), []byte("\noffloads: true\n")...)
		}
		l, err := labfile.Load("test.yaml", src)
		if err != nil {
			t.Fatal(err)
		}
		for _, lk := range Plan(l).Links {
			if lk.A.OffloadsOff == on || lk.B.OffloadsOff == on {
				t.Errorf("offloads %v: link %s-%s has OffloadsOff %v/%v", on, lk.A.Ifname, lk.B.Ifname, lk.A.OffloadsOff, lk.B.OffloadsOff)
			}
		}
		c, err := UnitConfig(l, l.Primary().Name, "key")
		if err != nil {
			t.Fatal(err)
		}
		if c.Offloads != on {
			t.Errorf("offloads %v: unit config says %v", on, c.Offloads)
		}
	}
}

// TestUnitCPUsReachTheUnit: each unit's config carries its node's cpus
// (one by default), which the unit process makes its GOMAXPROCS.
func TestUnitCPUsReachTheUnit(t *testing.T) {
	data, _ := labs.Get(labs.Default)
	src := bytes.Replace(data, []byte("{kind: unit, role: secondary}"), []byte("{kind: unit, role: secondary, cpus: 2}"), 1)
	l, err := labfile.Load("test.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"fw-a": labfile.DefaultUnitCPUs, "fw-b": 2} {
		c, err := UnitConfig(l, name, "key")
		if err != nil {
			t.Fatal(err)
		}
		if c.CPUs != want {
			t.Errorf("%s: unit config cpus %d, want %d", name, c.CPUs, want)
		}
	}
}
