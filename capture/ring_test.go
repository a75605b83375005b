package capture

import (
	"bytes"
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

func TestWalkBlock(t *testing.T) {
	t0 := goldenTime
	frames := []fakeFrame{
		{data: garpFrame, wireLen: uint32(len(garpFrame)), ts: t0, pkttype: unix.PACKET_BROADCAST, status: unix.TP_STATUS_USER},
		{data: testFrame(100, 1)[:60], wireLen: 100, ts: t0.Add(time.Microsecond), pkttype: unix.PACKET_OUTGOING},
		{data: testFrame(64, 2), wireLen: 64, ts: t0.Add(time.Millisecond), status: unix.TP_STATUS_VLAN_VALID, vlanTCI: 0x2064},
		{data: testFrame(64, 3), wireLen: 64, ts: t0.Add(time.Second), status: unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID, vlanTCI: 7, vlanTPID: 0x88a8},
	}
	want := []ringFrame{
		{data: garpFrame, wireLen: 42, ts: t0},
		{data: testFrame(100, 1)[:60], wireLen: 100, ts: t0.Add(time.Microsecond), outgoing: true},
		{data: testFrame(64, 2), wireLen: 64, ts: t0.Add(time.Millisecond), vlanValid: true, vlanTPID: 0x8100, vlanTCI: 0x2064},
		{data: testFrame(64, 3), wireLen: 64, ts: t0.Add(time.Second), vlanValid: true, vlanTPID: 0x88a8, vlanTCI: 7},
	}
	block := fakeBlock(frames)
	opts := cmp.Options{cmp.AllowUnexported(ringFrame{}), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })}

	t.Run("all frames", func(t *testing.T) {
		var got []ringFrame
		walkBlock(block, func(f ringFrame) bool {
			c := f
			c.data = bytes.Clone(f.data)
			got = append(got, c)
			return true
		})
		if diff := cmp.Diff(want, got, opts); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("stops when told", func(t *testing.T) {
		n := 0
		walkBlock(block, func(ringFrame) bool { n++; return n < 2 })
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
				walkBlock(b, func(ringFrame) bool { n++; return true })
				if n != tc.want {
					t.Errorf("walked %d frames, want %d", n, tc.want)
				}
			})
		}
	})
	if n := testing.AllocsPerRun(100, func() { walkBlock(block, func(ringFrame) bool { return true }) }); n != 0 {
		t.Errorf("walkBlock allocates %.1f times per block", n)
	}
}

func TestRingBlockSize(t *testing.T) {
	for _, tc := range []struct{ snap, want int }{
		{64, 1 << 20}, {DefaultSnapLen, 1 << 20}, {1<<20 - 512, 1 << 20}, {MaxSnapLen, 2 << 20},
	} {
		if got := ringBlockSize(tc.snap); got != tc.want {
			t.Errorf("ringBlockSize(%d) = %d, want %d", tc.snap, got, tc.want)
		}
	}
}

// FuzzWalkBlock: whatever a block holds, the walk stays inside it and
// every frame it yields lies within the block.
func FuzzWalkBlock(f *testing.F) {
	f.Add(fakeBlock([]fakeFrame{{data: garpFrame, wireLen: 42}, {data: testFrame(64, 1), wireLen: 64, status: unix.TP_STATUS_VLAN_VALID}})[:512])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// A fresh, 8-aligned copy, as the ring's blocks are.
		block := make([]byte, len(b))
		copy(block, b)
		walkBlock(block, func(fr ringFrame) bool {
			if len(fr.data) > 0 {
				start := uintptr(unsafe.Pointer(&fr.data[0])) - uintptr(unsafe.Pointer(&block[0]))
				if start+uintptr(len(fr.data)) > uintptr(len(block)) {
					t.Fatalf("frame of %d bytes at %d runs past the %d-byte block", len(fr.data), start, len(block))
				}
			}
			return true
		})
	})
}
