package firewall

import "github.com/falab/falab/firewall/header"

// worker carries the per-goroutine state of the packet path (path.go):
// the summary of the packet at hand and the frames produced so far per
// egress interface, written in one batch by flush. A worker is used by
// one goroutine at a time.
type worker struct {
	f   *Firewall
	out [][][]byte // per interface index: frames awaiting WriteBatch
	// outHdr holds, per OffloadPort interface, the virtio_net_hdr of each
	// frame in out (offload.go); made on first use.
	outHdr [][][]byte
	off    offload      // the virtio_net_hdr of the frame at hand (offload.go)
	held   []*packetBuf // pool buffers referenced by out, returned after flush
	now    int64        // unix nanoseconds, read once per batch
	p      parsed
	l2     bridged // transparent mode: the frame's link-layer facts (bridgedLink)
	// permitted marks, per interface index, where the policy lets a
	// bridged new flow to an unknown MAC be flooded (see policy).
	permitted ifSet
	insp      Inspection // handed to a connection's engine (inspect.go)
	// fromARPPort: this worker reads an interface's ARP port (AttachARP).
	fromARPPort bool
	// inTunnel: the packet at hand came out of an ESP tunnel (ipsec.go).
	inTunnel bool

	frag fragWork // reassembly state of the datagram being released (fragment.go)
}

func newWorker(f *Firewall) *worker {
	return &worker{f: f, out: make([][][]byte, len(f.ifs))}
}

// ifSet is a set of interface indexes (at most 255 interfaces), held in
// the worker without an allocation of its own.
type ifSet [4]uint64

func (s *ifSet) set(i int, in bool) {
	if in {
		s[i>>6] |= 1 << (i & 63)
	} else {
		s[i>>6] &^= 1 << (i & 63)
	}
}

func (s *ifSet) has(i int) bool { return s[i>>6]&(1<<(i&63)) != 0 }

// parsed is the one summary of a packet that the rules read, filled in
// place per packet (tailscale's packet.Parsed).
type parsed struct {
	ip       header.IPv4 // trimmed to the total length
	l4       []byte
	tuple    Tuple
	tcpFlags uint8
	icmpType uint8
}

// isICMPError reports whether the packet is an ICMP message other than an
// echo: it belongs to the connection it quotes (related).
func (p *parsed) isICMPError() bool {
	return p.tuple.Proto == header.ProtocolICMP && p.icmpType != header.ICMPv4Echo && p.icmpType != header.ICMPv4EchoReply
}

// bridged is what the link step of transparent mode learnt about a frame.
type bridged struct {
	out      int       // interface the destination MAC was learnt on, -1 unknown (flood)
	src      [6]byte   // the source station
	station  *macEntry // its bridge entry, nil if the table is full
	unitAddr [4]byte   // the management address a frame to the unit's MAC may ask for
}

// queue schedules frame for writing on interface ifIdx; buf, if not nil,
// is the pool buffer holding it.
// On an OffloadPort the frame at hand, if it stays whole, carries its
// virtio_net_hdr out; every other frame an empty one.
func (w *worker) queue(ifIdx int, frame []byte, buf *packetBuf) {
	w.out[ifIdx] = append(w.out[ifIdx], frame)
	if w.f.ifs[ifIdx].offload != nil {
		if w.outHdr == nil {
			w.outHdr = make([][][]byte, len(w.f.ifs))
		}
		hdr := noOffload[:]
		if w.carriesOffload(frame) {
			hdr = w.off.hdr
		}
		w.outHdr[ifIdx] = append(w.outHdr[ifIdx], hdr)
	}
	if buf != nil {
		w.held = append(w.held, buf)
	}
}

// flush writes every queued frame, one WriteBatch per interface.
func (w *worker) flush() {
	f := w.f
	for i, frames := range w.out {
		if len(frames) == 0 {
			continue
		}
		it := f.ifs[i]
		n := 0
		if it.offload != nil {
			n, _ = it.offload.WriteBatchVNet(frames, w.outHdr[i])
			clear(w.outHdr[i])
			w.outHdr[i] = w.outHdr[i][:0]
		} else if it.port != nil {
			n, _ = it.port.WriteBatch(frames)
		}
		if it.port != nil {
			n = max(0, min(n, len(frames)))
			var bytes uint64
			for _, fr := range frames[:n] {
				bytes += uint64(len(fr))
			}
			it.stats.txPackets.Add(uint64(n))
			it.stats.txBytes.Add(bytes)
			if n < len(frames) {
				f.drops[DropTxError].Add(uint64(len(frames) - n))
			}
		} else {
			f.drops[DropNoPort].Add(uint64(len(frames)))
		}
		clear(frames)
		w.out[i] = frames[:0]
	}
	for i, b := range w.held {
		f.putBuf(b)
		w.held[i] = nil
	}
	w.held = w.held[:0]
}
