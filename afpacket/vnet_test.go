package afpacket

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// vnetFields is a VNetHdr's content, comparable with cmp.
type vnetFields struct {
	Flags, GSOType                         uint8
	HdrLen, GSOSize, CsumStart, CsumOffset uint16
}

func fieldsOf(h VNetHdr) vnetFields {
	return vnetFields{h.Flags(), h.GSOType(), h.HdrLen(), h.GSOSize(), h.CsumStart(), h.CsumOffset()}
}

func TestVNetHdrView(t *testing.T) {
	h := make(VNetHdr, VNetHdrLen)
	h.Set(1, 4, 74, 1440, 54, 16)
	want := vnetFields{1, 4, 74, 1440, 54, 16}
	if diff := cmp.Diff(want, fieldsOf(h)); diff != "" {
		t.Errorf("fields after Set (-want +got):\n%s", diff)
	}
}

// tcpGSOFrame builds an Ethernet/IPv4/TCP super-frame with payload bytes
// of payload, to be cut into gsoSize segments.
func tcpGSOFrame(dst, src net.HardwareAddr, payload int) []byte {
	f := make([]byte, 14+20+20+payload)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-14))
	ip[8], ip[9] = 64, 6
	copy(ip[12:16], []byte{198, 18, 9, 1})
	copy(ip[16:20], []byte{198, 18, 9, 2})
	tcp := f[34:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12] = 5 << 4 // data offset
	tcp[13] = 0x18   // PSH|ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	for i := range payload {
		f[54+i] = byte(i)
	}
	return f
}

func TestVNetHdrCarriesGSOFramesWhole(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	opts := Options{VNetHdr: true, RingFrameSize: 1 << 17, RingFrames: 64}
	pa := open(t, a, opts)
	pb := open(t, b, opts)

	plain := append(make([]byte, VNetHdrLen), testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 1, 100)...)
	gso := append(make([]byte, VNetHdrLen), tcpGSOFrame(pb.HardwareAddr(), pa.HardwareAddr(), 3000)...)
	VNetHdr(gso).Set(unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, unix.VIRTIO_NET_HDR_GSO_TCPV4, 54, 1000, 34, 16)
	if n, err := pa.WriteBatch([][]byte{plain, gso}); n != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want 2, nil", n, err)
	}

	bufs, sizes := makeBufs(4, 1<<16+VNetHdrLen), make([]int, 4)
	var got [][]byte
	if err := pb.SetReadDeadline(timeAfterSafety()); err != nil {
		t.Fatal(err)
	}
	for len(got) < 2 {
		n, err := pb.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatalf("ReadBatch after %d frames: %v", len(got), err)
		}
		for i := range n {
			if f := bufs[i][:sizes[i]]; len(f) > VNetHdrLen && isTestFrame(f[VNetHdrLen:]) || len(f) > 1000 {
				got = append(got, append([]byte(nil), f...))
			}
		}
	}
	if diff := cmp.Diff(plain[VNetHdrLen:], got[0][VNetHdrLen:]); diff != "" {
		t.Errorf("plain frame (-sent +received):\n%s", diff)
	}
	if h := fieldsOf(VNetHdr(got[0])); h.GSOType != unix.VIRTIO_NET_HDR_GSO_NONE {
		t.Errorf("plain frame's header %+v; want no GSO", h)
	}
	if diff := cmp.Diff(gso[VNetHdrLen:], got[1][VNetHdrLen:]); diff != "" {
		t.Errorf("GSO frame, not cut into segments (-sent +received):\n%s", diff)
	}
	h := fieldsOf(VNetHdr(got[1]))
	if h.GSOType != unix.VIRTIO_NET_HDR_GSO_TCPV4 || h.GSOSize != 1000 || h.Flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM == 0 || h.CsumStart != 34 || h.CsumOffset != 16 {
		t.Errorf("GSO frame's header %+v; want TCPv4, segments of 1000, checksum at 34+16 still to do", h)
	}
}

// TestVNetHdrApart sends and receives a GSO super-frame with its header
// apart from the frame (WriteBatchVNet, ReadBatchVNet): the frame lands at
// the start of the buffer and the header in its own, unchanged.
func TestVNetHdrApart(t *testing.T) {
	t.Parallel()
	a, b := newVethPair(t)
	opts := Options{VNetHdr: true, RingFrameSize: 1 << 17, RingFrames: 64}
	pa := open(t, a, opts)
	pb := open(t, b, opts)

	gso := tcpGSOFrame(pb.HardwareAddr(), pa.HardwareAddr(), 3000)
	hdr := make(VNetHdr, VNetHdrLen)
	hdr.Set(unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, unix.VIRTIO_NET_HDR_GSO_TCPV4, 54, 1000, 34, 16)
	if n, err := pa.WriteBatchVNet([][]byte{gso}, [][]byte{hdr}); n != 1 || err != nil {
		t.Fatalf("WriteBatchVNet = %d, %v; want 1, nil", n, err)
	}
	bufs, sizes, hdrs := makeBufs(4, 1<<16), make([]int, 4), makeBufs(4, VNetHdrLen)
	if err := pb.SetReadDeadline(timeAfterSafety()); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := pb.ReadBatchVNet(bufs, sizes, hdrs)
		if err != nil {
			t.Fatalf("ReadBatchVNet: %v", err)
		}
		for i := range n {
			if sizes[i] < 1000 {
				continue // the kernel's own chatter (IPv6 router solicitations)
			}
			if diff := cmp.Diff(gso, bufs[i][:sizes[i]]); diff != "" {
				t.Errorf("GSO frame (-sent +received):\n%s", diff)
			}
			got := fieldsOf(VNetHdr(hdrs[i]))
			got.HdrLen = hdr.HdrLen() // a hint: the kernel reports its linear part
			if diff := cmp.Diff(fieldsOf(hdr), got); diff != "" {
				t.Errorf("header (-sent +received):\n%s", diff)
			}
			return
		}
	}
}

func TestVNetHdrMethodsNeedTheOption(t *testing.T) {
	p := &Port{}
	if _, err := p.ReadBatchVNet(nil, nil, nil); err == nil {
		t.Error("ReadBatchVNet on a port without VNetHdr: no error")
	}
	if _, err := p.WriteBatchVNet(nil, nil); err == nil {
		t.Error("WriteBatchVNet on a port without VNetHdr: no error")
	}
}

// TestReadInPlace reads frames and headers straight from the ring, more
// rounds than the ring has slots: each Release gives the slots back.
func TestReadInPlace(t *testing.T) {
	t.Parallel()
	a, b := newVethPair(t)
	opts := Options{VNetHdr: true, RingFrameSize: 1 << 17, RingFrames: 4}
	pa := open(t, a, opts)
	pb := open(t, b, opts)
	if err := pb.SetReadDeadline(timeAfterSafety()); err != nil {
		t.Fatal(err)
	}
	hdr := make(VNetHdr, VNetHdrLen)
	hdr.Set(unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, unix.VIRTIO_NET_HDR_GSO_TCPV4, 54, 1000, 34, 16)
	frames, hdrs := make([][]byte, 4), make([][]byte, 4)
	for round := range 12 { // three times the ring
		gso := tcpGSOFrame(pb.HardwareAddr(), pa.HardwareAddr(), 3000+round)
		if n, err := pa.WriteBatchVNet([][]byte{gso}, [][]byte{hdr}); n != 1 || err != nil {
			t.Fatalf("round %d: WriteBatchVNet = %d, %v", round, n, err)
		}
		for found := false; !found; {
			n, err := pb.ReadInPlace(frames, hdrs)
			if err != nil {
				t.Fatalf("round %d: ReadInPlace: %v", round, err)
			}
			for i := range n {
				if len(frames[i]) < 1000 {
					continue // the kernel's own chatter
				}
				found = true
				if !bytes.Equal(frames[i], gso) || VNetHdr(hdrs[i]).GSOSize() != 1000 {
					t.Errorf("round %d: frame or header differ", round)
				}
				frames[i][0] ^= 0xff // the ring is ours to write until Release
			}
			pb.Release()
		}
	}
}
