package firewall

import (
	"github.com/falab/falab/firewall/header"
)

// tcpHostKey names one end of a TCP connection as that host sees it.
type tcpHostKey struct {
	local, remote         [4]byte
	localPort, remotePort uint16
}

// tcpHost is a minimal TCP endpoint: it numbers what it sends and acks
// what it received, so that tests can send segments a window-tracking
// firewall accepts, through NAT and sequence randomization alike.
type tcpHost struct {
	sndNxt, rcvNxt uint32
	synced         bool // has received the peer's SYN
}

// tcpISN is every simulated host's initial sequence number.
const tcpISN = 1000

func (l *lab) tcpHost(k tcpHostKey) *tcpHost {
	if l.hosts == nil {
		l.hosts = map[tcpHostKey]*tcpHost{}
	}
	h := l.hosts[k]
	if h == nil {
		h = &tcpHost{sndNxt: tcpISN}
		l.hosts[k] = h
	}
	return h
}

// tcpFrame is the package tcpFrame with the sequence and ack numbers the
// sending host would use: a SYN restarts it at tcpISN, and the ack is what
// it received so far (see observe).
func (l *lab) tcpFrame(ethSrc, ethDst [6]byte, src, dst [4]byte, sport, dport uint16, flags uint8, payload string) []byte {
	h := l.tcpHost(tcpHostKey{src, dst, sport, dport})
	if flags&header.TCPFlagSYN != 0 {
		h.sndNxt = tcpISN
	}
	fr := tcpFrame(ethSrc, ethDst, src, dst, sport, dport, flags, payload)
	seq := h.sndNxt
	h.sndNxt += segLen(flags, len(payload))
	return setSeqAck(fr, seq, h.rcvNxt)
}

func segLen(flags uint8, n int) uint32 {
	l := uint32(n)
	if flags&header.TCPFlagSYN != 0 {
		l++
	}
	if flags&header.TCPFlagFIN != 0 {
		l++
	}
	return l
}

// setSeqAck rewrites a TCP frame's numbers and recomputes its checksum.
func setSeqAck(frame []byte, seq, ack uint32) []byte {
	ip := header.IPv4(frame[header.EthernetLen:])
	t := header.TCP(ip.Payload())
	t.SetSequenceNumber(seq)
	t.SetAckNumber(ack)
	t.SetChecksum(0)
	t.SetChecksum(t.CalculateChecksum(ip.SourceAddress(), ip.DestinationAddress()))
	return frame
}

// observe delivers the TCP segments the firewall sent to the simulated
// hosts they are addressed to.
func (l *lab) observe(out [][][]byte) {
	for _, frames := range out {
		for _, fr := range frames {
			e := header.Ethernet(fr)
			if e.EtherType() != header.EtherTypeIPv4 {
				continue
			}
			ip := header.IPv4(e.Payload())
			if ip.Check() != nil || ip.Protocol() != header.ProtocolTCP {
				continue
			}
			t := header.TCP(ip.Payload())
			if t.Check() != nil {
				continue
			}
			h := l.tcpHost(tcpHostKey{ip.DestinationAddress(), ip.SourceAddress(), t.DestinationPort(), t.SourcePort()})
			end := t.SequenceNumber() + segLen(t.Flags(), len(t)-t.DataOffset())
			if t.Flags()&header.TCPFlagSYN != 0 || !h.synced || int32(end-h.rcvNxt) > 0 {
				h.rcvNxt, h.synced = end, true
			}
		}
	}
}
