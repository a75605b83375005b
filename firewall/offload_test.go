package firewall

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/falab/falab/firewall/header"
)

// offloadRecorder is an OffloadPort that keeps copies of what is written,
// each frame with its virtio_net_hdr (nil through WriteBatch, which on a
// real socket would take the frame's first bytes for the header).
type offloadRecorder struct {
	frames, hdrs [][]byte
	discard      bool // keep nothing (allocation tests)
}

var errRecorderRead = errors.New("offloadRecorder: not readable")

func (r *offloadRecorder) VNetHdr() bool                          { return true }
func (r *offloadRecorder) ReadBatch([][]byte, []int) (int, error) { return 0, errRecorderRead }
func (r *offloadRecorder) Close() error                           { return nil }
func (r *offloadRecorder) WriteBatch(frames [][]byte) (int, error) {
	return r.WriteBatchVNet(frames, nil)
}
func (r *offloadRecorder) ReadBatchVNet([][]byte, []int, [][]byte) (int, error) {
	return 0, errRecorderRead
}

func (r *offloadRecorder) WriteBatchVNet(frames, hdrs [][]byte) (int, error) {
	if r.discard {
		return len(frames), nil
	}
	for i, f := range frames {
		var h []byte
		if hdrs != nil {
			h = bytes.Clone(hdrs[i])
		}
		r.frames = append(r.frames, bytes.Clone(f))
		r.hdrs = append(r.hdrs, h)
	}
	return len(frames), nil
}

func (r *offloadRecorder) take() (frames, hdrs [][]byte) {
	frames, hdrs = r.frames, r.hdrs
	r.frames, r.hdrs = nil, nil
	return frames, hdrs
}

// offloadLab is resolvedLab with a TCP connection client:40000 ->
// server:80 established (PAT on the outside), then every port an
// offloadRecorder; only those in offloading carry headers (OffloadPort).
func offloadLab(t testing.TB, offloading ...int) (*lab, []*offloadRecorder) {
	l := resolvedLab(t, labConfig())
	l.send(segment{true, SYN, ""})
	l.send(segment{false, SYN | ACK, ""})
	l.send(segment{true, ACK, ""})
	recs := make([]*offloadRecorder, len(l.fw.ifs))
	for i, it := range l.fw.ifs {
		recs[i] = &offloadRecorder{}
		it.port, it.offload = recs[i], nil
	}
	for _, i := range offloading {
		l.fw.ifs[i].offload = recs[i]
	}
	return l, recs
}

// inOffload runs frame, which came with hdr, through the firewall.
func (l *lab) inOffload(ifIdx int, hdr, frame []byte) DropReason {
	w := l.fw.workers.Get().(*worker)
	defer l.fw.workers.Put(w)
	w.now = l.fw.now()
	r := w.handleOffload(ifIdx, hdr, frame)
	w.flush()
	return r
}

const testGSOSize = 1448

// superFrame is the client's next TCP segment of n payload bytes as the
// kernel hands a GSO super-frame over: the TCP checksum field holds the
// pseudo-header's partial sum (CHECKSUM_PARTIAL), and its header says so.
func superFrame(l *lab, n int) (hdr, frame []byte) {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	frame = l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK|PSH, string(payload))
	ip := header.IPv4(frame[header.EthernetLen:])
	tcp := header.TCP(ip.Payload())
	tcp.SetChecksum(header.PseudoHeaderChecksum(header.ProtocolTCP, client.ip, server.ip, uint16(len(tcp))))
	hdr = vnetHdr(vnetNeedsCsum, vnetGSOTCPv4, testGSOSize, 34, 16)
	return hdr, frame
}

func vnetHdr(flags, gso uint8, size, start, at uint16) []byte {
	h := make([]byte, vnetHdrLen)
	h[0], h[1] = flags, gso
	binary.NativeEndian.PutUint16(h[2:], start+20)
	binary.NativeEndian.PutUint16(h[4:], size)
	binary.NativeEndian.PutUint16(h[6:], start)
	binary.NativeEndian.PutUint16(h[8:], at)
	return h
}

// kernelSegments cuts a super-frame that carries a partial checksum the
// way the kernel's tcp_gso_segment does: each segment's partial sum is the
// super-frame's with the length changed, then the checksum is completed
// over the segment (the veth or NIC's work). Independent of offload.go.
func kernelSegments(t *testing.T, frame []byte, size int) [][]byte {
	t.Helper()
	ip := header.IPv4(frame[header.EthernetLen:])
	tcp := header.TCP(ip.Payload())
	heads := header.EthernetLen + ip.HeaderLength() + tcp.DataOffset()
	data := frame[heads:]
	var segs [][]byte
	for off := 0; off < len(data); off += size {
		chunk := data[off:min(off+size, len(data))]
		seg := append(bytes.Clone(frame[:heads]), chunk...)
		sip := header.IPv4(seg[header.EthernetLen:])
		sip.SetTotalLength(uint16(len(sip)))
		sip.SetChecksum(sip.CalculateChecksum())
		st := header.TCP(sip.Payload())
		st.SetSequenceNumber(tcp.SequenceNumber() + uint32(off))
		partial := header.ChecksumCombine(header.ChecksumCombine(tcp.Checksum(), ^uint16(len(tcp))), uint16(len(st)))
		st.SetChecksum(partial)
		st.SetChecksum(^header.Checksum(st, 0))
		segs = append(segs, seg)
	}
	return segs
}

// TestSuperFrameNATedWhole: a GSO super-frame of an established PAT flow
// leaves as one frame with its header, translated once, and the kernel's
// segmentation of it then gives segments whose checksums verify (the
// partial sum was updated for the new source address only).
func TestSuperFrameNATedWhole(t *testing.T) {
	l, recs := offloadLab(t, ifInside, ifOutside)
	hdr, frame := superFrame(l, 5000)
	sent := bytes.Clone(frame)
	if r := l.inOffload(ifInside, hdr, frame); r != dropNone {
		t.Fatalf("dropped: %v", r)
	}
	frames, hdrs := recs[ifOutside].take()
	if len(frames) != 1 {
		t.Fatalf("%d frames on the outside, want the one super-frame", len(frames))
	}
	if !bytes.Equal(hdrs[0], hdr) {
		t.Errorf("header out %x, want the one that came in %x", hdrs[0], hdr)
	}
	out := frames[0]
	ip := header.IPv4(out[header.EthernetLen:])
	if !ip.ChecksumValid() || ip.SourceAddress() != outsideIP || int(ip.TotalLength()) != len(sent)-header.EthernetLen {
		t.Errorf("IPv4 header out: checksum valid %v, source %v, length %d", ip.ChecksumValid(), ip.SourceAddress(), ip.TotalLength())
	}
	tcp := header.TCP(ip.Payload())
	in := header.TCP(header.IPv4(sent[header.EthernetLen:]).Payload())
	c, _ := l.fw.conns.lookup(Tuple{Proto: header.ProtocolTCP, Src: client.ip, Dst: server.ip, SrcPort: 40000, DstPort: 80})
	if c == nil {
		t.Fatal("no connection")
	}
	if got, want := tcp.SequenceNumber(), in.SequenceNumber()+c.seqOff; got != want {
		t.Errorf("sequence number out %d, want %d (randomized)", got, want)
	}
	want := header.PseudoHeaderChecksum(header.ProtocolTCP, outsideIP, server.ip, uint16(len(tcp)))
	if tcp.Checksum() != want {
		t.Errorf("partial checksum out %#04x, want the new pseudo-header's %#04x", tcp.Checksum(), want)
	}
	segs := kernelSegments(t, out, testGSOSize)
	if len(segs) != 4 {
		t.Fatalf("%d segments, want 4", len(segs))
	}
	for i, s := range segs {
		sip := header.IPv4(s[header.EthernetLen:])
		st := header.TCP(sip.Payload())
		if got, want := st.Checksum(), st.CalculateChecksum(sip.SourceAddress(), sip.DestinationAddress()); got != want {
			t.Errorf("segment %d: checksum %#04x, a full recompute gives %#04x", i, got, want)
		}
	}
	if got := c.packets.Load(); got < 4 {
		t.Errorf("connection counted %d packets; the super-frame alone stands for 4", got)
	}
	// The server acks the whole super-frame: tracking took all of it.
	l.observe([][][]byte{nil, segs})
	ack := l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, ACK, "")
	if r := l.inOffload(ifOutside, noOffload[:], ack); r != dropNone {
		t.Errorf("the server's ack of the whole super-frame dropped: %v", r)
	}
}

// TestSuperFrameSegmentedInSoftware: a super-frame to an interface that
// takes no headers (here, the outside) is cut into ordinary segments, each
// with full, valid checksums, the payload in order, PSH on the last only.
func TestSuperFrameSegmentedInSoftware(t *testing.T) {
	l, recs := offloadLab(t, ifInside)
	hdr, frame := superFrame(l, 5000)
	sent := bytes.Clone(frame)
	if r := l.inOffload(ifInside, hdr, frame); r != dropNone {
		t.Fatalf("dropped: %v", r)
	}
	frames, _ := recs[ifOutside].take()
	if len(frames) != 4 {
		t.Fatalf("%d frames on the outside, want 4 segments", len(frames))
	}
	var payload []byte
	in := header.TCP(header.IPv4(sent[header.EthernetLen:]).Payload())
	var seq0 uint32
	for i, f := range frames {
		ip := header.IPv4(f[header.EthernetLen:])
		tcp := header.TCP(ip.Payload())
		if !ip.ChecksumValid() || ip.SourceAddress() != outsideIP {
			t.Errorf("segment %d: IPv4 checksum valid %v, source %v", i, ip.ChecksumValid(), ip.SourceAddress())
		}
		if got, want := tcp.Checksum(), tcp.CalculateChecksum(ip.SourceAddress(), ip.DestinationAddress()); got != want {
			t.Errorf("segment %d: TCP checksum %#04x, want %#04x", i, got, want)
		}
		if i == 0 {
			seq0 = tcp.SequenceNumber()
		} else if got, want := tcp.SequenceNumber(), seq0+uint32(len(payload)); got != want {
			t.Errorf("segment %d: sequence %d, want %d", i, got, want)
		}
		if psh := tcp.Flags()&PSH != 0; psh != (i == len(frames)-1) {
			t.Errorf("segment %d: PSH %v", i, psh)
		}
		payload = append(payload, tcp[tcp.DataOffset():]...)
	}
	if !bytes.Equal(payload, in[in.DataOffset():]) {
		t.Error("the segments' payload is not the super-frame's")
	}
}

// TestPartialChecksumCompleted: a frame whose checksum is still to do
// (NEEDS_CSUM, no GSO) to an interface that takes no headers leaves with
// the checksum done.
func TestPartialChecksumCompleted(t *testing.T) {
	l, recs := offloadLab(t, ifInside)
	hdr, frame := superFrame(l, 100)
	hdr[1] = vnetGSONone
	if r := l.inOffload(ifInside, hdr, frame); r != dropNone {
		t.Fatalf("dropped: %v", r)
	}
	frames, _ := recs[ifOutside].take()
	if len(frames) != 1 {
		t.Fatalf("%d frames on the outside, want 1", len(frames))
	}
	ip := header.IPv4(frames[0][header.EthernetLen:])
	tcp := header.TCP(ip.Payload())
	if got, want := tcp.Checksum(), tcp.CalculateChecksum(ip.SourceAddress(), ip.DestinationAddress()); got != want {
		t.Errorf("TCP checksum %#04x, want %#04x", got, want)
	}
}

// TestBadOffloadHeaderDropped: headers the frame contradicts or the
// firewall cannot honour are dropped and counted, and send nothing.
func TestBadOffloadHeaderDropped(t *testing.T) {
	tests := []struct {
		name string
		edit func(h []byte)
	}{
		{"unknown flag", func(h []byte) { h[0] |= 0x80 }},
		{"IPv6 GSO", func(h []byte) { h[1] = 4 }},
		{"UDP GSO on TCP", func(h []byte) { h[1] = vnetGSOUDPL4 }},
		{"GSO without NEEDS_CSUM", func(h []byte) { h[0] = 0 }},
		{"no segment size", func(h []byte) { binary.NativeEndian.PutUint16(h[4:], 0) }},
		{"checksum not at the TCP header", func(h []byte) { binary.NativeEndian.PutUint16(h[6:], 40) }},
		{"checksum field not TCP's", func(h []byte) { binary.NativeEndian.PutUint16(h[8:], 6) }},
		{"segment larger than a buffer", func(h []byte) { binary.NativeEndian.PutUint16(h[4:], 60000) }},
		{"short header", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, recs := offloadLab(t, ifInside, ifOutside)
			hdr, frame := superFrame(l, 62000)
			if tt.edit != nil {
				tt.edit(hdr)
			} else {
				hdr = hdr[:5]
			}
			if r := l.inOffload(ifInside, hdr, frame); r != DropBadOffload {
				t.Errorf("got %v, want %v", r, DropBadOffload)
			}
			for i, rec := range recs {
				if f, _ := rec.take(); len(f) != 0 {
					t.Errorf("interface %d sent %d frames", i, len(f))
				}
			}
		})
	}
}

// TestSuperFrameTooBigForMTU: a super-frame whose segments exceed the
// egress MTU and may not be fragmented is refused with fragmentation
// needed, as each segment would be.
func TestSuperFrameTooBigForMTU(t *testing.T) {
	l, recs := offloadLab(t, ifInside, ifOutside)
	l.fw.ifs[ifOutside].mtu = 1400
	hdr, frame := superFrame(l, 5000)
	if r := l.inOffload(ifInside, hdr, frame); r == dropNone {
		t.Fatal("forwarded")
	}
	if f, _ := recs[ifOutside].take(); len(f) != 0 {
		t.Errorf("%d frames on the outside", len(f))
	}
	f, _ := recs[ifInside].take()
	if len(f) != 1 || decode(t, f[0]).Type != "icmp" {
		t.Errorf("want one ICMP fragmentation needed to the client, got %d frames", len(f))
	}
}

func TestSuperFrameAllocatesNothing(t *testing.T) {
	l, recs := offloadLab(t, ifInside, ifOutside)
	for _, r := range recs {
		r.discard = true
	}
	hdr, tmpl := superFrame(l, 30000)
	frame := make([]byte, len(tmpl))
	w := newWorker(l.fw) // one reader's worker, as in readInPlaceLoop (the pool drops items under -race)
	allocs := testing.AllocsPerRun(200, func() {
		copy(frame, tmpl)
		w.handleOffload(ifInside, hdr, frame)
		w.flush()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per super-frame, want 0", allocs)
	}
	if d := l.fw.Drops(); len(d) != 0 {
		t.Errorf("drops %v: the case does not exercise the whole-frame path", d)
	}
}

// FuzzOffloadHeader: any virtio_net_hdr with a valid TCP super-frame of an
// established flow either leaves whole, is segmented, or is dropped, and
// never panics.
func FuzzOffloadHeader(f *testing.F) {
	f.Add([]byte{1, 1, 74, 0, 0xa8, 5, 34, 0, 16, 0}, 5000)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 34, 0, 16, 0}, 100)
	f.Add([]byte{1, 5, 0, 0, 1, 0, 34, 0, 6, 0}, 1)
	f.Add([]byte{2, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0)
	f.Fuzz(func(t *testing.T, hdr []byte, n int) {
		if n < 0 || n > 65000 {
			return
		}
		l, _ := offloadLab(t, ifInside, ifOutside)
		_, frame := superFrame(l, n)
		l.inOffload(ifInside, hdr, frame)
		if o := parseOffload(hdr); o.bad == dropNone && len(hdr) >= vnetHdrLen && o.set() != (hdr[0]&vnetNeedsCsum != 0) {
			t.Errorf("header %x parsed as set %v", hdr, o.set())
		}
	})
}

// BenchmarkSuperFrame: one 30000-byte TCP super-frame of an established
// PAT flow through the whole path, kept whole (bytes/s is payload
// forwarded per core, the ring and socket copies aside).
func BenchmarkSuperFrame(b *testing.B) {
	l, recs := offloadLab(b, ifInside, ifOutside)
	for _, r := range recs {
		r.discard = true
	}
	hdr, tmpl := superFrame(l, 30000)
	frame := make([]byte, len(tmpl))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		copy(frame, tmpl)
		l.inOffload(ifInside, hdr, frame)
	}
}

// TestSuperFrameToUnresolvedNextHop: a super-frame kept whole is not
// queued while the next hop's ARP is pending (the queue keeps neither its
// header nor its size); it is dropped, and the sender resends.
func TestSuperFrameToUnresolvedNextHop(t *testing.T) {
	l, recs := offloadLab(t, ifInside, ifOutside)
	l.fw.arp.mu.Lock()
	l.fw.deleteARPLocked(arpKey{uint8(ifOutside), server.ip})
	l.fw.arp.mu.Unlock()
	hdr, frame := superFrame(l, 20000)
	if r := l.inOffload(ifInside, hdr, frame); r != DropNoAdjacency {
		t.Errorf("got %v, want %v", r, DropNoAdjacency)
	}
	l.fw.arp.mu.Lock()
	queued := len(l.fw.arp.pending)
	l.fw.arp.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d next hops with frames pending", queued)
	}
	recs[ifOutside].take()
}

// TestOffloadPortsWriteWithHeaders: every frame the firewall sends on an
// OffloadPort goes with a header (an empty one when it is not a kept-whole
// super-frame): generated frames, control frames, segments.
func TestOffloadPortsWriteWithHeaders(t *testing.T) {
	l, recs := offloadLab(t, ifInside, ifOutside)
	if err := l.fw.SendControl("outside", server.mac[:], 0x88b5, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	l.fw.ifs[ifOutside].mtu = 1400
	hdr, frame := superFrame(l, 5000)
	l.inOffload(ifInside, hdr, frame) // refused: an ICMP error to the client
	for i, rec := range recs {
		frames, hdrs := rec.take()
		for j := range frames {
			if !bytes.Equal(hdrs[j], noOffload[:]) {
				t.Errorf("interface %d frame %d: header %x, want an empty one", i, j, hdrs[j])
			}
		}
		if want := map[int]int{ifInside: 1, ifOutside: 1}[i]; len(frames) != want {
			t.Errorf("interface %d: %d frames, want %d", i, len(frames), want)
		}
	}
}

// inPlacePort lends frames (one batch, then errDone) and logs the order of
// writes and releases.
type inPlacePort struct {
	*offloadRecorder
	batch [][2][]byte // header, frame
	log   *[]string
}

var errDone = errors.New("done")

func (p *inPlacePort) ReadInPlace(frames, hdrs [][]byte) (int, error) {
	if p.batch == nil {
		return 0, errDone
	}
	for i, b := range p.batch {
		hdrs[i], frames[i] = b[0], b[1]
	}
	n := len(p.batch)
	p.batch = nil
	return n, nil
}

func (p *inPlacePort) Release() { *p.log = append(*p.log, "release") }

func (p *inPlacePort) WriteBatchVNet(frames, hdrs [][]byte) (int, error) {
	*p.log = append(*p.log, "write")
	return p.offloadRecorder.WriteBatchVNet(frames, hdrs)
}

// TestReadInPlaceLoop: frames read in the port's memory run the path, and
// the port gets them back (Release) only after the batch is written.
func TestReadInPlaceLoop(t *testing.T) {
	l, recs := offloadLab(t, ifInside, ifOutside)
	var log []string
	out := &inPlacePort{offloadRecorder: recs[ifOutside], log: &log}
	l.fw.ifs[ifOutside].port, l.fw.ifs[ifOutside].offload = out, out
	hdr, frame := superFrame(l, 5000)
	in := &inPlacePort{offloadRecorder: recs[ifInside], batch: [][2][]byte{{hdr, frame}}, log: &log}
	l.fw.ifs[ifInside].port, l.fw.ifs[ifInside].offload = in, in
	if err := l.fw.readLoop(l.fw.ifs[ifInside], in, false); err != errDone {
		t.Fatalf("readLoop: %v", err)
	}
	if frames, _ := recs[ifOutside].take(); len(frames) != 1 {
		t.Errorf("%d frames out, want the super-frame", len(frames))
	}
	if got := strings.Join(log, ","); got != "write,release" {
		t.Errorf("port calls %s, want write,release", got)
	}
}

// TestBridgedSuperFrameWhole: a transparent unit bridges a super-frame of
// an established connection whole, bytes and header unchanged.
func TestBridgedSuperFrameWhole(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	l.bseg(true, SYN, "")
	l.bseg(false, SYN|ACK, "")
	l.bseg(true, ACK, "")
	recs := make([]*offloadRecorder, len(l.fw.ifs))
	for i, it := range l.fw.ifs {
		recs[i] = &offloadRecorder{}
		it.port, it.offload = recs[i], recs[i]
	}
	frame := l.tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, ACK|PSH, string(make([]byte, 5000)))
	tcp := header.TCP(header.IPv4(frame[header.EthernetLen:]).Payload())
	tcp.SetChecksum(header.PseudoHeaderChecksum(header.ProtocolTCP, stA.ip, stB.ip, uint16(len(tcp))))
	hdr := vnetHdr(vnetNeedsCsum, vnetGSOTCPv4, testGSOSize, 34, 16)
	sent := bytes.Clone(frame)
	if r := l.inOffload(ifInside, hdr, frame); r != dropNone {
		t.Fatalf("dropped: %v", r)
	}
	frames, hdrs := recs[ifOutside].take()
	if len(frames) != 1 || !bytes.Equal(frames[0], sent) || !bytes.Equal(hdrs[0], hdr) {
		t.Errorf("%d frames out; want the super-frame as it came, with its header", len(frames))
	}
}
