package afpacket

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// withType returns a copy of f carrying EtherType t.
func withType(f []byte, t uint16) []byte {
	out := append([]byte(nil), f...)
	binary.BigEndian.PutUint16(out[12:], t)
	return out
}

// TestExcludedEtherTypesNeverArrive: a Port with Exclude does not see
// those frames at all (not even as a drop), while a Port bound to one of
// them on the same interface still gets it, and every other frame comes
// through.
func TestExcludedEtherTypesNeverArrive(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	data := open(t, b, Options{Exclude: []uint16{0x88B5, 0x0806}})
	control := open(t, b, Options{Protocol: 0x88B5})
	base := testFrame(data.HardwareAddr(), pa.HardwareAddr(), 0, 64)
	// The suite's test EtherType is 0x88b5 itself: the last frame is an
	// experimental type of its own.
	const lastType = 0x88B6
	last := withType(testFrame(data.HardwareAddr(), pa.HardwareAddr(), 9, 64), lastType)
	frames := [][]byte{withType(base, 0x88B5), withType(base, 0x0806), withType(base, 0x0800), last}
	if _, err := pa.WriteBatch(frames); err != nil {
		t.Fatal(err)
	}
	// Frames keep their order on a veth: once the last is read, the
	// others have arrived or been filtered out.
	seen := map[uint16]int{}
	bufs, sizes := makeBufs(8, 2048), make([]int, 8)
	if err := data.SetReadDeadline(time.Now().Add(safetyTimeout)); err != nil {
		t.Fatal(err)
	}
	for seen[lastType] == 0 {
		n, err := data.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatalf("data port: %v (seen %v)", err, seen)
		}
		for i := range n {
			seen[binary.BigEndian.Uint16(bufs[i][12:])]++
		}
	}
	if seen[0x88B5] != 0 || seen[0x0806] != 0 || seen[0x0800] != 1 {
		t.Errorf("data port saw EtherTypes %v; want 0x0800 and 0x88b6, none of 0x88b5 or 0x0806", seen)
	}
	if st, _ := data.Stats(); st.KernelDrops != 0 || st.Truncated != 0 {
		t.Errorf("filtered frames counted as drops: %+v", st)
	}
	if err := control.SetReadDeadline(time.Now().Add(safetyTimeout)); err != nil {
		t.Fatal(err)
	}
	n, err := control.ReadBatch(bufs, sizes)
	if err != nil || n != 1 || binary.BigEndian.Uint16(bufs[0][12:]) != 0x88B5 {
		t.Errorf("control port read %d frames (err %v); want the one 0x88b5 frame", n, err)
	}
}

// TestExcludeFilterProgram runs the filter in x/net/bpf's VM: each listed
// EtherType dropped, others accepted whole, for one to the most types.
func TestExcludeFilterProgram(t *testing.T) {
	frame := make([]byte, 60)
	for _, types := range [][]uint16{{0x88B5}, {0x88B5, 0x0806}, make([]uint16, maxExclude)} {
		if len(types) == maxExclude {
			for i := range types {
				types[i] = 0x9000 + uint16(i)
			}
		}
		raw, err := excludeFilter(types)
		if err != nil {
			t.Fatal(err)
		}
		prog := make([]bpf.Instruction, len(raw))
		for i, r := range raw {
			prog[i] = r.Disassemble()
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatal(err)
		}
		for _, et := range append([]uint16{0x0800, 0x86DD, 0x9999}, types...) {
			binary.BigEndian.PutUint16(frame[12:], et)
			got, err := vm.Run(frame)
			if err != nil {
				t.Fatal(err)
			}
			excluded := false
			for _, x := range types {
				excluded = excluded || x == et
			}
			// The kernel keeps min(returned, frame length) bytes.
			if kept := min(got, len(frame)); excluded != (kept == 0) || !excluded && kept != len(frame) {
				t.Errorf("types %#04x: EtherType %#04x keeps %d bytes (excluded %v)", types, et, kept, excluded)
			}
		}
	}
	if _, err := (Options{Exclude: make([]uint16, maxExclude+1)}).withDefaults(); err == nil {
		t.Error("too many EtherTypes to exclude: no error")
	}
}
