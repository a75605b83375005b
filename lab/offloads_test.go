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
