package afpacket

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// fakeFrame is one frame to lay out in a fake ring block.
type fakeFrame struct {
	data     []byte
	wireLen  uint32
	ts       time.Time
	pkttype  uint8
	status   uint32
	vlanTCI  uint32
	vlanTPID uint16
}

// fakeBlock lays frames out as the kernel does in a TPACKET_V3 block:
// block header, then each frame at an 8-byte aligned offset with its
// tpacket3_hdr, sockaddr_ll and data (at tp_mac).
func fakeBlock(frames []fakeFrame) []byte {
	block := make([]byte, 1<<16)
	const first = 48 // after tpacket_block_desc
	off := first
	*(*uint32)(unsafe.Pointer(&block[numPktsOff])) = uint32(len(frames))
	*(*uint32)(unsafe.Pointer(&block[firstPktOff])) = first
	for i, f := range frames {
		mac := sockaddrOff + unix.SizeofSockaddrLinklayer + 2 // as the kernel: the IP header aligned
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&block[off]))
		h.Sec, h.Nsec = uint32(f.ts.Unix()), uint32(f.ts.Nanosecond())
		h.Snaplen, h.Len, h.Status, h.Mac = uint32(len(f.data)), f.wireLen, f.status, uint16(mac)
		h.Hv1.Vlan_tci, h.Hv1.Vlan_tpid = f.vlanTCI, f.vlanTPID
		(*unix.RawSockaddrLinklayer)(unsafe.Pointer(&block[off+sockaddrOff])).Pkttype = f.pkttype
		copy(block[off+mac:], f.data)
		next := (mac + len(f.data) + v3Alignment - 1) &^ (v3Alignment - 1)
		if i < len(frames)-1 {
			h.Next_offset = uint32(next)
		}
		off += next
	}
	return block
}

var (
	tapMACa = net.HardwareAddr{0x02, 0xfa, 0x1a, 0xb0, 0x00, 0x01}
	tapMACb = net.HardwareAddr{0x02, 0xfa, 0x1a, 0xb0, 0x00, 0x02}
)

func TestWalkBlock(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	f1, f2 := testFrame(tapMACb, tapMACa, 1, 42), testFrame(tapMACb, tapMACa, 2, 100)
	f3, f4 := testFrame(tapMACb, tapMACa, 3, 64), testFrame(tapMACb, tapMACa, 4, 64)
	frames := []fakeFrame{
		{data: f1, wireLen: 42, ts: t0, pkttype: unix.PACKET_BROADCAST, status: unix.TP_STATUS_USER},
		{data: f2[:60], wireLen: 100, ts: t0.Add(time.Microsecond), pkttype: unix.PACKET_OUTGOING},
		{data: f3, wireLen: 64, ts: t0.Add(time.Millisecond), status: unix.TP_STATUS_VLAN_VALID, vlanTCI: 0x2064},
		{data: f4, wireLen: 64, ts: t0.Add(time.Second), status: unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID, vlanTCI: 7, vlanTPID: 0x88a8},
	}
	want := []TapFrame{
		{Data: f1, WireLen: 42, Time: t0},
		{Data: f2[:60], WireLen: 100, Time: t0.Add(time.Microsecond), Outgoing: true},
		{Data: f3, WireLen: 64, Time: t0.Add(time.Millisecond), VLAN: true, VLANTPID: 0x8100, VLANTCI: 0x2064},
		{Data: f4, WireLen: 64, Time: t0.Add(time.Second), VLAN: true, VLANTPID: 0x88a8, VLANTCI: 7},
	}
	block := fakeBlock(frames)
	timeEqual := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

	t.Run("all frames", func(t *testing.T) {
		var got []TapFrame
		walkBlock(block, func(f TapFrame) bool {
			f.Data = bytes.Clone(f.Data)
			got = append(got, f)
			return true
		})
		if diff := cmp.Diff(want, got, timeEqual); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("stops when told", func(t *testing.T) {
		n := 0
		walkBlock(block, func(TapFrame) bool { n++; return n < 2 })
		if n != 2 {
			t.Errorf("walked %d frames after stopping at 2", n)
		}
	})
	t.Run("damaged blocks end the walk inside the block", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			spoil func(b []byte)
			want  int
		}{
			{"first offset past the end", func(b []byte) { *(*uint32)(unsafe.Pointer(&b[firstPktOff])) = 1 << 20 }, 0},
			{"first offset misaligned", func(b []byte) { *(*uint32)(unsafe.Pointer(&b[firstPktOff])) = 52 }, 0},
			{"snaplen past the end", func(b []byte) { (*unix.Tpacket3Hdr)(unsafe.Pointer(&b[48])).Snaplen = 1 << 20 }, 0},
			{"mac inside the header", func(b []byte) { (*unix.Tpacket3Hdr)(unsafe.Pointer(&b[48])).Mac = 8 }, 0},
			{"more packets claimed than there are", func(b []byte) { *(*uint32)(unsafe.Pointer(&b[numPktsOff])) = 1000 }, 4},
			{"next offset past the end", func(b []byte) { (*unix.Tpacket3Hdr)(unsafe.Pointer(&b[48])).Next_offset = 1 << 20 }, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := bytes.Clone(block)
				tc.spoil(b)
				n := 0
				walkBlock(b, func(TapFrame) bool { n++; return true })
				if n != tc.want {
					t.Errorf("walked %d frames, want %d", n, tc.want)
				}
			})
		}
	})
	if n := testing.AllocsPerRun(100, func() { walkBlock(block, func(TapFrame) bool { return true }) }); n != 0 {
		t.Errorf("walkBlock allocates %.1f times per block", n)
	}
}

func TestTapBlockSize(t *testing.T) {
	for _, tc := range []struct{ snap, want int }{
		{64, 1 << 20}, {DefaultTapSnapLen, 1 << 20}, {1<<20 - 512, 1 << 20}, {MaxTapSnapLen, 2 << 20},
	} {
		if got := TapBlockSize(tc.snap); got != tc.want {
			t.Errorf("TapBlockSize(%d) = %d, want %d", tc.snap, got, tc.want)
		}
	}
}

// FuzzWalkBlock: whatever a block holds, the walk stays inside it and
// every frame it yields lies within the block.
func FuzzWalkBlock(f *testing.F) {
	f.Add(fakeBlock([]fakeFrame{{data: testFrame(tapMACb, tapMACa, 1, 42), wireLen: 42}, {data: testFrame(tapMACb, tapMACa, 2, 64), wireLen: 64, status: unix.TP_STATUS_VLAN_VALID}})[:512])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// A fresh, 8-aligned copy, as the ring's blocks are.
		block := make([]byte, len(b))
		copy(block, b)
		walkBlock(block, func(fr TapFrame) bool {
			if len(fr.Data) > 0 {
				start := uintptr(unsafe.Pointer(&fr.Data[0])) - uintptr(unsafe.Pointer(&block[0]))
				if start+uintptr(len(fr.Data)) > uintptr(len(block)) {
					t.Fatalf("frame of %d bytes at %d runs past the %d-byte block", len(fr.Data), start, len(block))
				}
			}
			return true
		})
	})
}

func TestOpenTapErrors(t *testing.T) {
	for _, o := range []TapOptions{{SnapLen: -1}, {SnapLen: MaxTapSnapLen + 1}} {
		if tp, err := OpenTap("lo", o); err == nil {
			tp.Close()
			t.Errorf("OpenTap(lo, %+v) succeeded; want an error", o)
		}
	}
}

// TestTapSeesBothDirections: a Tap on each end of a veth sees the frames a
// Port sends, outgoing on the sender's side and incoming on the
// receiver's, with kernel timestamps between the send's start and the
// read, and the kernel's count of them.
func TestTapSeesBothDirections(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	var taps [2]*Tap
	for i, e := range []end{a, b} {
		err := inNS(e.ns, func() error {
			var err error
			taps[i], err = OpenTap(e.ifname, TapOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { taps[i].Close() })
	}
	pa := open(t, a, Options{})
	sent := [][]byte{testFrame(foreignMAC, pa.HardwareAddr(), 1, 60), testFrame(foreignMAC, pa.HardwareAddr(), 2, 1514)}
	before := time.Now()
	if _, err := pa.WriteBatch(sent); err != nil {
		t.Fatal(err)
	}
	for i, wantOut := range []bool{true, false} {
		tp := taps[i]
		if err := tp.SetReadDeadline(timeAfterSafety()); err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for len(got) < len(sent) {
			if err := tp.Wait(); err != nil {
				t.Fatalf("tap %d after %d frames: %v", i, len(got), err)
			}
			_, err := tp.ReadBlock(func(f TapFrame) bool {
				if !isTestFrame(f.Data) {
					return true
				}
				if f.Outgoing != wantOut || f.WireLen != len(f.Data) || f.Time.Before(before) || f.Time.After(time.Now()) {
					t.Errorf("tap %d: frame of %d bytes: outgoing %v (want %v), wire length %d, time %v (sent after %v)",
						i, len(f.Data), f.Outgoing, wantOut, f.WireLen, f.Time, before)
				}
				got = append(got, bytes.Clone(f.Data))
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(sent, got); diff != "" {
			t.Errorf("tap %d frames (-sent +seen):\n%s", i, diff)
		}
		if st, err := tp.Stats(); err != nil || st.KernelFrames < uint64(len(sent)) {
			t.Errorf("tap %d stats %+v, %v; want KernelFrames >= %d", i, st, err, len(sent))
		}
	}
	// Close wakes a waiting reader.
	errc := make(chan error, 1)
	go func() {
		for {
			if err := taps[1].Wait(); err != nil {
				errc <- err
				return
			}
			taps[1].ReadBlock(func(TapFrame) bool { return true })
		}
	}()
	taps[1].SetReadDeadline(time.Time{})
	taps[1].Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Wait after Close = %v; want ErrClosed", err)
		}
	case <-time.After(safetyTimeout):
		t.Fatal("Wait still blocked after Close")
	}
	if _, err := taps[1].ReadBlock(func(TapFrame) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadBlock after Close = %v; want ErrClosed", err)
	}
}
