package firewall

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// Frames of the client:40000 <-> server:80 connection through PAT, numbered
// by the simulated hosts.
func (l *lab) cFrame(flags uint8, payload string) []byte {
	return l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, flags, payload)
}

func (l *lab) sFrame(flags uint8, payload string) []byte {
	return l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, flags, payload)
}

// established returns a lab with the client:40000 -> server:80 connection
// through its handshake.
func established(t *testing.T, cfg Config) *lab {
	t.Helper()
	l := resolvedLab(t, cfg)
	only(t, l.in(ifInside, l.cFrame(SYN, "")), ifOutside, 1)
	only(t, l.in(ifOutside, l.sFrame(SYN|ACK, "")), ifInside, 1)
	only(t, l.in(ifInside, l.cFrame(ACK, "")), ifOutside, 1)
	if d := cmp.Diff([]string{"tcp 198.18.1.10:40000 ESTABLISHED"}, l.connStates()); d != "" {
		t.Fatalf("handshake (-want +got):\n%s", d)
	}
	return l
}

// standbyOf returns a second firewall fed every change record l emitted
// so far, as a standby would be.
func standbyOf(t *testing.T, l *lab) *lab {
	t.Helper()
	b := resolvedLab(t, labConfig())
	b.fw.SetActive(false)
	for _, c := range l.changes {
		if err := b.fw.ApplyChange(c); err != nil {
			t.Fatalf("apply %+v: %v", c, err)
		}
	}
	return b
}

func seqOf(frame []byte) (seq, ack uint32) {
	t := header.TCP(header.IPv4(frame[header.EthernetLen:]).Payload())
	return t.SequenceNumber(), t.AckNumber()
}

func TestForgedRSTFromOutsideKeepsTheConnection(t *testing.T) {
	l := established(t, labConfig())
	before := len(l.changes)
	forged := []struct {
		name string
		seq  uint32
		want string
	}{
		{"random sequence", 0xdeadbeef, "tcp-seq-past-win"},
		{"in window, not exact", tcpISN + 1 + 500, "tcp-rst-not-exact"},
	}
	for _, f := range forged {
		fr := setSeqAck(tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, RST, ""), f.seq, 0)
		nothing(t, l.in(ifOutside, fr))
		if l.drops()[f.want] != 1 {
			t.Errorf("%s: drops %v, want one %s", f.name, l.drops(), f.want)
		}
	}
	if d := cmp.Diff([]string{"tcp 198.18.1.10:40000 ESTABLISHED"}, l.connStates()); d != "" {
		t.Errorf("after forged RSTs (-want +got):\n%s", d)
	}
	if len(l.changes) != before {
		t.Errorf("forged RSTs emitted change records %+v", l.changes[before:])
	}
	// The standby, fed the records, still has the connection.
	if b := standbyOf(t, l); b.fw.ConnCount() != 1 {
		t.Errorf("standby has %d conns, want 1", b.fw.ConnCount())
	}
	// The real RST, at the server's next sequence number, ends it.
	only(t, l.in(ifOutside, l.sFrame(RST|ACK, "")), ifInside, 1)
	if n := l.fw.ConnCount(); n != 0 {
		t.Errorf("exact RST left %d conns", n)
	}
}

func TestForgedRSTFromAnotherInsideHost(t *testing.T) {
	l := established(t, labConfig())
	// client2 forges the client's address with a guessed sequence number.
	fr := setSeqAck(tcpFrame(client2.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, RST, ""), 0x12345678, 0)
	nothing(t, l.in(ifInside, fr))
	// client2 forges the server's side, which must come from outside.
	fr = l.tcpFrame(client2.mac, fwInsideMAC, server.ip, outsideIP, 80, 40000, RST|ACK, "")
	seq, ack := seqOf(l.sFrame(ACK, ""))
	setSeqAck(fr, seq, ack) // even with the exact numbers
	nothing(t, l.in(ifInside, fr))
	// The server's address from inside fails the reverse-path check before
	// any connection is looked at (TestWrongInterface covers the
	// connection's own check, with reverse-path off).
	if d := cmp.Diff(map[string]uint64{"tcp-seq-past-win": 1, "rpf-violated": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"tcp 198.18.1.10:40000 ESTABLISHED"}, l.connStates()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestRandomSequenceFINIsDropped(t *testing.T) {
	l := established(t, labConfig())
	fr := setSeqAck(tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, FIN|ACK, ""), 0x7000_0000, 0)
	nothing(t, l.in(ifOutside, fr))
	if d := cmp.Diff([]string{"tcp 198.18.1.10:40000 ESTABLISHED"}, l.connStates()); d != "" {
		t.Errorf("a forged FIN moved the state (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{"tcp-seq-past-win": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestDataOutsideTheWindowIsDropped(t *testing.T) {
	l := established(t, labConfig())
	seq, ack := seqOf(l.cFrame(ACK, ""))
	tests := []struct {
		name     string
		seq, ack uint32
		want     string
	}{
		{"past the window", seq + 70000, ack, "tcp-seq-past-win"},
		{"ack of unsent data", seq, ack + 10, "tcp-invalid-ack"},
	}
	for _, tt := range tests {
		fr := setSeqAck(tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK|PSH, "x"), tt.seq, tt.ack)
		nothing(t, l.in(ifInside, fr))
		if l.drops()[tt.want] != 1 {
			t.Errorf("%s: drops %v, want one %s", tt.name, l.drops(), tt.want)
		}
	}
	// Retransmissions and keepalives (one byte behind) pass.
	fr := l.cFrame(ACK|PSH, "data")
	retx := bytes.Clone(fr)
	only(t, l.in(ifInside, fr), ifOutside, 1)
	only(t, l.in(ifInside, retx), ifOutside, 1)
	only(t, l.in(ifInside, setSeqAck(l.cFrame(ACK, ""), seq+3, ack)), ifOutside, 1)
}

func TestSimultaneousOpen(t *testing.T) {
	l := resolvedLab(t, labConfig())
	only(t, l.in(ifInside, l.cFrame(SYN, "")), ifOutside, 1)
	only(t, l.in(ifOutside, l.sFrame(SYN, "")), ifInside, 1)
	only(t, l.in(ifInside, l.cFrame(SYN|ACK, "")), ifOutside, 1)
	only(t, l.in(ifOutside, l.sFrame(SYN|ACK, "")), ifInside, 1)
	if d := cmp.Diff([]string{"tcp 198.18.1.10:40000 ESTABLISHED"}, l.connStates()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	only(t, l.in(ifOutside, l.sFrame(ACK|PSH, "hello")), ifInside, 1)
	only(t, l.in(ifInside, l.cFrame(ACK|PSH, "hi")), ifOutside, 1)
	if d := cmp.Diff(map[string]uint64{}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestSimultaneousClose(t *testing.T) {
	l := established(t, labConfig())
	// Both FINs leave before either arrives.
	cfin, sfin := l.cFrame(FIN|ACK, ""), l.sFrame(FIN|ACK, "")
	cfinRetx, sfinRetx := bytes.Clone(cfin), bytes.Clone(sfin)
	only(t, l.in(ifInside, cfin), ifOutside, 1)
	only(t, l.in(ifOutside, sfin), ifInside, 1)
	steps := []struct {
		in    int
		frame []byte
		state string
	}{
		{ifInside, l.cFrame(ACK, ""), "CLOSING"},    // acks the server's FIN
		{ifOutside, l.sFrame(ACK, ""), "TIME_WAIT"}, // the last ACK
		{ifInside, cfinRetx, "TIME_WAIT"},           // a retransmitted FIN
		{ifOutside, sfinRetx, "TIME_WAIT"},
		{ifInside, l.cFrame(ACK, ""), "TIME_WAIT"},
	}
	for i, s := range steps {
		out := ifOutside
		if s.in == ifOutside {
			out = ifInside
		}
		only(t, l.in(s.in, s.frame), out, 1)
		if d := cmp.Diff([]string{"tcp 198.18.1.10:40000 " + s.state}, l.connStates()); d != "" {
			t.Fatalf("step %d (-want +got):\n%s", i, d)
		}
	}
	l.clk.Advance(31 * time.Second) // Timeouts.TimeWait
	l.sweepAll()
	if n := l.fw.ConnCount(); n != 0 {
		t.Errorf("TIME_WAIT outlived its timeout: %d conns", n)
	}
}

// TestWrongInterface: a packet matching a connection on another interface
// than the connection's is dropped by the connection check itself, which
// also holds where the reverse-path check is off (or cannot tell: two
// routes back to one source).
func TestWrongInterface(t *testing.T) {
	cfg := labConfig()
	cfg.DisableReversePathCheck = true
	l := resolvedLab(t, cfg)
	only(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 5000, 53, "q")), ifDMZ, 1)
	// The dmz host's answer, forged from inside and from outside.
	nothing(t, l.in(ifInside, udpFrame(client2.mac, fwInsideMAC, dmzHost.ip, client.ip, 53, 5000, "forged")))
	nothing(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, dmzHost.ip, client.ip, 53, 5000, "forged")))
	// The client's side from the dmz.
	nothing(t, l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, client.ip, dmzHost.ip, 5000, 53, "forged")))
	if d := cmp.Diff(map[string]uint64{"conn-wrong-interface": 3}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	only(t, l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, dmzHost.ip, client.ip, 53, 5000, "a")), ifInside, 1)
}

func TestPortZeroAndUDPLength(t *testing.T) {
	l := resolvedLab(t, labConfig())
	short := udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 53, "payload")
	u := header.UDP(header.IPv4(short[header.EthernetLen:]).Payload())
	u.SetLength(header.UDPMinimumSize + 2) // says 2 bytes of payload; the packet carries 7
	u.SetChecksum(0)
	for _, fr := range [][]byte{
		tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 0, SYN, ""),
		tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 0, 80, SYN, ""),
		udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 0, 53, "q"),
		short,
	} {
		nothing(t, l.in(ifInside, fr))
	}
	if d := cmp.Diff(map[string]uint64{"invalid-port-zero": 3, "invalid-udp-length": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if n := l.fw.ConnCount(); n != 0 {
		t.Errorf("%d conns created", n)
	}
}

// sackFrame is an ACK from the server carrying one SACK block, after pad
// NOPs (so that the block's numbers are 16-bit aligned or not).
func (l *lab) sackFrame(left, right uint32, pad int) []byte {
	fr := l.sFrame(ACK, "")
	opts := bytes.Repeat([]byte{header.TCPOptionNOP}, pad)
	opts = append(opts, header.TCPOptionSACK, 10)
	opts = binary.BigEndian.AppendUint32(opts, left)
	opts = binary.BigEndian.AppendUint32(opts, right)
	for len(opts)%4 != 0 {
		opts = append(opts, header.TCPOptionEnd)
	}
	ip := header.IPv4(fr[header.EthernetLen:])
	t := header.TCP(ip.Payload())
	l4 := append(append(bytes.Clone(t[:header.TCPMinimumSize]), opts...), t[t.DataOffset():]...)
	header.TCP(l4).SetDataOffset(header.TCPMinimumSize + len(opts))
	e := header.Ethernet(fr)
	return ipFrame([6]byte(e.Source()), [6]byte(e.Destination()), header.ProtocolTCP, ip.SourceAddress(), ip.DestinationAddress(), 64, l4)
}

func sackBlock(frame []byte) (uint32, uint32) {
	t := header.TCP(header.IPv4(frame[header.EthernetLen:]).Payload())
	for opts := t.Options(); ; {
		kind, opt, rest, ok := header.NextOption(opts)
		if !ok {
			return 0, 0
		}
		if kind == header.TCPOptionSACK {
			return binary.BigEndian.Uint32(opt[2:]), binary.BigEndian.Uint32(opt[6:])
		}
		opts = rest
	}
}

func TestSequenceRandomization(t *testing.T) {
	l := resolvedLab(t, labConfig())
	syn := only(t, l.in(ifInside, l.cFrame(SYN, "")), ifOutside, 1)[0]
	off, _ := seqOf(syn)
	off -= tcpISN
	if off == 0 {
		t.Fatalf("SYN left with the client's own ISN")
	}
	synack := only(t, l.in(ifOutside, l.sFrame(SYN|ACK, "")), ifInside, 1)[0]
	if _, ack := seqOf(synack); ack != tcpISN+1 {
		t.Errorf("SYN-ACK reached the client acking %d, want %d", ack, tcpISN+1)
	}
	only(t, l.in(ifInside, l.cFrame(ACK, "")), ifOutside, 1)
	data := only(t, l.in(ifInside, l.cFrame(ACK|PSH, "0123456789")), ifOutside, 1)[0]
	decode(t, data) // checksums verify
	if seq, _ := seqOf(data); seq != tcpISN+1+off {
		t.Errorf("data left with seq %d, want %d", seq, tcpISN+1+off)
	}
	for _, pad := range []int{2, 1} { // aligned, and not (full checksum recompute)
		fr := l.sackFrame(tcpISN+1+off+4, tcpISN+1+off+8, pad)
		out := only(t, l.in(ifOutside, fr), ifInside, 1)[0]
		decode(t, out)
		if a, b := sackBlock(out); a != tcpISN+5 || b != tcpISN+9 {
			t.Errorf("pad %d: SACK block reached the client as %d-%d, want %d-%d", pad, a, b, tcpISN+5, tcpISN+9)
		}
	}
	if d := cmp.Diff(map[string]uint64{}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}

	// Turned off, the numbers pass unchanged.
	cfg := labConfig()
	cfg.NoRandomSequence = true
	n := resolvedLab(t, cfg)
	if seq, _ := seqOf(only(t, n.in(ifInside, n.cFrame(SYN, "")), ifOutside, 1)[0]); seq != tcpISN {
		t.Errorf("NoRandomSequence: SYN left with seq %d, want %d", seq, tcpISN)
	}
}

// TestStreamSurvivesTakeover moves a connection that carried more than a
// window of data since its last record to a second firewall fed only the
// records: the stream continues there, with the same randomization.
func TestStreamSurvivesTakeover(t *testing.T) {
	a := established(t, labConfig())
	var off uint32
	for _, c := range a.changes {
		if c.Table == TableConn {
			off = c.Conn.SeqOffset
		}
	}
	payload := string(make([]byte, 1400))
	for range 60 { // 84 kB, past the 64 kB window the records know of
		only(t, a.in(ifInside, a.cFrame(ACK|PSH, payload)), ifOutside, 1)
		only(t, a.in(ifOutside, a.sFrame(ACK, "")), ifInside, 1)
	}
	b := standbyOf(t, a)
	if da, db := a.fw.Digest(TableConn), b.fw.Digest(TableConn); da != db {
		t.Errorf("conn digests differ: %#x vs %#x", da, db)
	}
	b.fw.SetActive(true)
	// Segments in flight at the takeover and the ones after reach b.
	out := b.in(ifInside, a.cFrame(ACK|PSH, payload))
	a.observe(out)
	data := only(t, out, ifOutside, 1)[0]
	if seq, _ := seqOf(data); seq != tcpISN+1+60*1400+off {
		t.Errorf("b sent seq %d, want %d (the same offset)", seq, tcpISN+1+60*1400+off)
	}
	out = b.in(ifOutside, a.sFrame(ACK|PSH, "reply"))
	a.observe(out)
	if _, ack := seqOf(only(t, out, ifInside, 1)[0]); ack != tcpISN+1+61*1400 {
		t.Errorf("b delivered ack %d, want %d", ack, tcpISN+1+61*1400)
	}
	for range 3 {
		out := b.in(ifInside, a.cFrame(ACK|PSH, payload))
		a.observe(out)
		only(t, out, ifOutside, 1)
		out = b.in(ifOutside, a.sFrame(ACK, ""))
		a.observe(out)
		only(t, out, ifInside, 1)
	}
	// After the pickup, b checks strictly again.
	fr := setSeqAck(tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, RST, ""), 0xdeadbeef, 0)
	nothing(t, b.in(ifOutside, fr))
	if d := cmp.Diff(map[string]uint64{"tcp-seq-past-win": 1}, b.drops()); d != "" {
		t.Errorf("b drops (-want +got):\n%s", d)
	}
	if b.fw.ConnCount() != 1 {
		t.Errorf("b has %d conns, want 1", b.fw.ConnCount())
	}
}

// A TCP record from a writer without the tracking block still parses.
func TestConnRecordWithoutTrackingParses(t *testing.T) {
	c := sampleChanges()[0]
	b := c.AppendBinary(nil)
	b = b[:len(b)-40]
	binary.BigEndian.PutUint16(b[3:], uint16(len(b)-changeHeaderLen))
	got, err := ParseChange(b)
	if err != nil {
		t.Fatal(err)
	}
	c.Conn.SeqOffset, c.Conn.Window = 0, [2]TCPWindow{}
	if d := cmp.Diff(c, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestTakeoverRetransmissionThenLaterAck: after a takeover, the first
// segment the new active sees is a retransmission from below data the
// hosts already exchanged through the old active, and the next is the
// peer's ack of that later data. The pickup must accept both (the freeze
// e2e runs stalled streams on exactly this, as tcp-invalid-ack), then check
// strictly again.
func TestTakeoverRetransmissionThenLaterAck(t *testing.T) {
	a := established(t, labConfig())
	payload := string(make([]byte, 1400))
	var retrans []byte
	for i := range 60 {
		fr := a.cFrame(ACK|PSH, payload)
		if i == 10 {
			retrans = append([]byte(nil), fr...)
		}
		only(t, a.in(ifInside, fr), ifOutside, 1)
		only(t, a.in(ifOutside, a.sFrame(ACK, "")), ifInside, 1)
	}
	b := standbyOf(t, a)
	b.fw.SetActive(true)
	only(t, b.in(ifInside, retrans), ifOutside, 1)
	only(t, b.in(ifOutside, a.sFrame(ACK, "")), ifInside, 1) // acks all 60
	for range 3 {
		only(t, b.in(ifInside, a.cFrame(ACK|PSH, payload)), ifOutside, 1)
		only(t, b.in(ifOutside, a.sFrame(ACK, "")), ifInside, 1)
	}
	if d := cmp.Diff(map[string]uint64{}, b.drops()); d != "" {
		t.Errorf("b drops (-want +got):\n%s", d)
	}
	fr := setSeqAck(tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, RST, ""), 0xdeadbeef, 0)
	nothing(t, b.in(ifOutside, fr))
	if b.fw.ConnCount() != 1 {
		t.Errorf("a forged RST after the pickup ended the connection")
	}
}

// TestBlindRSTAfterTakeoverOnIdleConnection: a connection adopted at
// takeover that carries no segment since must not accept any RST (the
// hostile e2e test deleted an idle connection from both units with one
// guessed sequence number); the peer's real RST still ends it.
func TestBlindRSTAfterTakeoverOnIdleConnection(t *testing.T) {
	a := established(t, labConfig())
	b := standbyOf(t, a)
	b.fw.SetActive(true)
	forged := setSeqAck(tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, RST, ""), 0x5eed1234, 0)
	nothing(t, b.in(ifOutside, forged))
	if n := b.fw.ConnCount(); n != 1 {
		t.Fatalf("a blind RST after the takeover deleted the connection (%d conns)", n)
	}
	if d := cmp.Diff(map[string]uint64{"tcp-seq-past-win": 1}, b.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	only(t, b.in(ifOutside, a.sFrame(RST|ACK, "")), ifInside, 1)
	if n := b.fw.ConnCount(); n != 0 {
		t.Errorf("the server's real RST left %d conns", n)
	}
}
